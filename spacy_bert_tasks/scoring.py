"""Scoring functions on plain data, and the scorers built from them.

SQuAD: ``normalize_answer`` (the official answer normalisation: lower case,
no punctuation, no articles "a", "an", "the", single spaces), ``exact_match``
and ``f1_score`` for one prediction against one gold answer, ``max_over_golds``
and ``squad_scores`` for a whole set. Scores are fractions in [0, 1]; the
official script prints them times 100. An unanswerable question has the one
gold answer "" (SQuAD 2.0): the empty prediction scores 1 there, anything
else 0.

The components' scorers, one naming pattern (``score_<task>`` scores examples,
``make_<task>_scorer`` is the registered function that returns it):
``score_ner`` (``spacy_bert_tasks.ner_scorer.v1``), ``score_cats``
(``spacy_bert_tasks.textcat_scorer.v1``; ``.v2`` renames its keys), ``score_qa``
(``spacy_bert_tasks.qa_scorer.v1``). ``headline_scores`` picks the scores a table shows.
"""
import re
import string
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.scorer import Scorer, get_ner_prf
from spacy.training import Example
from spacy.util import registry

from .extensions import ANSWERS_KEY, UNANSWERABLE

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower, drop punctuation and articles, squeeze spaces.

    text (str): an answer string.
    RETURNS (str): the normalised answer.
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Harmonic mean of precision and recall over normalised words (bags, not sets).

    When either side is empty after normalisation, 1.0 if both are, else 0.0.
    """
    pred_words = normalize_answer(prediction).split()
    gold_words = normalize_answer(gold).split()
    if not pred_words or not gold_words:
        return float(pred_words == gold_words)
    n_same = sum((Counter(pred_words) & Counter(gold_words)).values())
    if n_same == 0:
        return 0.0
    precision = n_same / len(pred_words)
    recall = n_same / len(gold_words)
    return 2 * precision * recall / (precision + recall)


def max_over_golds(metric: Callable[[str, str], float], prediction: str, golds: Sequence[str]) -> float:
    """The best score of a prediction against any of the gold answers.

    golds (Sequence[str]): the gold answers; an empty sequence means
        unanswerable, which is scored as the single gold answer "".
    """
    return max(metric(prediction, gold) for gold in (golds or [""]))


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> Dict[str, Optional[float]]:
    """EM and F1 over a set of questions, each the max over its gold answers.

    predictions (Sequence[str]): one answer per question, "" for no answer.
    golds (Sequence[Sequence[str]]): the gold answers of each question; an
        empty one marks an unanswerable question.
    RETURNS (Dict[str, Optional[float]]): "exact", "f1", and "has_ans_f1" /
        "no_ans_f1" (F1 over the answerable / unanswerable questions), the
        latter two None unless some question is unanswerable. None for an
        empty set.
    """
    if len(predictions) != len(golds):
        raise ValueError(f"Got {len(predictions)} predictions for {len(golds)} questions; pass one per question.")
    if not predictions:
        return {"exact": None, "f1": None, "has_ans_f1": None, "no_ans_f1": None}
    exact = [max_over_golds(exact_match, p, g) for p, g in zip(predictions, golds)]
    f1 = [max_over_golds(f1_score, p, g) for p, g in zip(predictions, golds)]
    scores: Dict[str, Optional[float]] = {
        "exact": sum(exact) / len(exact), "f1": sum(f1) / len(f1), "has_ans_f1": None, "no_ans_f1": None
    }
    answerable = [bool(list(g)) for g in golds]
    if not all(answerable):
        has = [s for s, a in zip(f1, answerable) if a]
        no = [s for s, a in zip(f1, answerable) if not a]
        scores["has_ans_f1"] = sum(has) / len(has) if has else None
        scores["no_ans_f1"] = sum(no) / len(no)
    return scores


def gold_answer_texts(example: Example) -> Optional[List[str]]:
    """The gold answers of a QA example: [] when unanswerable, None when it has no gold.

    The original strings in ``attrs["texts"]`` are preferred to the spans' text.
    """
    group = example.reference.spans.get(ANSWERS_KEY)
    if group is None:
        return None
    if group.attrs.get(UNANSWERABLE):
        return []
    texts = group.attrs.get("texts")
    return list(texts) if texts else [span.text for span in group]


def score_qa(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Optional[float]]:
    """``qa_exact``, ``qa_f1``, ``qa_has_ans_f1`` and ``qa_no_ans_f1`` of ``bert_qa``'s answers.

    Examples whose predicted doc has no question or whose reference has no
    ``doc.spans["answers"]`` are skipped, so QA data can be mixed with other
    tasks' data. Values are None when nothing was scored.
    """
    predictions: List[str] = []
    golds: List[List[str]] = []
    for eg in examples:
        gold = gold_answer_texts(eg)
        if gold is None or eg.predicted._.question is None:
            continue
        answer = eg.predicted._.answer
        predictions.append(answer.text if answer is not None else "")
        golds.append(gold)
    return {f"qa_{key}": value for key, value in squad_scores(predictions, golds).items()}


@registry.scorers("spacy_bert_tasks.qa_scorer.v1")
def make_qa_scorer() -> Callable[..., Dict[str, Optional[float]]]:
    """The scorer of ``bert_qa``: SQuAD EM and F1, max over gold answers."""
    return score_qa


def score_ner(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
    """spaCy's entity scores: ``ents_p``, ``ents_r``, ``ents_f``, ``ents_per_type``."""
    return get_ner_prf(examples)


@registry.scorers("spacy_bert_tasks.ner_scorer.v1")
def make_ner_scorer() -> Callable[..., Dict[str, Any]]:
    return score_ner


def score_cats(
    examples: Iterable[Example],
    *,
    labels: Sequence[str] = (),
    multi_label: bool = False,
    threshold: float = 0.5,
    positive_label: Optional[str] = None,
    **cfg: Any,
) -> Dict[str, Any]:
    """spaCy's ``cats_*`` scores, with the component's mode and threshold.

    Docs whose gold ``cats`` hold none of ``labels`` are not annotated for this
    classifier (as in a joint corpus's NER docs, or another classifier's) and are left out; spaCy's scorer would count
    their predicted class as a false positive. With no annotated doc at all,
    every score is None.

    labels (Sequence[str]): the labels to score; others in the gold data are ignored.
    multi_label (bool): score each label on its own (at ``threshold``) or the top class.
    positive_label (Optional[str]): for two exclusive classes, make ``cats_score``
        that label's F-score instead of the macro F.
    """
    annotated = [eg for eg in examples if annotated_for(eg.reference.cats, labels or None)]
    scores = Scorer.score_cats(
        annotated, "cats", labels=labels, multi_label=multi_label, threshold=threshold, positive_label=positive_label
    )
    if not annotated:
        # Nothing to score (e.g. a joint pipeline on another task's corpus): None, not a
        # misleading 0.0, as spaCy's span scorers do; spaCy's training loop skips None scores.
        scores = {key: (value if isinstance(value, str) else None) for key, value in scores.items()}
    return scores


def annotated_for(cats: Dict[str, float], labels: Optional[Sequence[str]]) -> bool:
    """Whether gold ``cats`` annotate a classifier with ``labels`` (None: any classifier).

    A joint corpus holds docs of other tasks (no cats) and of another classifier
    (other labels); neither is this classifier's, for its loss, pair check or scores.
    """
    return bool(cats) and (labels is None or not set(labels).isdisjoint(cats))


@registry.scorers("spacy_bert_tasks.textcat_scorer.v1")
def make_textcat_scorer() -> Callable[..., Dict[str, Any]]:
    return score_cats


@registry.scorers("spacy_bert_tasks.textcat_scorer.v2")
def make_textcat_scorer_v2(prefix: str = "cats") -> Callable[..., Dict[str, Any]]:
    """v1's scores, their keys starting ``prefix`` instead of "cats" (e.g. ``pair_score``).

    A pipeline with two classifiers (sentiment and paraphrase on one encoder)
    gives each its own keys; with the same keys one would overwrite the other.
    """

    def score(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        scores = score_cats(examples, **kwargs)
        return {prefix + key[len("cats"):] if key.startswith("cats_") else key: value for key, value in scores.items()}

    return score


def headline_scores(scores: Dict[str, Any], metrics: Sequence[Tuple[str, str]]) -> List[Tuple[str, str, float]]:
    """(key, label, value) for each ``(key, label)`` of ``metrics`` that ``scores`` holds as a number.

    None (nothing to score) is left out, and so is ``cats_macro_f`` where
    ``cats_score`` already is the macro F.
    """
    rows = []
    for key, label in metrics:
        value = scores.get(key)
        if key == "cats_macro_f" and scores.get("cats_score_desc") == "macro F":
            continue
        if isinstance(value, (int, float)):
            rows.append((key, label, float(value)))
    return rows
