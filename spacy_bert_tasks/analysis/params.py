"""A pipeline's weights as one flat dictionary, read and written in place.

Every analysis works on ``Weights``: a dict from a stable key to a float32
numpy array. Keys of the shared encoder are ``"<pipe>/<torch name>"``
(``"transformer/encoder.layer.0.attention.self.query.weight"``); keys of a
head are ``"<pipe>/<i>.<layer name>.<param>"`` where ``i`` is the node's
position in ``model.walk()``, so two pipelines built from the same config
have the same keys.

Weights are saved as safetensors files (``save_weights``); ``load_weights``
also reads a saved spaCy pipeline or a Hugging Face encoder folder.
"""
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy
import torch
from safetensors.numpy import load_file, save_file
from spacy.language import Language
from spacy_transformers import Transformer
from thinc.api import Model

Weights = Dict[str, numpy.ndarray]


def encoder_pipe_names(nlp: Language) -> List[str]:
    """The names of the pipeline's ``transformer`` components."""
    return [name for name, proc in nlp.pipeline if isinstance(proc, Transformer)]


def head_pipe_names(nlp: Language) -> List[str]:
    """The trainable components other than encoders: the heads whose loss is measured."""
    names = []
    for name, proc in nlp.pipeline:
        if isinstance(proc, Transformer) or not getattr(proc, "is_trainable", False):
            continue
        if isinstance(getattr(proc, "model", None), Model):
            names.append(name)
    return names


def encoder_module(nlp: Language, name: Optional[str] = None) -> torch.nn.Module:
    """The Hugging Face model inside a ``transformer`` component.

    name (Optional[str]): the component; the first ``transformer`` if None.
    """
    names = encoder_pipe_names(nlp)
    if name is None:
        if not names:
            raise ValueError(
                f"The pipeline has no spacy-transformers 'transformer' component (it has "
                f"{nlp.pipe_names}). The analysis needs a transformer-based pipeline."
            )
        name = names[0]
    return nlp.get_pipe(name).model.transformer


def _head_params(model: Model) -> Iterator[Tuple[str, Model, str]]:
    for i, node in enumerate(model.walk()):
        for param in node.param_names:
            if node.has_param(param):
                yield f"{i}.{node.name}.{param}", node, param


def get_weights(nlp: Language, *, heads: bool = True) -> Weights:
    """Copy the encoders' and heads' weights out of a pipeline.

    heads (bool): include the heads' thinc parameters.
    RETURNS (Weights): float32 copies, keyed as described in the module docstring.
    """
    weights: Weights = {}
    for pipe in encoder_pipe_names(nlp):
        for key, param in encoder_module(nlp, pipe).named_parameters():
            weights[f"{pipe}/{key}"] = param.detach().cpu().numpy().astype("float32", copy=True)
    if heads:
        for pipe in head_pipe_names(nlp):
            model = nlp.get_pipe(pipe).model
            for key, node, param in _head_params(model):
                value = model.ops.to_numpy(node.get_param(param))
                weights[f"{pipe}/{key}"] = numpy.array(value, dtype="float32", copy=True)
    return weights


def set_weights(nlp: Language, weights: Weights) -> None:
    """Write weights into the pipeline in place; keys it lacks are an error, keys not given stay.

    weights (Weights): as returned by ``get_weights`` (possibly a subset).
    """
    remaining = dict(weights)
    with torch.no_grad():
        for pipe in encoder_pipe_names(nlp):
            for key, param in encoder_module(nlp, pipe).named_parameters():
                value = remaining.pop(f"{pipe}/{key}", None)
                if value is not None:
                    _check_shape(f"{pipe}/{key}", tuple(param.shape), value.shape)
                    param.copy_(torch.from_numpy(numpy.ascontiguousarray(value)).to(param.dtype))
    for pipe in head_pipe_names(nlp):
        model = nlp.get_pipe(pipe).model
        for key, node, param in _head_params(model):
            value = remaining.pop(f"{pipe}/{key}", None)
            if value is not None:
                current = node.get_param(param)
                _check_shape(f"{pipe}/{key}", tuple(current.shape), value.shape)
                node.set_param(param, model.ops.asarray(value, dtype=current.dtype))
    if remaining:
        raise KeyError(
            f"{len(remaining)} weight(s) have no place in this pipeline, e.g. {sorted(remaining)[:3]}. "
            f"Compare weights of pipelines built from the same config (pipes: {nlp.pipe_names})."
        )


def _check_shape(key: str, expected: tuple, got: tuple) -> None:
    if tuple(expected) != tuple(got):
        raise ValueError(
            f"Weight {key} has shape {tuple(got)} but the pipeline's has {tuple(expected)}. "
            "The weights come from a differently shaped model."
        )


def save_weights(weights: Weights, path: Union[str, Path]) -> Path:
    """Write weights to a ``.safetensors`` file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: numpy.ascontiguousarray(v) for k, v in weights.items()}, str(path))
    return path


def load_weights(path: Union[str, Path], *, encoder_pipe: str = "transformer") -> Weights:
    """Read weights from a weights file, a spaCy pipeline folder or a Hugging Face encoder folder.

    path (Union[str, Path]): ``*.safetensors`` written by ``save_weights``; a folder
        with ``config.cfg`` (a saved pipeline: encoder and heads); or a folder with
        ``config.json`` (an encoder only: its keys get the ``encoder_pipe`` prefix).
    encoder_pipe (str): the name of the ``transformer`` component, for encoder folders.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        return {k: v.astype("float32", copy=False) for k, v in load_file(str(path)).items()}
    if (path / "config.cfg").is_file():
        import spacy

        return get_weights(spacy.load(path))
    if (path / "config.json").is_file():
        from transformers import AutoModel

        from ..encoder_folder import check_encoder_folder, load_weights_checked

        # Safetensors only: a pytorch_model.bin is a pickle, and loading one runs code.
        model = load_weights_checked(AutoModel, check_encoder_folder(path, tokenizer=False))
        return {
            f"{encoder_pipe}/{k}": v.detach().cpu().numpy().astype("float32", copy=True)
            for k, v in model.named_parameters()
        }
    raise FileNotFoundError(
        f"Cannot read weights from {path}: expected a .safetensors file, a spaCy pipeline "
        "folder (with config.cfg) or a Hugging Face encoder folder (with config.json)."
    )


def add(a: Weights, b: Weights, scale: float = 1.0) -> Weights:
    """``a + scale * b`` on the keys of ``a`` (keys missing from ``b`` are copied from ``a``)."""
    return {k: (v + scale * b[k]) if k in b else v.copy() for k, v in a.items()}


def subtract(a: Weights, b: Weights) -> Weights:
    """``a - b`` on the keys both hold."""
    return {k: a[k] - b[k] for k in a if k in b}


def dot(a: Weights, b: Weights) -> float:
    """The inner product of two weight sets seen as one flat vector."""
    return float(sum(numpy.vdot(a[k].astype("float64"), b[k].astype("float64")) for k in a if k in b))


def norm(a: Weights) -> float:
    """The Euclidean norm of a weight set seen as one flat vector."""
    return dot(a, a) ** 0.5
