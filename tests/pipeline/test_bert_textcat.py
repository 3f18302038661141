"""bert_textcat: single-label, multi-label and sentence-pair classification.

Each mode trains one small pipeline on the tiny encoder (``tiny_encoder`` in
tests/conftest.py) once per module; the tests reuse it.

The tiny encoder's WordPiece vocabulary differs from one pytest process to the
next (tokenizers' WordPiece trainer assigns the ids of its "##" pieces in
hash-map order, huggingface/tokenizers#1794), so every session trains on a
slightly different encoder; the overfits must converge for any of them. (An
earlier note blamed state leaked by test_qa's fixture: the loss histories are
identical with and without it, for the same vocabulary.)"""
import pickle

import numpy
import pytest
import spacy
import srsly
from numpy.testing import assert_almost_equal
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Adam

from spacy_bert_tasks.pipeline.textcat import BertTextCategorizer
from spacy_bert_tasks.scoring import score_cats
from tests.conftest import encoder_config

POS, NEG = {"POS": 1.0, "NEG": 0.0}, {"POS": 0.0, "NEG": 1.0}
SINGLE_DATA = [
    ("Alice Smith praised Globex, and it was good news.", POS, None),
    ("Chen Wei joined Initech in Oslo, great news for everyone.", POS, None),
    ("Bruno Diaz left Acme Corp in Lima, and it was bad news.", NEG, None),
    ("Dana Okafor called Stark Labs, terrible news for everyone.", NEG, None),
]
# "Great news in Oslo." has no GOOD annotation: that label adds no loss there.
MULTI_DATA = [
    ("It was good news.", {"GOOD": 1.0, "PLACE": 0.0}, None),
    ("They visited Paris.", {"GOOD": 0.0, "PLACE": 1.0}, None),
    ("Good news from Paris.", {"GOOD": 1.0, "PLACE": 1.0}, None),
    ("They left.", {"GOOD": 0.0, "PLACE": 0.0}, None),
    ("Great news in Oslo.", {"PLACE": 1.0}, None),
]
SAME, DIFF = {"SAME": 1.0, "DIFF": 0.0}, {"SAME": 0.0, "DIFF": 1.0}
_A, _B, _C = "Alice Smith visited Paris.", "Bruno Diaz left Lagos.", "Chen Wei joined Globex."
_GOOD, _BAD = "It was good news.", "It was bad news."
# Every text comes with two pairs and two labels: only the pair tells them apart.
PAIR_DATA = [(text, cats, pair) for text in (_A, _B, _C) for cats, pair in ((SAME, _GOOD), (DIFF, _BAD))]
MODES = {
    "single": (SINGLE_DATA, {}),
    "multi": (MULTI_DATA, {"model": {"exclusive_classes": False, "pooling": {"@layers": "spacy_bert_tasks.mean_pooling.v1"}}}),
    "pair": (PAIR_DATA, {}),
}
LONG_TEXT = " ".join(["Alice Smith visited Paris on a cold morning, and it was good news for everyone."] * 60)


def make_pipeline(encoder, encoder_settings=None, **textcat_config) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=encoder_config(encoder, **(encoder_settings or {})))
    nlp.add_pipe("bert_textcat", config=textcat_config)
    return nlp


def make_doc(nlp: Language, text: str, pair=None) -> Doc:
    doc = nlp.make_doc(text)
    doc._.text_pair = pair
    return doc


def make_examples(nlp: Language, data) -> list:
    examples = []
    for text, cats, pair in data:
        eg = Example.from_dict(make_doc(nlp, text, pair), {"cats": cats})
        eg.reference._.text_pair = pair
        examples.append(eg)
    return examples


# Single-label and pair runs reach the target in ~25 updates; the multi-label one
# in 75-99, depending on the session's vocabulary (see the module docstring), and
# at 80 updates its loss still swings between ~0.02 and ~0.5. Training stops at
# the target, so a larger budget costs nothing where it is not needed.
def train(nlp: Language, examples: list, max_updates: int = 160, target: float = 0.02) -> list:
    optimizer = nlp.initialize(lambda: examples)
    history = []
    for _ in range(max_updates):
        losses = nlp.update(examples, sgd=optimizer)
        history.append(losses["bert_textcat"])
        if history[-1] < target:
            break
    return history


def predict(nlp: Language, data) -> list:
    return [nlp(make_doc(nlp, text, pair)).cats for text, _, pair in data]


def check_predictions(cats_list, data, multi_label: bool):
    for cats, (text, gold, _) in zip(cats_list, data):
        for label, value in gold.items():
            if multi_label:
                assert (cats[label] >= 0.5) == (value == 1.0), (text, cats, gold)
            elif value == 1.0:
                assert max(cats, key=cats.get) == label, (text, cats, gold)


@pytest.fixture(scope="module")
def trained(tiny_encoder):
    """mode -> (nlp, loss history), trained once per module."""
    pipelines = {}
    for mode, (data, config) in MODES.items():
        fix_random_seed(0)
        nlp = make_pipeline(tiny_encoder, **config)
        history = train(nlp, make_examples(nlp, data))
        pipelines[mode] = (nlp, history)
    return pipelines


@pytest.mark.parametrize("mode", list(MODES))
def test_overfitting_IO(trained, mode, tmp_path):
    nlp, history = trained[mode]
    data = MODES[mode][0]
    multi_label = mode == "multi"
    assert history[-1] < 0.05 < history[0], history
    cats = predict(nlp, data)
    check_predictions(cats, data, multi_label)
    textcat = nlp.get_pipe("bert_textcat")
    assert textcat.cfg["multi_label"] is multi_label
    assert textcat.cfg["pairs"] is (mode == "pair")
    for doc_cats in cats:
        assert set(doc_cats) == set(textcat.labels)
        if not multi_label:
            assert sum(doc_cats.values()) == pytest.approx(1.0, abs=1e-5)

    # to_disk -> spacy.load: same cats and settings
    nlp.to_disk(tmp_path / "nlp")
    nlp2 = spacy.load(tmp_path / "nlp")
    for a, b in zip(cats, predict(nlp2, data)):
        assert_almost_equal(list(a.values()), list(b.values()), decimal=5)
    assert nlp2.get_pipe("bert_textcat").cfg == textcat.cfg

    # to_bytes -> from_bytes into a pipeline built from the config
    nlp3 = spacy.blank("en").from_config(nlp.config)
    nlp3.from_bytes(nlp.to_bytes())
    for a, b in zip(cats, predict(nlp3, data)):
        assert_almost_equal(list(a.values()), list(b.values()), decimal=5)

    # pickling
    nlp4 = pickle.loads(pickle.dumps(nlp))
    for a, b in zip(cats, predict(nlp4, data)):
        assert_almost_equal(list(a.values()), list(b.values()), decimal=5)

    # nlp.pipe gives what nlp() gives, in one batch and in batches of 2
    for batch_size in (len(data), 2):
        docs = list(nlp.pipe([make_doc(nlp, text, pair) for text, _, pair in data], batch_size=batch_size))
        for a, doc in zip(cats, docs):
            assert_almost_equal(list(a.values()), [doc.cats[label] for label in a], decimal=5)


def test_pipe_n_process_gives_identical_cats(trained):
    nlp, _ = trained["pair"]
    docs = [make_doc(nlp, text, pair) for text, _, pair in PAIR_DATA]
    expected = [doc.cats for doc in nlp.pipe([make_doc(nlp, text, pair) for text, _, pair in PAIR_DATA])]
    found = [doc.cats for doc in nlp.pipe(docs, n_process=2, batch_size=2)]
    for a, b in zip(expected, found):
        assert_almost_equal(list(a.values()), [b[label] for label in a], decimal=5)


@pytest.mark.parametrize("mode", list(MODES))
def test_evaluate_gives_cats_scores(trained, mode):
    nlp, _ = trained[mode]
    data = MODES[mode][0]
    scores = nlp.evaluate(make_examples(nlp, data))
    for key in ("cats_score", "cats_score_desc", "cats_micro_p", "cats_micro_r", "cats_micro_f",
                "cats_macro_p", "cats_macro_r", "cats_macro_f", "cats_macro_auc", "cats_f_per_type"):
        assert key in scores
    assert scores["cats_score"] == pytest.approx(1.0)
    assert scores["cats_score_desc"] == ("macro AUC" if mode == "multi" else "macro F")
    assert set(scores["cats_f_per_type"]) == set(nlp.get_pipe("bert_textcat").labels)


def test_unannotated_docs_are_not_scored(trained):
    """A joint corpus's docs without cats (e.g. NER docs) leave the cats_* scores as they are."""
    nlp, _ = trained["single"]
    examples = make_examples(nlp, SINGLE_DATA)
    unannotated = [Example(nlp.make_doc("Alice Smith visited Paris."), nlp.make_doc("Alice Smith visited Paris."))]
    alone, mixed = nlp.evaluate(examples), nlp.evaluate(examples + unannotated)
    for key in ("cats_score", "cats_micro_p", "cats_macro_f", "cats_macro_auc"):
        assert mixed[key] == pytest.approx(alone[key])
    # Only unannotated docs (the joint pipeline on the NER corpus): nothing to score.
    nothing = nlp.evaluate(unannotated)
    for key in ("cats_score", "cats_micro_p", "cats_macro_f", "cats_macro_auc", "cats_f_per_type"):
        assert nothing[key] is None
    assert nothing["cats_score_desc"] == "macro F"


def test_scorer_uses_threshold_for_multi_label(trained):
    nlp, _ = trained["multi"]
    examples = [Example(nlp(make_doc(nlp, text)), eg.reference) for eg, (text, _, _) in
                zip(make_examples(nlp, MULTI_DATA), MULTI_DATA)]
    labels = nlp.get_pipe("bert_textcat").labels
    at_half = score_cats(examples, labels=labels, multi_label=True, threshold=0.5)
    at_zero = score_cats(examples, labels=labels, multi_label=True, threshold=0.0)
    assert at_half["cats_micro_f"] == pytest.approx(1.0)
    assert at_zero["cats_micro_p"] < 1.0  # every label predicted everywhere


def test_positive_label_makes_cats_score_its_f(tiny_encoder):
    nlp = make_pipeline(tiny_encoder)
    examples = make_examples(nlp, SINGLE_DATA)
    nlp.config["initialize"]["components"]["bert_textcat"] = {"positive_label": "POS"}
    nlp.initialize(lambda: examples)
    scores = nlp.evaluate(examples)
    assert scores["cats_score_desc"] == "F (POS)"
    assert scores["cats_score"] == scores["cats_f_per_type"]["POS"]["f"]
    nlp.config["initialize"]["components"]["bert_textcat"] = {"positive_label": "MAYBE"}
    with pytest.raises(ValueError, match="not one of its labels"):
        nlp.initialize(lambda: examples)


def test_one_encoder_pass_per_doc(trained):
    """A pair is read in the doc's own pass: one forward call, one window, two segments."""
    nlp, _ = trained["pair"]
    hf_model = nlp.get_pipe("transformer").model.transformer
    calls = []
    handle = hf_model.register_forward_hook(lambda module, args, kwargs, out: calls.append(kwargs["input_ids"].shape),
                                            with_kwargs=True)
    try:
        doc = nlp(make_doc(nlp, _A, _GOOD))
        assert len(calls) == 1 and calls[0][0] == 1
        types = doc._.trf_data.wordpieces.token_type_ids[0]
        assert set(types.tolist()) == {0, 1}

        calls.clear()
        docs = list(nlp.pipe([make_doc(nlp, text, pair) for text, _, pair in PAIR_DATA]))
        assert len(calls) == 1 and calls[0][0] == len(docs)

        calls.clear()
        examples = make_examples(nlp, PAIR_DATA[:3])
        nlp.update(examples, sgd=None)
        assert len(calls) == 1 and calls[0][0] == 3
    finally:
        handle.remove()


def test_pair_model_without_pair_raises_or_skips(trained):
    nlp, _ = trained["pair"]
    textcat = nlp.get_pipe("bert_textcat")
    with pytest.raises(ValueError, match=r"trained on sentence pairs.*no doc\._\.text_pair"):
        nlp(_A)
    # Training data must have the pair too.
    example = Example.from_dict(nlp.make_doc(_A), {"cats": SAME})
    with pytest.raises(ValueError, match="text_pair"):
        nlp.update([example])
    textcat.cfg["missing_pair"] = "skip"
    try:
        docs = list(nlp.pipe([nlp.make_doc(_A), make_doc(nlp, _A, _GOOD)]))
        assert docs[0].cats == {}
        assert set(docs[1].cats) == {"SAME", "DIFF"}
    finally:
        textcat.cfg["missing_pair"] = "error"


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_pair_model_with_blank_pair_follows_missing_pair(trained, blank):
    """An empty or whitespace-only pair is a missing pair, not one to score."""
    nlp, _ = trained["pair"]
    textcat = nlp.get_pipe("bert_textcat")
    with pytest.raises(ValueError, match=r"trained on sentence pairs.*an empty doc\._\.text_pair"):
        nlp(make_doc(nlp, _A, blank))
    example = Example.from_dict(make_doc(nlp, _A, blank), {"cats": SAME})
    with pytest.raises(ValueError, match="empty doc._.text_pair"):
        nlp.update([example])
    textcat.cfg["missing_pair"] = "skip"
    try:
        docs = list(nlp.pipe([make_doc(nlp, _A, blank), make_doc(nlp, _A, _GOOD)]))
        assert docs[0].cats == {}
        assert set(docs[1].cats) == {"SAME", "DIFF"}
    finally:
        textcat.cfg["missing_pair"] = "error"


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_single_text_model_does_not_read_a_text_pair(trained, mode):
    """A model trained on single texts reads the doc alone, whatever doc._.text_pair holds."""
    nlp, _ = trained[mode]
    for text, _, _ in MODES[mode][0]:
        alone = nlp(make_doc(nlp, text))
        with_pair = nlp(make_doc(nlp, text, "Totally unrelated text about Kyoto."))
        assert with_pair._.trf_data.wordpieces.strings == alone._.trf_data.wordpieces.strings
        assert_almost_equal([with_pair.cats[label] for label in alone.cats], list(alone.cats.values()), decimal=6)
    assert nlp.get_pipe("transformer").model.attrs["doc_inputs"] == []


def test_pair_model_asks_its_encoder_for_pairs(trained):
    nlp, _ = trained["pair"]
    assert nlp.get_pipe("bert_textcat").doc_inputs == ("text_pair",)
    assert nlp.get_pipe("transformer").model.attrs["doc_inputs"] == ["text_pair"]
    # A question is not read by a pair model's encoder either.
    doc = make_doc(nlp, _A, _GOOD)
    doc._.question = "Who visited Paris?"
    assert nlp(doc).cats == pytest.approx(nlp(make_doc(nlp, _A, _GOOD)).cats, abs=1e-6)


@pytest.mark.parametrize("mode", ["single", "pair"])
def test_pipeline_saved_before_doc_inputs_loads(trained, mode, tmp_path):
    """A pipeline saved without the ``doc_inputs`` attrs loads, reads what the doc has, and
    follows its heads once linked (``link_doc_inputs``)."""
    from spacy_bert_tasks.pipeline.base import link_doc_inputs

    nlp, _ = trained[mode]
    data = MODES[mode][0]
    expected = predict(nlp, data)
    saved = {}
    nodes = [nlp.get_pipe("transformer").model, *nlp.get_pipe("bert_textcat").model.walk()]
    for node in nodes:
        if "doc_inputs" in node.attrs:
            saved[node.id] = node.attrs.pop("doc_inputs")
    try:
        nlp.to_disk(tmp_path / "old")
    finally:
        for node in nodes:
            if node.id in saved:
                node.attrs["doc_inputs"] = saved[node.id]
    old = spacy.load(tmp_path / "old")
    assert old.get_pipe("transformer").model.attrs["doc_inputs"] is None
    for a, b in zip(expected, predict(old, data)):
        assert_almost_equal(list(a.values()), [b[label] for label in a], decimal=5)
    assert link_doc_inputs(old) == {"transformer": ["text_pair"] if mode == "pair" else []}
    for a, b in zip(expected, predict(old, data)):
        assert_almost_equal(list(a.values()), [b[label] for label in a], decimal=5)


def test_training_data_must_be_all_pairs_or_none(tiny_encoder):
    nlp = make_pipeline(tiny_encoder)
    examples = make_examples(nlp, PAIR_DATA[:2] + [(_A, SAME, None)])
    with pytest.raises(ValueError, match="2 of 3 annotated training docs have doc._.text_pair"):
        nlp.initialize(lambda: examples)
    # A pair on the gold doc only would never reach the encoder.
    example = Example.from_dict(nlp.make_doc(_A), {"cats": SAME})
    example.reference._.text_pair = _GOOD
    with pytest.raises(ValueError, match="spacy_bert_tasks.Corpus.v1"):
        make_pipeline(tiny_encoder).initialize(lambda: [example])


@pytest.mark.parametrize("mode", list(MODES))
def test_empty_doc(trained, mode):
    nlp, _ = trained[mode]
    labels = nlp.get_pipe("bert_textcat").labels
    alone = nlp("").cats
    assert set(alone) == set(labels)
    assert all(0.0 <= value <= 1.0 for value in alone.values())
    text, _, pair = MODES[mode][0][0]
    mixed = list(nlp.pipe([nlp.make_doc(""), make_doc(nlp, text, pair), nlp.make_doc("  ")]))
    assert_almost_equal([alone[label] for label in labels], [mixed[0].cats[label] for label in labels], decimal=5)
    # Training on a batch with empty docs, and on empty docs only, does not crash.
    examples = make_examples(nlp, [("", MODES[mode][0][0][1], None), MODES[mode][0][0]])
    losses = nlp.update(examples, sgd=None)
    assert numpy.isfinite(losses["bert_textcat"])
    nlp.update(examples[:1], sgd=None)


def test_label_seen_only_at_inference(trained):
    nlp, _ = trained["single"]
    known = nlp.get_pipe("bert_textcat").labels
    doc = nlp.make_doc(SINGLE_DATA[0][0])
    examples = [Example.from_dict(doc, {"cats": {"NEUTRAL": 1.0, "POS": 0.0, "NEG": 0.0}}),
                Example.from_dict(nlp.make_doc("Only the new label."), {"cats": {"NEUTRAL": 1.0}})]
    scores = nlp.evaluate(examples)
    assert set(scores["cats_f_per_type"]) == set(known)
    # In training the unknown label is ignored: the first doc has no known
    # positive class and the second no known label, so neither adds any loss.
    textcat = nlp.get_pipe("bert_textcat")
    loss, d_scores = textcat.get_loss(examples, textcat.model.ops.asarray2f([[0.3, 0.7], [0.6, 0.4]]))
    assert loss == 0.0 and not d_scores.any()


def test_missing_labels_add_no_loss(trained):
    nlp, _ = trained["multi"]
    textcat = nlp.get_pipe("bert_textcat")
    labels = textcat.labels
    examples = make_examples(nlp, [("Great news in Oslo.", {"PLACE": 1.0}, None), ("They left.", {}, None)])
    scores = textcat.model.ops.asarray2f([[0.3, 0.6], [0.2, 0.9]])
    loss, d_scores = textcat.get_loss(examples, scores)
    place = labels.index("PLACE")
    assert d_scores[0, place] == pytest.approx(0.6 - 1.0)  # one known label: mean over 1
    assert d_scores[0, 1 - place] == 0.0 and not d_scores[1].any()
    assert loss == pytest.approx(-numpy.log(0.6), rel=1e-4)
    # Exclusive classes: a doc without cats adds nothing; one with a class adds softmax CE.
    nlp, _ = trained["single"]
    textcat = nlp.get_pipe("bert_textcat")
    examples = make_examples(nlp, [SINGLE_DATA[0], ("No annotation.", {}, None)])
    scores = textcat.model.ops.asarray2f([[0.25, 0.75], [0.5, 0.5]])
    loss, d_scores = textcat.get_loss(examples, scores)
    gold = numpy.asarray([SINGLE_DATA[0][1][label] for label in textcat.labels])
    # The mean over the annotated doc alone: unannotated docs (another task's, in a
    # joint batch) do not dilute the gradient.
    assert_almost_equal(d_scores[0], scores[0] - gold)
    assert not d_scores[1].any()
    assert loss == pytest.approx(-numpy.log(float(scores[0][gold.argmax()])), rel=1e-4)


def test_exclusive_classes_reject_two_positive_labels(trained):
    nlp, _ = trained["single"]
    example = make_examples(nlp, [("Both.", {"POS": 1.0, "NEG": 1.0}, None)])
    with pytest.raises(ValueError, match="exclusive_classes = false"):
        nlp.update(example, sgd=None)


@pytest.mark.parametrize("pooling,dense_tanh", [("cls", False), ("mean", False), ("first_token", False), ("cls", True)])
def test_long_doc_is_read_in_windows(tiny_encoder, pooling, dense_tanh):
    """Over 512 pieces: strided windows, one prediction, no error, in training too."""
    model = {"pooling": {"@layers": f"spacy_bert_tasks.{pooling}_pooling.v1"}, "dense_tanh": dense_tanh}
    nlp = make_pipeline(tiny_encoder, model=model)
    examples = make_examples(nlp, [(LONG_TEXT, POS, None), (SINGLE_DATA[2][0], NEG, None)])
    nlp.initialize(lambda: examples)
    nlp.update(examples, sgd=Adam(0.001))
    doc = nlp(LONG_TEXT)
    n_pieces = sum(doc._.trf_data.wordpieces.lengths)
    assert n_pieces > 512 and doc._.trf_data.model_output.last_hidden_state.shape[0] > 1
    assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)
    assert nlp.get_pipe("bert_textcat").model.get_ref("head_input").name == ("dense_tanh" if dense_tanh else "softmax")
    assert nlp.get_pipe("bert_textcat").predict([nlp.make_doc("")]).shape == (1, 2)


def test_long_doc_at_bert_length_limit(tiny_encoder):
    """512-piece windows (BERT's limit) with 128 pieces of overlap, as configs/textcat.cfg sets."""
    nlp = make_pipeline(tiny_encoder, encoder_settings={"max_length": 512, "stride": 128})
    nlp.initialize(lambda: make_examples(nlp, SINGLE_DATA))
    doc = nlp(LONG_TEXT + " " + LONG_TEXT)
    n_windows, seq_len = doc._.trf_data.model_output.last_hidden_state.shape[:2]
    assert sum(doc._.trf_data.wordpieces.lengths) > 1024 and n_windows >= 3 and seq_len == 512
    assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_source_into_another_pipeline(trained):
    nlp, _ = trained["single"]
    other = spacy.blank("en")
    other.add_pipe("sentencizer")
    other.add_pipe("transformer", source=nlp)
    other.add_pipe("bert_textcat", source=nlp)
    for (text, _, _), expected in zip(SINGLE_DATA, predict(nlp, SINGLE_DATA)):
        found = other(text).cats
        assert_almost_equal(list(expected.values()), [found[label] for label in expected], decimal=5)


def test_replace_listeners_gives_the_head_its_own_encoder(trained, tmp_path):
    """With its own copy of the encoder, the head is sourced alone and gives the same cats."""
    nlp, _ = trained["pair"]
    expected = predict(nlp, PAIR_DATA)
    nlp.to_disk(tmp_path / "shared")
    own = spacy.load(tmp_path / "shared")
    own.replace_listeners("transformer", "bert_textcat", ["model.tok2vec"])
    own.to_disk(tmp_path / "own")
    other = spacy.blank("en")
    other.add_pipe("bert_textcat", source=spacy.load(tmp_path / "own"))
    assert other.pipe_names == ["bert_textcat"]
    for a, b in zip(expected, predict(other, PAIR_DATA)):
        assert_almost_equal(list(a.values()), [b[label] for label in a], decimal=5)


def test_bad_settings_are_clear_errors(tiny_encoder):
    with pytest.raises(ValueError, match="missing_pair"):
        make_pipeline(tiny_encoder, missing_pair="guess")
    nlp = make_pipeline(tiny_encoder)
    with pytest.raises(ValueError, match="exclusive classes need at least 2"):
        nlp.initialize(lambda: make_examples(nlp, [("Only one.", {"POS": 1.0}, None)]))
    assert isinstance(nlp.get_pipe("bert_textcat"), BertTextCategorizer)


@pytest.mark.parametrize("config_name,data", [("textcat.cfg", SINGLE_DATA), ("pair_textcat.cfg", PAIR_DATA)])
def test_configs_train_and_evaluate(tiny_encoder, tmp_path, config_name, data):
    """``spacy train`` from the shipped configs on a tiny DocBin, then ``spacy evaluate``.

    ``spacy evaluate`` reads with spaCy's own Corpus, which builds the docs the
    model reads from the text alone, so a pair model gets no pairs there and
    says so; our reader (what ``spacy train`` uses for its dev scores) gives
    them, and ``nlp.evaluate`` on it gives the same ``cats_*`` keys.
    """
    from pathlib import Path

    from spacy.cli.evaluate import evaluate
    from spacy.cli.train import train as spacy_train
    from spacy.util import registry

    nlp = spacy.blank("en")
    db = DocBin(store_user_data=True)
    for text, cats, pair in data:
        doc = make_doc(nlp, text, pair)
        doc.cats = cats
        db.add(doc)
    db.to_disk(tmp_path / "data.spacy")
    config = Path(__file__).resolve().parents[2] / "configs" / config_name
    overrides = {
        "paths.train": str(tmp_path / "data.spacy"),
        "paths.dev": str(tmp_path / "data.spacy"),
        "paths.encoder": str(tiny_encoder),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
        "training.optimizer.learn_rate.warmup_steps": 1,
        "components.transformer.model.max_length": 64,
        "components.transformer.model.stride": 16,
        "components.transformer.model.max_question_length": 16,
        "components.transformer.model.max_pair_length": 16,
    }
    spacy_train(config, tmp_path / "out", overrides=overrides)
    model_path = tmp_path / "out" / "model-best"
    trained_nlp = spacy.load(model_path)
    assert trained_nlp.get_pipe("bert_textcat").cfg["pairs"] is (data is PAIR_DATA)
    reader = registry.readers.get("spacy_bert_tasks.Corpus.v1")(tmp_path / "data.spacy")
    scores = trained_nlp.evaluate(list(reader(trained_nlp)))
    assert {"cats_score", "cats_macro_f", "cats_macro_auc", "cats_f_per_type"} <= set(scores)
    if data is PAIR_DATA:
        with pytest.raises(ValueError, match="no doc._.text_pair"):
            evaluate(model_path, tmp_path / "data.spacy")
    else:
        assert evaluate(model_path, tmp_path / "data.spacy")["cats_score"] == pytest.approx(scores["cats_score"])


def test_evaluate_command_keeps_the_pairs(trained, tmp_path):
    """`spacy-bert-tasks evaluate` reads the text pairs that `spacy evaluate`'s Corpus drops."""
    from typer.testing import CliRunner

    from spacy_bert_tasks.cli import app

    nlp, _ = trained["pair"]
    nlp.to_disk(tmp_path / "nlp")
    gold = []
    for text, cats, pair in PAIR_DATA:
        doc = nlp.make_doc(text)
        doc.cats = cats
        doc._.text_pair = pair
        gold.append(doc)
    DocBin(docs=gold, store_user_data=True).to_disk(tmp_path / "dev.spacy")
    output = tmp_path / "metrics.json"
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "nlp"), str(tmp_path / "dev.spacy"), "--output", str(output)])
    assert result.exit_code == 0, result.output
    scores = srsly.read_json(output)
    assert scores["cats_score"] == pytest.approx(1.0) and scores["cats_score_desc"] == "macro F"
    assert set(scores["cats_f_per_type"]) == {"SAME", "DIFF"}
    assert "TEXTCAT (macro F)" in result.output


@pytest.mark.parametrize("pooler_init", ["checkpoint", "random"])
def test_dense_tanh_starts_from_the_pretrained_pooler(tiny_encoder, pooler_init):
    """pooler_init = "checkpoint": the dense + tanh layer is the encoder's pooler, as in BertForSequenceClassification."""
    nlp = make_pipeline(tiny_encoder, model={"dense_tanh": True, "pooler_init": pooler_init})
    nlp.initialize(lambda: make_examples(nlp, SINGLE_DATA))
    pooler = nlp.get_pipe("transformer").model.transformer.pooler.dense
    dense = nlp.get_pipe("bert_textcat").model.get_ref("dense_tanh")
    same = numpy.array_equal(dense.get_param("W"), pooler.weight.detach().numpy())
    assert same == (pooler_init == "checkpoint")
    if same:
        assert numpy.array_equal(dense.get_param("b"), pooler.bias.detach().numpy())


def test_pooler_init_checkpoint_needs_dense_tanh_and_a_pooler(tiny_encoder, tmp_path):
    from transformers import AutoModel

    with pytest.raises(ValueError, match="set dense_tanh = true"):
        make_pipeline(tiny_encoder, model={"pooler_init": "checkpoint"})
    no_pooler = tmp_path / "no-pooler"
    AutoModel.from_pretrained(tiny_encoder, add_pooling_layer=False).save_pretrained(no_pooler)
    for path in tiny_encoder.iterdir():
        if path.name.startswith(("tokenizer", "vocab", "special_tokens")):
            (no_pooler / path.name).write_bytes(path.read_bytes())
    nlp = make_pipeline(no_pooler, model={"dense_tanh": True, "pooler_init": "checkpoint"})
    with pytest.raises(ValueError, match="has no pretrained pooler"):
        nlp.initialize(lambda: make_examples(nlp, SINGLE_DATA))


def test_two_classifiers_on_one_encoder_learn_from_their_own_labels(tiny_encoder):
    """Sentiment and paraphrase heads on one encoder, trained on one mixed corpus: each head takes
    loss only from the docs with its labels, the pair head skips single texts, and each scores under
    its own keys (textcat_scorer.v2's prefix)."""
    nlp = make_pipeline(tiny_encoder)
    pair_scorer = {"@scorers": "spacy_bert_tasks.textcat_scorer.v2", "prefix": "pair"}
    nlp.add_pipe("bert_textcat", name="bert_pair", config={"missing_pair": "skip", "scorer": pair_scorer})
    examples = make_examples(nlp, SINGLE_DATA + PAIR_DATA)
    nlp.config["initialize"]["components"] = {
        "bert_textcat": {"labels": ["POS", "NEG"]}, "bert_pair": {"labels": ["SAME", "DIFF"]},
    }
    nlp.initialize(lambda: examples)
    sentiment, pair = nlp.get_pipe("bert_textcat"), nlp.get_pipe("bert_pair")
    assert (sentiment.cfg["pairs"], pair.cfg["pairs"]) == (False, True)
    for head, own in ((sentiment, SINGLE_DATA), (pair, PAIR_DATA)):
        truths, mask = head._examples_to_truth(examples)
        assert mask[:, 0].tolist() == [float(i < len(own)) if head is sentiment else float(i >= len(SINGLE_DATA))
                                       for i in range(len(examples))]
    nlp.update(examples, sgd=Adam(0.001))
    single = nlp(SINGLE_DATA[0][0])
    assert set(single.cats) == {"POS", "NEG"}
    assert set(nlp(make_doc(nlp, _A, _GOOD)).cats) == {"POS", "NEG", "SAME", "DIFF"}
    scores = nlp.evaluate(examples)
    assert scores["cats_score"] is not None and scores["pair_score"] is not None
    assert "pair_macro_auc" in scores and "cats_macro_auc" in scores
