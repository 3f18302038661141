"""Fine-tuning strategies side by side: dev score, training speed, trainable size, size on disk.

Runs SST-2 (``bert_textcat``) and CoNLL-2003 (``bert_ner``) from ../shared/data,
subsampled, on one encoder made offline with ``init-encoder`` (random weights, no
pre-training: scores compare strategies, not the encoder), with one step budget
and one learning rate for every strategy. Then it times frozen against full
fine-tuning on the ``small`` encoder size (the target is >= 2x).

    nice -n 10 python bench/strategies.py --task sst2 --n-train 400 --n-dev 200 --steps 40
"""
import argparse
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, iob_to_biluo
from thinc.api import Adam, Optimizer, fix_random_seed

from spacy_bert_tasks.fine_tuning import configure_layerwise_adam, trainable_summary

from common import encoder_from_lines  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HEADS = {"sst2": ("bert_textcat", "cats_score"), "conll": ("bert_ner", "ents_f")}


def layers(choice: Dict[str, Any]) -> Dict[str, Any]:
    return {"@architectures": "spacy_bert_tasks.LayersListener.v1", "layers": choice}


SELECT_2 = {"@layers": "spacy_bert_tasks.layer_select.v1", "layers": [-2]}
SUM_3 = {"@layers": "spacy_bert_tasks.layer_select.v1", "layers": [-3, -2, -1], "combine": "sum"}
MIX = {"@layers": "spacy_bert_tasks.scalar_mix.v1"}

# name: (encoder settings, head tok2vec, adapter, layer-wise decay)
STRATEGIES: Dict[str, Tuple[Dict, Optional[Dict], Optional[Dict], Optional[float]]] = {
    "full": ({}, None, None, None),
    "full: layer -2": ({}, layers(SELECT_2), None, None),
    "full: scalar mix": ({}, layers(MIX), None, None),
    "full: layer-wise lr 0.8": ({}, None, None, 0.8),
    "frozen (layer -1)": ({"frozen": True}, None, None, None),
    "frozen: layer -2": ({"frozen": True}, layers(SELECT_2), None, None),
    "frozen: sum last 3": ({"frozen": True}, layers(SUM_3), None, None),
    "frozen: scalar mix": ({"frozen": True}, layers(MIX), None, None),
    "LoRA r=8 q+v": ({}, None, {"@misc": "spacy_bert_tasks.lora.v1", "r": 8, "alpha": 16}, None),
    "prefix 16 tokens": ({}, None, {"@misc": "spacy_bert_tasks.prefix_tuning.v1", "num_virtual_tokens": 16}, None),
}


def read_sst2(path: Path, nlp: Language, n: int, seed: int) -> List[Example]:
    rows = [line.rstrip("\n").split("\t") for line in path.read_text(encoding="utf8").splitlines()[1:] if line.strip()]
    random.Random(seed).shuffle(rows)
    return [Example.from_dict(nlp.make_doc(text.strip()), {"cats": {"POS": float(label == "1"), "NEG": float(label == "0")}})
            for text, label in rows[:n]]


def read_conll(path: Path, nlp: Language, n: int, seed: int) -> List[Example]:
    sentences, words, tags = [], [], []
    for line in path.read_text(encoding="utf8").splitlines() + [""]:
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        words.append(parts[0])
        tags.append(parts[-1])
    random.Random(seed).shuffle(sentences)
    return [Example.from_dict(Doc(nlp.vocab, words=w), {"entities": iob_to_biluo(t)}) for w, t in sentences[:n]]


def build(encoder: Path, task: str, settings: Dict, tok2vec: Optional[Dict], adapter: Optional[Dict]) -> Language:
    model = {"@architectures": "spacy_bert_tasks.Encoder.v1", "name": str(encoder), "max_length": 128, "stride": 32,
             "max_question_length": 32, **settings}
    if adapter is not None:
        model = {"@architectures": "spacy_bert_tasks.PeftEncoder.v1", "encoder": model, "adapter": adapter}
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": model})
    nlp.add_pipe(HEADS[task][0], config={"model": {"tok2vec": tok2vec}} if tok2vec else {})
    return nlp


def train(nlp: Language, examples: List[Example], optimizer: Optimizer, steps: int, batch_size: int) -> List[float]:
    """Train ``steps`` updates; RETURNS the seconds each update took."""
    times = []
    rng = random.Random(0)
    order = list(range(len(examples)))
    while len(times) < steps:
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = [examples[i] for i in order[start : start + batch_size]]
            begin = time.perf_counter()
            nlp.update(batch, sgd=optimizer, drop=0.1)
            times.append(time.perf_counter() - begin)
            if len(times) == steps:
                break
    return times


def disk_size(nlp: Language) -> int:
    folder = Path(tempfile.mkdtemp())
    try:
        nlp.to_disk(folder / "pipeline")
        return sum(path.stat().st_size for path in (folder / "pipeline").rglob("*") if path.is_file())
    finally:
        shutil.rmtree(folder)


def run_strategy(name: str, encoder: Path, task: str, data: Tuple[List, List], args: argparse.Namespace) -> Dict[str, Any]:
    settings, tok2vec, adapter, decay = STRATEGIES[name]
    fix_random_seed(0)
    nlp = build(encoder, task, settings, tok2vec, adapter)
    train_examples, dev_examples = data
    nlp.initialize(lambda: train_examples)
    if decay is None:
        optimizer = Adam(args.learn_rate, L2=0.01, grad_clip=1.0)
    else:
        n_layers = nlp.get_pipe("transformer").model.transformer.config.num_hidden_layers
        optimizer = configure_layerwise_adam(args.learn_rate, n_layers=n_layers, decay=decay, L2=0.01, grad_clip=1.0)
    times = train(nlp, train_examples, optimizer, args.steps, args.batch_size)
    with nlp.use_params(optimizer.averages):
        score = nlp.evaluate(dev_examples)[HEADS[task][1]] or 0.0
    summary = trainable_summary(nlp)
    return {
        "strategy": name,
        "dev": score,
        "updates/s": 1.0 / statistics.median(times[2:] or times),
        "trainable": sum(part["params"] for part in summary.values()),
        "trainable MB": sum(part["bytes"] for part in summary.values()) / 1e6,
        "disk MB": disk_size(nlp) / 1e6,
    }


def print_table(title: str, rows: List[Dict[str, Any]], baseline: str) -> None:
    base = next(row for row in rows if row["strategy"] == baseline)
    print(f"\n{title}")
    print(f"{'strategy':<26}{'dev':>7}{'updates/s':>11}{'x ' + baseline:>10}{'trainable':>12}{'train. MB':>11}{'disk MB':>9}")
    for row in rows:
        print(f"{row['strategy']:<26}{row['dev']:>7.3f}{row['updates/s']:>11.2f}{row['updates/s'] / base['updates/s']:>10.2f}"
              f"{row['trainable']:>12,}{row['trainable MB']:>11.2f}{row['disk MB']:>9.1f}")


def make_encoder(size: str, texts: List[str], folder: Path) -> Path:
    return encoder_from_lines(texts, folder / f"text-{size}.txt", folder / size, size, 4000)


def speed(encoder: Path, examples: List[Example], batch_size: int, repeats: int) -> Dict[str, float]:
    """Median updates/s of full and frozen fine-tuning, their updates interleaved on the same batches
    (so that load from other processes hits both alike)."""
    pipelines, times = {}, {}
    for name in ("full", "frozen (layer -1)"):
        fix_random_seed(0)
        pipelines[name] = build(encoder, "sst2", STRATEGIES[name][0], None, None)
        pipelines[name].initialize(lambda: examples)
        times[name] = []
    optimizers = {name: Adam(1e-4) for name in pipelines}
    for i in range(repeats + 2):
        batch = examples[(i * batch_size) % len(examples) :][:batch_size]
        for name, nlp in pipelines.items():
            begin = time.perf_counter()
            nlp.update(batch, sgd=optimizers[name], drop=0.1)
            times[name].append(time.perf_counter() - begin)
    return {name: 1.0 / statistics.median(values[2:]) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["sst2", "conll", "both"], default="both")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--size", default="tiny", help="encoder size for the strategy table")
    parser.add_argument("--speed-size", default="small", help="encoder size for frozen vs full speed ('' to skip)")
    parser.add_argument("--n-train", type=int, default=320)
    parser.add_argument("--n-dev", type=int, default=200)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learn-rate", type=float, default=1e-3)
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated names")
    args = parser.parse_args()
    nlp = spacy.blank("en")
    tasks = ["sst2", "conll"] if args.task == "both" else [args.task]
    data = {}
    if "sst2" in tasks or args.speed_size:
        data["sst2"] = (read_sst2(args.data / "sst2" / "train.tsv", nlp, args.n_train, 0),
                        read_sst2(args.data / "sst2" / "dev.tsv", nlp, args.n_dev, 0))
    if "conll" in tasks:
        data["conll"] = (read_conll(args.data / "conll2003" / "train.txt", nlp, args.n_train, 0),
                         read_conll(args.data / "conll2003" / "valid.txt", nlp, args.n_dev, 0))
    folder = Path(tempfile.mkdtemp())
    texts = [eg.reference.text for part in data.values() for eg in part[0]]
    encoder = make_encoder(args.size, texts, folder)
    print(f"encoder: init-encoder --size {args.size} (random weights); {args.n_train} train / {args.n_dev} dev examples, "
          f"{args.steps} updates of {args.batch_size}, Adam lr {args.learn_rate}, torch threads {torch.get_num_threads()}")
    for task in tasks:
        rows = []
        for name in args.strategies.split(","):
            rows.append(run_strategy(name, encoder, task, data[task], args))
            print(f"  {task}: {name} done", file=sys.stderr)
        print_table(f"{task} ({HEADS[task][0]}, dev {HEADS[task][1]})", rows, baseline="full")
    if args.speed_size:
        small = make_encoder(args.speed_size, texts, folder)
        result = speed(small, data["sst2"][0][: args.batch_size * 4], args.batch_size, repeats=8)
        full, frozen = result["full"], result["frozen (layer -1)"]
        print(f"\nspeed on the '{args.speed_size}' encoder, SST-2 batches of {args.batch_size}: full {full:.2f} updates/s, "
              f"frozen {frozen:.2f} updates/s, frozen / full = {frozen / full:.2f}x (target >= 2x)")
    print(f"\nreproduce: nice -n 10 python bench/strategies.py {shlex.join(sys.argv[1:])}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
