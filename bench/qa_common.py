"""What the QA benchmarks share: SQuAD loading, the by-article split, encoders.

Not part of the package; imported by ``bench/qa_parity.py`` and ``bench/qa_speed.py``.
"""
import json
import random
from pathlib import Path
from typing import List, NamedTuple, Tuple

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


def subsample(items: List, n: int, seed: int) -> List:
    """``n`` items drawn without replacement (all of them when n <= 0), in a seeded order."""
    items = list(items)
    random.Random(seed).shuffle(items)
    return items if n <= 0 else items[:n]


def make_encoder(train: List[Question], workdir: Path, size: str, vocab_size: int) -> Path:
    """An encoder made by ``spacy-bert-tasks init-encoder`` on the training contexts (random weights)."""
    from spacy_bert_tasks.pretraining.init_encoder import init_encoder

    output = workdir / f"encoder-{size}"
    if (output / "config.json").exists():
        return output
    workdir.mkdir(parents=True, exist_ok=True)
    text = workdir / "train_contexts.txt"
    contexts = dict.fromkeys(q.context for q in train)
    text.write_text("\n".join(c.replace("\n", " ") for c in contexts) + "\n", encoding="utf8")
    return init_encoder([text], output, size=size, vocab_size=vocab_size, max_positions=512)
