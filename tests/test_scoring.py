"""SQuAD scoring: the official normalisation, EM/F1, max over gold answers, the QA scorer."""
import pytest
import spacy
from spacy.tokens import SpanGroup
from spacy.training import Example
from spacy.util import registry

import spacy_bert_tasks  # noqa: F401  (extensions, registry)
from spacy_bert_tasks.scoring import (
    exact_match,
    f1_score,
    max_over_golds,
    normalize_answer,
    score_qa,
    squad_scores,
)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("The Eiffel Tower", "eiffel tower"),  # case and a leading article
        ("an apple a day", "apple day"),  # articles anywhere, as whole words only
        ("Theatre and anarchy", "theatre and anarchy"),  # "the", "an" inside words stay
        ("Denver Broncos!", "denver broncos"),  # punctuation
        ("U.S.-based, (1990)", "usbased 1990"),  # punctuation is deleted, not spaced
        ("  lots \t of\n space ", "lots of space"),  # whitespace
        ("", ""),
        ("the a an", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_uses_normalisation():
    assert exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0


def test_f1_counts_repeated_words_as_bags():
    assert f1_score("Denver Broncos", "Denver Broncos") == 1.0
    assert f1_score("Denver", "Denver Broncos") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    # "a a b" vs "a b": articles go first -> "b" vs "b"
    assert f1_score("a a b", "a b") == 1.0
    # Two "x" predicted, one in gold: precision 1/2 (bag overlap 1), recall 1.
    assert f1_score("x x", "x") == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert f1_score("nothing shared", "Denver") == 0.0


def test_empty_answers_score_as_squad2():
    assert f1_score("", "") == 1.0 and exact_match("", "") == 1.0
    assert f1_score("", "Denver") == 0.0 and f1_score("Denver", "") == 0.0
    assert f1_score("the", "") == 1.0  # empty after normalisation


def test_max_over_golds():
    golds = ["Denver Broncos", "The Broncos", "Broncos"]
    assert max_over_golds(exact_match, "broncos", golds) == 1.0
    assert max_over_golds(f1_score, "Denver", golds) == pytest.approx(2 / 3)
    assert max_over_golds(f1_score, "", []) == 1.0  # unanswerable: gold is ""
    assert max_over_golds(f1_score, "Denver", []) == 0.0


def test_squad_scores():
    scores = squad_scores(["Denver Broncos", "Paris", "x"], [["Denver Broncos"], ["Lyon", "Paris!"], ["y"]])
    assert scores["exact"] == pytest.approx(2 / 3) and scores["f1"] == pytest.approx(2 / 3)
    assert scores["has_ans_f1"] is None and scores["no_ans_f1"] is None
    v2 = squad_scores(["Denver", "", "Paris"], [["Denver"], [], []])
    assert v2["exact"] == pytest.approx(2 / 3)
    assert v2["has_ans_f1"] == 1.0 and v2["no_ans_f1"] == 0.5
    assert squad_scores([], [])["f1"] is None
    with pytest.raises(ValueError, match="one per question"):
        squad_scores(["a"], [])


def _example(nlp, context, question, gold_texts, predicted_span):
    predicted = nlp.make_doc(context)
    predicted._.question = question
    reference = predicted.copy()
    if gold_texts:
        start = context.index(gold_texts[0])
        span = reference.char_span(start, start + len(gold_texts[0]))
        reference.spans["answers"] = SpanGroup(reference, name="answers", spans=[span], attrs={"texts": gold_texts})
    else:
        reference.spans["answers"] = SpanGroup(reference, name="answers", attrs={"unanswerable": True})
    if predicted_span is not None:
        predicted._.answer = predicted.char_span(*predicted_span)
    return Example(predicted, reference)


def test_score_qa_reads_examples():
    nlp = spacy.blank("en")
    context = "The Denver Broncos won Super Bowl 50 in Santa Clara."
    examples = [
        _example(nlp, context, "Who won?", ["Denver Broncos", "The Denver Broncos"], (4, 18)),
        _example(nlp, context, "Where?", ["Santa Clara"], (0, 18)),
        _example(nlp, context, "Who lost?", [], None),
    ]
    no_question = Example(nlp.make_doc(context), nlp.make_doc(context))  # another task's example: skipped
    scores = score_qa(examples + [no_question])
    assert set(scores) == {"qa_exact", "qa_f1", "qa_has_ans_f1", "qa_no_ans_f1"}
    assert scores["qa_exact"] == pytest.approx(2 / 3)
    assert scores["qa_has_ans_f1"] == pytest.approx(0.5) and scores["qa_no_ans_f1"] == 1.0
    assert score_qa([no_question])["qa_f1"] is None


def test_scorer_is_registered():
    assert registry.scorers.get("spacy_bert_tasks.qa_scorer.v1")() is score_qa
