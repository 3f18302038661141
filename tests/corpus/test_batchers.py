"""The multi-task batcher (spacy_bert_tasks/corpus/batchers.py): one task per batch."""
from collections import Counter

import pytest
import spacy
from spacy.tokens import Span
from spacy.training import Example
from spacy.util import fix_random_seed, registry

from spacy_bert_tasks.corpus import task_key

BATCHER = "spacy_bert_tasks.batch_by_task.v1"


def _example(nlp, kind: str, i: int) -> Example:
    words = " ".join(["word"] * (3 + i % 5))
    doc = nlp.make_doc(f"Alice saw {words} number {i}")
    if kind == "sentiment":
        doc.cats = {"positive": float(i % 2), "negative": float(1 - i % 2)}
    elif kind == "paraphrase":
        doc.cats = {"paraphrase": 1.0, "not_paraphrase": 0.0}
        doc._.text_pair = "Alice saw it"
    elif kind == "ner":
        doc.set_ents([Span(doc, 0, 1, label="PER")], default="outside")
    elif kind == "qa":
        doc._.question = "Who saw it?"
        doc.spans["answers"] = [Span(doc, 0, 1, label="answer")]
    return Example(nlp.make_doc(doc.text), doc)


@pytest.fixture
def examples():
    nlp = spacy.blank("en")
    kinds = ["sentiment", "paraphrase", "ner", "qa", "none"]
    return [_example(nlp, kinds[i % len(kinds)], i) for i in range(60)]


def _batches(examples, **config):
    batcher = registry.resolve({"b": {"@batchers": BATCHER, **config}})["b"]
    return list(batcher(examples))


def test_task_key_tells_the_two_classifiers_apart(examples):
    keys = [task_key(eg) for eg in examples[:5]]
    assert keys == [
        ("textcat", "negative", "positive"),
        ("textcat", "not_paraphrase", "paraphrase"),
        ("ner",),
        ("qa",),
        ("unannotated",),
    ]


def test_every_batch_holds_one_task_and_no_example_is_lost(examples):
    fix_random_seed(0)
    batches = _batches(examples, size=40, buffer=25)
    assert all(len({task_key(eg) for eg in batch}) == 1 for batch in batches)
    assert Counter(id(eg) for batch in batches for eg in batch) == Counter(id(eg) for eg in examples)
    for batch in batches:  # spaCy's padded size: the longest doc times the docs
        assert len(batch) == 1 or max(len(eg) for eg in batch) * len(batch) <= 40


def test_tasks_come_in_shuffled_order_and_the_seed_fixes_it(examples):
    fix_random_seed(0)
    first = [task_key(batch[0]) for batch in _batches(examples, size=40, buffer=60)]
    fix_random_seed(0)
    again = [task_key(batch[0]) for batch in _batches(examples, size=40, buffer=60)]
    assert first == again
    switches = sum(a != b for a, b in zip(first, first[1:]))
    assert switches > len(set(first)) - 1  # not one run of batches per task


def test_buffer_must_hold_an_example():
    with pytest.raises(ValueError, match="buffer must be at least 1"):
        registry.resolve({"b": {"@batchers": BATCHER, "size": 10, "buffer": 0}})


def test_the_joint_config_batches_one_task_at_a_time(examples):
    from pathlib import Path

    from spacy.util import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "joint.cfg")
    batcher = registry.resolve({"b": config["training"]["batcher"]})["b"]
    fix_random_seed(0)
    batches = list(batcher(examples))
    assert all(len({task_key(eg) for eg in batch}) == 1 for batch in batches)
    assert sum(len(batch) for batch in batches) == len(examples)
