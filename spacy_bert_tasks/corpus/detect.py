"""Which format a raw file is in, from its extension and its first lines."""
import json
import re
from pathlib import Path
from typing import List, Tuple

from .conll import DOCSTART, split_columns
from .converters import FORMATS
from .entities import ENTITY_KEYS
from .files import ENCODING
from .report import ConversionError

TEXTCAT_KEYS = ("label", "labels", "cats")

_HEAD_CHARS = 65536
_TAG = re.compile(r"^(O|[BIELSU]-\S+)$")
_SQUAD_START = re.compile(r'^\{\s*"(data|version)"\s*:')


def detect_format(path: Path) -> Tuple[str, str]:
    """Guess the format of a raw file.

    path (Path): the file.
    RETURNS (Tuple[str, str]): the format (one of FORMATS) and why it was chosen.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    with path.open(encoding=ENCODING, errors="replace") as file_:
        head = file_.read(_HEAD_CHARS)
    start = head.lstrip()
    if not start:
        raise ConversionError(path, "", "empty file", "the file holds no text", "check that it is the file you meant")
    if start.startswith("{"):
        if _SQUAD_START.match(start) and '"paragraphs"' in head:
            return "squad", "JSON with SQuAD's \"data\" and \"paragraphs\" keys"
        return _detect_jsonl(path, head)
    if suffix in (".csv", ".tsv"):
        return suffix[1:], f"the {suffix} extension"
    # The head may end mid-line: drop its last line unless it is the only one.
    numbered = [(i, line) for i, line in enumerate(head.splitlines()[:-1] or head.splitlines(), start=1) if line.strip()][:50]
    lines = [line for _, line in numbered]
    if lines and _is_column_file(lines):
        n_columns = next((len(split_columns(line)) for line in lines if not line.startswith(DOCSTART)), 4)
        has_docstart = any(line.startswith(DOCSTART) for line in lines)
        what = f"{n_columns} columns ending in NER tags" + (" and -DOCSTART- lines" if has_docstart else "")
        return ("iob" if n_columns == 2 else "conll"), what
    _explain_column_file(path, numbered)
    if lines and all(line.count("\t") == lines[0].count("\t") > 0 for line in lines):
        return "tsv", f"{lines[0].count(chr(9)) + 1} tab-separated columns on every line"
    raise ConversionError(
        path, "", "unknown format", "could not tell the format from the extension or the first lines",
        f"pass --format with one of: {', '.join(FORMATS)}",
    )


def _detect_jsonl(path: Path, head: str) -> Tuple[str, str]:
    number, first = next((i, line) for i, line in enumerate(head.splitlines(), start=1) if line.strip())
    try:
        obj = json.loads(first)
    except json.JSONDecodeError as err:
        if first.strip() == "{":  # a JSON document over several lines, not JSONL
            raise ConversionError(
                path, "", "unknown format", "JSON that is neither SQuAD (\"data\" with \"paragraphs\") nor "
                "one object per line (JSONL)", f"pass --format with one of: {', '.join(FORMATS)}",
            ) from None
        raise ConversionError(
            path, f"line {number}", "invalid JSON", f"{err.msg} at column {err.colno} (a JSONL file holds one "
            "JSON object per line)", f"fix line {number}, or pass --format if the file is not JSONL",
        ) from None
    keys = obj.keys() if isinstance(obj, dict) else []
    if any(key in keys for key in ENTITY_KEYS):
        return "ner-jsonl", "JSONL whose first object has \"entities\"/\"spans\""
    if any(key in keys for key in TEXTCAT_KEYS):
        return "textcat-jsonl", "JSONL whose first object has \"label\"/\"labels\"/\"cats\""
    raise ConversionError(
        path, "line 1", "unknown format", f"a JSON object with keys {sorted(keys)}",
        "use \"entities\" for NER or \"label\"/\"cats\" for text classification, or pass --format",
    )


def _is_column_file(lines: List[str]) -> bool:
    """Token lines of 2-4 columns that end in a tag, or -DOCSTART- lines."""
    token_lines = [split_columns(line) for line in lines if not line.startswith(DOCSTART)]
    if not token_lines:
        return any(line.startswith(DOCSTART) for line in lines)
    return all(2 <= len(cols) <= 4 and _TAG.match(cols[-1]) for cols in token_lines)


def _explain_column_file(path: Path, numbered: List[Tuple[int, str]]) -> None:
    """Name the line that keeps a file from reading as CoNLL/IOB, if most lines end in a tag.

    A file whose token lines mostly end in an NER tag is a column file with a
    fault: more than 4 columns, or a malformed tag such as a bare ``B``.
    """
    token_lines = [(i, split_columns(line)) for i, line in numbered if not line.startswith(DOCSTART)]
    tagged = [cols for _, cols in token_lines if len(cols) >= 2 and _TAG.match(cols[-1])]
    if not token_lines or len(tagged) * 2 <= len(token_lines):
        return
    for i, cols in token_lines:
        if len(cols) > 4 and _TAG.match(cols[-1]):
            raise ConversionError(
                path, f"line {i}", "unsupported column layout",
                f"{len(cols)} columns; a CoNLL/IOB file has 2 (token NER) to 4 (token POS chunk NER)",
                "keep the token first and the NER tag last and drop the other columns",
            )
        if len(cols) < 2 or not _TAG.match(cols[-1]):
            raise ConversionError(
                path, f"line {i}", "not an NER tag",
                f"the last column of {' '.join(cols)!r} is {cols[-1]!r}; the other lines read as a CoNLL/IOB "
                "file, whose tags are O or a prefix (B-, I-, L-, U-, E-, S-) and a label, e.g. B-PER",
                "correct the tag on that line",
            )
