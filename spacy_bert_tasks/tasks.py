"""One declaration per task: what the project, evaluation and summary need to know of it.

A task is what a head is trained and scored for: text classification, pair
classification, NER and extractive QA. Each ``Task`` says which component does it,
which annotation its corpora carry (and how to remove it, so that a doc of another
task reads as *missing*), which scores its scorer writes and which of them the
tables show, and which project commands train it. ``project.py``, ``evaluation.py``
and the CLI read ``TASKS``; the corpus formats that write each annotation are in
``corpus/converters.py`` (``CONVERTERS``).

To add a task (a new head), add its ``Task`` with ``register_task``.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

from spacy.tokens import Doc

from .extensions import ANSWERS_KEY, QUESTION, TEXT_PAIR

Metric = Tuple[str, str]  # (score key, label in a table)


@dataclass(frozen=True)
class Task:
    """What the rest of the package needs to know of one task.

    name (str): the task's name ("textcat", "pair", "ner", "qa").
    factory (str): the component that does it.
    annotation (str): the gold annotation its corpora carry; tasks that share one
        (textcat and pair both set ``doc.cats``) are merged and filtered as one kind.
    gold (str): that annotation in words, for messages.
    has_gold (Callable[[Doc], bool]): whether a gold doc holds what the scorer needs.
    carries (Callable[[Doc], bool]): whether a doc carries any of the annotation (merging).
    clear (Callable[[Doc], None]): remove the annotation in place, so the doc reads as missing.
    scorer_keys (Tuple[str, ...]): the scores the component's scorer writes (a key ending
        in "*" stands for every key with that prefix).
    summary (Tuple[Metric, ...]): the scores the workflow's summary table shows.
    evaluate (Tuple[Metric, ...]): the scores ``spacy-bert-tasks evaluate`` prints.
    steps (Tuple[str, ...]): the project.yml commands that train it.
    """

    name: str
    factory: str
    annotation: str
    gold: str
    has_gold: Callable[[Doc], bool]
    carries: Callable[[Doc], bool]
    clear: Callable[[Doc], None]
    scorer_keys: Tuple[str, ...]
    summary: Tuple[Metric, ...] = ()
    evaluate: Tuple[Metric, ...] = ()
    steps: Tuple[str, ...] = ()

    @property
    def formats(self) -> Tuple[str, ...]:
        """The corpus formats that write this task's annotation (``corpus.converters.CONVERTERS``)."""
        from .corpus.converters import CONVERTERS

        return tuple(name for name, fmt in CONVERTERS.items() if fmt.annotation == self.annotation)


def _has_cats(doc: Doc) -> bool:
    return bool(doc.cats)


def _clear_cats(doc: Doc) -> None:
    doc.cats = {}
    setattr(doc._, TEXT_PAIR, None)


def _has_ents(doc: Doc) -> bool:
    return bool(len(doc)) and doc.has_annotation("ENT_IOB")


def _clear_ents(doc: Doc) -> None:
    doc.set_ents([], default="missing")  # "missing", not "O": the NER head learns nothing from this doc


def _has_answers(doc: Doc) -> bool:
    return ANSWERS_KEY in doc.spans


def _carries_qa(doc: Doc) -> bool:
    return getattr(doc._, QUESTION) is not None or ANSWERS_KEY in doc.spans


def _clear_qa(doc: Doc) -> None:
    setattr(doc._, QUESTION, None)
    if ANSWERS_KEY in doc.spans:
        del doc.spans[ANSWERS_KEY]


TASKS: Dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task to ``TASKS`` (a new name, or a new declaration for one)."""
    TASKS[task.name] = task
    return task


register_task(Task(
    "textcat", "bert_textcat", "textcat", "categories (doc.cats)", _has_cats, _has_cats, _clear_cats,
    scorer_keys=("cats_*",),
    summary=(("cats_score", "cats"), ("cats_macro_f", "macro F"), ("cats_macro_auc", "macro AUC")),
    evaluate=(("cats_score", "TEXTCAT"), ("cats_macro_f", "TEXTCAT macro F"), ("cats_macro_auc", "TEXTCAT macro AUC")),
    steps=("train-textcat",),
))
register_task(Task(
    "pair", "bert_textcat", "textcat", "categories (doc.cats)", _has_cats, _has_cats, _clear_cats,
    scorer_keys=("cats_*", "pair_*"),  # pair_* beside another classifier (textcat_scorer.v2, configs/joint.cfg)
    summary=(("pair_score", "pair"), ("pair_macro_auc", "pair macro AUC")),
    steps=("train-pair",),
))
register_task(Task(
    "ner", "bert_ner", "ner", "entity annotation (doc.ents)", _has_ents, _has_ents, _clear_ents,
    scorer_keys=("ents_p", "ents_r", "ents_f", "ents_per_type"),
    summary=(("ents_p", "P"), ("ents_r", "R"), ("ents_f", "F")),
    evaluate=(("ents_p", "NER P"), ("ents_r", "NER R"), ("ents_f", "NER F")),
    steps=("train-ner",),
))
register_task(Task(
    "qa", "bert_qa", "qa", 'answers (doc.spans["answers"])', _has_answers, _carries_qa, _clear_qa,
    scorer_keys=("qa_exact", "qa_f1", "qa_has_ans_f1", "qa_no_ans_f1"),
    summary=(("qa_exact", "EM"), ("qa_f1", "F1")),
    evaluate=(("qa_exact", "QA EM"), ("qa_f1", "QA F1"), ("qa_has_ans_f1", "QA has-answer F1"),
              ("qa_no_ans_f1", "QA no-answer F1")),
    steps=("train-qa",),
))


def annotation_kinds() -> Tuple[str, ...]:
    """The annotation kinds of the declared tasks, in declaration order, each once."""
    return tuple(dict.fromkeys(task.annotation for task in TASKS.values()))


def task_of_kind(kind: str) -> Task:
    """The first task declared with annotation ``kind``."""
    return next(task for task in TASKS.values() if task.annotation == kind)


def summary_metrics() -> List[Metric]:
    """Every task's summary metrics, in declaration order."""
    return [metric for task in TASKS.values() for metric in task.summary]
