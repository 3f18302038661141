"""Registered corpus readers for ``spacy train`` and ``spacy evaluate``.

spaCy's ``Corpus`` builds each Example's predicted doc from the reference
text alone; these readers copy the encoder's other inputs (``doc._.question``,
``doc._.text_pair``) across so they are there in training and evaluation.
"""
import random
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Union

from spacy import util
from spacy.language import Language
from spacy.training import Corpus, Example

from ..extensions import copy_inputs

PathsArg = Union[str, Path, Sequence[Union[str, Path]]]
_NO_PATH = (
    "{name} has no path: the config's [paths] are still null. Set them, e.g. "
    "`spacy train config.cfg --paths.train train.spacy --paths.dev dev.spacy`."
)


@util.registry.readers("spacy_bert_tasks.Corpus.v1")
def create_corpus_reader(
    path: Optional[Path], limit: int = 0, max_length: int = 0, shuffle: bool = False, gold_preproc: bool = False
) -> Callable[[Language], Iterable[Example]]:
    """Read a ``.spacy`` file (or a folder of them) with the task inputs on the predicted docs.

    path (Optional[Path]): a DocBin or a folder of DocBins. Optional, as in
        ``spacy.Corpus.v1``, so that a config with ``paths.train = null`` loads and
        validates; the reader itself needs a path.
    limit (int): read at most this many docs; 0 for all.
    max_length (int): split docs longer than this into sentences (as spaCy's
        Corpus does); 0 for no limit. Keep it 0 for QA, whose answers are doc-level.
    shuffle (bool): shuffle the docs on every pass.
    gold_preproc (bool): keep the corpus's own tokens (and sentences) on the predicted
        docs, as CoNLL scores are reported, instead of re-tokenising the text (as in
        ``spacy.Corpus.v1``).
    RETURNS (Callable[[Language], Iterable[Example]]): the reader.
    """
    if path is None:
        raise ValueError(_NO_PATH.format(name="spacy_bert_tasks.Corpus.v1"))
    return TaskCorpus([path], limit=limit, max_length=max_length, shuffle=shuffle, gold_preproc=gold_preproc)


@util.registry.readers("spacy_bert_tasks.MergedCorpus.v1")
def create_merged_corpus_reader(
    paths: Optional[PathsArg], limit: int = 0, max_length: int = 0, shuffle: bool = False, gold_preproc: bool = False
) -> Callable[[Language], Iterable[Example]]:
    """Read several ``.spacy`` files as one corpus, e.g. one per task for multi-task training.

    Each doc keeps only its own task's annotations; the others stay missing.

    paths (Union[str, Path, Sequence]): a list of paths, or one string of comma-separated paths.
    limit (int): read at most this many docs from each path; 0 for all.
    max_length (int): as in spacy_bert_tasks.Corpus.v1.
    shuffle (bool): shuffle the docs of all paths together on every pass (else
        the paths are read one after another).
    gold_preproc (bool): as in spacy_bert_tasks.Corpus.v1.
    RETURNS (Callable[[Language], Iterable[Example]]): the reader.
    """
    if paths is None:
        raise ValueError(_NO_PATH.format(name="spacy_bert_tasks.MergedCorpus.v1"))
    if isinstance(paths, (str, Path)):
        paths = [p.strip() for p in str(paths).split(",") if p.strip()]
    if not paths:
        raise ValueError("spacy_bert_tasks.MergedCorpus.v1 needs at least one path; list the .spacy files to merge.")
    return TaskCorpus(list(paths), limit=limit, max_length=max_length, shuffle=shuffle, gold_preproc=gold_preproc)


class TaskCorpus:
    """spaCy ``Corpus`` readers over one or more paths that copy the task inputs onto predicted docs.

    gold_preproc: the predicted docs keep the corpus's own tokens (and sentences),
    as CoNLL scores are reported, instead of the pipeline's tokenizer's (spaCy's default).
    """

    def __init__(self, paths: List[Union[str, Path]], *, limit: int = 0, max_length: int = 0, shuffle: bool = False,
                 gold_preproc: bool = False) -> None:
        self.corpora = [Corpus(path, limit=limit, max_length=max_length, shuffle=shuffle, gold_preproc=gold_preproc)
                        for path in paths]
        self.shuffle = shuffle

    def __call__(self, nlp: Language) -> Iterator[Example]:
        if self.shuffle and len(self.corpora) > 1:
            examples = [eg for corpus in self.corpora for eg in corpus(nlp)]
            random.shuffle(examples)
        else:
            examples = (eg for corpus in self.corpora for eg in corpus(nlp))
        for eg in examples:
            copy_inputs(eg.reference, eg.predicted)
            yield eg
