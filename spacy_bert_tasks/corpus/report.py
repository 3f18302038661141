"""What a conversion did, and the error it raises on bad input.

Every converter returns its docs with a :class:`ConversionReport`: how many
examples it read, wrote and skipped, why each skip happened, and a few counts
worth checking (sentences, documents, labels). Bad input raises
:class:`ConversionError`, or becomes a counted skip under ``skip_invalid``.
"""
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

SKIP_HINT = "pass --skip-invalid to skip such examples and count them"


class ConversionError(ValueError):
    """Bad input that stops a conversion.

    path (Path): the input file.
    location (str): where in it, e.g. "line 12" or "SQuAD id 56be4db0...".
    reason (str): the kind of fault; the key it is counted under when skipped.
    detail (str): what exactly is wrong.
    hint (str): what to do next.
    """

    def __init__(self, path: Union[str, Path], location: str, reason: str, detail: str, hint: str = SKIP_HINT) -> None:
        self.path = Path(path)
        self.location = location
        self.reason = reason
        self.detail = detail
        self.hint = hint
        where = f"{self.path}, {location}" if location else str(self.path)
        message = f"{where}: {reason}: {detail}"
        if hint:
            message += f". To fix it, {hint}"
        super().__init__(message + ".")


@dataclass
class ConversionReport:
    """Counts from one conversion; the CLI prints it.

    path (Path): the input file.
    format (str): the format read.
    unit (str): what one example is ("sentences", "documents", "questions", ...).
    n_read (int): examples found in the file.
    n_written (int): docs produced.
    skipped (Counter): skip reason -> count.
    first_skip (Dict[str, str]): skip reason -> location of its first occurrence.
    stats (Dict[str, int]): other counts, in the order they were added.
    labels (Counter): label -> count (entities, categories).
    notes (List[str]): facts worth saying, such as how the format was chosen.
    multilabel (Optional[bool]): for text classification, whether a text may
        have several labels (None for other tasks).
    """

    path: Path
    format: str
    unit: str = "examples"
    n_read: int = 0
    n_written: int = 0
    skipped: Counter = field(default_factory=Counter)
    first_skip: Dict[str, str] = field(default_factory=dict)
    stats: Dict[str, int] = field(default_factory=dict)
    labels: Counter = field(default_factory=Counter)
    notes: List[str] = field(default_factory=list)
    multilabel: Optional[bool] = None

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def skip_or_raise(self, error: ConversionError, skip_invalid: bool) -> None:
        """Raise ``error``, or count it as a skip when ``skip_invalid`` is set."""
        if not skip_invalid:
            raise error
        self.skip(error.reason, error.location)

    def skip(self, reason: str, location: str = "") -> None:
        """Count one skipped example under ``reason``."""
        self.skipped[reason] += 1
        if location:
            self.first_skip.setdefault(reason, location)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the stat ``name``."""
        self.stats[name] = self.stats.get(name, 0) + n

    def skip_summary(self) -> List[str]:
        """One line per skip reason: ``"reason: count (first at location)"``."""
        lines = []
        for reason, n in self.skipped.most_common():
            first = self.first_skip.get(reason)
            lines.append(f"{reason}: {n}" + (f" (first at {first})" if first else ""))
        return lines

