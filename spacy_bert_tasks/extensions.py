"""The Doc extensions that the components read and write.

- ``doc._.text_pair`` (str or None): the second text of a sentence pair. The
  encoder reads ``[CLS] doc.text [SEP] text_pair [SEP]`` when it is set.
- ``doc._.question`` (str or None): the question for extractive QA. The encoder
  reads ``[CLS] question [SEP] window-of-doc [SEP]`` when it is set.
- ``doc._.answer`` (Span or None): the best answer ``bert_qa`` found: the first
  span of ``doc.spans["answers"]``, None when that group is missing, empty or
  marked unanswerable. It is read from the group (not stored as a Span, which
  would stop the doc from pickling or serialising); setting it replaces the group.

The encoder and the heads read the question and the pair through
``doc_input``, so an empty or whitespace-only one counts as not set.

Gold QA answers live in ``doc.spans["answers"]``; a question with no answer has
an empty group whose ``attrs["unanswerable"]`` is True.
"""
from typing import Optional

from spacy.tokens import Doc, Span, SpanGroup

TEXT_PAIR = "text_pair"
QUESTION = "question"
ANSWER = "answer"
ANSWERS_KEY = "answers"
UNANSWERABLE = "unanswerable"


def install_extensions() -> None:
    """Register the Doc extensions once; safe to call any number of times."""
    for name in (TEXT_PAIR, QUESTION):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)
    if not Doc.has_extension(ANSWER):
        Doc.set_extension(ANSWER, getter=get_answer, setter=set_answer)


def get_answer(doc: Doc) -> Optional[Span]:
    """The first span of ``doc.spans["answers"]``, or None (no group, empty, unanswerable)."""
    group = doc.spans.get(ANSWERS_KEY)
    if group is None or len(group) == 0 or group.attrs.get(UNANSWERABLE):
        return None
    return group[0]


def set_answer(doc: Doc, answer: Optional[Span]) -> None:
    """Make ``answer`` the only span of ``doc.spans["answers"]``; None marks it unanswerable."""
    if answer is None:
        doc.spans[ANSWERS_KEY] = SpanGroup(doc, name=ANSWERS_KEY, attrs={UNANSWERABLE: True})
    else:
        doc.spans[ANSWERS_KEY] = SpanGroup(doc, name=ANSWERS_KEY, spans=[answer], attrs={UNANSWERABLE: False})


def doc_input(doc: Doc, name: str) -> Optional[str]:
    """The doc's ``question`` or ``text_pair``; None when it is unset, empty or whitespace only.

    name (str): ``QUESTION`` or ``TEXT_PAIR``.
    """
    value = getattr(doc._, name)
    return value if value is not None and value.strip() else None


def copy_inputs(source: Doc, target: Doc) -> Doc:
    """Copy the extension inputs (question, text pair) from one doc to another.

    spaCy's readers build the predicted doc from the reference text alone, so
    the inputs the encoder needs must be carried over explicitly.
    """
    for name in (TEXT_PAIR, QUESTION):
        value = getattr(source._, name)
        if value is not None:
            setattr(target._, name, value)
    return target
