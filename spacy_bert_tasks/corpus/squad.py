"""Extractive QA: SQuAD 1.1 and 2.0 JSON, one doc per question.

The doc text is the paragraph's context and ``doc._.question`` the question.
Gold answers go to ``doc.spans["answers"]``, one span per answer in file
order, widened to token boundaries; the group's attrs hold ``"texts"`` (the
gold strings, which scoring compares against), ``"id"`` (the SQuAD id) and
``"unanswerable"`` (True, with no spans, for SQuAD 2.0's ``is_impossible``).
"""
from pathlib import Path
from typing import Dict, List, Tuple

from spacy.language import Language
from spacy.tokens import Doc, SpanGroup

from ..extensions import ANSWERS_KEY, QUESTION, UNANSWERABLE
from .files import read_json
from .report import ConversionError, ConversionReport

SNAPPED = "answers widened to token boundaries"
_SKIP = "pass --skip-invalid to skip such questions"


def convert_squad(path: Path, nlp: Language, *, skip_invalid: bool = False) -> Tuple[List[Doc], ConversionReport]:
    """Read a SQuAD JSON file into one doc per question.

    path (Path): SQuAD 1.1 or 2.0 JSON.
    nlp (Language): a blank pipeline that tokenises the contexts.
    skip_invalid (bool): count bad questions as skipped instead of raising.
    RETURNS (Tuple[List[Doc], ConversionReport]): the docs and what happened.
    """
    path = Path(path)
    report = ConversionReport(path, "squad", unit="questions")
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ConversionError(path, "", "not SQuAD JSON", "no top-level \"data\" list", "pass a SQuAD 1.1/2.0 file")
    if "version" in data:
        report.notes.append(f"SQuAD version {data['version']}")
    for name in ("articles", "paragraphs", "answers", "unanswerable", SNAPPED):
        report.stats[name] = 0
    docs = []
    seen_ids: Dict[str, str] = {}  # SQuAD id -> where it first occurs
    for i, article in enumerate(data["data"]):
        report.count("articles")
        for j, paragraph in enumerate(_get_list(path, article, "paragraphs", f"article {i}")):
            where = f"article {i}, paragraph {j}"
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                raise ConversionError(path, where, "no context", "the paragraph has no \"context\" string", "add it")
            report.count("paragraphs")
            context_doc = nlp.make_doc(context)
            for k, qa in enumerate(_get_list(path, paragraph, "qas", where)):
                report.n_read += 1
                try:
                    _check_id(path, f"{where}, question {k}", qa, seen_ids)
                    doc = _make_doc(path, f"{where}, question {k}", context_doc, qa, report)
                except ConversionError as err:
                    report.skip_or_raise(err, skip_invalid)
                    continue
                docs.append(doc)
    report.n_written = len(docs)
    return docs, report


def _get_list(path: Path, obj: object, key: str, where: str) -> list:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, list):
        raise ConversionError(path, where, "not SQuAD JSON", f"no \"{key}\" list", "pass a SQuAD 1.1/2.0 file")
    return value


def _check_id(path: Path, where: str, qa: object, seen_ids: Dict[str, str]) -> None:
    """The question's id is a string that no earlier question has (scores are kept per id)."""
    if not isinstance(qa, dict) or not isinstance(qa.get("id"), str):
        raise ConversionError(path, where, "no SQuAD id", "the question has no \"id\" string", "give every question an id")
    first = seen_ids.setdefault(qa["id"], where)
    if first != where:
        raise ConversionError(
            path, f"SQuAD id {qa['id']} ({where})", "duplicate question id", f"the id was first used at {first}",
            f"give every question its own id, or {_SKIP}",
        )


def _make_doc(path: Path, where: str, context_doc: Doc, qa: dict, report: ConversionReport) -> Doc:
    where = f"SQuAD id {qa['id']}"
    if not context_doc.text.strip():
        raise ConversionError(
            path, where, "empty context", "the paragraph's \"context\" is empty, so there is nothing to read "
            "the question against (an unanswerable question needs a context too)",
            f"give the paragraph its text, or {_SKIP}",
        )
    question = qa.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ConversionError(path, where, "no question", f"\"question\" is {question!r}", f"fill it in, or {_SKIP}")
    answers = qa.get("answers", [])
    unanswerable = bool(qa.get("is_impossible", False))
    if not isinstance(answers, list):
        raise ConversionError(path, where, "malformed answers", f"\"answers\" is {answers!r}", "make it a list")
    if unanswerable and answers:
        raise ConversionError(
            path, where, "answers on an unanswerable question", f"is_impossible is true but {len(answers)} answer(s) are given",
            f"move them to \"plausible_answers\" or set is_impossible to false, or {_SKIP}",
        )
    if not unanswerable and not answers:
        raise ConversionError(
            path, where, "no answers", "the question has no answers and is not marked is_impossible",
            f"add its answers, or set \"is_impossible\": true (SQuAD 2.0), or {_SKIP}",
        )
    context = context_doc.text
    doc = context_doc.copy()
    spans, texts = [], []
    n_snapped = 0
    for answer in answers:
        text = answer.get("text") if isinstance(answer, dict) else None
        start = answer.get("answer_start") if isinstance(answer, dict) else None
        if not isinstance(text, str) or not text or not isinstance(start, int):
            raise ConversionError(
                path, where, "malformed answer", f"{answer!r}",
                f"write each answer as {{\"text\": ..., \"answer_start\": ...}}, or {_SKIP}",
            )
        end = start + len(text)
        if start < 0 or context[start:end] != text:
            raise ConversionError(
                path, where, "answer offsets do not match the context",
                f"answer {text!r} at character {start}, but the context has {context[start:end]!r} there",
                f"correct answer_start (a character offset into the context), or {_SKIP}",
            )
        span = doc.char_span(start, end, alignment_mode="expand")
        if span is None or not span.text.strip():
            raise ConversionError(
                path, where, "answer covers no token", f"answer {text!r} at character {start}", f"correct it, or {_SKIP}"
            )
        n_snapped += span.text != text
        spans.append(span)
        texts.append(text)
    setattr(doc._, QUESTION, question)
    doc.spans[ANSWERS_KEY] = SpanGroup(
        doc, name=ANSWERS_KEY, spans=spans, attrs={UNANSWERABLE: unanswerable, "texts": texts, "id": qa["id"]}
    )
    report.count("answers", len(spans))
    report.count("unanswerable", int(unanswerable))
    report.count(SNAPPED, n_snapped)
    return doc
