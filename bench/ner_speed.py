"""Speed and memory of bert_ner on CPU against the raw encoder, Hugging Face and plain PyTorch.

Inference, in words per second over CoNLL-2003 valid sentences (strings in):
- raw forward (the practical limit): the Hugging Face tokenizer on all the
  texts, sorted by length, in batches of ``--batch-size``, through the bare
  encoder (``AutoModel``) under ``torch.inference_mode``. No head, no tags.
- ``transformers.pipeline("token-classification")`` on the same weights (a
  ``BertForTokenClassification`` folder saved from the encoder), same batch size.
- ours: ``nlp.pipe(texts, batch_size=...)`` with ``transformer`` + ``bert_ner``:
  spaCy tokenisation, windows, head, Viterbi decoding, ``doc.ents``. The head
  is trained for ``--head-steps`` updates first, so that it tags like a
  trained model (an untrained head tags nearly every token as an entity,
  which is neither realistic nor cheap to decode).
Peak memory: each system runs again in a child process; we report how far the
peak RSS (VmHWM, reset just before the run) rises above the RSS before it.

Training, in updates per second on batches of ``--batch-size`` train sentences:
``nlp.update`` (GlobalClipAdam, as in configs/ner.cfg) against a plain PyTorch loop
(``BertForTokenClassification``, AdamW, gradient clipping; the batches
tokenised beforehand with first-piece labels and -100 elsewhere, padded per step).

Encoders are made with ``spacy-bert-tasks init-encoder`` on the CoNLL training
sentences (random weights; speed does not depend on them). Times are CPU
seconds of this process (the machine is shared, so wall time mostly measures
the neighbours; wall-clock figures are printed too). Systems run in turn,
``--repeats`` times, in one process; medians are reported.

Run: nice -n 10 python bench/ner_speed.py --sizes tiny,small
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ner_common import (  # noqa: E402
    CONLL, encoder_command, entity_labels, iob2_tags, make_encoder, make_ner_pipeline, read_conll,
    save_token_classifier, subsample, to_example, token_classification_features, torch_ner_step, train_ner,
    training_plan,
)
from padding import pad_rows  # noqa: E402

SYSTEMS = ("raw forward", "HF pipeline", "ours")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=CONLL)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ner_bench"))
    parser.add_argument("--sizes", default="tiny,small")
    parser.add_argument("--sentences", type=int, default=0, help="valid sentences to read (0: all 3,250)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-steps", type=int, default=20, help="timed updates per system and size (0: skip)")
    parser.add_argument("--head-steps", type=int, default=100, help="updates that train our pipeline before timing")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def valid_texts(args) -> Tuple[List[str], int]:
    docs = read_conll(args.data / "valid.txt")
    if args.sentences > 0:
        docs = docs[: args.sentences]
    return [doc.text for doc in docs], sum(len(doc) for doc in docs)


def raw_forward(encoder: Path, batch_size: int) -> Callable[[List[str]], int]:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModel.from_pretrained(encoder, use_safetensors=True).eval()

    def run(texts: List[str]) -> int:
        with torch.inference_mode():
            encoded = tokenizer(texts)
            ids, types = encoded["input_ids"], encoded["token_type_ids"]
            order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
            for start in range(0, len(order), batch_size):
                model(**pad_rows(ids, types, order[start : start + batch_size]))
        return len(texts)

    return run


def hf_pipeline(classifier: Path, batch_size: int) -> Callable[[List[str]], int]:
    from transformers import pipeline

    tagger = pipeline("token-classification", model=str(classifier), tokenizer=str(classifier), device=-1)

    def run(texts: List[str]) -> int:
        return sum(len(tags) for tags in tagger(texts, batch_size=batch_size))

    return run


def trained_pipeline(encoder: Path, labels: List[str], args, size: str) -> Path:
    """Our pipeline after ``--head-steps`` updates on CoNLL train (lr 1e-3), saved once per size."""
    path = args.workdir / f"ner-{size}-{args.head_steps}steps"
    if not (path / "meta.json").exists():
        train = read_conll(args.data / "train.txt")
        nlp = make_ner_pipeline(encoder, labels)
        train_ner(nlp, training_plan(train, args.head_steps, args.batch_size, seed=0), lr=1e-3)
        nlp.to_disk(path)
    return path


def ours(pipeline: Path, batch_size: int) -> Callable[[List[str]], int]:
    import spacy

    nlp = spacy.load(pipeline)

    def run(texts: List[str]) -> int:
        return sum(len(doc.ents) for doc in nlp.pipe(texts, batch_size=batch_size))

    return run


def build(system: str, size: str, args) -> Callable:
    if system == "raw forward":
        return raw_forward(args.workdir / f"encoder-{size}", args.batch_size)
    if system == "HF pipeline":
        return hf_pipeline(args.workdir / f"classifier-{size}", args.batch_size)
    return ours(args.workdir / f"ner-{size}-{args.head_steps}steps", args.batch_size)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def memory_child(args) -> None:
    """Run one system once (after a short warm-up) and print its peak RSS rise, in MB."""
    torch.set_num_threads(args.threads)
    texts, _ = valid_texts(args)
    run = build(args.memory_child, args.size, args)
    run(texts[: args.batch_size * 2])
    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    run(texts)
    print(json.dumps({"peak_rise_mb": (_status_kb("VmHWM") - before) / 1024}))


def measure_memory(args, size: str, system: str) -> float:
    cmd = [sys.executable, __file__, "--memory-child", system, "--size", size, "--data", str(args.data),
           "--workdir", str(args.workdir), "--sentences", str(args.sentences), "--batch-size", str(args.batch_size),
           "--threads", str(args.threads), "--head-steps", str(args.head_steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rise_mb"]


def timed(run: Callable, texts: List[str]) -> Tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    run(texts)
    return time.process_time() - cpu, time.perf_counter() - wall


def training_speed(encoder: Path, classifier: Path, labels: List[str], args) -> Dict[str, float]:
    """Updates per CPU second: nlp.update against a plain PyTorch loop, same batches."""
    from transformers import AutoTokenizer, BertForTokenClassification

    from spacy_bert_tasks.fine_tuning import configure_global_clip_adam

    train = subsample(read_conll(args.data / "train.txt"), args.batch_size * (args.train_steps + 2), seed=0)
    batches = [train[i : i + args.batch_size] for i in range(0, len(train), args.batch_size)]
    nlp = make_ner_pipeline(encoder, labels)
    optimizer = configure_global_clip_adam(5e-5, max_grad_norm=1.0, L2=0.01, use_averages=False)
    our_batches = [[to_example(doc, nlp) for doc in batch] for batch in batches]

    tags = iob2_tags(labels)
    tag_index = {tag: i for i, tag in enumerate(tags)}
    tokenizer = AutoTokenizer.from_pretrained(classifier)
    model = BertForTokenClassification.from_pretrained(classifier, use_safetensors=True)
    torch_optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)

    torch_batches = [token_classification_features(tokenizer, batch, tag_index) for batch in batches]

    def torch_step(batch) -> None:
        torch_ner_step(model, torch_optimizer, batch)

    def our_step(batch) -> None:
        nlp.update(batch, sgd=optimizer, drop=0.1)
        optimizer.step_schedules()

    steps = {"ours": (our_step, our_batches), "plain PyTorch": (torch_step, torch_batches)}
    for step, data in steps.values():  # warm-up
        step(data[0])
        step(data[1])
    times: Dict[str, List[float]] = {name: [] for name in steps}
    block = max(1, args.train_steps // args.repeats)
    for start in range(2, 2 + args.train_steps, block):
        for name, (step, data) in steps.items():
            cpu = time.process_time()
            for batch in data[start : start + block]:
                step(batch)
            times[name].append((time.process_time() - cpu) / len(data[start : start + block]))
    return {name: 1.0 / statistics.median(values) for name, values in times.items()}


def main() -> None:
    args = parse_args()
    if args.memory_child:
        memory_child(args)
        return
    torch.set_num_threads(args.threads)
    texts, n_words = valid_texts(args)
    train = read_conll(args.data / "train.txt")
    labels = entity_labels(train)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"CoNLL-2003 valid: {len(texts)} sentences, {n_words} words; batch size {args.batch_size}; "
          f"torch threads {args.threads}; {args.repeats} repeats; times are CPU seconds (wall in brackets)")
    for size in args.sizes.split(","):
        encoder = make_encoder(train, args.workdir, size)
        classifier = save_token_classifier(encoder, iob2_tags(labels), args.workdir / f"classifier-{size}")
        trained_pipeline(encoder, labels, args, size)
        print(f"\n== {size} encoder ({encoder_command(args.workdir, size)}); ours trained for {args.head_steps} updates")
        runs = {system: build(system, size, args) for system in SYSTEMS}
        for run in runs.values():  # warm-up
            run(texts[: args.batch_size * 2])
        cpu: Dict[str, List[float]] = {system: [] for system in SYSTEMS}
        wall: Dict[str, List[float]] = {system: [] for system in SYSTEMS}
        for _ in range(args.repeats):
            for system, run in runs.items():
                seconds, wall_seconds = timed(run, texts)
                cpu[system].append(seconds)
                wall[system].append(wall_seconds)
        speed = {system: n_words / statistics.median(values) for system, values in cpu.items()}
        for system in SYSTEMS:
            print(f"{system:>14}: {speed[system]:9.0f} words/s  ({n_words / statistics.median(wall[system]):.0f} wall)")
        print(f"   ours / raw forward: {speed['ours'] / speed['raw forward']:.2f}   (target >= 0.85)")
        print(f"   ours / HF pipeline: {speed['ours'] / speed['HF pipeline']:.2f}   (target >= 1.3)")
        del runs
        if not args.no_memory:
            rise = {system: measure_memory(args, size, system) for system in ("raw forward", "ours")}
            print(f"   peak RSS rise: raw forward {rise['raw forward']:.1f} MB, ours {rise['ours']:.1f} MB, "
                  f"ratio {rise['ours'] / max(rise['raw forward'], 1e-6):.2f}   (target <= 1.2)")
        if args.train_steps:
            updates = training_speed(encoder, classifier, labels, args)
            print(f"   training: ours {updates['ours']:.2f} updates/s, plain PyTorch {updates['plain PyTorch']:.2f} "
                  f"updates/s, ratio {updates['ours'] / updates['plain PyTorch']:.2f}   (target >= 0.8)")
    print(f"\nReproduce: nice -n 10 python bench/ner_speed.py --sizes {args.sizes} --sentences {args.sentences} "
          f"--repeats {args.repeats} --threads {args.threads} --train-steps {args.train_steps} --head-steps {args.head_steps}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
