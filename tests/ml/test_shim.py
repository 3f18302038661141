"""The encoder's shim (ml/encoder/shim.py): thinc's update written into each parameter's own tensor; weights saved in save_dtype."""
import gc
import random

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from spacy.util import fix_random_seed, registry
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Adam

from spacy_bert_tasks.ml.encoder.shim import EncoderShim


def _shim(nlp):
    return nlp.get_pipe("transformer").model.layers[0].shims[0]


def _live_tensors() -> int:
    gc.collect()
    return sum(issubclass(type(obj), torch.Tensor) for obj in gc.get_objects())


@pytest.mark.parametrize("optimizer", ["adam", "global_clip"])
def test_step_matches_thinc(make_nlp, optimizer):
    """Same gradients, same optimizer settings: the same weights as thinc's own step, to the bit."""
    nlp = make_nlp()
    nlp.initialize()
    shim = _shim(nlp)
    assert isinstance(shim, EncoderShim)
    params = dict(shim._model.named_parameters())
    start = {name: param.detach().clone() for name, param in params.items()}
    generator = torch.Generator().manual_seed(0)
    grads = {name: torch.randn(param.shape, generator=generator) for name, param in params.items()}

    def step(finish_update) -> dict:
        if optimizer == "global_clip":  # keeps the step's gradients and applies them in step_schedules()
            sgd = registry.optimizers.get("spacy_bert_tasks.GlobalClipAdam.v1")(0.01, max_grad_norm=1.0, use_averages=False)
        else:
            sgd = Adam(0.01, use_averages=False)
        for _ in range(3):
            for name, param in shim._model.named_parameters():
                param.grad = grads[name].clone()
            finish_update(shim, sgd)
            sgd.step_schedules()
        after = {name: param.detach().clone() for name, param in shim._model.named_parameters()}
        for name, param in shim._model.named_parameters():
            param.data = start[name].clone()
        return after

    ours, thinc = step(EncoderShim.finish_update), step(HFShim.finish_update)
    assert any(not torch.equal(ours[name], start[name]) for name in start), "the step changed nothing"
    for name in start:
        assert torch.equal(ours[name], thinc[name]), name
        assert params[name].grad is None or not params[name].grad.any()


def test_training_keeps_one_tensor_per_parameter(make_nlp):
    """``nlp.update`` after ``nlp.update``: no tensors pile up (thinc's step adds one per parameter per update)."""
    nlp = make_nlp()
    nlp.add_pipe("bert_ner")
    rng = random.Random(0)

    def examples():
        docs = [nlp.make_doc(f"Alice Smith visited Paris {'again ' * rng.randint(0, 9)}.") for _ in range(4)]
        return [Example.from_dict(doc, {"entities": [(0, 11, "PER"), (20, 25, "LOC")]}) for doc in docs]

    sgd = nlp.initialize(examples)
    params = dict(_shim(nlp)._model.named_parameters())
    tensors = {name: param.data for name, param in params.items()}
    weights = {name: param.detach().clone() for name, param in params.items()}
    for _ in range(3):
        nlp.update(examples(), sgd=sgd)
    before = _live_tensors()
    for _ in range(10):
        nlp.update(examples(), sgd=sgd)
    grown = _live_tensors() - before
    assert grown < 5, f"{grown} more live tensors after 10 updates ({len(params)} parameters)"
    assert all(param.data.data_ptr() == tensors[name].data_ptr() for name, param in params.items())
    assert any(not torch.equal(param.detach(), weights[name]) for name, param in params.items())


def _encoder_file(path) -> int:
    return (path / "transformer" / "model").stat().st_size


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_on_disk(make_nlp, tmp_path, dtype):
    """save_dtype halves the encoder on disk; it loads as float32, the weights rounded, and keeps the setting."""
    nlp = make_nlp()
    nlp.initialize()
    nlp.to_disk(tmp_path / "full")
    encoder = nlp.get_pipe("transformer").model
    encoder.save_dtype = dtype
    nlp.get_pipe_config("transformer")["model"]["save_dtype"] = dtype
    nlp.to_disk(tmp_path / "half")
    assert _encoder_file(tmp_path / "half") < 0.6 * _encoder_file(tmp_path / "full")
    loaded = spacy.load(tmp_path / "half")
    assert loaded.get_pipe("transformer").model.save_dtype == dtype
    for (name, ours), (_, theirs) in zip(encoder.transformer.state_dict().items(),
                                         loaded.get_pipe("transformer").model.transformer.state_dict().items()):
        if ours.is_floating_point():
            assert theirs.dtype == torch.float32, name
            assert torch.equal(theirs, ours.to(getattr(torch, dtype)).float()), name
    text = "Alice Smith visited Paris."
    expected = nlp(text)._.trf_data.model_output.last_hidden_state
    assert numpy.allclose(loaded(text)._.trf_data.model_output.last_hidden_state, expected, atol=0.05)
    loaded.to_disk(tmp_path / "again")
    assert _encoder_file(tmp_path / "again") < 0.6 * _encoder_file(tmp_path / "full")


def test_save_dtype_is_checked(make_nlp):
    with pytest.raises(ValueError, match="use one of float32, float16, bfloat16"):
        make_nlp(save_dtype="int4")
    encoder = make_nlp().get_pipe("transformer").model
    with pytest.raises(ValueError, match="save_dtype='half'"):
        encoder.save_dtype = "half"


def _ner_pipeline(make_nlp):
    nlp = make_nlp()
    nlp.add_pipe("bert_ner", config={"model": {"dropout": 0.0}})
    docs = [nlp.make_doc(text) for text in ("Alice Smith visited Paris.", "Bob went to Berlin with Alice.")]
    entities = [[(0, 11, "PER"), (20, 25, "LOC")], [(0, 3, "PER"), (12, 18, "LOC"), (24, 29, "PER")]]
    examples = [Example.from_dict(doc, {"entities": ents}) for doc, ents in zip(docs, entities)]
    nlp.initialize(lambda: examples)
    return nlp, examples


def _encoder_weights(nlp) -> dict:
    return {name: param.detach().clone() for name, param in _shim(nlp)._model.named_parameters()}


@pytest.mark.parametrize("optimizer", ["adam", "global_clip"])
def test_nlp_update_steps_the_encoder_with_this_update(make_nlp, optimizer):
    """``nlp.update(sgd=...)`` finishes the transformer before its listeners backpropagate; the shim
    waits for the backward pass, so one update moves the encoder exactly as spaCy's training loop
    (update everything, then finish every component) does, not one update late."""
    def make_sgd():
        if optimizer == "global_clip":
            return registry.optimizers.get("spacy_bert_tasks.GlobalClipAdam.v1")(0.01, max_grad_norm=1.0, use_averages=False)
        return Adam(0.01, use_averages=False)

    results = []
    for loop in ("nlp.update", "spacy train"):
        fix_random_seed(0)  # the head's initialisation and the encoder's dropout masks
        nlp, examples = _ner_pipeline(make_nlp)
        start = _encoder_weights(nlp)
        sgd = make_sgd()
        for step in range(2):
            if loop == "nlp.update":
                nlp.update(examples, sgd=sgd, drop=0.0)
            else:  # spacy.training.loop.train_while_improving
                nlp.update(examples, sgd=False, drop=0.0)
                for _, proc in nlp.pipeline:
                    proc.finish_update(sgd)
            sgd.step_schedules()
            if loop == "nlp.update" and step == 0:
                first = _encoder_weights(nlp)
                assert any(not torch.equal(first[name], start[name]) for name in start), "the first update left the encoder"
        results.append(_encoder_weights(nlp))
    for name in results[0]:
        assert torch.equal(results[0][name], results[1][name]), name


def test_a_forward_pass_without_backward_does_not_hold_the_step(make_nlp):
    """A training forward pass whose backward never comes (a head that got no gradient) leaves no step
    waiting forever: the next training forward pass starts afresh, and predicting changes nothing."""
    nlp, examples = _ner_pipeline(make_nlp)
    shim = _shim(nlp)
    sgd = Adam(0.01, use_averages=False)
    encoder = nlp.get_pipe("transformer").model
    encoder.begin_update([eg.predicted for eg in examples])  # no backprop follows
    nlp.get_pipe("transformer").finish_update(sgd)
    assert shim._deferred is sgd
    nlp("Alice Smith visited Paris.")
    assert shim._deferred is sgd
    before = _encoder_weights(nlp)
    nlp.update(examples, sgd=sgd, drop=0.0)
    assert shim._deferred is None and not shim._backward_due
    assert any(not torch.equal(param, before[name]) for name, param in _encoder_weights(nlp).items())
