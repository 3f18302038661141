"""bert_qa: overfitting, serialisation, long contexts, edge cases, shared encoder.

One pipeline is trained per module (``trained``) on hand-written SQuAD-style
questions and reused; ``make_nlp`` and ``tiny_encoder`` come from conftest.py.
"""
import pickle
import warnings
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import SpanGroup
from spacy.training import Example

from spacy_bert_tasks import answer_questions
from spacy_bert_tasks.ml.qa import decode_spans, piece_tokens, span_loss, window_targets
from spacy_bert_tasks.pipeline.qa import BertQA

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "qa.cfg"

# (context, question, answer or None)
TRAIN_DATA = [
    ("Alice Smith visited Acme Corp in Paris on a cold morning.", "Who visited Acme Corp?", "Alice Smith"),
    ("Bruno Diaz left Globex in Lima on a bright evening.", "Where did Bruno Diaz leave Globex?", "Lima"),
    ("Chen Wei praised Initech in Kyoto on a quiet day.", "What did Chen Wei praise?", "Initech"),
    ("Dana Okafor joined Stark Labs in Oslo on a cold day.", "When did Dana Okafor join Stark Labs?", "a cold day"),
    ("Emil Novak called Umbrella Health in Denver.", "Why did Alice Smith leave Lima?", None),
]
# Long enough for two windows of the test encoder (64 pieces, question included).
STRADDLE_CONTEXT = (
    "Alice Smith visited Acme Corp in Paris on a cold morning, and it was good news for everyone. "
    "Bruno Diaz left Globex in Lima on a bright evening, and it was bad news for everyone. "
    "Chen Wei praised Initech in Kyoto on a quiet day, and it was great news for everyone. "
    "Dana Okafor joined Stark Labs in Oslo on a cold day, and it was terrible news for everyone."
)
STRADDLE = (STRADDLE_CONTEXT, "Where and when did Chen Wei praise Initech?", "in Kyoto on a quiet day")
ALL_DATA = TRAIN_DATA + [STRADDLE]


def make_example(nlp: Language, context: str, question, answer) -> Example:
    predicted = nlp.make_doc(context)
    predicted._.question = question
    if answer is None:
        eg = Example.from_dict(predicted, {})
        eg.reference.spans["answers"] = SpanGroup(eg.reference, name="answers", attrs={"unanswerable": True})
    else:
        start = context.index(answer)
        eg = Example.from_dict(predicted, {"spans": {"answers": [(start, start + len(answer), "ANSWER")]}})
        eg.reference.spans["answers"].attrs["texts"] = [answer]
    eg.reference._.question = question
    return eg


def ask(nlp: Language, context: str, question):
    doc = nlp.make_doc(context)
    doc._.question = question
    return doc


def answer_texts(docs):
    return [None if doc._.answer is None else doc._.answer.text for doc in docs]


@pytest.fixture(scope="module")
def trained(tiny_encoder):
    from tests.conftest import encoder_config

    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=encoder_config(tiny_encoder))
    nlp.add_pipe("bert_qa")
    examples = [make_example(nlp, *row) for row in ALL_DATA]
    # A doc without a question and an empty context ride along: no loss, no error.
    examples.append(Example.from_dict(nlp.make_doc("Chen Wei left Oslo."), {}))
    examples.append(make_example(nlp, "", "Who left?", None))
    optimizer = nlp.initialize(lambda: examples)
    losses = {}
    for _ in range(100):
        losses = nlp.update(examples, sgd=optimizer)
    return nlp, examples, losses


def test_overfitting_IO(trained, tmp_path):
    nlp, examples, losses = trained
    assert losses["bert_qa"] < 0.01
    qa = nlp.get_pipe("bert_qa")
    assert qa.cfg["allow_no_answer"] is True  # the data marks a question unanswerable
    docs = [ask(nlp, c, q) for c, q, _ in ALL_DATA]
    predicted = answer_texts(nlp.pipe(docs))
    assert predicted == [a for _, _, a in ALL_DATA]
    nlp.to_disk(tmp_path)
    nlp2 = spacy.load(tmp_path)
    assert nlp2.get_pipe("bert_qa").cfg["allow_no_answer"] is True
    docs2 = list(nlp2.pipe([ask(nlp2, c, q) for c, q, _ in ALL_DATA]))
    assert answer_texts(docs2) == predicted
    for doc, doc2 in zip(docs, docs2):
        numpy.testing.assert_allclose(doc.spans["answers"].attrs["scores"], doc2.spans["answers"].attrs["scores"],
                                      rtol=1e-4, atol=1e-6)
    nlp3 = spacy.blank("en").from_config(nlp.config)
    nlp3.from_bytes(nlp.to_bytes())
    assert answer_texts(nlp3.pipe([ask(nlp3, c, q) for c, q, _ in ALL_DATA])) == predicted


def test_nbest_spans_and_scores(trained):
    nlp = trained[0]
    doc = nlp(ask(nlp, *TRAIN_DATA[0][:2]))
    group = doc.spans["answers"]
    scores = group.attrs["scores"]
    assert doc._.answer == group[0] and group.attrs["unanswerable"] is False
    assert 1 < len(group) <= nlp.get_pipe("bert_qa").n_best_size and len(scores) == len(group)
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.5
    assert sum(scores) + group.attrs["no_answer_score"] == pytest.approx(1.0)
    # Whole tokens only, and each span once.
    assert len({(s.start, s.end) for s in group}) == len(group)
    for span in group:
        assert span.start_char == doc[span.start].idx and span.end_char == doc[span.end - 1].idx + len(doc[span.end - 1])


def test_pipe_equals_call_and_pickling(trained):
    nlp = trained[0]
    single = [nlp(ask(nlp, c, q)) for c, q, _ in ALL_DATA]
    batched = list(nlp.pipe([ask(nlp, c, q) for c, q, _ in ALL_DATA], batch_size=2))
    assert answer_texts(single) == answer_texts(batched)
    restored = pickle.loads(pickle.dumps(batched))
    assert answer_texts(restored) == answer_texts(batched)
    assert restored[0].spans["answers"].attrs["scores"] == batched[0].spans["answers"].attrs["scores"]
    nlp2 = pickle.loads(pickle.dumps(nlp))
    assert answer_texts(nlp2.pipe([ask(nlp2, c, q) for c, q, _ in ALL_DATA])) == answer_texts(single)


def test_multiprocessing_gives_identical_answers(trained):
    nlp = trained[0]
    one = list(nlp.pipe([ask(nlp, c, q) for c, q, _ in ALL_DATA]))
    two = list(nlp.pipe([ask(nlp, c, q) for c, q, _ in ALL_DATA], n_process=2, batch_size=2))
    assert answer_texts(two) == answer_texts(one)
    for a, b in zip(one, two):
        assert [(s.start, s.end) for s in a.spans["answers"]] == [(s.start, s.end) for s in b.spans["answers"]]


def test_answer_questions_helper(trained):
    nlp = trained[0]
    pairs = [(q, c) for c, q, _ in ALL_DATA]
    docs = list(answer_questions(nlp, pairs, batch_size=3))
    assert [doc.text for doc in docs] == [c for c, _, _ in ALL_DATA]
    assert [doc._.question for doc in docs] == [q for _, q, _ in ALL_DATA]
    assert answer_texts(docs) == [a for _, _, a in ALL_DATA]


def test_evaluate_returns_documented_keys(trained):
    nlp, examples, _ = trained
    scores = nlp.evaluate(examples)
    assert scores["qa_exact"] == 1.0 and scores["qa_f1"] == 1.0
    assert scores["qa_has_ans_f1"] == 1.0 and scores["qa_no_ans_f1"] == 1.0


def test_unanswerable_question(trained):
    nlp = trained[0]
    context, question, _ = TRAIN_DATA[4]
    doc = nlp(ask(nlp, context, question))
    assert doc._.answer is None
    assert doc.spans["answers"].attrs["unanswerable"] is True
    assert doc.spans["answers"].attrs["no_answer_score"] > max(doc.spans["answers"].attrs["scores"])


def test_answer_straddling_the_overlap(trained):
    nlp = trained[0]
    context, question, answer = STRADDLE
    doc = nlp(ask(nlp, context, question))
    data = doc._.trf_data
    n_windows, seq_len = data.wordpieces.input_ids.shape
    first = next(t.i for t in doc if t.idx == context.index(answer))
    last = first + len(nlp.make_doc(answer)) - 1
    windows = [{int(f) // seq_len for f in data.align[i].dataXd.ravel()} for i in range(first, last + 1)]
    # Precondition: the answer starts in the overlap and ends in window 1 only.
    assert n_windows == 2 and windows[0] == {0, 1} and windows[-1] == {1}
    targets = window_targets(data.align, n_windows, seq_len, (first, last))
    assert targets[0].tolist() == [0, 0], "window 0 lacks the answer's end: it targets [CLS]"
    first_pos = min(int(f) % seq_len for f in data.align[first].dataXd.ravel() if int(f) // seq_len == 1)
    last_pos = max(int(f) % seq_len for f in data.align[last].dataXd.ravel() if int(f) // seq_len == 1)
    assert targets[1].tolist() == [first_pos, last_pos]
    assert doc._.answer.text == answer


def test_empty_context_gets_no_answer(trained):
    nlp = trained[0]
    docs = list(nlp.pipe([ask(nlp, "", "Who?"), ask(nlp, "   ", "Who?"), ask(nlp, *TRAIN_DATA[0][:2])]))
    for doc in docs[:2]:
        assert doc._.answer is None and len(doc.spans["answers"]) == 0
    assert docs[2]._.answer.text == TRAIN_DATA[0][2]


def test_empty_or_whitespace_question_gets_no_answer_and_one_warning(trained):
    """Convert rejects such questions; at inference they get no answer, and a warning once."""
    nlp = trained[0]
    qa = nlp.get_pipe("bert_qa")
    qa._warned_blank = False
    context = TRAIN_DATA[0][0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = list(nlp.pipe([ask(nlp, context, blank) for blank in ("", "   ", "\n\t")]))
        docs.append(nlp(ask(nlp, context, " ")))
    messages = [str(w.message) for w in caught if "empty or whitespace-only" in str(w.message)]
    assert len(messages) == 1 and "bert_qa" in messages[0]
    for doc in docs:
        assert doc._.answer is None and len(doc.spans["answers"]) == 0
        assert doc.spans["answers"].attrs["unanswerable"]
        assert doc._.trf_data.wordpieces.strings == nlp(context)._.trf_data.wordpieces.strings
    # A blank question adds no loss in training.
    eg = make_example(nlp, context, "  ", TRAIN_DATA[0][2])
    assert qa.model.predict([eg.predicted]) == [None]
    assert qa.get_loss([eg], [None])[0] == 0.0


def test_doc_without_question(trained):
    nlp, examples, _ = trained
    doc = nlp("Alice Smith visited Acme Corp in Paris.")
    assert doc._.answer is None and "answers" not in doc.spans
    # In training it adds no loss and no gradient.
    qa = nlp.get_pipe("bert_qa")
    with_question = [make_example(nlp, *TRAIN_DATA[0])]
    without = [Example.from_dict(nlp.make_doc("Chen Wei left Oslo."), {})]
    scores = qa.model.predict([eg.predicted for eg in with_question + without])
    assert scores[1] is None
    loss_mixed, d_mixed = qa.get_loss(with_question + without, scores)
    loss_alone, _ = qa.get_loss(with_question, scores[:1])
    assert loss_mixed == pytest.approx(loss_alone) and d_mixed[1] is None


def test_missing_question_on_predicted_doc_is_an_error(trained):
    nlp = trained[0]
    eg = make_example(nlp, *TRAIN_DATA[0])
    eg.predicted._.question = None
    qa = nlp.get_pipe("bert_qa")
    with pytest.raises(ValueError, match="question in its reference doc but not in its predicted doc"):
        qa.get_loss([eg], qa.model.predict([eg.predicted]))


def test_long_question_is_cut_with_a_warning(trained):
    nlp = trained[0]
    long_question = "Who " + "really and truly " * 20 + "visited Acme Corp?"
    docs = [ask(nlp, TRAIN_DATA[0][0], long_question) for _ in range(3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = list(nlp.pipe(docs))
    messages = [str(w.message) for w in caught if "max_question_length" in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith("3 question(s)")
    for doc in docs:
        assert all(len(seq) <= 64 for seq in doc._.trf_data.wordpieces.strings)
        assert doc._.answer is None or doc._.answer.doc is doc


def test_sourcing_into_another_pipeline(trained):
    nlp = trained[0]
    nlp2 = spacy.blank("en")
    nlp2.add_pipe("transformer", source=nlp)
    nlp2.add_pipe("bert_qa", name="qa", source=nlp)
    docs = [ask(nlp2, c, q) for c, q, _ in ALL_DATA]
    assert answer_texts(nlp2.pipe(docs)) == [a for _, _, a in ALL_DATA]


def test_context_of_3000_tokens_answer_in_last_window(make_nlp):
    spacy.util.fix_random_seed(0)
    nlp = make_nlp(max_length=256, stride=64)
    nlp.add_pipe("bert_qa")
    filler = "Bruno Diaz left Globex in Lima on a bright evening , and it was bad news for everyone . "
    context = filler * (3000 // len(filler.split()) + 1) + "Chen Wei praised Initech in Kyoto ."
    eg = make_example(nlp, context, "What did Chen Wei praise?", "Initech")
    assert len(eg.predicted) >= 3000
    optimizer = nlp.initialize(lambda: [eg])
    for _ in range(8):
        nlp.update([eg], sgd=optimizer)
    doc = nlp(ask(nlp, context, "What did Chen Wei praise?"))
    data = doc._.trf_data
    n_windows, seq_len = data.wordpieces.input_ids.shape
    answer = next(t.i for t in doc if t.text == "Initech")
    assert n_windows > 10
    assert {int(f) // seq_len for f in data.align[answer].dataXd.ravel()} == {n_windows - 1}
    assert doc._.answer is not None and doc._.answer.text == "Initech"


def test_shared_encoder_is_stored_once(make_nlp, tmp_path):
    context = "Alice Smith visited Acme Corp in Paris."

    def examples(nlp):
        eg = make_example(nlp, context, "Who visited Acme Corp?", "Alice Smith")
        eg.reference.cats = {"POS": 1.0, "NEG": 0.0}
        eg.reference.ents = [eg.reference.char_span(0, 11, label="PER")]
        return [eg]

    def disk_size(nlp, name):
        path = tmp_path / name
        nlp.to_disk(path)
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    single = make_nlp()
    single.add_pipe("bert_qa")
    single.initialize(lambda: examples(single))
    joint = make_nlp()
    for factory in ("bert_textcat", "bert_ner", "bert_qa"):
        joint.add_pipe(factory)
    joint.initialize(lambda: examples(joint))
    assert disk_size(joint, "joint") <= 1.1 * disk_size(single, "single")


def test_config_has_the_run_qa_settings(tiny_encoder):
    overrides = {"paths.encoder": str(tiny_encoder), "paths.train": "train.spacy", "paths.dev": "dev.spacy"}
    config = spacy.util.load_config(CONFIG, overrides=overrides, interpolate=True)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == ["transformer", "bert_qa"]
    settings = nlp.get_pipe("transformer").model.attrs
    assert (settings["max_length"], settings["stride"], settings["max_question_length"]) == (384, 128, 64)
    qa = nlp.get_pipe("bert_qa")
    assert (qa.n_best_size, qa.max_answer_length, qa.null_score_diff_threshold) == (20, 30, 0.0)
    schedule = config["training"]["optimizer"]["learn_rate"]
    # run_qa.py's 3e-5 is for base-size BERT; the default start is the small all-MiniLM-L6-v2.
    assert schedule["initial_rate"] == 1e-4 and schedule["warmup_steps"] > 0
    assert config["corpora"]["train"]["@readers"] == "spacy_bert_tasks.Corpus.v1"


# Array code, without a model.


def _align(rows):
    """A Ragged alignment from per-token lists of flat indices."""
    from thinc.types import Ragged

    flat = numpy.asarray([f for row in rows for f in row], dtype="i")
    return Ragged(flat, numpy.asarray([len(row) for row in rows], dtype="i"))


def test_piece_tokens_handles_shared_pieces():
    # seq_len 6; tokens 0 and 1 share the piece at position 2 ("do|n't").
    align = _align([[1, 2], [2], [3], []])
    first, last = piece_tokens(align, 1, 6)
    assert first.tolist() == [-1, 0, 0, 2, -1, -1]
    assert last.tolist() == [-1, 0, 1, 2, -1, -1]


def test_window_targets_need_the_whole_answer():
    # Two windows of seq_len 8 ([CLS], six doc pieces, [SEP]); window 1 starts at doc piece 3.
    # Token 1 (pieces 1-3) is whole in window 0 only, token 2 (pieces 4-6) in window 1 only.
    align = _align([[1], [2, 3, 4, 9], [5, 6, 10, 11, 12], [13], [14]])
    assert window_targets(align, 2, 8, (0, 1)).tolist() == [[1, 4], [0, 0]]
    assert window_targets(align, 2, 8, (2, 3)).tolist() == [[0, 0], [2, 5]]
    assert window_targets(align, 2, 8, (1, 2)).tolist() == [[0, 0], [0, 0]], "no window holds it all"
    assert window_targets(align, 2, 8, None).tolist() == [[0, 0], [0, 0]]


def test_decode_spans_rules():
    # One window, seq_len 6: [CLS] q [SEP] t0 t1 t2 ; tokens 0..2 at positions 3..5.
    align = _align([[3], [4], [5]])
    logits = numpy.full((1, 6, 2), -10000.0, dtype="f")
    logits[0, :, 0] = [1.0, -10000, -10000, 0.5, 3.0, 0.0]
    logits[0, :, 1] = [1.0, -10000, -10000, 4.0, 0.2, 2.0]
    candidates, null = decode_spans(logits, align, n_best_size=20, max_answer_length=30)
    # (1, 2): 3.0 + 2.0 beats (0, 0): 0.5 + 4.0; an end before its start (1, 0) is never paired.
    assert candidates[0][:2] == (1, 2) and candidates[0].score == pytest.approx(5.0)
    assert (1, 0) not in [c[:2] for c in candidates]
    assert null == pytest.approx(2.0)
    short, _ = decode_spans(logits, align, n_best_size=20, max_answer_length=1)
    assert all(c.start == c.end for c in short)
    assert len(decode_spans(logits, align, n_best_size=2, max_answer_length=30)[0]) <= 2


def test_span_loss_gradient_matches_finite_differences():
    rng = numpy.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 2)).astype("f")
    logits[:, 1, :] = -10000.0  # a masked position
    targets = numpy.asarray([[2, 3], [0, 0]], dtype="i")
    loss, (d_logits,) = span_loss([logits], [targets])
    assert d_logits[:, 1, :] == pytest.approx(0.0, abs=1e-6)
    eps = 1e-3
    bumped = logits.copy()
    bumped[0, 2, 0] += eps
    numeric = (span_loss([bumped], [targets])[0] - loss) / eps
    assert numeric == pytest.approx(float(d_logits[0, 2, 0]), rel=1e-2, abs=1e-3)


def test_bert_qa_has_no_labels(trained):
    with pytest.raises(NotImplementedError, match="no labels"):
        trained[0].get_pipe("bert_qa").add_label("X")
    assert isinstance(trained[0].get_pipe("bert_qa"), BertQA)
