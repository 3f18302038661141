"""bert_ner: overfitting and IO, decoding, alignment, gold handling, edge cases, sourcing.

One small pipeline is trained once per module (``trained``, on the tiny encoder
of conftest) and reused; tests that change it work on a copy.
"""
import pickle
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import fix_random_seed, load_model_from_config, registry
from thinc.types import Ragged

from spacy_bert_tasks.scoring import score_ner
from spacy_bert_tasks.tagging import is_valid_path, transition_masks

from ..conftest import encoder_config

TRAIN = [
    ("Alice Smith visited Paris on a cold morning.", [(0, 11, "PER"), (20, 25, "LOC")]),
    ("Bruno Diaz joined Acme Corp in Lagos.", [(0, 10, "PER"), (18, 27, "ORG"), (31, 36, "LOC")]),
    ("Chen Wei left Globex in Kyoto.", [(0, 8, "PER"), (14, 20, "ORG"), (24, 29, "LOC")]),
    ("Dana Okafor praised Initech.", [(0, 11, "PER"), (20, 27, "ORG")]),
    ("Umbrella Health called Emil Novak in Oslo.", [(0, 15, "ORG"), (23, 33, "PER"), (37, 41, "LOC")]),
    ("It was good news for everyone.", []),
]
TEXTS = [text for text, _ in TRAIN]
GOLD = [[(text[s:e], label) for s, e, label in ents] for text, ents in TRAIN]
FILLER = "It was good news for everyone."


def _ents(doc: Doc):
    return [(ent.text, ent.label_) for ent in doc.ents]


def _scored(doc: Doc):
    group = doc.spans["ents_scored"]
    return [(span.text, span.label_) for span in group], list(group.attrs["scores"])


def _assert_same(scored, expected):
    """Same entities in every doc, and the same scores up to float noise."""
    assert [spans for spans, _ in scored] == [spans for spans, _ in expected]
    for (_, scores), (_, expected_scores) in zip(scored, expected):
        assert scores == pytest.approx(expected_scores, abs=1e-5)


def _make_nlp(tiny_encoder, **ner_config) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")  # works next to other components
    nlp.add_pipe("transformer", config=encoder_config(tiny_encoder))
    nlp.add_pipe("bert_ner", config=ner_config)
    return nlp


def _examples(nlp: Language, data=TRAIN):
    return [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in data]


@pytest.fixture(scope="module")
def trained(tiny_encoder):
    """A pipeline overfitted on TRAIN, with its final loss."""
    fix_random_seed(0)
    nlp = _make_nlp(tiny_encoder)
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(60):
        losses = nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp, losses["bert_ner"]


@pytest.fixture
def trained_copy(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "trained")
    return spacy.load(tmp_path / "trained")


def test_overfitting_IO(trained, tmp_path):
    nlp, loss = trained
    assert loss < 0.05
    docs = [nlp(text) for text in TEXTS]
    assert [_ents(doc) for doc in docs] == GOLD
    scored = [_scored(doc) for doc in docs]
    for doc, (spans, scores) in zip(docs, scored):
        assert spans == _ents(doc)
        assert len(scores) == len(spans) and all(0.5 < score <= 1.0 for score in scores)
    # Disk round-trip.
    nlp.to_disk(tmp_path / "nlp")
    nlp2 = spacy.load(tmp_path / "nlp")
    _assert_same([_scored(nlp2(text)) for text in TEXTS], scored)
    assert [_ents(nlp2(text)) for text in TEXTS] == GOLD
    # Bytes round-trip into a fresh pipeline of the same config.
    nlp3 = load_model_from_config(nlp.config, auto_fill=True)
    nlp3.from_bytes(nlp.to_bytes())
    assert [_ents(nlp3(text)) for text in TEXTS] == GOLD
    # Pickling.
    nlp4 = pickle.loads(pickle.dumps(nlp))
    assert [_ents(nlp4(text)) for text in TEXTS] == GOLD
    # pipe == call, in one process and in two.
    _assert_same([_scored(doc) for doc in nlp.pipe(TEXTS, batch_size=2)], scored)
    assert [_ents(doc) for doc in nlp.pipe(TEXTS, batch_size=2, n_process=2)] == GOLD


def test_evaluate_keys(trained):
    nlp, _ = trained
    scores = nlp.evaluate(_examples(nlp))
    for key in ("ents_p", "ents_r", "ents_f", "ents_per_type"):
        assert key in scores
    assert scores["ents_f"] == 1.0
    assert set(scores["ents_per_type"]) == {"PER", "ORG", "LOC"}
    assert registry.scorers.get("spacy_bert_tasks.ner_scorer.v1")() is score_ner


def test_labels_and_tags(trained):
    ner = trained[0].get_pipe("bert_ner")
    assert ner.labels == ("LOC", "ORG", "PER")
    assert ner.tags == ("O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    with pytest.raises(ValueError, match="cannot grow"):
        ner.add_label("FOOD")


@pytest.mark.parametrize("decoding", ["viterbi", "argmax"])
def test_decoding_is_always_valid(trained_copy, decoding):
    """With random output weights the argmax is often invalid; decoding never is."""
    nlp = trained_copy
    ner = nlp.get_pipe("bert_ner")
    ner.cfg["decoding"] = decoding
    output = ner.model.get_ref("output_layer")
    output.set_param("W", numpy.random.default_rng(0).normal(0, 3.0, output.get_param("W").shape).astype("f"))
    start, trans, end = transition_masks(ner.tags)
    docs = [nlp.make_doc(text) for text in TEXTS * 3]
    docs = list(nlp.get_pipe("transformer").pipe(docs))
    raw = ner._first_piece_probs(ner.model.predict(docs)).argmax(axis=1)
    assert not is_valid_path(raw, start, trans, end), "the test needs invalid argmax sequences"
    for path, probs in ner.predict(docs):
        assert is_valid_path(path, start, trans, end)
        assert probs.shape == path.shape and (probs > 0).all()


def test_scores_key(trained_copy):
    ner = trained_copy.get_pipe("bert_ner")
    ner.cfg["scores_key"] = "ner_confidence"
    doc = trained_copy(TEXTS[1])
    assert "ents_scored" not in doc.spans
    assert [(span.text, span.label_) for span in doc.spans["ner_confidence"]] == GOLD[1]
    assert len(doc.spans["ner_confidence"].attrs["scores"]) == len(GOLD[1])


def test_viterbi_beats_argmax_repair_on_summed_scores(trained_copy):
    nlp = trained_copy
    ner = nlp.get_pipe("bert_ner")
    output = ner.model.get_ref("output_layer")
    output.set_param("W", numpy.random.default_rng(1).normal(0, 3.0, output.get_param("W").shape).astype("f"))
    docs = list(nlp.get_pipe("transformer").pipe(nlp.make_doc(text) for text in TEXTS))
    totals = {}
    for decoding in ("viterbi", "argmax"):
        ner.cfg["decoding"] = decoding
        with numpy.errstate(divide="ignore"):  # a repaired tag may have underflowed to probability 0
            totals[decoding] = sum(numpy.log(probs).sum() for _, probs in ner.predict(docs))
    assert totals["viterbi"] >= totals["argmax"] - 1e-4


def _loss_rows(ner, examples, lengths):
    """Run get_loss on uniform scores with the given pieces per token; rows with a gradient."""
    lengths = numpy.asarray(lengths, dtype="i")
    probs = numpy.full((int(lengths.sum()), len(ner.tags)), 1.0 / len(ner.tags), dtype="f")
    loss, d_scores = ner.get_loss(examples, Ragged(probs, lengths))
    grad = d_scores.dataXd
    rows = numpy.flatnonzero(numpy.abs(grad).sum(axis=1) > 0)
    # The gold tag of a row is the column whose gradient is negative.
    return loss, {int(row): ner.tags[int(grad[row].argmin())] for row in rows}


@pytest.mark.parametrize(
    "alignment,expected",
    [
        # Pieces per token, as passed below: "Bruno" 2, "Diaz" 1, "left" 2, "." 1.
        ("first", {0: "B-PER", 2: "I-PER", 3: "O", 5: "O"}),
        ("all", {0: "B-PER", 1: "I-PER", 2: "I-PER", 3: "O", 4: "O", 5: "O"}),
    ],
)
def test_alignment_decides_the_trained_pieces(trained, alignment, expected):
    nlp, _ = trained
    ner = nlp.get_pipe("bert_ner")
    saved = ner.cfg["alignment"]
    ner.cfg["alignment"] = alignment
    try:
        examples = _examples(nlp, [("Bruno Diaz left.", [(0, 10, "PER")])])
        loss, rows = _loss_rows(ner, examples, [2, 1, 2, 1])
    finally:
        ner.cfg["alignment"] = saved
    assert rows == expected
    assert loss == pytest.approx(numpy.log(len(ner.tags)), rel=1e-4)


def test_missing_gold_and_unseen_labels_count_for_nothing(trained):
    nlp, _ = trained
    ner = nlp.get_pipe("bert_ner")
    doc = nlp.make_doc("Bruno Diaz ate pizza in Oslo.")
    # "-" marks tokens with no annotation; FOOD is a label the component never saw.
    eg = Example.from_dict(doc, {"entities": ["B-PER", "L-PER", "-", "U-FOOD", "-", "U-LOC", "O"]})
    with pytest.warns(UserWarning, match="FOOD"):
        _, rows = _loss_rows(ner, [eg], [1] * len(doc))
    assert rows == {0: "B-PER", 1: "I-PER", 5: "B-LOC", 6: "O"}


def test_unseen_label_in_evaluation(trained):
    nlp, _ = trained
    examples = _examples(nlp, [("Bruno Diaz ate pizza in Oslo.", [(0, 10, "PER"), (15, 20, "FOOD"), (24, 28, "LOC")])])
    scores = nlp.evaluate(examples)
    assert scores["ents_per_type"]["FOOD"]["r"] == 0.0
    assert scores["ents_per_type"]["PER"]["f"] == 1.0
    assert scores["ents_r"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "Alice Smith  visited\n\nParis on a cold morning."])
def test_empty_and_whitespace_docs(trained, text):
    nlp, _ = trained
    doc = nlp(text)
    assert len(doc.spans["ents_scored"]) == len(doc.ents)
    for token in doc:
        if token.is_space:
            assert token.ent_iob_ == "O"
    if text.startswith("Alice"):
        assert _ents(doc) == [("Alice Smith", "PER"), ("Paris", "LOC")]
    # In a batch with other docs, and in training.
    docs = list(nlp.pipe([text, TEXTS[0], text]))
    assert _ents(docs[1]) == GOLD[0]
    eg = Example.from_dict(nlp.make_doc(text), {"entities": []})
    no_pieces = Ragged(numpy.zeros((0, 7), dtype="f"), numpy.zeros((len(eg.predicted),), dtype="i"))
    loss, d_scores = nlp.get_pipe("bert_ner").get_loss([eg], no_pieces)
    assert loss == 0.0 and d_scores.dataXd.shape == (0, 7)


@pytest.mark.parametrize("extension", ["text_pair", "question"])
def test_a_pair_or_question_is_not_read(trained, extension):
    """bert_ner reads the doc alone: a text pair or question set on it changes nothing."""
    nlp, _ = trained
    for text in TEXTS:
        doc = nlp.make_doc(text)
        setattr(doc._, extension, "Where did Emil Novak go in Lagos?")
        doc, alone = nlp(doc), nlp(text)
        assert doc._.trf_data.wordpieces.strings == alone._.trf_data.wordpieces.strings
        _assert_same([_scored(doc)], [_scored(alone)])
    assert nlp.get_pipe("transformer").model.attrs["doc_inputs"] == []


def test_long_doc_entity_at_the_end(trained):
    nlp, _ = trained
    n_filler = 5000 // 7 + 1
    text = " ".join([FILLER] * n_filler + [TEXTS[1]])
    doc = nlp(text)
    assert len(doc) > 5000
    assert doc._.trf_data.model_output.last_hidden_state.shape[0] > 50  # many windows
    assert all(length > 0 for length in doc._.trf_data.align.lengths)
    found = [(ent.text, ent.label_) for ent in doc.ents if ent.start >= len(doc) - 100]
    assert found == GOLD[1]
    assert all(ent.start >= len(doc) - 100 for ent in doc.ents)


def test_bad_settings_are_named():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="alignment 'middle'"):
        nlp.add_pipe("bert_ner", config={"alignment": "middle"})
    with pytest.raises(ValueError, match="decoding 'beam'"):
        nlp.add_pipe("bert_ner", name="ner2", config={"decoding": "beam"})


def test_no_entities_in_training_data(tiny_encoder):
    nlp = _make_nlp(tiny_encoder)
    examples = _examples(nlp, [(FILLER, [])])
    with pytest.raises(ValueError, match="no labels"):
        nlp.initialize(lambda: examples)


def _pipeline_with_own_encoder(tiny_encoder) -> Language:
    """Another pipeline whose own (untrained) transformer feeds its own head."""
    other = spacy.blank("en")
    other.add_pipe("transformer", config=encoder_config(tiny_encoder))
    other.add_pipe("bert_ner", name="other_ner", config={"model": {"tok2vec": {"upstream": "transformer"}}})
    other.initialize(lambda: _examples(other))
    return other


def test_source_with_replace_listeners(trained_copy, tiny_encoder, tmp_path):
    source = trained_copy
    expected = [_scored(source(text)) for text in TEXTS]
    source.replace_listeners("transformer", "bert_ner", ["model.tok2vec"])
    tok2vec_cfg = source.get_pipe_config("bert_ner")["model"]["tok2vec"]
    assert tok2vec_cfg["@architectures"] == "spacy_bert_tasks.StandaloneEncoder.v1"
    other = _pipeline_with_own_encoder(tiny_encoder)
    other.add_pipe("bert_ner", source=source)
    assert "bert_ner" not in other.get_pipe("transformer").listener_map
    _assert_same([_scored(other(text)) for text in TEXTS], expected)
    other.to_disk(tmp_path / "other")
    reloaded = spacy.load(tmp_path / "other")
    _assert_same([_scored(reloaded(text)) for text in TEXTS], expected)


def test_source_with_explicit_upstream(trained, tiny_encoder):
    """The trained pair, renamed "ner_transformer" and listened to by name, sits beside another encoder."""
    nlp, _ = trained
    expected = [_scored(nlp(text)) for text in TEXTS]
    config = nlp.config.copy()
    config["components"]["ner_transformer"] = config["components"].pop("transformer")
    config["components"]["bert_ner"]["model"]["tok2vec"]["upstream"] = "ner_transformer"
    config["nlp"]["pipeline"] = ["sentencizer", "ner_transformer", "bert_ner"]
    named = load_model_from_config(config, auto_fill=True)
    named.get_pipe("ner_transformer").from_bytes(nlp.get_pipe("transformer").to_bytes())
    named.get_pipe("bert_ner").from_bytes(nlp.get_pipe("bert_ner").to_bytes())
    other = _pipeline_with_own_encoder(tiny_encoder)
    other.add_pipe("ner_transformer", source=named)
    other.add_pipe("bert_ner", source=named)
    assert set(other.get_pipe("transformer").listener_map) == {"other_ner"}
    assert set(other.get_pipe("ner_transformer").listener_map) == {"bert_ner"}
    _assert_same([_scored(other(text)) for text in TEXTS], expected)


def test_config_trains_and_evaluates(tiny_encoder, tmp_path, capsys):
    """configs/ner.cfg with `spacy train` and `spacy evaluate`, on a tiny DocBin."""
    from spacy.cli.evaluate import evaluate
    from spacy.cli.train import train
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docbin = DocBin()
    for eg in _examples(nlp):
        docbin.add(eg.reference)
    data = tmp_path / "tiny.spacy"
    docbin.to_disk(data)
    overrides = {
        "paths.train": str(data),
        "paths.dev": str(data),
        "paths.encoder": str(tiny_encoder),
        "training.max_steps": 30,
        "training.eval_frequency": 10,
        "training.optimizer.learn_rate.initial_rate": 1e-3,
        "training.optimizer.learn_rate.warmup_steps": 3,
    }
    config = Path(__file__).resolve().parents[2] / "configs" / "ner.cfg"
    train(config, tmp_path / "out", overrides=overrides)
    scores = evaluate(str(tmp_path / "out" / "model-best"), data, silent=False)
    printed = capsys.readouterr().out
    for key in ("ents_p", "ents_r", "ents_f", "ents_per_type"):
        assert key in scores
    assert set(scores["ents_per_type"]) == {"PER", "ORG", "LOC"}
    assert "NER F" in printed and "NER (per type)" in printed
