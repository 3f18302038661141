"""Reading raw files line by line, with errors that name the file and line.

Text is read as UTF-8; a leading byte-order mark (MRPC has one) is dropped.
"""
import json
from pathlib import Path
from typing import Any, Iterator, List, Tuple

from .report import ConversionError, ConversionReport

ENCODING = "utf-8-sig"


def read_text(path: Path) -> str:
    """Return the file's text; bytes that are not UTF-8 raise an error naming their position."""
    try:
        return path.read_text(encoding=ENCODING)
    except UnicodeDecodeError as err:
        raise ConversionError(
            path, f"byte {err.start}", "not UTF-8 text", str(err.reason), "re-encode the file as UTF-8"
        ) from None


def read_lines(path: Path) -> List[str]:
    """Return the file's lines without their line endings."""
    return read_text(path).splitlines()


def read_json(path: Path) -> Any:
    """Parse a whole JSON file; a syntax error names its line, column and character position."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConversionError(
            path,
            f"line {err.lineno}, column {err.colno} (character {err.pos})",
            "malformed JSON",
            err.msg,
            "repair the JSON there (a missing comma or quote is common)",
        ) from None


def iter_jsonl(path: Path, report: ConversionReport, skip_invalid: bool) -> Iterator[Tuple[int, Any]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file.

    Each line counts as one example read; a line that is not JSON raises, or
    is counted as skipped under ``skip_invalid``.
    """
    for i, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        report.n_read += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            report.skip_or_raise(
                ConversionError(
                    path, f"line {i}", "malformed JSON", f"{err.msg} at column {err.colno}",
                    "repair that line (each line must be one JSON object), or pass --skip-invalid to skip it",
                ),
                skip_invalid,
            )
            continue
        if not isinstance(obj, dict):
            report.skip_or_raise(
                ConversionError(
                    path, f"line {i}", "not a JSON object", f"found {type(obj).__name__}",
                    "write one object per line, such as {\"text\": ..., \"label\": ...}",
                ),
                skip_invalid,
            )
            continue
        yield i, obj
