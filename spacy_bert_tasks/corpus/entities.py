"""NER in JSONL with character offsets, one text per line.

``{"text": "...", "entities": [[start, end, label], ...]}``; the key may also be
``"spans"`` and each entity a dict ``{"start": ..., "end": ..., "label": ...}``.
Offsets are characters, end exclusive. An entity that does not fall on token
boundaries is widened to the tokens it touches, and counted.
"""
from pathlib import Path
from typing import Any, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import filter_spans

from .files import iter_jsonl
from .report import ConversionError, ConversionReport

ENTITY_KEYS = ("entities", "spans")
SNAPPED = "entities widened to token boundaries"


def convert_entities_jsonl(
    path: Path, nlp: Language, *, skip_invalid: bool = False
) -> Tuple[List[Doc], ConversionReport]:
    """Read NER JSONL (text plus character-offset entities) into docs with ``doc.ents`` set.

    path (Path): the JSONL file.
    nlp (Language): a blank pipeline that tokenises the texts.
    skip_invalid (bool): count bad lines as skipped instead of raising.
    RETURNS (Tuple[List[Doc], ConversionReport]): the docs and what happened.
    """
    path = Path(path)
    report = ConversionReport(path, "ner-jsonl", unit="texts")
    report.stats["entities"] = 0
    report.stats[SNAPPED] = 0
    docs = []
    for line, obj in iter_jsonl(path, report, skip_invalid):
        try:
            doc = _make_doc(path, line, obj, nlp, report)
        except ConversionError as err:
            report.skip_or_raise(err, skip_invalid)
            continue
        report.count("entities", len(doc.ents))
        report.labels.update(ent.label_ for ent in doc.ents)
        docs.append(doc)
    report.n_written = len(docs)
    return docs, report


def _make_doc(path: Path, line: int, obj: dict, nlp: Language, report: ConversionReport) -> Doc:
    where = f"line {line}"
    text = obj.get("text")
    if not isinstance(text, str):
        raise ConversionError(path, where, "no text", "the object has no \"text\" string", "add one, or pass --skip-invalid")
    key = next((k for k in ENTITY_KEYS if k in obj), None)
    if key is None or not isinstance(obj[key], list):
        raise ConversionError(
            path, where, "no entity list", "the object has no \"entities\" (or \"spans\") list",
            "add one; write \"entities\": [] for a text without entities",
        )
    doc = nlp.make_doc(text)
    spans = []
    n_snapped = 0
    for raw in obj[key]:
        start, end, label = _parse_entity(path, where, raw)
        if not 0 <= start < end <= len(text):
            raise ConversionError(
                path, where, "entity offsets out of range",
                f"({start}, {end}, {label!r}) in a text of {len(text)} characters",
                "use character offsets into \"text\" with start < end, or pass --skip-invalid",
            )
        span = doc.char_span(start, end, label=label, alignment_mode="expand")
        if span is None or not span.text.strip():
            raise ConversionError(
                path, where, "entity covers no token", f"({start}, {end}, {label!r}) is {text[start:end]!r}",
                "point the entity at a word, or pass --skip-invalid",
            )
        n_snapped += (span.start_char, span.end_char) != (start, end)
        spans.append(span)
    if len(filter_spans(spans)) != len(spans):
        raise ConversionError(
            path, where, "overlapping entities", "doc.ents cannot hold entities that share a token",
            "keep one entity of each overlapping group, or pass --skip-invalid",
        )
    doc.ents = spans
    report.count(SNAPPED, n_snapped)
    return doc


def _parse_entity(path: Path, where: str, raw: Any) -> Tuple[int, int, str]:
    start: Optional[Any] = None
    if isinstance(raw, (list, tuple)) and len(raw) == 3:
        start, end, label = raw
    elif isinstance(raw, dict) and {"start", "end", "label"} <= raw.keys():
        start, end, label = raw["start"], raw["end"], raw["label"]
    if start is None or not (isinstance(start, int) and isinstance(end, int) and isinstance(label, str) and label):
        raise ConversionError(
            path, where, "malformed entity", f"{raw!r}",
            "write each entity as [start, end, \"LABEL\"] or {\"start\": ..., \"end\": ..., \"label\": ...}",
        )
    return start, end, label
