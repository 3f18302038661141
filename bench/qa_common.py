"""What the QA benchmarks share: SQuAD loading, the by-article split, encoders.

Not part of the package; imported by ``bench/qa_parity.py`` and ``bench/qa_speed.py``.
"""
import json
from pathlib import Path
from typing import List, NamedTuple, Tuple

from common import encoder_from_lines, subsample  # noqa: F401  (subsample: the benches import it from here)

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad_v1.1" / "dev-v1.1.articles00-42.json"
N_TRAIN_ARTICLES = 35


class Question(NamedTuple):
    qid: str
    context: str
    question: str
    answers: List[Tuple[int, str]]  # (answer_start, text), every gold answer


def load_split(path: Path = SQUAD) -> Tuple[List[Question], List[Question]]:
    """SQuAD v1.1 split by article: the first 35 articles for training, the rest for dev."""
    articles = json.loads(Path(path).read_text(encoding="utf8"))["data"]

    def questions(part):
        return [
            Question(qa["id"], para["context"], qa["question"], [(a["answer_start"], a["text"]) for a in qa["answers"]])
            for article in part for para in article["paragraphs"] for qa in para["qas"]
        ]

    return questions(articles[:N_TRAIN_ARTICLES]), questions(articles[N_TRAIN_ARTICLES:])


def squad_example(nlp, q: Question):
    """A training Example: the context as the doc, ``doc._.question`` set, the first gold answer as the span."""
    from spacy.tokens import SpanGroup
    from spacy.training import Example

    predicted = nlp.make_doc(q.context)
    predicted._.question = q.question
    reference = predicted.copy()
    start, text = q.answers[0]
    span = reference.char_span(start, start + len(text), alignment_mode="expand")
    reference.spans["answers"] = SpanGroup(reference, name="answers", spans=[span], attrs={"texts": [text]})
    return Example(predicted, reference)


def predict_answers(nlp, questions: List[Question], batch_size: int = 64) -> List[str]:
    """The pipeline's answer text for each question ("" where it gives none)."""
    docs = []
    for q in questions:
        doc = nlp.make_doc(q.context)
        doc._.question = q.question
        docs.append(doc)
    return [doc._.answer.text if doc._.answer is not None else "" for doc in nlp.pipe(docs, batch_size=batch_size)]


def make_encoder(train: List[Question], workdir: Path, size: str, vocab_size: int) -> Path:
    """An encoder made by ``spacy-bert-tasks init-encoder`` on the training contexts (random weights)."""
    contexts = dict.fromkeys(q.context for q in train)
    return encoder_from_lines((c.replace("\n", " ") for c in contexts), workdir / "train_contexts.txt", workdir / f"encoder-{size}", size, vocab_size)
