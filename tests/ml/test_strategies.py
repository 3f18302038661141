"""Fine-tuning strategies: each updates exactly what it should and survives a disk round-trip.

The test-only head (``tests/toy_head.py``: listener -> [CLS] -> Softmax) stands in
for the real heads; the strategies only touch the encoder and the listener slot.
Weights are compared before and after a few updates: "unchanged" means bit-identical.
"""
from typing import Dict, List

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_bert_tasks.ml import adapters, layer_mix  # noqa: F401  (registers the architectures)
from spacy_bert_tasks.fine_tuning import (
    LayerwiseOptimizer,
    configure_gradual_unfreezing,
    configure_layerwise_adam,
    layer_depth,
    trainable_summary,
)

from ..conftest import encoder_config
from ..toy_head import FACTORY as TOY_FACTORY
from ..toy_head import cats_examples

TEXTS = [("good great fine", "POS"), ("bad awful terrible", "NEG"), ("great fine good day", "POS"), ("awful bad night", "NEG")]


def _examples(nlp: Language) -> List[Example]:
    return cats_examples(nlp, TEXTS)


def _build(tiny_encoder, transformer_model=None, heads=("head",), tok2vec=None, **encoder_settings) -> Language:
    fix_random_seed(0)
    nlp = spacy.blank("en")
    model = transformer_model or encoder_config(tiny_encoder, **encoder_settings)["model"]
    nlp.add_pipe("transformer", config={"model": model})
    for name in heads:
        config = {"tok2vec": tok2vec} if tok2vec and name == "head" else {}
        nlp.add_pipe(TOY_FACTORY, name=name, config=config)
    return nlp


def _encoder_weights(nlp: Language) -> Dict[str, numpy.ndarray]:
    return {name: p.detach().cpu().numpy().copy() for name, p in nlp.get_pipe("transformer").model.transformer.named_parameters()}


def _head_weights(nlp: Language, name: str = "head") -> Dict[str, numpy.ndarray]:
    model = nlp.get_pipe(name).model
    return {f"{node.name}.{node.id}.{p}": node.get_param(p).copy() for node in model.walk() for p in node.param_names if node.has_param(p)}


def _train(nlp: Language, n_updates: int = 3, optimizer=None, before_update=None):
    # The first update's gradient is zero (Softmax starts at zero), and spaCy applies the
    # encoder's gradients at the next update (finish_update runs before the heads' backward):
    # three updates are the fewest that move the encoder.
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    sgd = optimizer or Adam(0.001, L2=0.0)
    before, heads = _encoder_weights(nlp), {name: _head_weights(nlp, name) for name in nlp.pipe_names if name != "transformer"}
    for step in range(n_updates):
        if before_update is not None:
            before_update(nlp, {"step": step, "epoch": 0})
        nlp.update(examples, sgd=sgd, drop=0.0)
    return before, heads


def _changed(before: Dict[str, numpy.ndarray], after: Dict[str, numpy.ndarray]) -> set:
    assert before.keys() <= after.keys()
    return {name for name in before if not numpy.array_equal(before[name], after[name])}


def _cats(nlp: Language) -> numpy.ndarray:
    return numpy.asarray([[doc.cats[label] for label in ("NEG", "POS")] for doc in nlp.pipe([t for t, _ in TEXTS])])


def _check_round_trip(nlp: Language, tmp_path) -> Language:
    expected = _cats(nlp)
    tmp_path.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    numpy.testing.assert_allclose(_cats(loaded), expected, rtol=1e-5, atol=1e-6)
    return loaded


def test_full_fine_tuning_updates_every_used_layer(tiny_encoder, tmp_path):
    nlp = _build(tiny_encoder)
    before, heads = _train(nlp)
    changed = _changed(before, _encoder_weights(nlp))
    assert any(name.startswith("embeddings.") for name in changed)
    assert any(".layer.1." in name for name in changed)
    assert not any(name.startswith("pooler.") for name in changed)  # no head reads it
    assert _changed(heads["head"], _head_weights(nlp)) == set(heads["head"])
    _check_round_trip(nlp, tmp_path)


class RecordingAdam(LayerwiseOptimizer):
    """Adam that records the keys it is called with."""

    def __init__(self):
        super().__init__(0.001, decay=1.0, n_layers=2, L2=0.0)
        self.keys = []

    def __call__(self, key, weights, gradient, *, lr_scale=1.0):
        self.keys.append(key)
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)


def test_frozen_encoder_is_bit_identical_and_out_of_the_optimizer(tiny_encoder, tmp_path):
    nlp = _build(tiny_encoder, frozen=True)
    optimizer = RecordingAdam()
    before, heads = _train(nlp, optimizer=optimizer)
    assert _changed(before, _encoder_weights(nlp)) == set()
    assert _changed(heads["head"], _head_weights(nlp)) == set(heads["head"])
    torch_names = {name for name in before}
    assert optimizer.keys and not any(key[1] in torch_names for key in optimizer.keys)
    assert trainable_summary(nlp)["transformer"]["params"] == 0
    _check_round_trip(nlp, tmp_path)


def test_second_to_last_layer_leaves_the_top_layer_alone(tiny_encoder, tmp_path):
    tok2vec = {"@architectures": "spacy_bert_tasks.LayersListener.v1",
               "layers": {"@layers": "spacy_bert_tasks.layer_select.v1", "layers": [-2]}}
    nlp = _build(tiny_encoder, tok2vec=tok2vec)
    before, _ = _train(nlp)
    assert nlp.get_pipe("transformer").model.attrs["output_hidden_states"] is True
    changed = _changed(before, _encoder_weights(nlp))
    assert any(".layer.0." in name for name in changed) and any(name.startswith("embeddings.") for name in changed)
    assert not any(".layer.1." in name for name in changed)  # -2 is the output of layer 0
    loaded = _check_round_trip(nlp, tmp_path)
    assert loaded.get_pipe("transformer").model.attrs["output_hidden_states"] is True


def test_concatenated_layers_train_all_of_them(tiny_encoder, tmp_path):
    combine = "concat"
    tok2vec = {"@architectures": "spacy_bert_tasks.LayersListener.v1",
               "layers": {"@layers": "spacy_bert_tasks.layer_select.v1", "layers": [-3, -2, -1], "combine": combine}}
    nlp = _build(tiny_encoder, tok2vec=tok2vec)
    before, heads = _train(nlp)
    changed = _changed(before, _encoder_weights(nlp))
    assert any(".layer.1." in name for name in changed) and any(".layer.0." in name for name in changed)
    softmax = nlp.get_pipe("head").model.layers[-1]
    assert softmax.get_dim("nI") == (3 * 128 if combine == "concat" else 128)
    _check_round_trip(nlp, tmp_path)


def test_layer_select_matches_the_encoder_hidden_states(tiny_encoder):
    tok2vec = {"@architectures": "spacy_bert_tasks.LayersListener.v1",
               "layers": {"@layers": "spacy_bert_tasks.layer_select.v1", "layers": [0, -1], "combine": "concat"}}
    nlp = _build(tiny_encoder, tok2vec=tok2vec)
    nlp.initialize(lambda: _examples(nlp))
    doc = nlp("good great fine")
    trf_data = doc._.trf_data
    layers = trf_data.model_output["hidden_layers"]
    assert layers.shape[1] == 3  # embeddings + 2 layers
    numpy.testing.assert_allclose(layers[:, -1], trf_data.model_output.last_hidden_state, atol=1e-6)
    selected = nlp.get_pipe("head").model.layers[0].layers[1].predict([trf_data])[0].model_output.last_hidden_state
    numpy.testing.assert_allclose(selected, numpy.concatenate([layers[:, 0], layers[:, -1]], axis=-1), atol=1e-6)
    for combine, expected in (("sum", layers[:, 0] + layers[:, -1]), ("mean", (layers[:, 0] + layers[:, -1]) / 2)):
        selected = layer_mix.layer_select([0, -1], combine=combine).predict([trf_data])[0].model_output.last_hidden_state
        numpy.testing.assert_allclose(selected, expected, atol=1e-5)


def test_scalar_mix_learns_its_weights_and_trains_every_layer(tiny_encoder, tmp_path):
    tok2vec = {"@architectures": "spacy_bert_tasks.LayersListener.v1", "layers": {"@layers": "spacy_bert_tasks.scalar_mix.v1"}}
    nlp = _build(tiny_encoder, tok2vec=tok2vec)
    before, heads = _train(nlp, optimizer=Adam(0.01, L2=0.0))
    mix = next(node for node in nlp.get_pipe("head").model.walk() if node.name == "scalar_mix")
    assert mix.get_dim("nL") == 3  # made by the first batch
    assert _changed(heads["head"], _head_weights(nlp)) == set(heads["head"])
    assert not numpy.allclose(mix.get_param("weights"), 0.0) and mix.get_param("gamma")[0] != 1.0
    changed = _changed(before, _encoder_weights(nlp))
    assert any(".layer.1." in name for name in changed) and any(name.startswith("embeddings.") for name in changed)
    _check_round_trip(nlp, tmp_path)


def test_layer_mix_after_a_plain_head_on_the_same_encoder(tiny_encoder):
    # spacy-transformers adds the heads' gradients tensor by tensor: the plain head must
    # send a (zero) gradient for "hidden_layers" too, or the second head's one has nowhere to go.
    order = ("plain", "head")
    tok2vec = {"@architectures": "spacy_bert_tasks.LayersListener.v1",
               "layers": {"@layers": "spacy_bert_tasks.layer_select.v1", "layers": [-2]}}
    nlp = _build(tiny_encoder, heads=order, tok2vec=tok2vec)
    before, heads = _train(nlp)
    changed = _changed(before, _encoder_weights(nlp))
    assert any(".layer.1." in name for name in changed)  # the plain head reads the top layer
    for name in order:
        assert _changed(heads[name], _head_weights(nlp, name)) == set(heads[name])


def test_layerwise_decay_scales_the_learning_rate_by_depth():
    assert [layer_depth(name, 4) for name in ("W", "pooler.dense.weight", "encoder.layer.3.output.dense.weight",
                                              "encoder.layer.0.attention.self.query.weight", "embeddings.word_embeddings.weight",
                                              "base_model.model.encoder.layer.2.attention.self.query.lora_A.default.weight")] == [0, 0, 1, 4, 5, 2]
    with pytest.raises(ValueError, match="n_layers"):
        layer_depth("encoder.layer.4.output.dense.weight", 4)
    # beta1 = beta2 = 0 makes thinc's optimizer plain SGD: the step is lr * scale * gradient.
    sgd = LayerwiseOptimizer(0.1, decay=0.5, n_layers=2, beta1=0.0, beta2=0.0, L2=0.0, grad_clip=0.0, use_averages=False)
    for name, depth in (("W", 0), ("encoder.layer.1.x", 1), ("encoder.layer.0.x", 2), ("embeddings.x", 3)):
        weights, _ = sgd((1, name), numpy.ones((2,), dtype="f"), numpy.ones((2,), dtype="f"))
        numpy.testing.assert_allclose(weights, 1.0 - 0.1 * 0.5**depth, rtol=1e-6)


def test_layerwise_adam_moves_lower_layers_less(tiny_encoder):
    nlp = _build(tiny_encoder)
    optimizer = configure_layerwise_adam(0.001, n_layers=2, decay=0.1, L2=0.0)
    before, _ = _train(nlp, optimizer=optimizer)
    after = _encoder_weights(nlp)

    def moved(prefix: str) -> float:
        return max(float(numpy.abs(after[n] - before[n]).max()) for n in before if n.startswith(prefix))

    assert moved("encoder.layer.1.") > moved("encoder.layer.0.") > moved("embeddings.") > 0.0


def test_gradual_unfreezing_opens_the_top_layers_first(tiny_encoder, tmp_path):
    nlp = _build(tiny_encoder)
    unfreeze = configure_gradual_unfreezing(every=3, start=0)
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    sgd = Adam(0.001)  # with weight decay: frozen layers must not even decay
    history = [_encoder_weights(nlp)]
    for step in range(9):
        unfreeze(nlp, {"step": step, "epoch": 0})
        nlp.update(examples, sgd=sgd, drop=0.0)
        if step % 3 == 2:
            history.append(_encoder_weights(nlp))
    phases = [_changed(a, b) for a, b in zip(history, history[1:])]
    assert phases[0] == set()  # steps 0-2: heads only, encoder frozen
    assert phases[1] and all(".layer.1." in name for name in phases[1])
    assert any(".layer.0." in name for name in phases[2]) and not any(name.startswith("embeddings.") for name in phases[2])
    _check_round_trip(nlp, tmp_path)


def _peft_model(tiny_encoder, adapter: dict) -> dict:
    return {"@architectures": "spacy_bert_tasks.PeftEncoder.v1", "encoder": encoder_config(tiny_encoder)["model"], "adapter": adapter}


def test_lora_trains_only_adapters_and_merges(tiny_encoder, tmp_path):
    nlp = _build(tiny_encoder, transformer_model=_peft_model(tiny_encoder, {"@misc": "spacy_bert_tasks.lora.v1", "r": 4}))
    before, heads = _train(nlp, n_updates=4, optimizer=Adam(0.01))  # lora_A moves once lora_B is non-zero
    changed = _changed(before, _encoder_weights(nlp))
    assert changed and all(".lora_" in name for name in changed)
    assert {n for n in before if ".lora_" in n} == changed  # A and B of query and value, both layers
    assert _changed(heads["head"], _head_weights(nlp)) == set(heads["head"])
    summary = trainable_summary(nlp)["transformer"]
    assert summary["params"] == sum(before[n].size for n in changed) and 0 < summary["bytes"] < 100_000
    loaded = _check_round_trip(nlp, tmp_path)
    assert any(".lora_A." in name for name in _encoder_weights(loaded))

    expected = _cats(loaded)
    assert adapters.merge_adapters(loaded.get_pipe("transformer").model) == 4
    assert not any("lora" in name for name in _encoder_weights(loaded))
    numpy.testing.assert_allclose(_cats(loaded), expected, atol=1e-5)
    merged = _check_round_trip(loaded, tmp_path / "merged")
    assert not hasattr(merged.get_pipe("transformer").model.transformer.config, adapters.PEFT_KEY)


def test_prefix_tuning_trains_only_the_prefix(tiny_encoder, tmp_path):
    adapter = {"@misc": "spacy_bert_tasks.prefix_tuning.v1", "num_virtual_tokens": 4}
    nlp = _build(tiny_encoder, transformer_model=_peft_model(tiny_encoder, adapter))
    before, heads = _train(nlp, optimizer=Adam(0.01))
    assert _changed(before, _encoder_weights(nlp)) == {"peft.prompt_encoder.default.embedding.weight"}
    assert _changed(heads["head"], _head_weights(nlp)) == set(heads["head"])
    assert trainable_summary(nlp)["transformer"]["params"] == 4 * 2 * 2 * 128  # tokens x layers x (key, value) x width
    with pytest.raises(ValueError, match="cannot be merged"):
        adapters.merge_adapters(nlp.get_pipe("transformer").model)
    _check_round_trip(nlp, tmp_path)


def test_prefix_tuning_keeps_the_token_alignment(tiny_encoder):
    adapter = {"@misc": "spacy_bert_tasks.prefix_tuning.v1", "num_virtual_tokens": 4}
    nlp = _build(tiny_encoder, transformer_model=_peft_model(tiny_encoder, adapter), heads=())
    nlp.initialize()
    plain = _build(tiny_encoder, heads=())
    plain.initialize()
    doc, plain_doc = nlp("good great fine day"), plain("good great fine day")
    assert doc._.trf_data.model_output.last_hidden_state.shape == plain_doc._.trf_data.model_output.last_hidden_state.shape
    assert doc._.trf_data.align.dataXd.tolist() == plain_doc._.trf_data.align.dataXd.tolist()


def test_bad_strategy_settings_say_what_to_change(tiny_encoder):
    with pytest.raises(ValueError, match="combine"):
        layer_mix.layer_select([-1], combine="max")
    with pytest.raises(ValueError, match="frozen = false"):
        _build(tiny_encoder, transformer_model={**_peft_model(tiny_encoder, {"@misc": "spacy_bert_tasks.lora.v1"}),
                                                "encoder": encoder_config(tiny_encoder, frozen=True)["model"]})
    with pytest.raises(ValueError, match="decay"):
        configure_layerwise_adam(0.001, n_layers=2, decay=1.5)


def test_sweep_table_puts_the_dev_scores_side_by_side(tmp_path):
    import srsly

    from spacy_bert_tasks.sweep import learn_rate_key, sweep_table

    for rate, best, last in (("0.0001", 0.5, 0.25), ("0.001", 0.75, 0.7)):
        for name, score in (("model-best", best), ("model-last", last)):
            (tmp_path / f"lr-{rate}" / name).mkdir(parents=True)
            srsly.write_json(tmp_path / f"lr-{rate}" / name / "meta.json", {"performance": {"cats_score": score}})
    table = sweep_table([tmp_path / "lr-0.0001", tmp_path / "lr-0.001", tmp_path / "lr-0.01"], "cats_score")
    assert table.splitlines()[2:] == ["| 0.0001 | 0.5000 | 0.2500 |", "| 0.001 | 0.7500 | 0.7000 |", "| 0.01 | n/a | n/a |"]
    config = tmp_path / "plain.cfg"
    config.write_text("[training]\n\n[training.optimizer]\n@optimizers = \"Adam.v1\"\nlearn_rate = 0.001\n")
    assert learn_rate_key(config) == "training.optimizer.learn_rate"
    config.write_text("[training]\n\n[training.optimizer]\n@optimizers = \"Adam.v1\"\n\n[training.optimizer.learn_rate]\n"
                      "@schedules = \"warmup_linear.v1\"\ninitial_rate = 0.001\nwarmup_steps = 1\ntotal_steps = 2\n")
    assert learn_rate_key(config) == "training.optimizer.learn_rate.initial_rate"


def test_sweep_command_reads_overrides_and_writes_the_table(tmp_path):
    """`spacy-bert-tasks sweep`: finished runs are not trained again; the table is printed and written."""
    import srsly
    from typer.testing import CliRunner

    from spacy_bert_tasks.cli import app
    from spacy_bert_tasks.cli.app import parse_overrides

    assert parse_overrides(["--paths.train", "a.spacy", "--training.max-steps=20", "--x.flag", "true"]) == {
        "paths.train": "a.spacy", "training.max_steps": 20, "x.flag": True,
    }
    config = tmp_path / "plain.cfg"
    config.write_text("[training]\n\n[training.optimizer]\n@optimizers = \"Adam.v1\"\nlearn_rate = 0.001\n")
    for rate, score in (("0.0001", 0.5), ("0.001", 0.75)):
        (tmp_path / "runs" / f"lr-{rate}" / "model-last").mkdir(parents=True)
        srsly.write_json(tmp_path / "runs" / f"lr-{rate}" / "model-last" / "meta.json", {"performance": {"cats_score": score}})
    table = tmp_path / "sweep.md"
    result = CliRunner().invoke(app, ["sweep", str(config), str(tmp_path / "runs"), "--learn-rates", "1e-4,1e-3",
                                      "--metric", "cats_score", "--table", str(table), "--paths.train", "unused.spacy"])
    assert result.exit_code == 0, result.output
    assert "| 0.001 | n/a | 0.7500 |" in result.output
    assert table.read_text().splitlines()[2:] == ["| 0.0001 | n/a | 0.5000 |", "| 0.001 | n/a | 0.7500 |"]
    bad = CliRunner().invoke(app, ["sweep", str(config), str(tmp_path / "runs"), "--learn-rates", "fast", "--metric", "x"])
    assert bad.exit_code == 1 and "--learn-rates" in bad.output
