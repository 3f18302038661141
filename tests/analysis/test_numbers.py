"""The analyses' numbers on a tiny fine-tuned pipeline: drift, losses, interpolation, landscape."""
import numpy
import pytest

from spacy_bert_tasks.analysis.drift import group_of, weight_drift
from spacy_bert_tasks.analysis.landscape import (
    interpolate,
    landscape_2d,
    project,
    random_direction,
    sharpness,
    trajectory_directions,
)
from spacy_bert_tasks.analysis.losses import TOTAL, pipeline_loss
from spacy_bert_tasks.analysis.params import add, get_weights, load_weights, norm, set_weights, subtract
from spacy_bert_tasks.analysis.analyze import checkpoint_files, reinitialized_heads

from .conftest import DEV, EVERY, N_STEPS, TRAIN, make_examples


def _same(a, b):
    return set(a) == set(b) and all(numpy.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def splits(trained):
    nlp = trained["nlp"]
    return {"train": make_examples(nlp, TRAIN), "dev": make_examples(nlp, DEV)}


def test_weights_cover_encoder_and_head(trained):
    weights = get_weights(trained["nlp"])
    pipes = {key.split("/")[0] for key in weights}
    assert pipes == {"transformer", "textcat"}
    assert "transformer/encoder.layer.1.attention.self.query.weight" in weights
    assert weights["textcat/3.softmax.W"].shape == (2, 128)


def test_set_weights_round_trip_and_errors(trained):
    nlp = trained["nlp"]
    theta1 = get_weights(nlp)
    zeros = {k: numpy.zeros_like(v) for k, v in theta1.items()}
    set_weights(nlp, zeros)
    assert norm(get_weights(nlp)) == 0.0
    set_weights(nlp, theta1)
    assert _same(get_weights(nlp), theta1)
    with pytest.raises(KeyError, match="no place"):
        set_weights(nlp, {"textcat/99.nothing.W": numpy.zeros(1, dtype="f")})
    key = "textcat/3.softmax.W"
    with pytest.raises(ValueError, match="shape"):
        set_weights(nlp, {key: numpy.zeros((3, 3), dtype="f")})
    assert _same(get_weights(nlp), theta1)


def test_load_weights_from_every_source(trained):
    theta1 = get_weights(trained["nlp"])
    assert _same(load_weights(trained["model"]), theta1)
    encoder = load_weights(trained["encoder"])
    step0 = load_weights(trained["initial"])
    assert set(encoder) == {k for k in theta1 if k.startswith("transformer/")}
    # the step-0 checkpoint holds the encoder exactly as the folder it started from
    assert all(numpy.array_equal(encoder[k], step0[k]) for k in encoder)
    with pytest.raises(FileNotFoundError, match="config.cfg"):
        load_weights(trained["root"])


def test_drift_is_zero_for_unchanged_model(trained):
    weights = get_weights(trained["nlp"])
    drift = weight_drift(weights, {k: v.copy() for k, v in weights.items()})
    assert drift["total"] == 0.0
    assert all(v == 0.0 for v in drift["layers"].values())
    assert all(v == 0.0 for layer in drift["modules"].values() for v in layer.values())
    assert list(drift["layers"]) == ["embeddings", "layer 0", "layer 1", "pooler", "textcat"]


def test_drift_numbers(trained):
    before = get_weights(trained["nlp"])
    after = {k: v.copy() for k, v in before.items()}
    key = "transformer/encoder.layer.1.intermediate.dense.weight"
    after[key] = after[key] * 1.5  # a 50% change of one matrix
    drift = weight_drift(before, after)
    assert drift["modules"]["layer 1"]["intermediate.dense"] == pytest.approx(
        numpy.linalg.norm(before[key] * 0.5) / numpy.sqrt(numpy.sum(before[key] ** 2) + numpy.sum(before[key.replace("weight", "bias")] ** 2)),
        rel=1e-6,
    )
    assert drift["layers"]["layer 0"] == 0.0
    assert 0.0 < drift["layers"]["layer 1"] < drift["modules"]["layer 1"]["intermediate.dense"]
    # fine-tuning moved every layer the head reads; the pooler, which no head reads, stays put
    real = weight_drift(load_weights(trained["initial"]), before)
    assert all(v > 0 for layer, v in real["layers"].items() if layer != "pooler"), real["layers"]
    assert real["layers"]["pooler"] == 0.0
    assert group_of("transformer/embeddings.LayerNorm.weight") == ("embeddings", "LayerNorm")
    assert group_of("textcat/3.softmax.b") == ("textcat", "3.softmax")


def test_loss_is_measured_without_changing_anything(trained, splits):
    nlp = trained["nlp"]
    before = get_weights(nlp)
    first = pipeline_loss(nlp, splits["train"], batch_size=4)
    second = pipeline_loss(nlp, splits["train"], batch_size=4)
    assert first == second
    assert first[TOTAL] == first["textcat"] > 0
    assert _same(get_weights(nlp), before)
    # the examples' own docs are not annotated
    assert splits["train"][0].predicted.cats == {}
    # training lowered the loss: θ1 beats θ0
    set_weights(nlp, load_weights(trained["initial"]))
    at_start = pipeline_loss(nlp, splits["train"], batch_size=4)[TOTAL]
    set_weights(nlp, before)
    assert at_start > first[TOTAL]


def test_interpolation_ends_equal_direct_losses(trained, splits):
    nlp = trained["nlp"]
    theta1 = get_weights(nlp)
    theta0 = load_weights(trained["initial"])
    result = interpolate(nlp, theta0, theta1, splits, [-0.5, 0.0, 0.5, 1.0, 1.5], batch_size=4, progress=False)
    assert _same(get_weights(nlp), theta1)  # restored
    direct1 = {name: pipeline_loss(nlp, egs, batch_size=4)[TOTAL] for name, egs in splits.items()}
    set_weights(nlp, theta0)
    direct0 = {name: pipeline_loss(nlp, egs, batch_size=4)[TOTAL] for name, egs in splits.items()}
    set_weights(nlp, theta1)
    for name in splits:
        assert result[name][1] == pytest.approx(direct0[name], rel=1e-5)
        assert result[name][3] == pytest.approx(direct1[name], rel=1e-5)
        assert len(result[name]) == 5


def test_random_direction_is_filter_normalised():
    rng = numpy.random.default_rng(0)
    theta = {"a/w": rng.standard_normal((4, 6)).astype("f"), "a/b": numpy.ones(4, dtype="f")}
    direction = random_direction(theta, numpy.random.default_rng(1))
    numpy.testing.assert_allclose(
        numpy.linalg.norm(direction["a/w"], axis=1), numpy.linalg.norm(theta["a/w"], axis=1), rtol=1e-5
    )
    assert not direction["a/b"].any()
    again = random_direction(theta, numpy.random.default_rng(1))
    assert numpy.array_equal(direction["a/w"], again["a/w"])


def test_landscape_centre_is_the_fine_tuned_loss(trained, splits):
    nlp = trained["nlp"]
    theta1 = get_weights(nlp)
    rng = numpy.random.default_rng(0)
    d1, d2 = random_direction(theta1, rng), random_direction(theta1, rng)
    grid = landscape_2d(nlp, theta1, d1, d2, [-0.5, 0.0, 0.5], [-0.25, 0.0, 0.25], splits["train"], batch_size=4, progress=False)
    assert grid.shape == (3, 3)
    assert grid[1, 1] == pytest.approx(pipeline_loss(nlp, splits["train"], batch_size=4)[TOTAL], rel=1e-5)
    assert _same(get_weights(nlp), theta1)
    # the point (x=0.5, y=-0.25) is θ1 + 0.5 d1 - 0.25 d2
    set_weights(nlp, add(add(theta1, d1, 0.5), d2, -0.25))
    assert grid[0, 2] == pytest.approx(pipeline_loss(nlp, splits["train"], batch_size=4)[TOTAL], rel=1e-5)
    set_weights(nlp, theta1)


def test_sharpness(trained, splits):
    nlp = trained["nlp"]
    at_zero = sharpness(nlp, get_weights(nlp), splits["train"], distance=0.0, n_directions=2, batch_size=4, progress=False)
    assert at_zero["increases"] == [0.0] * 4
    far = sharpness(nlp, get_weights(nlp), splits["train"], distance=1.0, n_directions=2, batch_size=4, progress=False)
    assert len(far["increases"]) == 4 and far["mean"] > 0.0


def test_trajectory_pca_on_known_points():
    theta1 = {"p/w": numpy.zeros((2, 3), dtype="f")}
    e1 = numpy.array([[1, 0, 0], [0, 0, 0]], dtype="f")
    e2 = numpy.array([[0, 0, 0], [0, 1, 0]], dtype="f")
    points = [(3.0, 1.0), (2.0, -1.0), (1.0, 0.5)]
    checkpoints = [{"p/w": x * e1 + y * e2} for x, y in points]
    d1, d2, explained = trajectory_directions(checkpoints, theta1)
    assert norm(d1) == pytest.approx(1.0) and norm(d2) == pytest.approx(1.0)
    assert sum(explained) == pytest.approx(1.0)
    assert explained[0] > explained[1]
    projected = [project(c, theta1, d1, d2) for c in checkpoints]
    # an orthonormal basis of the same plane keeps distances
    for (x, y), (px, py) in zip(points, projected):
        assert x**2 + y**2 == pytest.approx(px**2 + py**2, rel=1e-5)
    with pytest.raises(ValueError, match="two checkpoints"):
        trajectory_directions([theta1], theta1)


def test_checkpoints_and_reinitialised_heads(trained):
    nlp = trained["nlp"]
    files = checkpoint_files(trained["checkpoints"])
    assert [f.name for f in files] == [f"step-{s:06d}.safetensors" for s in range(0, N_STEPS, EVERY)]
    theta1 = get_weights(nlp)
    heads = reinitialized_heads(nlp, seed=0)
    assert set(heads) == {k for k in theta1 if k.startswith("textcat/")}
    assert _same(get_weights(nlp), theta1)
    assert not numpy.array_equal(heads["textcat/3.softmax.W"], theta1["textcat/3.softmax.W"])
    assert norm(subtract(heads, reinitialized_heads(nlp, seed=0))) == 0.0
