"""What the spaCy project needs beyond spaCy's own commands.

- ``merge_corpora``: one training corpus for the multi-task pipeline. Each doc
  keeps the annotations of the one task it came from; every other task's
  annotation is removed so that it reads as *missing* (no ``doc.cats``, entity
  annotation unset, no question), never as a negative.
- ``split_squad``: SQuAD JSON split by article (the last articles are the dev
  set), so no context is shared between training and evaluation.
- ``summarize_metrics``: the table of headline metrics printed at the end of
  the workflow, read from ``spacy evaluate``'s JSON files.
"""
import json
import random
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from .scoring import headline_scores
from .tasks import annotation_kinds, summary_metrics, task_of_kind

TEXTCAT = "textcat"


def doc_tasks(doc: Doc) -> List[str]:
    """The annotation kinds (``tasks.annotation_kinds``) whose gold a doc carries, in declaration order."""
    return [kind for kind in annotation_kinds() if task_of_kind(kind).carries(doc)]


def corpus_task(docs: Sequence[Doc], path: Union[str, Path]) -> str:
    """The one task a corpus is annotated for.

    docs (Sequence[Doc]): the corpus.
    path (Path): its file, named in errors.
    RETURNS (str): its annotation kind: "textcat", "ner" or "qa".
    """
    counts = {kind: 0 for kind in annotation_kinds()}
    for doc in docs:
        for kind in doc_tasks(doc):
            counts[kind] += 1
    found = [kind for kind in counts if counts[kind]]
    if len(found) != 1:
        what = ", ".join(f"{counts[k]} docs with {k} annotation" for k in found) or "no annotation at all"
        raise ValueError(
            f"{path} holds {what}. merge-corpora expects one single-task corpus per input, "
            "as written by 'spacy-bert-tasks convert'; pass each task's corpus separately."
        )
    return found[0]


def keep_only(doc: Doc, kind: str) -> Doc:
    """Remove every annotation but ``kind``'s from ``doc``, in place, so it reads as missing.

    doc (Doc): a gold doc.
    kind (str): the task to keep: "textcat", "ner" or "qa".
    RETURNS (Doc): the same doc.
    """
    kinds = annotation_kinds()
    if kind not in kinds:
        raise ValueError(f"Unknown task '{kind}'. Choose one of: {', '.join(kinds)}.")
    for other in kinds:
        if other != kind:
            task_of_kind(other).clear(doc)
    return doc


def merge_corpora(
    inputs: Sequence[Tuple[str, Union[str, Path]]],
    output: Union[str, Path],
    *,
    labels_dir: Optional[Union[str, Path]] = None,
    max_per_task: Optional[int] = None,
    seed: int = 0,
) -> Dict[str, int]:
    """Merge single-task corpora into one shuffled multi-task corpus.

    inputs (Sequence[Tuple[str, Path]]): (component name, .spacy file) pairs,
        e.g. ("textcat", "corpus/sst2/train.spacy"). The task of each file is
        read from its annotations.
    output (Path): the merged .spacy file to write.
    labels_dir (Path): where to write ``<name>.json`` with the labels of each
        text classification input, for ``[initialize.components.<name>.labels]``.
        Two classifiers on one pipeline would otherwise both find every label.
    max_per_task (int): keep at most this many docs of each input (a seeded
        sample), to balance large and small corpora.
    seed (int): seed for sampling and shuffling.
    RETURNS (Dict[str, int]): docs kept per component name.
    """
    names = [name for name, _ in inputs]
    if len(set(names)) != len(names):
        raise ValueError(f"Component names must be unique, got {names}. Give each corpus its own name.")
    rng = random.Random(seed)
    vocab = Vocab()
    merged: List[Doc] = []
    counts: Dict[str, int] = {}
    for name, path in inputs:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Corpus not found: {path}. Run the project's 'convert' command first.")
        docs = list(DocBin().from_disk(path).get_docs(vocab))
        kind = corpus_task(docs, path)
        if max_per_task is not None and len(docs) > max_per_task:
            docs = rng.sample(docs, max_per_task)
        merged.extend(keep_only(doc, kind) for doc in docs)
        counts[name] = len(docs)
        if labels_dir is not None and kind == TEXTCAT:
            labels = sorted({label for doc in docs for label in doc.cats})
            labels_path = Path(labels_dir) / f"{name}.json"
            labels_path.parent.mkdir(parents=True, exist_ok=True)
            labels_path.write_text(json.dumps(labels), encoding="utf8")
    rng.shuffle(merged)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=merged, store_user_data=True).to_disk(output)
    return counts


def split_squad(
    path: Union[str, Path], train_output: Union[str, Path], dev_output: Union[str, Path], *, dev_articles: int
) -> Tuple[int, int]:
    """Split a SQuAD JSON file by article: the last ``dev_articles`` are the dev set.

    path (Path): SQuAD 1.1 or 2.0 JSON.
    train_output (Path): the JSON file for the first articles.
    dev_output (Path): the JSON file for the last ``dev_articles`` articles.
    dev_articles (int): how many articles, from the end, go to the dev set.
    RETURNS (Tuple[int, int]): the number of train and dev articles.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (line {err.lineno}: {err.msg}). Pass a SQuAD JSON file.") from None
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise ValueError(f"{path} has no top-level \"data\" list of articles. Pass a SQuAD 1.1 or 2.0 file.")
    if not 0 < dev_articles < len(articles):
        raise ValueError(
            f"{path} has {len(articles)} articles; cannot keep {dev_articles} of them for dev. "
            f"Choose a number of dev articles between 1 and {len(articles) - 1}."
        )
    split = len(articles) - dev_articles
    for output, part in ((train_output, articles[:split]), (dev_output, articles[split:])):
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({**data, "data": part}), encoding="utf8")
    return split, dev_articles


def summarize_metrics(paths: Iterable[Union[str, Path]]) -> List[Tuple[str, str, str, float]]:
    """Read ``spacy evaluate`` JSON files and pick their headline metrics.

    paths (Iterable[Path]): metrics files; each file's stem names its row.
    RETURNS (List[Tuple[str, str, str, float]]): (run, metric key, metric
        label, value) rows, in file order; metrics a file lacks are left out.
    """
    rows = []
    for path in paths:
        path = Path(path)
        try:
            scores = json.loads(path.read_text(encoding="utf8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}). Run 'spacy evaluate' again.") from None
        rows.extend((path.stem, key, label, value) for key, label, value in headline_scores(scores, summary_metrics()))
    return rows
