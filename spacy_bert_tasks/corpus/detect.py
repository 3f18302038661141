"""Which format a raw file is in, from its extension and its first lines."""
import json
import re
from pathlib import Path
from typing import List, Tuple

from .conll import DOCSTART, split_columns
from .entities import ENTITY_KEYS
from .files import ENCODING
from .report import ConversionError

FORMATS = ("conll", "iob", "ner-jsonl", "csv", "tsv", "textcat-jsonl", "squad")
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
    if start.startswith("{"):
        if _SQUAD_START.match(start) and '"paragraphs"' in head:
            return "squad", "JSON with SQuAD's \"data\" and \"paragraphs\" keys"
        return _detect_jsonl(path, head)
    if suffix in (".csv", ".tsv"):
        return suffix[1:], f"the {suffix} extension"
    # The head may end mid-line: drop its last line unless it is the only one.
    lines = [line for line in head.splitlines()[:-1] or head.splitlines() if line.strip()][:50]
    if lines and _is_column_file(lines):
        n_columns = next((len(split_columns(line)) for line in lines if not line.startswith(DOCSTART)), 4)
        has_docstart = any(line.startswith(DOCSTART) for line in lines)
        what = f"{n_columns} columns ending in NER tags" + (" and -DOCSTART- lines" if has_docstart else "")
        return ("iob" if n_columns == 2 else "conll"), what
    if lines and all(line.count("\t") == lines[0].count("\t") > 0 for line in lines):
        return "tsv", f"{lines[0].count(chr(9)) + 1} tab-separated columns on every line"
    raise ConversionError(
        path, "", "unknown format", "could not tell the format from the extension or the first lines",
        f"pass --format with one of: {', '.join(FORMATS)}",
    )


def _detect_jsonl(path: Path, head: str) -> Tuple[str, str]:
    first = next(line for line in head.splitlines() if line.strip())
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        raise ConversionError(
            path, "line 1", "unknown format", "JSON that is neither SQuAD nor one object per line (JSONL)",
            f"pass --format with one of: {', '.join(FORMATS)}",
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
