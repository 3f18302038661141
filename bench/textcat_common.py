"""What the text classification benchmarks share: GLUE TSVs, subsamples, encoders.

Not part of the package; imported by ``bench/textcat_parity.py`` and ``bench/textcat_speed.py``.
"""
import csv
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

from common import encoder_from_lines, subsample  # noqa: F401  (subsample: the benches import it from here)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
POSITIVE = "1"  # GLUE's label for a positive review (SST-2) and a paraphrase (MRPC)


class Item(NamedTuple):
    text: str
    pair: Optional[str]
    label: str


def read_glue(task: str, split: str, data_dir: Path = DATA) -> List[Item]:
    """SST-2 or MRPC from GLUE's TSVs, read in place.

    The TSVs hold bare quotes (read with ``csv.QUOTE_NONE``); MRPC starts with
    a UTF-8 BOM; both have a header line.
    """
    path = Path(data_dir) / task / f"{split}.tsv"
    with path.open(encoding="utf-8-sig", newline="") as file_:
        rows = list(csv.reader(file_, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], rows[1:]
    if task == "sst2":
        if header[:2] != ["sentence", "label"]:
            raise ValueError(f"{path}: expected the header 'sentence<TAB>label', got {header}")
        return [Item(row[0].strip(), None, row[1]) for row in rows]
    if task == "mrpc":
        if header[0] != "Quality" or len(header) != 5:
            raise ValueError(f"{path}: expected MRPC's header 'Quality, #1 ID, #2 ID, #1 String, #2 String', got {header}")
        return [Item(row[3].strip(), row[4].strip(), row[0]) for row in rows]
    raise ValueError(f"Unknown task {task!r}: use sst2 or mrpc.")


def classification_example(nlp, item: Item, names: Dict[str, str]):
    """A training Example for ``bert_textcat``: the text (and its pair), ``cats`` one-hot over
    ``names`` (GLUE label -> the name the component uses)."""
    from spacy.training import Example

    doc = nlp.make_doc(item.text)
    doc._.text_pair = item.pair
    eg = Example.from_dict(doc, {"cats": {name: float(label == item.label) for label, name in names.items()}})
    eg.reference._.text_pair = item.pair
    return eg


def make_encoder(items: List[Item], workdir: Path, name: str, size: str, vocab_size: int = 8000) -> Path:
    """An encoder made by ``spacy-bert-tasks init-encoder`` on the items' texts (random weights)."""
    lines = [item.text for item in items] + [item.pair for item in items if item.pair]
    return encoder_from_lines(lines, Path(workdir) / f"{name}-train-text.txt", Path(workdir) / f"encoder-{name}-{size}",
                              size, vocab_size)


def accuracy_and_f1(gold: List[str], predicted: List[str], positive: str = POSITIVE) -> tuple:
    """Accuracy and the positive class's F1, both in percent."""
    tp = sum(g == p == positive for g, p in zip(gold, predicted))
    fp = sum(p == positive != g for g, p in zip(gold, predicted))
    fn = sum(g == positive != p for g, p in zip(gold, predicted))
    accuracy = 100.0 * sum(g == p for g, p in zip(gold, predicted)) / max(len(gold), 1)
    f1 = 100.0 * 2 * tp / max(2 * tp + fp + fn, 1)
    return accuracy, f1
