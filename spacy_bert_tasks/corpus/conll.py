"""NER in column files: CoNLL-2003 (token POS chunk NER) and 2-column IOB.

One token per line, columns separated by spaces or tabs, the NER tag in the
last column, a blank line between sentences and ``-DOCSTART-`` lines between
documents. POS goes to ``token.tag_``; chunk tags are kept in
``doc.user_data[CHUNKS_KEY]`` so that :func:`docs_to_conll` writes the file back.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..tagging import BILUO, IOB1, IOB2, TagSequenceError, resolve_scheme, spans_to_tags, tags_to_spans
from .files import read_lines
from .report import ConversionError, ConversionReport

DOCSTART = "-DOCSTART-"
# doc.user_data keys (stored in the DocBin with store_user_data=True).
CHUNKS_KEY = "conll_chunks"
DOCSTART_KEY = "conll_docstart"
MISSING = "_"

_COLUMN_SEP = re.compile(r"[ \t]+")
_BILUO_ONLY = ("L-", "U-", "E-", "S-")


@dataclass
class _Sentence:
    rows: List[List[str]] = field(default_factory=list)
    lines: List[int] = field(default_factory=list)
    error: Optional[ConversionError] = None


@dataclass
class _Document:
    line: int
    sentences: List[_Sentence] = field(default_factory=list)
    has_docstart: bool = False


def split_columns(line: str) -> List[str]:
    """Split a column-file line on spaces and tabs."""
    return _COLUMN_SEP.split(line.strip(" \t"))


def convert_conll(
    path: Path,
    nlp: Language,
    *,
    n_columns: Optional[int] = None,
    scheme: str = "auto",
    doc_level: bool = False,
    skip_invalid: bool = False,
    format: str = "conll",
) -> Tuple[List[Doc], ConversionReport]:
    """Read a CoNLL or IOB column file into docs with ``doc.ents`` set.

    path (Path): the column file.
    nlp (Language): a blank pipeline; only its vocab is used (the tokens are given).
    n_columns (Optional[int]): columns every token line must have (2 for IOB);
        None takes the count of the first token line (2 to 4).
    scheme (str): tag scheme of the file: "auto", "iob2", "iob1" or "bilou".
    doc_level (bool): one doc per ``-DOCSTART-`` document, with sentence starts
        set, instead of one doc per sentence.
    skip_invalid (bool): count bad sentences (documents with doc_level) as
        skipped instead of raising.
    format (str): the format name to report.
    RETURNS (Tuple[List[Doc], ConversionReport]): the docs and what happened.
    """
    report = ConversionReport(Path(path), format, unit="documents" if doc_level else "sentences")
    documents, n_columns = _read_blocks(Path(path), n_columns)
    if scheme == "auto":
        scheme, why = _infer_scheme(Path(path), documents)
        report.notes.append(f"{n_columns} columns, {scheme.upper()} tags ({why})")
    else:
        scheme = resolve_scheme([], scheme)
        report.notes.append(f"{n_columns} columns, {scheme.upper()} tags")
    n_docstart = sum(doc.has_docstart for doc in documents)
    report.stats["documents (-DOCSTART-)"] = n_docstart
    report.stats["sentences"] = sum(len(doc.sentences) for doc in documents)
    report.stats["tokens"] = sum(len(s.rows) for doc in documents for s in doc.sentences)
    if doc_level and n_docstart == 0:
        report.notes.append("no -DOCSTART- lines: the whole file is one document")
    for document in documents:
        for sentence in document.sentences:
            if sentence.error is None:
                sentence.error = _check_tags(Path(path), sentence, scheme)
    docs: List[Doc] = []
    for document in documents:
        units = [document.sentences] if doc_level else [[s] for s in document.sentences]
        docstart = document.has_docstart  # marks the document's first doc written
        for sentences in units:
            if doc_level and not sentences:
                if document.has_docstart:
                    report.n_read += 1
                    report.skip("empty document", f"line {document.line}")
                continue
            report.n_read += 1
            errors = [s.error for s in sentences if s.error is not None]
            if errors:
                report.skip_or_raise(errors[0], skip_invalid)
                continue
            doc = _make_doc(nlp, sentences, scheme, n_columns)
            doc.user_data[DOCSTART_KEY], docstart = docstart, False
            report.labels.update(ent.label_ for ent in doc.ents)
            docs.append(doc)
    report.n_written = len(docs)
    return docs, report


def _read_blocks(path: Path, n_columns: Optional[int]) -> Tuple[List[_Document], int]:
    """Group the file's lines into documents and sentences, noting column errors."""
    documents = [_Document(line=1)]
    sentence = _Sentence()

    def close_sentence() -> None:
        nonlocal sentence
        if sentence.rows:
            documents[-1].sentences.append(sentence)
        sentence = _Sentence()

    for i, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            close_sentence()
            continue
        columns = split_columns(line)
        if columns[0] == DOCSTART:
            close_sentence()
            documents.append(_Document(line=i, has_docstart=True))
            continue
        if n_columns is None:
            n_columns = len(columns)
            if not 2 <= n_columns <= 4:
                raise ConversionError(
                    path, f"line {i}", "unsupported column layout",
                    f"found {n_columns} column(s); expected 2 (token NER) to 4 (token POS chunk NER)",
                    "write the token first and the NER tag last, separated by spaces or tabs",
                )
        if len(columns) != n_columns and sentence.error is None:
            sentence.error = ConversionError(
                path, f"line {i}", "wrong number of columns",
                f"expected {n_columns} columns, found {len(columns)} in {line.strip()!r}",
                "make every token line hold the same columns (token first, NER tag last), "
                "or pass --skip-invalid to skip such sentences",
            )
        sentence.rows.append(columns)
        sentence.lines.append(i)
    close_sentence()
    if not documents[0].sentences and len(documents) > 1:
        documents.pop(0)  # nothing before the first -DOCSTART-
    if n_columns is None:
        raise ConversionError(path, "", "no tokens", "the file holds no token lines", "check that it is a CoNLL/IOB file")
    return documents, n_columns


def _infer_scheme(path: Path, documents: Sequence[_Document]) -> Tuple[str, str]:
    """The scheme most of the file's sentences are valid in, and why it was chosen.

    A file with no L-/U-/E-/S- tag is IOB2. Otherwise each sentence is checked as
    IOB2 and as BILUO, and the scheme with fewer invalid sentences wins (BILUO on a
    tie), so one stray BIOES tag in an IOB2 file does not flip the whole file: it
    becomes that line's error.
    """
    sentences = [s for doc in documents for s in doc.sentences if s.error is None]
    tags = [[row[-1] for row in s.rows] for s in sentences]
    if not any(tag[:2] in _BILUO_ONLY for sequence in tags for tag in sequence):
        return IOB2, "no L-/U-/E-/S- tags"
    invalid = {scheme: sum(_is_invalid(sequence, scheme) for sequence in tags) for scheme in (BILUO, IOB2)}
    scheme = min(invalid, key=invalid.__getitem__)  # BILUO first: it wins a tie
    other = IOB2 if scheme == BILUO else BILUO
    why = (
        f"inferred from the whole file: {len(tags) - invalid[scheme]} of {len(tags)} sentences are valid "
        f"{scheme.upper()}, {len(tags) - invalid[other]} valid {other.upper()}"
    )
    return scheme, why


def _is_invalid(tags: Sequence[str], scheme: str) -> bool:
    try:
        tags_to_spans(tags, scheme)
    except TagSequenceError:
        return True
    return False


def _check_tags(path: Path, sentence: _Sentence, scheme: str) -> Optional[ConversionError]:
    try:
        tags_to_spans([row[-1] for row in sentence.rows], scheme)
    except TagSequenceError as err:
        hint = "correct the tag, or pass --skip-invalid to skip such sentences"
        if scheme == IOB2 and err.tag.startswith("I-"):
            hint = "if the file is IOB1 (where I- may start an entity), pass --scheme iob1; otherwise " + hint
        elif scheme in (IOB2, IOB1) and err.tag[:2] in _BILUO_ONLY:
            hint = f"the rest of the file reads as {scheme.upper()}, where {err.tag} is not a tag: " + hint
        return ConversionError(path, f"line {sentence.lines[err.index]}", "invalid tag sequence", str(err), hint)
    return None


def _make_doc(nlp: Language, sentences: Sequence[_Sentence], scheme: str, n_columns: int) -> Doc:
    rows = [row for sentence in sentences for row in sentence.rows]
    words = [row[0] for row in rows]
    spaces = [True] * len(words)
    spaces[-1] = False
    sent_starts = [i == 0 for sentence in sentences for i in range(len(sentence.rows))]
    doc = Doc(
        nlp.vocab,
        words=words,
        spaces=spaces,
        tags=[row[1] for row in rows] if n_columns >= 3 else None,
        sent_starts=sent_starts,
    )
    ents = []
    offset = 0
    for sentence in sentences:
        for start, end, label in tags_to_spans([row[-1] for row in sentence.rows], scheme):
            ents.append(Span(doc, offset + start, offset + end, label=label))
        offset += len(sentence.rows)
    doc.ents = ents
    if n_columns == 4:
        doc.user_data[CHUNKS_KEY] = [row[2] for row in rows]
    return doc


def docs_to_conll(docs: Iterable[Doc], *, n_columns: Optional[int] = None, scheme: str = IOB2) -> str:
    """Write docs back as a column file: the inverse of :func:`convert_conll`.

    docs (Iterable[Doc]): sentence docs, or document docs with sentence starts set.
    n_columns (Optional[int]): 2 (token NER), 3 (token POS NER) or 4 (token POS
        chunk NER); None: 4 when the docs hold chunk tags, 3 when they hold
        POS tags, else 2. Missing values are written as ``_``.
    scheme (str): tag scheme to write: "iob2", "iob1" or "bilou".
    RETURNS (str): the file's text; a blank line ends every sentence.
    """
    lines: List[str] = []
    for doc in docs:
        n = n_columns or (4 if CHUNKS_KEY in doc.user_data else 3 if doc.has_annotation("TAG") else 2)
        if doc.user_data.get(DOCSTART_KEY):
            lines.extend([" ".join([DOCSTART] + ["-X-"] * (n - 2) + ["O"]), ""])
        chunks = doc.user_data.get(CHUNKS_KEY) or [MISSING] * len(doc)
        sents = list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]
        for sent in sents:
            spans = []
            for ent in doc.ents:
                if ent.start < sent.end and ent.end > sent.start:
                    if ent.start < sent.start or ent.end > sent.end:
                        raise ValueError(f"Entity '{ent.text}' ({ent.label_}) crosses a sentence boundary")
                    spans.append((ent.start - sent.start, ent.end - sent.start, ent.label_))
            tags = spans_to_tags(len(sent), spans, scheme)
            for token, tag in zip(sent, tags):
                columns = [token.text]
                if n >= 3:
                    columns.append(token.tag_ or MISSING)
                if n == 4:
                    columns.append(chunks[token.i])
                columns.append(tag)
                lines.append(" ".join(columns))
            lines.append("")
    return "".join(line + "\n" for line in lines)

