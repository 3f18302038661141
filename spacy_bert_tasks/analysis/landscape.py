"""The loss surface around a fine-tuned pipeline.

- ``interpolate``: the loss along θ(α) = θ0 + α (θ1 - θ0), over the encoder and
  the heads together (Goodfellow et al., 2015; Hao et al., 2019, Fig. 4).
- ``random_direction``: a Gaussian direction, filter-normalised after Li et al.
  (2018): each filter (each row of a weight matrix: one output unit, or one
  embedding vector) is rescaled to the norm of the same row of θ; vectors
  (biases, LayerNorm) get a zero direction, as in the paper's ``biasbn`` setting.
- ``landscape_2d``: the loss on a grid θ1 + x d1 + y d2.
- ``sharpness``: the mean loss increase at a fixed distance along random
  filter-normalised directions (both signs): a flat minimum has a small one.
- ``trajectory_directions`` / ``project``: the first two principal directions of
  the checkpoints' differences from θ1 (uncentred PCA, via their Gram matrix so no
  flat ``(n_checkpoints, n_params)`` matrix is built), and the checkpoints' coordinates.

Every function leaves the pipeline holding the weights it found.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.training import Example
from tqdm.auto import tqdm

from .losses import TOTAL, pipeline_loss
from .params import Weights, add, dot, get_weights, set_weights, subtract


@contextmanager
def restored_weights(nlp: Language) -> Iterator[Weights]:
    """Give the pipeline's weights and put them back afterwards, whatever happens."""
    original = get_weights(nlp)
    try:
        yield original
    finally:
        set_weights(nlp, original)


def _losses(nlp: Language, splits: Dict[str, Sequence[Example]], batch_size: int) -> Dict[str, float]:
    return {name: pipeline_loss(nlp, egs, batch_size=batch_size)[TOTAL] for name, egs in splits.items()}


def interpolate(
    nlp: Language,
    theta0: Weights,
    theta1: Weights,
    splits: Dict[str, Sequence[Example]],
    alphas: Sequence[float],
    *,
    batch_size: int = 16,
    progress: bool = True,
) -> Dict[str, List[float]]:
    """The loss on each split along the line from θ0 to θ1.

    theta0 (Weights): the start (keys missing here stay at θ1 for every α).
    theta1 (Weights): the fine-tuned weights.
    splits (Dict[str, Sequence[Example]]): e.g. ``{"train": ..., "dev": ...}``.
    alphas (Sequence[float]): points on the line; 0 is θ0, 1 is θ1.
    RETURNS (Dict[str, List[float]]): ``{"alpha": [...], <split>: [loss per alpha]}``.
    """
    delta = subtract(theta1, theta0)
    result: Dict[str, List[float]] = {"alpha": [float(a) for a in alphas]}
    result.update({name: [] for name in splits})
    with restored_weights(nlp):
        for alpha in tqdm(alphas, desc="1D interpolation", disable=not progress):
            # θ(α) = θ1 + (α - 1)(θ1 - θ0) = θ0 + α(θ1 - θ0)
            set_weights(nlp, add(theta1, delta, float(alpha) - 1.0))
            for name, loss in _losses(nlp, splits, batch_size).items():
                result[name].append(loss)
    return result


def random_direction(theta: Weights, rng: numpy.random.Generator, *, keys: Optional[Sequence[str]] = None) -> Weights:
    """A random direction, filter-normalised to θ (Li et al., 2018).

    theta (Weights): the point the direction is scaled to.
    rng (numpy.random.Generator): the source of the Gaussian entries.
    keys (Optional[Sequence[str]]): the weights that move; others get zeros.
    """
    moving = set(theta if keys is None else keys)
    direction: Weights = {}
    for key in sorted(theta):
        value = theta[key]
        if key not in moving or value.ndim < 2:
            direction[key] = numpy.zeros_like(value)
            continue
        d = rng.standard_normal(value.shape).astype("float32")
        rows_d = d.reshape(value.shape[0], -1)  # (n_filters, filter_size)
        rows_w = value.reshape(value.shape[0], -1)
        scale = numpy.linalg.norm(rows_w, axis=1) / (numpy.linalg.norm(rows_d, axis=1) + 1e-10)
        direction[key] = (rows_d * scale[:, None]).reshape(value.shape).astype("float32")
    return direction


def landscape_2d(
    nlp: Language,
    theta1: Weights,
    d1: Weights,
    d2: Weights,
    xs: Sequence[float],
    ys: Sequence[float],
    examples: Sequence[Example],
    *,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "2D landscape",
) -> numpy.ndarray:
    """The total loss at θ1 + x d1 + y d2 for every x in xs and y in ys.

    RETURNS (numpy.ndarray): ``(len(ys), len(xs))``, row i for ys[i], as matplotlib's contour wants.
    """
    grid = numpy.zeros((len(ys), len(xs)), dtype="float64")
    with restored_weights(nlp):
        with tqdm(total=grid.size, desc=desc, disable=not progress) as bar:
            for i, y in enumerate(ys):
                row = add(theta1, d2, float(y))
                for j, x in enumerate(xs):
                    set_weights(nlp, add(row, d1, float(x)))
                    grid[i, j] = pipeline_loss(nlp, examples, batch_size=batch_size)[TOTAL]
                    bar.update(1)
    return grid


def sharpness(
    nlp: Language,
    theta1: Weights,
    examples: Sequence[Example],
    *,
    distance: float = 0.5,
    n_directions: int = 4,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
) -> Dict[str, object]:
    """Loss increase at ``distance`` along random filter-normalised directions, both ways.

    RETURNS (Dict[str, object]): ``{"distance", "base_loss", "increases": [...], "mean", "max"}``
        with one increase per direction and sign.
    """
    rng = numpy.random.default_rng(seed)
    increases: List[float] = []
    with restored_weights(nlp):
        set_weights(nlp, theta1)
        base = pipeline_loss(nlp, examples, batch_size=batch_size)[TOTAL]
        for _ in tqdm(range(n_directions), desc="sharpness", disable=not progress):
            direction = random_direction(theta1, rng)
            for sign in (1.0, -1.0):
                set_weights(nlp, add(theta1, direction, sign * distance))
                increases.append(pipeline_loss(nlp, examples, batch_size=batch_size)[TOTAL] - base)
    return {
        "distance": distance,
        "base_loss": base,
        "increases": increases,
        "mean": float(numpy.mean(increases)) if increases else 0.0,
        "max": float(numpy.max(increases)) if increases else 0.0,
    }


def trajectory_directions(checkpoints: Sequence[Weights], theta1: Weights) -> Tuple[Weights, Weights, List[float]]:
    """The first two principal directions of ``checkpoint - θ1`` (unit vectors).

    checkpoints (Sequence[Weights]): at least two weight sets saved during training.
    RETURNS (Tuple[Weights, Weights, List[float]]): d1, d2 and the share of the
        differences' squared norm each explains.
    """
    diffs = [subtract(c, theta1) for c in checkpoints]
    diffs = [d for d in diffs if any(numpy.any(v) for v in d.values())]
    if len(diffs) < 2:
        raise ValueError(
            "A trajectory needs at least two checkpoints that differ from the final weights. "
            "Save checkpoints more often (the save_weights callback's `every`)."
        )
    n = len(diffs)
    gram = numpy.zeros((n, n))
    for key in diffs[0]:
        flat = numpy.stack([d[key].ravel().astype("float64") for d in diffs])  # (n, size)
        gram += flat @ flat.T
    eigvals, eigvecs = numpy.linalg.eigh(gram)
    order = numpy.argsort(eigvals)[::-1]
    eigvals, eigvecs = numpy.clip(eigvals[order], 0.0, None), eigvecs[:, order]
    directions = []
    for k in range(2):
        lam = eigvals[k] if eigvals[k] > 0 else 1.0
        coef = eigvecs[:, k] / lam**0.5
        directions.append(
            {key: sum(float(c) * d[key] for c, d in zip(coef, diffs)).astype("float32") for key in diffs[0]}
        )
    explained = [float(v / eigvals.sum()) for v in eigvals[:2]]
    return directions[0], directions[1], explained


def project(point: Weights, theta1: Weights, d1: Weights, d2: Weights) -> Tuple[float, float]:
    """The coordinates of ``point - θ1`` along two orthonormal directions."""
    diff = subtract(point, theta1)
    return dot(diff, d1), dot(diff, d2)
