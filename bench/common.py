"""What every benchmark shares: seeded subsamples and encoders made offline by ``init-encoder``."""
import random
from pathlib import Path
from typing import Iterable, List


def subsample(items: Iterable, n: int, seed: int) -> List:
    """``n`` items drawn without replacement (all of them when n <= 0), in a seeded order."""
    items = list(items)
    random.Random(seed).shuffle(items)
    return items if n <= 0 else items[:n]


def seeded_batches(n_items: int, batch_size: int, steps: int, seed: int) -> List[List[int]]:
    """``steps`` batches of ``batch_size`` indices: seeded shuffles of all items, epoch after epoch."""
    rng = random.Random(seed)
    out: List[List[int]] = []
    while len(out) < steps:
        order = list(range(n_items))
        rng.shuffle(order)
        out.extend(order[i : i + batch_size] for i in range(0, n_items - batch_size + 1, batch_size))
    return out[:steps]


def encoder_from_lines(lines: Iterable[str], text_file: Path, output: Path, size: str, vocab_size: int) -> Path:
    """An encoder made by ``spacy-bert-tasks init-encoder`` on ``lines`` (random weights), once per ``output``.

    The lines are written to ``text_file`` first (the file ``init-encoder`` reads; the
    benches print the command that rebuilds the encoder from it).
    """
    from spacy_bert_tasks.pretraining.init_encoder import init_encoder

    output, text_file = Path(output), Path(text_file)
    if (output / "config.json").exists():
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    text_file.parent.mkdir(parents=True, exist_ok=True)
    text_file.write_text("\n".join(lines) + "\n", encoding="utf8")
    return init_encoder([text_file], output, size=size, vocab_size=vocab_size, max_positions=512)
