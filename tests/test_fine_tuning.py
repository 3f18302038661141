"""GlobalClipAdam: thinc's Adam with the step clipped by its global norm, as torch does it."""
import numpy
import pytest
import torch
from spacy.util import registry
from thinc.api import Adam, Linear, PyTorchWrapper, chain

from spacy_bert_tasks.fine_tuning import configure_global_clip_adam


def _torch_reference(weights, steps, lr=0.01, max_norm=1.0):
    """torch's AdamW with clip_grad_norm_ over the same weights and gradients."""
    params = [torch.nn.Parameter(torch.tensor(w)) for w in weights]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, eps=1e-8)
    for grads in steps:
        for param, grad in zip(params, grads):
            param.grad = torch.tensor(grad)
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
    return [param.detach().numpy() for param in params]


def test_matches_torch_adamw_with_global_clipping():
    rng = numpy.random.default_rng(0)
    weights = [rng.normal(size=(4, 3)).astype("f"), rng.normal(size=(5,)).astype("f")]
    steps = [[rng.normal(scale=3.0, size=w.shape).astype("f") for w in weights] for _ in range(4)]
    expected = _torch_reference(weights, steps)
    optimizer = configure_global_clip_adam(0.01, max_grad_norm=1.0, L2=0.01, use_averages=False)
    ours = [w.copy() for w in weights]
    for grads in steps:
        start = [w.copy() for w in ours]
        for i, grad in enumerate(grads):
            updated, zeroed = optimizer((0, f"w{i}"), ours[i], grad.copy())
            assert updated is ours[i] and not zeroed.any()
        for got, held in zip(ours, start):  # nothing moves before the step ends
            numpy.testing.assert_array_equal(got, held)
        optimizer.step_schedules()
    for got, want in zip(ours, expected):
        numpy.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_plain_adam_clips_each_parameter_instead():
    """The reason for the optimizer: thinc's grad_clip gives another step than torch's global clipping."""
    rng = numpy.random.default_rng(1)
    weights = [rng.normal(size=(4, 3)).astype("f"), rng.normal(size=(5,)).astype("f")]
    steps = [[rng.normal(scale=[3.0, 0.01][i], size=w.shape).astype("f") for i, w in enumerate(weights)] for _ in range(3)]
    expected = _torch_reference(weights, steps)
    optimizer = Adam(0.01, L2=0.01, L2_is_weight_decay=True, grad_clip=1.0, use_averages=False)
    ours = [w.copy() for w in weights]
    for grads in steps:
        for i, grad in enumerate(grads):
            ours[i], _ = optimizer((0, f"w{i}"), ours[i], grad.copy())
    assert not numpy.allclose(ours[1], expected[1], rtol=1e-4, atol=1e-6)


def test_a_loop_without_step_schedules_still_updates():
    optimizer = configure_global_clip_adam(0.1, max_grad_norm=1.0, use_averages=False)
    weights = numpy.ones((3,), dtype="f")
    optimizer((0, "w"), weights, numpy.ones((3,), dtype="f"))
    assert (weights == 1.0).all()
    optimizer((0, "w"), weights, numpy.ones((3,), dtype="f"))  # the next step applies the first
    assert (weights < 1.0).all()


def test_off_is_plain_adam():
    a = configure_global_clip_adam(0.01, max_grad_norm=0.0, grad_clip=1.0, use_averages=False)
    b = Adam(0.01, grad_clip=1.0, use_averages=False)
    w_a, w_b = numpy.ones((4,), dtype="f"), numpy.ones((4,), dtype="f")
    grad = numpy.arange(4, dtype="f")
    w_a, _ = a((0, "w"), w_a, grad.copy())
    w_b, _ = b((0, "w"), w_b, grad.copy())
    numpy.testing.assert_array_equal(w_a, w_b)
    with pytest.raises(ValueError, match="max_grad_norm"):
        configure_global_clip_adam(0.01, max_grad_norm=-1.0)


def test_updates_torch_and_thinc_parameters_of_a_model():
    """Through finish_update: torch weights (PyTorchShim) and thinc weights, one global norm."""
    torch.manual_seed(0)
    model = chain(PyTorchWrapper(torch.nn.Linear(3, 4)), Linear(2, 4))
    X = numpy.random.default_rng(0).normal(size=(5, 3)).astype("f")
    model.initialize(X=X)
    torch_layer = model.layers[0].shims[0]._model
    before_torch = torch_layer.weight.detach().clone()
    before_thinc = model.layers[1].get_param("W").copy()
    Y, backprop = model.begin_update(X)
    backprop(numpy.ones_like(Y) * 100.0)
    optimizer = registry.optimizers.get("spacy_bert_tasks.GlobalClipAdam.v1")(0.01, use_averages=False)
    model.finish_update(optimizer)
    assert torch.equal(torch_layer.weight.detach(), before_torch)
    optimizer.step_schedules()
    assert not torch.equal(torch_layer.weight.detach(), before_torch)
    assert not numpy.array_equal(model.layers[1].get_param("W"), before_thinc)
    assert torch_layer.weight.grad is None or not torch_layer.weight.grad.any()
