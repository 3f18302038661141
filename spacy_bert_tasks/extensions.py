"""The Doc extensions that the components read and write.

- ``doc._.text_pair`` (str or None): the second text of a sentence pair. The
  encoder reads ``[CLS] doc.text [SEP] text_pair [SEP]`` when it is set.
- ``doc._.question`` (str or None): the question for extractive QA. The encoder
  reads ``[CLS] question [SEP] window-of-doc [SEP]`` when it is set.
- ``doc._.answer`` (Span or None): the best answer ``bert_qa`` found.

Gold QA answers live in ``doc.spans["answers"]``; a question with no answer has
an empty group whose ``attrs["unanswerable"]`` is True.
"""
from spacy.tokens import Doc

TEXT_PAIR = "text_pair"
QUESTION = "question"
ANSWER = "answer"
ANSWERS_KEY = "answers"
UNANSWERABLE = "unanswerable"


def install_extensions() -> None:
    """Register the Doc extensions once; safe to call any number of times."""
    for name in (TEXT_PAIR, QUESTION, ANSWER):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)


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
