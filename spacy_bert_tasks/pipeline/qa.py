"""``bert_qa``: extractive question answering on the shared encoder.

The doc's text is the context and ``doc._.question`` the question, set before
the pipeline runs::

    doc = nlp.make_doc(context)
    doc._.question = "Who wrote it?"
    doc = nlp(doc)
    doc._.answer                        # the best Span, or None
    doc.spans["answers"]                # the n best spans, best first
    doc.spans["answers"].attrs["scores"]  # their probabilities

For many (question, context) pairs, ``answer_questions(nlp, pairs)`` does the
above in batches and yields the docs in order.

The encoder reads ``[CLS] question [SEP] window [SEP]`` for every window of a
long context; the head scores each piece as a start and an end, and the best
span over all windows wins (run_qa.py's post-processing, see
``spacy_bert_tasks.ml.qa.decode_spans``). Answers always cover whole tokens.
``max_answer_length`` counts word pieces, as in run_qa.py. With
``allow_no_answer`` (SQuAD 2.0), the null answer wins when its score beats the
best span's by more than ``null_score_diff_threshold``; the n-best spans are
still listed, and the group's ``attrs["unanswerable"]`` is True.

Docs without a question get no answer, add no loss and are left untouched, so
QA data can be mixed with other tasks' data. A doc whose question is empty or
whitespace only gets no answer either (an empty ``doc.spans["answers"]``
marked unanswerable), with a warning the first time.
"""
import warnings
from typing import Callable, Iterable, Iterator, List, Optional, Tuple, Union

import numpy
from spacy.language import Language
from spacy.tokens import Doc, SpanGroup
from spacy.training import Example, validate_examples
from thinc.api import Config, Model

from ..extensions import ANSWERS_KEY, QUESTION, UNANSWERABLE, doc_input
from ..ml.qa import WindowLogits, decode_spans, span_loss, window_targets
from ..scoring import score_qa  # noqa: F401  (registers spacy_bert_tasks.qa_scorer.v1)
from .base import BertTaskPipe

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_bert_tasks.QA.v1"
grad_factor = 1.0

[model.tok2vec]
@architectures = "spacy_bert_tasks.Listener.v1"
upstream = "*"
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@Language.factory(
    "bert_qa",
    assigns=["doc.spans", "doc._.answer"],
    default_config={
        "model": DEFAULT_MODEL,
        "n_best_size": 20,
        "max_answer_length": 30,
        "null_score_diff_threshold": 0.0,
        "allow_no_answer": None,
        "scorer": {"@scorers": "spacy_bert_tasks.qa_scorer.v1"},
    },
    default_score_weights={"qa_f1": 1.0, "qa_exact": 0.0, "qa_has_ans_f1": None, "qa_no_ans_f1": None},
)
def make_bert_qa(
    nlp: Language,
    name: str,
    model: Model,
    *,
    n_best_size: int,
    max_answer_length: int,
    null_score_diff_threshold: float,
    allow_no_answer: Optional[bool],
    scorer: Optional[Callable],
) -> "BertQA":
    """Create a ``bert_qa`` component.

    n_best_size (int): start and end candidates per window, and answers kept.
    max_answer_length (int): longest answer, in word pieces.
    null_score_diff_threshold (float): how much the null answer must beat the
        best span by to win (only with ``allow_no_answer``).
    allow_no_answer (Optional[bool]): whether "no answer" can be predicted
        (SQuAD 2.0). None: decided by ``initialize``, True when the training
        data marks any question unanswerable.
    """
    return BertQA(
        nlp.vocab, model, name, n_best_size=n_best_size, max_answer_length=max_answer_length,
        null_score_diff_threshold=null_score_diff_threshold, allow_no_answer=allow_no_answer, scorer=scorer,
    )


class BertQA(BertTaskPipe):
    """Extractive QA: ``doc._.answer`` and ``doc.spans["answers"]`` from ``doc._.question``."""

    def __init__(
        self,
        vocab,
        model: Model,
        name: str = "bert_qa",
        *,
        n_best_size: int = 20,
        max_answer_length: int = 30,
        null_score_diff_threshold: float = 0.0,
        allow_no_answer: Optional[bool] = None,
        scorer: Optional[Callable] = None,
    ):
        for setting, value in (("n_best_size", n_best_size), ("max_answer_length", max_answer_length)):
            if value < 1:
                raise ValueError(f"bert_qa's {setting} must be at least 1, got {value}.")
        super().__init__(vocab, model, name, scorer=scorer, allow_no_answer=allow_no_answer)
        self.n_best_size = n_best_size
        self.max_answer_length = max_answer_length
        self.null_score_diff_threshold = null_score_diff_threshold
        self._warned_blank = False

    @property
    def doc_inputs(self) -> Tuple[str, ...]:
        return (QUESTION,)

    def predict(self, docs: Iterable[Doc]) -> List[Optional[WindowLogits]]:
        """Start/end logits for each doc with a question (None for the others)."""
        docs = list(docs)
        if not any(doc_input(doc, QUESTION) is not None for doc in docs):
            return [None] * len(docs)
        return self.model.predict(docs)

    def set_annotations(self, docs: Iterable[Doc], scores: List[Optional[WindowLogits]]) -> None:
        """Write the n-best answers to ``doc.spans["answers"]`` of docs with a question."""
        allow_null = bool(self.cfg.get("allow_no_answer"))
        for doc, doc_scores in zip(docs, scores):
            if doc._.question is None:
                continue
            if doc_input(doc, QUESTION) is None:
                self._warn_blank_question(doc)
            if doc_scores is None:  # an empty context or question holds no answer
                doc.spans[ANSWERS_KEY] = SpanGroup(doc, name=ANSWERS_KEY, attrs={"scores": [], UNANSWERABLE: True})
                continue
            candidates, null_score = decode_spans(
                doc_scores.logits, doc_scores.align,
                n_best_size=self.n_best_size, max_answer_length=self.max_answer_length,
            )
            span_scores = numpy.asarray([c.score for c in candidates] + ([null_score] if allow_null else []))
            probs = numpy.exp(span_scores - span_scores.max()) if len(span_scores) else span_scores
            probs = probs / probs.sum() if len(probs) else probs
            null_wins = not candidates or (
                allow_null and null_score - candidates[0].score > self.null_score_diff_threshold
            )
            attrs = {"scores": [float(p) for p in probs[: len(candidates)]], UNANSWERABLE: bool(null_wins)}
            if allow_null:
                attrs["no_answer_score"] = float(probs[-1])
            spans = [doc[c.start : c.end + 1] for c in candidates]
            doc.spans[ANSWERS_KEY] = SpanGroup(doc, name=ANSWERS_KEY, spans=spans, attrs=attrs)

    def get_loss(self, examples: Iterable[Example], scores: List[Optional[WindowLogits]]) -> Tuple[float, List]:
        """Cross-entropy of the gold start and end in every window of every QA doc.

        The target is the first span of the reference's ``doc.spans["answers"]``;
        [CLS] for an unanswerable question and for windows without the whole
        answer. Docs without a question or without gold add nothing.
        """
        validate_examples(examples, "BertQA.get_loss")
        logits, targets, where = [], [], []
        for i, (eg, doc_scores) in enumerate(zip(examples, scores)):
            if doc_scores is None:
                if eg.reference._.question is not None and eg.predicted._.question is None:
                    raise ValueError(
                        f"Example {i} has a question in its reference doc but not in its predicted doc "
                        f"({eg.predicted.text[:40]!r}...). Set `doc._.question` on the predicted doc too "
                        "(`spacy_bert_tasks.extensions.copy_inputs(reference, predicted)`)."
                    )
                continue
            has_gold, gold = _gold_span(eg)
            if not has_gold:
                continue
            n_windows, seq_len, _ = doc_scores.logits.shape
            logits.append(doc_scores.logits)
            targets.append(window_targets(doc_scores.align, n_windows, seq_len, gold))
            where.append(i)
        loss, d_logits = span_loss(logits, targets)
        d_scores: List = [None] * len(scores)
        for i, d in zip(where, d_logits):
            d_scores[i] = d
        return loss, d_scores

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None,
                   labels=None) -> None:
        """Initialise the head; decide ``allow_no_answer`` from the data when it is None."""
        super().initialize(get_examples, nlp=nlp, labels=labels)
        if self.cfg.get("allow_no_answer") is None:
            self.cfg["allow_no_answer"] = any(
                bool(group.attrs.get(UNANSWERABLE))
                for group in (eg.reference.spans.get(ANSWERS_KEY) for eg in get_examples())
                if group is not None
            )

    def add_label(self, label: str) -> int:
        raise NotImplementedError("bert_qa has no labels: answers are spans of the context.")

    def _warn_blank_question(self, doc: Doc) -> None:
        if self._warned_blank:
            return
        self._warned_blank = True
        warnings.warn(
            f"bert_qa '{self.name}': a doc has an empty or whitespace-only doc._.question "
            f"({doc._.question!r}, context {doc.text[:40]!r}): it gets no answer, as will any other such doc "
            "(this warning is shown once). Set a question, or leave doc._.question None on docs that are not QA."
        )


def _gold_span(eg: Example) -> Tuple[bool, Optional[Tuple[int, int]]]:
    """Whether the example has gold, and the answer's first and last predicted-doc token.

    The span is None for an unanswerable question. Spans are carried across by
    character offsets, widened to whole tokens, without whitespace tokens.
    """
    group = eg.reference.spans.get(ANSWERS_KEY)
    if group is None:
        return False, None
    if len(group) == 0:
        return bool(group.attrs.get(UNANSWERABLE)), None
    span = group[0]
    predicted = eg.predicted.char_span(span.start_char, span.end_char, alignment_mode="expand")
    tokens = [t.i for t in predicted if not t.is_space] if predicted is not None else []
    return (True, (tokens[0], tokens[-1])) if tokens else (False, None)


def answer_questions(
    nlp: Language,
    pairs: Iterable[Tuple[str, Union[str, Doc]]],
    *,
    batch_size: Optional[int] = None,
    n_process: int = 1,
) -> Iterator[Doc]:
    """Answer (question, context) pairs in bulk; yields one doc per pair, in order.

    nlp (Language): a pipeline with ``bert_qa``.
    pairs (Iterable[Tuple[str, Union[str, Doc]]]): questions and their
        contexts (texts, or docs made with ``nlp.make_doc``).
    batch_size (Optional[int]): docs per batch, ``nlp.batch_size`` if None.
    n_process (int): processes, as for ``nlp.pipe``.
    YIELDS (Doc): the context with ``doc._.question`` and its answers set.
    """

    def docs() -> Iterator[Doc]:
        for question, context in pairs:
            doc = context if isinstance(context, Doc) else nlp.make_doc(context)
            doc._.question = question
            yield doc

    yield from nlp.pipe(docs(), batch_size=batch_size, n_process=n_process)
