"""The corpus formats ``convert`` reads: one table, as spaCy's ``cli/convert.py`` keeps ``CONVERTERS``.

To add a format, write its converter (``path, nlp, options -> (docs, report)``)
and add an entry here: ``convert_file`` dispatches on the table, format detection
and ``--format`` name its keys, and the task that reads the format's corpora
(``tasks.py``) is the entry's ``annotation``.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from .conll import convert_conll
from .entities import convert_entities_jsonl
from .report import ConversionReport
from .squad import convert_squad
from .textcat import convert_textcat_jsonl, convert_textcat_table


@dataclass(frozen=True)
class ConvertOptions:
    """The options of ``convert`` that some converters read.

    scheme (str): NER tag scheme of column files: "auto", "iob2", "iob1", "bilou".
    doc_level (bool): column files: one doc per -DOCSTART- document instead of per sentence.
    label_sep (Optional[str]): text classification: separator of several labels in one cell.
    skip_invalid (bool): count bad examples as skipped instead of raising ConversionError.
    """

    scheme: str = "auto"
    doc_level: bool = False
    label_sep: Optional[str] = None
    skip_invalid: bool = False


Converter = Callable[[Path, Language, ConvertOptions], Tuple[List[Doc], ConversionReport]]


@dataclass(frozen=True)
class Format:
    """One corpus format: its converter, the annotation it writes, and a line for the help."""

    convert: Converter
    annotation: str
    description: str


def _columns(n_columns: Optional[int], name: str) -> Converter:
    def convert(path: Path, nlp: Language, opts: ConvertOptions) -> Tuple[List[Doc], ConversionReport]:
        return convert_conll(path, nlp, n_columns=n_columns, scheme=opts.scheme, doc_level=opts.doc_level,
                             skip_invalid=opts.skip_invalid, format=name)

    return convert


def _table(delimiter: str) -> Converter:
    def convert(path: Path, nlp: Language, opts: ConvertOptions) -> Tuple[List[Doc], ConversionReport]:
        return convert_textcat_table(path, nlp, delimiter=delimiter, label_sep=opts.label_sep, skip_invalid=opts.skip_invalid)

    return convert


def _entities_jsonl(path: Path, nlp: Language, opts: ConvertOptions) -> Tuple[List[Doc], ConversionReport]:
    return convert_entities_jsonl(path, nlp, skip_invalid=opts.skip_invalid)


def _textcat_jsonl(path: Path, nlp: Language, opts: ConvertOptions) -> Tuple[List[Doc], ConversionReport]:
    return convert_textcat_jsonl(path, nlp, label_sep=opts.label_sep, skip_invalid=opts.skip_invalid)


def _squad(path: Path, nlp: Language, opts: ConvertOptions) -> Tuple[List[Doc], ConversionReport]:
    return convert_squad(path, nlp, skip_invalid=opts.skip_invalid)


CONVERTERS: Dict[str, Format] = {
    "conll": Format(_columns(None, "conll"), "ner", "CoNLL-2003 columns, NER tags last"),
    "iob": Format(_columns(2, "iob"), "ner", "two columns: token and NER tag"),
    "ner-jsonl": Format(_entities_jsonl, "ner", "JSONL with character-offset entities"),
    "csv": Format(_table(","), "textcat", "text classification table (single texts or pairs)"),
    "tsv": Format(_table("\t"), "textcat", "tab-separated table, GLUE TSVs included"),
    "textcat-jsonl": Format(_textcat_jsonl, "textcat", "JSONL with a label, labels or cats"),
    "squad": Format(_squad, "qa", "SQuAD 1.1/2.0 JSON"),
}

FORMATS = tuple(CONVERTERS)


def formats_help() -> str:
    """The formats, for ``--format``'s help: "conll, iob, ... or squad"."""
    return ", ".join(FORMATS[:-1]) + f" or {FORMATS[-1]}"


def formats_epilog() -> str:
    """Each format with what it holds, for the end of ``convert --help``."""
    return "Formats: " + "; ".join(f"{name}: {fmt.description} ({fmt.annotation})" for name, fmt in CONVERTERS.items()) + "."
