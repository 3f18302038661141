"""Text classification: CSV/TSV tables and JSONL, single texts or sentence pairs.

Every doc gets every label of the file's label set in ``doc.cats`` (1.0 or
0.0), so a negative is never mistaken for a missing label. A file is
multi-label when a text carries several labels (in a label list, a ``cats``
dict, or joined by a separator); the report says which. The second
text of a pair goes to ``doc._.text_pair``.

Tables: columns are found by header names (GLUE's SST-2, MRPC and RTE
headers included) or, without a header, by position: ``text label``,
``text text_pair label``, or the label first. GLUE TSVs hold bare ``"``, so
TSVs are read without quoting; CSVs use standard quoting.
"""
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from ..extensions import TEXT_PAIR
from .files import iter_jsonl, read_text
from .report import ConversionError, ConversionReport

TEXT_NAMES = ("text", "sentence", "sentence1", "#1 string", "text_a", "premise", "question1", "review", "content")
PAIR_NAMES = ("text_pair", "sentence2", "#2 string", "text_b", "hypothesis", "question2")
LABEL_NAMES = ("label", "labels", "quality", "gold_label", "category", "categories", "class", "sentiment", "cats")
OTHER_NAMES = ("index", "id", "idx", "#1 id", "#2 id", "guid")
LABEL_SEPARATORS = ("|", ";", ",")
FILLED = "cats values absent from a line, set to 0.0"


@dataclass
class _Record:
    line: int
    text: str
    pair: Optional[str] = None
    positives: Set[str] = field(default_factory=set)
    cats: Optional[Dict[str, float]] = None


def convert_textcat_table(
    path: Path,
    nlp: Language,
    *,
    delimiter: str = "\t",
    label_sep: Optional[str] = None,
    skip_invalid: bool = False,
) -> Tuple[List[Doc], ConversionReport]:
    """Read a CSV or TSV of (text, label) or (text, text_pair, label) rows into docs with ``doc.cats``.

    path (Path): the table.
    nlp (Language): a blank pipeline that tokenises the texts.
    delimiter (str): "\\t" (read without quoting, as GLUE needs) or ",".
    label_sep (Optional[str]): separator of several labels in one cell; None
        detects "|", ";" or ","; "" never splits.
    skip_invalid (bool): count bad rows as skipped instead of raising.
    RETURNS (Tuple[List[Doc], ConversionReport]): the docs and what happened.
    """
    path = Path(path)
    report = ConversionReport(path, "tsv" if delimiter == "\t" else "csv")
    rows = _read_rows(path, delimiter)
    if not rows:
        raise ConversionError(path, "", "no rows", "the file holds no data", "check the path")
    header, roles = _find_columns(path, rows)
    if header:
        report.notes.append(f"header: {' | '.join(rows[0][1])}")
        rows = rows[1:]
    n_columns = len(header) if header else len(rows[0][1])
    text_i, pair_i, label_i = roles
    report.notes.append(
        f"columns: text={text_i + 1}" + (f", text_pair={pair_i + 1}" if pair_i is not None else "") + f", label={label_i + 1}"
    )
    if label_sep is None:
        cells = [row[label_i] for _, row in rows if len(row) == n_columns]
        label_sep = next((sep for sep in LABEL_SEPARATORS if any(sep in cell for cell in cells)), "")
    multilabel = bool(label_sep)
    records = []
    for line, row in rows:
        report.n_read += 1
        try:
            if len(row) != n_columns:
                raise ConversionError(
                    path, f"line {line}", "wrong number of columns", f"expected {n_columns}, found {len(row)}",
                    "give every row the header's columns (a stray tab or delimiter is common), "
                    "or pass --skip-invalid to skip such rows",
                )
            raw_label = row[label_i].strip()
            if multilabel:
                positives = {label.strip() for label in raw_label.split(label_sep) if label.strip()}
            elif raw_label:
                positives = {raw_label}
            else:
                raise ConversionError(path, f"line {line}", "empty label", "the label cell is empty", "fill it in, or pass --skip-invalid")
            pair = row[pair_i] if pair_i is not None else None
            records.append(_make_record(path, line, row[text_i], pair, positives))
        except ConversionError as err:
            report.skip_or_raise(err, skip_invalid)
    if multilabel:
        report.notes.append(f"labels separated by {label_sep!r}")
    return _make_docs(nlp, records, multilabel, report)


def convert_textcat_jsonl(
    path: Path, nlp: Language, *, label_sep: Optional[str] = None, skip_invalid: bool = False
) -> Tuple[List[Doc], ConversionReport]:
    """Read JSONL lines ``{"text", "label" | "labels" | "cats", "text_pair"?}`` into docs with ``doc.cats``.

    path (Path): the JSONL file.
    nlp (Language): a blank pipeline that tokenises the texts.
    label_sep (Optional[str]): split string labels on this separator (multi-label);
        None or "" keeps each string label whole. The file is multi-label when a text
        has several positive labels (a list or a ``cats`` dict); in a single-label file
        a text with none (``"labels": []``) is an error.
    skip_invalid (bool): count bad lines as skipped instead of raising.
    RETURNS (Tuple[List[Doc], ConversionReport]): the docs and what happened.
    """
    path = Path(path)
    report = ConversionReport(path, "textcat-jsonl")
    records = []
    multilabel = bool(label_sep)
    for line, obj in iter_jsonl(path, report, skip_invalid):
        try:
            record = _make_record(path, line, obj.get("text"), obj.get("text_pair"), set())
            if "cats" in obj:
                record.cats = _read_cats(path, line, obj["cats"])
                record.positives = {label for label, value in record.cats.items() if value >= 0.5}
            else:
                label = obj.get("label", obj.get("labels"))
                if isinstance(label, int) and not isinstance(label, bool):
                    label = str(label)
                if isinstance(label, str) and label.strip():
                    record.positives = {x.strip() for x in label.split(label_sep) if x.strip()} if label_sep else {label.strip()}
                elif isinstance(label, list) and all(isinstance(x, str) for x in label):
                    record.positives = {x.strip() for x in label if x.strip()}
                else:
                    raise ConversionError(
                        path, f"line {line}", "no label", f"\"label\" is {label!r}",
                        "give a \"label\" string, a \"labels\" list or a \"cats\" dict, or pass --skip-invalid",
                    )
            records.append(record)
        except ConversionError as err:
            report.skip_or_raise(err, skip_invalid)
    # Several labels on one text make the file multi-label; a text with none does not.
    multilabel = multilabel or any(len(r.positives) > 1 for r in records)
    if not multilabel:
        records = _drop_unlabelled(path, records, report, skip_invalid)
    return _make_docs(nlp, records, multilabel, report)


def _drop_unlabelled(path: Path, records: List[_Record], report: ConversionReport, skip_invalid: bool) -> List[_Record]:
    """In a single-label file, a text with no positive label is an error (or a counted skip).

    An empty ``"labels": []`` (or ``cats`` all 0) is normal in multi-label data, but
    taking it as a sign of multi-label data would silently change how the whole file
    is trained; in a file where every other text has one label it is a missing label.
    """
    kept = []
    for record in records:
        if record.positives:
            kept.append(record)
            continue
        report.skip_or_raise(ConversionError(
            path, f"line {record.line}", "no label",
            "the text has no positive label, but no text in the file has more than one, so the file is "
            "single-label (exclusive classes)",
            "give the text its label; for multi-label data, give a text with several labels or pass "
            "--label-sep; or pass --skip-invalid",
        ), skip_invalid)
    return kept


def _read_rows(path: Path, delimiter: str) -> List[Tuple[int, List[str]]]:
    """Non-blank rows with the number of the line each ends on."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    rows = []
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter, quoting=quoting)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as err:
        raise ConversionError(path, f"line {reader.line_num}", "malformed CSV", str(err), "check the quoting on that line") from None
    return rows


def _find_columns(path: Path, rows: Sequence[Tuple[int, List[str]]]) -> Tuple[List[str], Tuple[int, Optional[int], int]]:
    """Return the header (or []) and the indices of the text, pair and label columns."""
    first = [cell.strip().lower() for cell in rows[0][1]]
    known = TEXT_NAMES + PAIR_NAMES + LABEL_NAMES + OTHER_NAMES
    if any(name in known for name in first):
        text_i = _index_of(first, TEXT_NAMES)
        label_i = _index_of(first, LABEL_NAMES)
        if text_i is None or label_i is None:
            raise ConversionError(
                path, f"line {rows[0][0]}", "unknown columns", f"the header {rows[0][1]} names no text or no label column",
                "name the columns 'text' and 'label' (and 'text_pair' for sentence pairs)",
            )
        return rows[0][1], (text_i, _index_of(first, PAIR_NAMES), label_i)
    n_columns = len(rows[0][1])
    if n_columns not in (2, 3):
        raise ConversionError(
            path, f"line {rows[0][0]}", "unknown columns", f"{n_columns} columns and no header to name them",
            "add a header row naming the columns 'text', 'label' and, for pairs, 'text_pair'",
        )
    # Without a header: the label is the first or last column, whichever has fewer distinct values.
    columns = [{row[i] for _, row in rows if len(row) == n_columns} for i in (0, n_columns - 1)]
    if len(columns[0]) < len(columns[1]):
        return [], (1, 2 if n_columns == 3 else None, 0)
    return [], (0, 1 if n_columns == 3 else None, n_columns - 1)


def _index_of(names: List[str], wanted: Sequence[str]) -> Optional[int]:
    for name in wanted:
        if name in names:
            return names.index(name)
    return None


def _make_record(path: Path, line: int, text: object, pair: object, positives: Set[str]) -> _Record:
    if not isinstance(text, str) or not text.strip():
        raise ConversionError(path, f"line {line}", "empty text", f"the text is {text!r}", "give a non-empty text, or pass --skip-invalid")
    if pair is not None and (not isinstance(pair, str) or not pair.strip()):
        raise ConversionError(
            path, f"line {line}", "empty second text", f"the second text of the pair is {pair!r}",
            "give both texts of the pair, or pass --skip-invalid",
        )
    return _Record(line, text.strip(), pair.strip() if pair is not None else None, positives)


def _read_cats(path: Path, line: int, cats: object) -> Dict[str, float]:
    if isinstance(cats, dict) and all(
        isinstance(v, (int, float)) and 0 <= v <= 1 for v in cats.values()
    ):
        return {str(label): float(value) for label, value in cats.items()}
    raise ConversionError(
        path, f"line {line}", "malformed cats", f"{cats!r}",
        "write \"cats\" as a dict of label -> 0/1 (or a score in [0, 1]), or pass --skip-invalid",
    )


def _make_docs(
    nlp: Language, records: List[_Record], multilabel: bool, report: ConversionReport
) -> Tuple[List[Doc], ConversionReport]:
    labels = sorted({label for r in records for label in r.positives} | {label for r in records if r.cats for label in r.cats})
    docs = []
    n_filled = 0
    for record in records:
        doc = nlp.make_doc(record.text)
        cats = {label: float(label in record.positives) for label in labels}
        if record.cats is not None:
            n_filled += len(labels) - len(record.cats)
            cats.update(record.cats)
        doc.cats = cats
        if record.pair is not None:
            setattr(doc._, TEXT_PAIR, record.pair)
        report.labels.update(record.positives)
        docs.append(doc)
    if any(r.pair is not None for r in records):
        report.unit = "pairs"
    else:
        report.unit = "texts"
    report.n_written = len(docs)
    report.stats["labels"] = len(labels)
    if n_filled:
        report.stats[FILLED] = n_filled
    if multilabel:
        report.notes.append(
            f"multi-label: a text may have any number of the {len(labels)} labels "
            "(not exclusive; train with exclusive_classes = false)"
        )
    else:
        report.notes.append(f"single-label: each text has exactly one of the {len(labels)} labels (exclusive)")
    report.multilabel = multilabel
    return docs, report
