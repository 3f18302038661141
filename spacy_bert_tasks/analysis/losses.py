"""A pipeline's loss on examples, measured without training.

The loss of a pipeline on a batch is the sum, over its heads, of the head's
``get_loss(examples, scores)`` on the output of its thinc ``model.predict``
(the scores ``begin_update`` gives in training, not the component's decoded
``predict``): the number ``nlp.update`` reports, but with dropout off and no
weight or optimiser state touched. The encoders and other components run as
in ``nlp.pipe``; the heads' own annotations are not set (no head reads
another's). The loss on a dataset is the mean over its batches.
"""
import random
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from spacy.language import Language
from spacy.training import Example
from spacy.util import minibatch

from .params import head_pipe_names

TOTAL = "total"


def pipeline_loss(
    nlp: Language,
    examples: Sequence[Example],
    *,
    batch_size: int = 16,
    heads: Optional[Sequence[str]] = None,
) -> Dict[str, float]:
    """Measure the loss of each head, and their sum, on examples.

    nlp (Language): the pipeline; its weights are read, never changed.
    examples (Sequence[Example]): the examples (their predicted docs are copied).
    batch_size (int): examples per batch; the loss is the mean over batches.
    heads (Optional[Sequence[str]]): the heads to measure; all trainable heads if None.
    RETURNS (Dict[str, float]): the mean batch loss per head and under ``"total"``.
    """
    heads = list(heads) if heads is not None else head_pipe_names(nlp)
    if not heads:
        raise ValueError(
            f"The pipeline has no trainable head with get_loss (pipes: {nlp.pipe_names}). "
            "Analyse a pipeline with at least one head such as bert_ner."
        )
    if not examples:
        raise ValueError("No examples to measure the loss on. Pass a non-empty corpus.")
    totals = {name: 0.0 for name in heads}
    n_batches = 0
    for batch in minibatch(list(examples), size=batch_size):
        docs = [eg.predicted.copy() for eg in batch]
        for name, proc in nlp.pipeline:
            if name in heads:
                # the model's raw output, as in training (a component's predict may decode it)
                scores = proc.model.predict(docs)
                egs = [Example(doc, eg.reference) for doc, eg in zip(docs, batch)]
                loss, _ = proc.get_loss(egs, scores)
                totals[name] += float(loss)
            elif hasattr(proc, "pipe"):
                docs = list(proc.pipe(docs, batch_size=len(docs)))
            else:
                docs = [proc(doc) for doc in docs]
        n_batches += 1
    losses = {name: total / n_batches for name, total in totals.items()}
    losses[TOTAL] = sum(losses.values())
    return losses


def read_examples(
    nlp: Language,
    path: Union[str, Path],
    *,
    split: str = "dev",
    limit: int = 0,
    seed: int = 0,
) -> List[Example]:
    """Read examples with the corpus reader of the pipeline's config.

    nlp (Language): a pipeline whose config names ``[corpora.train]`` / ``[corpora.dev]``;
        a plain ``.spacy`` reader is used if it names none.
    path (Union[str, Path]): the corpus, given to the reader as ``paths.<split>``.
    split (str): "train" or "dev": which reader of the config to use.
    limit (int): keep this many examples, drawn at random with ``seed`` (0: all).
    """
    from spacy.training import Corpus
    from spacy.util import registry

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Corpus not found: {path}. Pass a .spacy file (or what the config's reader reads).")
    config = nlp.config.copy()
    if "corpora" in config and split in config["corpora"]:
        # a loaded pipeline's config is interpolated already: set the reader's own path too
        config["paths"][split] = str(path)
        if "path" in config["corpora"][split]:
            config["corpora"][split]["path"] = str(path)
        config = config.interpolate()
        reader = registry.resolve({"reader": config["corpora"][split]})["reader"]
    else:
        reader = Corpus(path)
    examples = list(reader(nlp))
    if limit and len(examples) > limit:
        examples = random.Random(seed).sample(examples, limit)
    return examples


def sample_examples(examples: Sequence[Example], n: int, seed: int) -> List[Example]:
    """A fixed random sample of ``n`` examples (all of them, in order, if there are fewer)."""
    if n <= 0 or n >= len(examples):
        return list(examples)
    return random.Random(seed).sample(list(examples), n)


def mean_loss_over(nlp: Language, splits: Dict[str, Sequence[Example]], *, batch_size: int) -> Dict[str, float]:
    """The total loss of the pipeline on each named split."""
    return {split: pipeline_loss(nlp, egs, batch_size=batch_size)[TOTAL] for split, egs in splits.items()}

