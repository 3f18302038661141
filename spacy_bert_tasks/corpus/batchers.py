"""Training batches for multi-task pipelines: each batch holds the docs of one task.

When one update sums the losses of every task (a mixed batch), the heads pull the
shared encoder's step in different directions, and the heads with the strongest
gradient win it: on CoNLL-2003 + SST-2 + MRPC + SQuAD, NER lost 25 points of F1
against bert_ner alone (bench/joint_parity.py). Taking each update on one task's
docs, as MT-DNN does, gives every task whole steps of its own; the joint heads then
come within 1.5 points of the single-task ones on the same docs (one seed).
"""
import random
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from spacy import registry
from spacy.training import Example
from spacy.training.batchers import Sizing, minibatch_by_padded_size

from ..project import doc_tasks

TaskKey = Tuple[str, ...]


def task_key(example: Example) -> TaskKey:
    """The task a training example is annotated for.

    The annotation kinds its reference doc carries, and for text classification its
    labels too, so that two classifiers on one pipeline (sentiment and paraphrase
    pairs, both ``doc.cats``) are two tasks. A doc with no annotation is its own group.
    """
    doc = example.reference
    kinds = doc_tasks(doc)
    key: List[str] = list(kinds) or ["unannotated"]
    if doc.cats:
        key.extend(sorted(doc.cats))
    return tuple(key)


@registry.batchers("spacy_bert_tasks.batch_by_task.v1")
def configure_batch_by_task(
    size: Sizing,
    buffer: int = 1024,
    discard_oversize: bool = False,
    get_length: Optional[Callable[[Example], int]] = None,
) -> Callable[[Iterable[Example]], Iterator[List[Example]]]:
    """Batches by padded size, as ``spacy.batch_by_padded.v1``, but each of one task only.

    size (int or Sequence[int]): the largest batch, in padded words (longest doc x docs).
    buffer (int): examples read ahead. They are grouped by task (``task_key``), each
        group is batched by padded size, and the batches are shuffled together, so the
        tasks come in random order, each about as often as its share of the words.
    discard_oversize (bool): drop docs longer than ``size`` (else each is a batch of its own).
    get_length (Callable[[Example], int]): a doc's length; default ``len(example)``.
    RETURNS (Callable): the batcher.
    """
    if buffer < 1:
        raise ValueError(f"batch_by_task's buffer must be at least 1 example, got {buffer}.")

    def batch_by_task(examples: Iterable[Example]) -> Iterator[List[Example]]:
        groups: Dict[TaskKey, List[Example]] = {}
        seen = 0
        for example in examples:
            groups.setdefault(task_key(example), []).append(example)
            seen += 1
            if seen == buffer:
                yield from _shuffled_batches(groups, size, discard_oversize, get_length)
                groups, seen = {}, 0
        if seen:
            yield from _shuffled_batches(groups, size, discard_oversize, get_length)

    return batch_by_task


def _shuffled_batches(groups: Dict[TaskKey, List[Example]], size: Sizing, discard_oversize: bool,
                      get_length: Optional[Callable]) -> List[List[Example]]:
    """Each group batched by padded size (one buffer: the whole group), the batches in random order."""
    batches = [
        batch
        for group in groups.values()
        for batch in minibatch_by_padded_size(
            group, size, buffer=len(group), discard_oversize=discard_oversize, get_length=get_length or len
        )
    ]
    random.shuffle(batches)  # spaCy's training loop seeds `random` (fix_random_seed)
    return batches
