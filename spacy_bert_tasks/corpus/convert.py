"""``convert``: one raw file in, docs and a report out, and the DocBin writer."""
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from ..tagging import SCHEMES
from .converters import CONVERTERS, FORMATS, ConvertOptions
from .detect import detect_format
from .report import ConversionError, ConversionReport

# Skipping more than this fraction of a file's examples is an error (see convert_file),
# once at least MIN_SKIPS_FOR_RATE are skipped: a few bad lines in a small file are not
# a sign of the wrong format.
MAX_SKIP_RATE = 0.5
MIN_SKIPS_FOR_RATE = 10


def convert_file(
    path: Union[str, Path],
    format: Optional[str] = None,
    *,
    lang: str = "en",
    scheme: str = "auto",
    doc_level: bool = False,
    label_sep: Optional[str] = None,
    label_names: Optional[Dict[str, str]] = None,
    skip_invalid: bool = False,
    max_skip_rate: float = MAX_SKIP_RATE,
) -> Tuple[List[Doc], ConversionReport]:
    """Convert a raw corpus file into docs.

    path (Union[str, Path]): the input file.
    format (Optional[str]): a key of CONVERTERS; None guesses it (see detect_format)
        and says so in the report's notes.
    lang (str): language of the blank pipeline that tokenises raw text.
    scheme (str): NER tag scheme of column files: "auto", "iob2", "iob1", "bilou".
    doc_level (bool): column files: one doc per -DOCSTART- document instead of per sentence.
    label_sep (Optional[str]): text classification: separator of several labels
        in one cell; None detects it in tables, "" never splits.
    label_names (Optional[Dict[str, str]]): text classification: new names for
        the file's labels, e.g. GLUE's {"0": "negative", "1": "positive"}.
    skip_invalid (bool): count bad examples as skipped instead of raising ConversionError.
    max_skip_rate (float): with ``skip_invalid``, skipping more than this fraction of
        the examples (at least ``MIN_SKIPS_FOR_RATE`` of them, or all) is an error: it
        means the wrong format or scheme more often than bad data. 1.0 accepts any.
    RETURNS (Tuple[List[Doc], ConversionReport]): the docs and what happened.
    """
    path = Path(path)
    check_input_file(path)
    note = None
    if format is None:
        format, why = detect_format(path)
        note = f"format '{format}' inferred from {why}"
    elif format not in FORMATS:
        raise ConversionError(path, "", "unknown format", repr(format), f"choose one of: {', '.join(FORMATS)}")
    if scheme != "auto" and scheme not in SCHEMES:
        raise ConversionError(path, "", "unknown tag scheme", repr(scheme), f"choose one of: auto, {', '.join(SCHEMES)}")
    options = ConvertOptions(scheme=scheme, doc_level=doc_level, label_sep=label_sep, skip_invalid=skip_invalid)
    docs, report = CONVERTERS[format].convert(path, blank_pipeline(lang), options)
    if label_names:
        rename_labels(docs, label_names, report, path)
    if note:
        report.notes.insert(0, note)
    if report.n_read == 0:
        raise ConversionError(
            path, "", "no examples", f"the file holds no {report.unit} in the {format} format",
            "check that it is the file you meant, and --format",
        )
    _check_skip_rate(report, max_skip_rate)
    return docs, report


def rename_labels(docs: List[Doc], names: Dict[str, str], report: ConversionReport, path: Path) -> None:
    """Rename text classification labels in place (``doc.cats`` and the report's counts)."""
    found = set(report.labels) | {label for doc in docs for label in doc.cats}
    unknown = sorted(set(names) - found)
    if not found:
        raise ConversionError(path, "", "no labels to rename", "--label-names is for text classification files",
                              "leave --label-names out for this file")
    if unknown:
        raise ConversionError(path, "", "unknown label", f"--label-names names {unknown}, but the file's labels are "
                              f"{sorted(found)}", "name labels the file has")
    renamed = [names.get(label, label) for label in sorted(found)]
    if len(set(renamed)) < len(renamed):
        raise ConversionError(path, "", "labels merged", f"--label-names gives two labels the same name: {names}",
                              "give each label its own name")
    for doc in docs:
        doc.cats = {names.get(label, label): value for label, value in doc.cats.items()}
    report.labels = type(report.labels)({names.get(label, label): n for label, n in report.labels.items()})
    report.notes.append("labels renamed: " + ", ".join(f"{old} -> {new}" for old, new in sorted(names.items())))


def check_input_file(path: Path) -> None:
    """Raise ConversionError unless ``path`` is a file with some text in it."""
    if path.is_dir():
        raise ConversionError(
            path, "", "a folder, not a file", "convert takes one file per INPUT",
            "give each file of the folder as its own INPUT OUTPUT pair",
        )
    if not path.is_file():
        raise ConversionError(path, "", "file not found", "there is no such file", "check the path")
    with path.open("rb") as file_:
        while True:
            chunk = file_.read(1 << 16)
            if not chunk:
                raise ConversionError(path, "", "empty file", "the file holds no text", "check that it is the file you meant")
            if chunk.strip():
                return


def _check_skip_rate(report: ConversionReport, max_skip_rate: float) -> None:
    n_skipped = report.n_skipped
    if n_skipped <= max_skip_rate * report.n_read or (n_skipped < MIN_SKIPS_FOR_RATE and report.n_written):
        return
    raise ConversionError(
        report.path, "", "too many examples skipped",
        f"{n_skipped} of {report.n_read} {report.unit} would be skipped ({'; '.join(report.skip_summary())}), "
        f"leaving {report.n_written}; that many means the wrong format or tag scheme more often than bad data",
        "check --format and --scheme, or pass --max-skip-rate 1 to write the rest anyway",
    )


@lru_cache(maxsize=4)
def blank_pipeline(lang: str) -> Language:
    """The blank pipeline that tokenises raw text, made once per language (spacy.blank is slow)."""
    return spacy.blank(lang)


def write_docbin(docs: Iterable[Doc], path: Union[str, Path]) -> Path:
    """Write docs to a ``.spacy`` DocBin, keeping their extension values (user data).

    docs (Iterable[Doc]): the docs.
    path (Union[str, Path]): the output file; missing parent folders are made.
    RETURNS (Path): the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=True).to_disk(path)
    return path
