"""Speed: bert_textcat against the raw encoder, HF's pipeline and a plain PyTorch loop.

Inference, texts/s over the same texts (SST-2 dev sentences, read in place):
  ours   ``nlp.pipe(texts, batch_size=32)`` (spaCy tokenizer, shared encoder, bert_textcat)
  raw    the bare ``AutoModel`` forward: tokenizer over all texts, sorted by
         length, padded batches of 32, ``torch.inference_mode``; no head
  HF     ``pipeline("text-classification")`` on the same weights with a
         BertForSequenceClassification head, saved locally, ``batch_size=32``
Training, updates/s with batches of 32 SST-2 training sentences:
  ours   ``nlp.update`` (thinc Adam on every weight)
  plain  BertForSequenceClassification: tokenizer, forward, cross-entropy,
         backward, ``torch.optim.AdamW`` step

Encoders are made by ``spacy-bert-tasks init-encoder`` on the SST-2 training
text (random weights; speed does not depend on them). The systems take turns
batch by batch (update by update), so a busy machine slows them alike; each
round sums a system's steps, and the medians over the rounds are printed with
the ratios the issue sets targets for (ours/raw >= 0.85, ours/HF >= 1.3,
training >= 0.8). The raw forward's tokenisation of all texts is its first step.

Run: nice -n 10 python bench/textcat_speed.py --sizes tiny small --rounds 5
"""
import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from textcat_common import Item, make_encoder, read_glue, subsample  # noqa: E402

LABELS = ["0", "1"]


def build_ours(encoder: Path, train: List[Item]):
    import spacy
    from spacy.training import Example

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"@architectures": "spacy_bert_tasks.Encoder.v1", "name": str(encoder)}})
    nlp.add_pipe("bert_textcat")
    examples = [
        Example.from_dict(nlp.make_doc(item.text), {"cats": {label: float(label == item.label) for label in LABELS}})
        for item in train
    ]
    optimizer = nlp.initialize(lambda: examples[:32])
    return nlp, examples, optimizer


def raw_forward(encoder: Path, texts: List[str]) -> List[Callable[[], None]]:
    """The raw encoder's steps: tokenise every text and sort by length, then one step per padded batch of 32."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(encoder))
    model = AutoModel.from_pretrained(str(encoder)).eval()
    state = {}

    def tokenise() -> None:
        encoded = tokenizer(texts, truncation=True, max_length=512)["input_ids"]
        state["batches"] = [[encoded[i] for i in order] for order in _sorted_batches(encoded)]

    def forward(k: int) -> None:
        with torch.inference_mode():
            model(**tokenizer.pad({"input_ids": state["batches"][k]}, return_tensors="pt"))

    n_batches = (len(texts) + 31) // 32
    return [tokenise] + [(lambda k: lambda: forward(k))(k) for k in range(n_batches)]


def _sorted_batches(encoded: List[List[int]]) -> List[List[int]]:
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    return [order[start : start + 32] for start in range(0, len(order), 32)]


def hf_classifier(encoder: Path, workdir: Path) -> Path:
    """The encoder's weights under a BertForSequenceClassification head, saved locally."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    output = workdir / f"{encoder.name}-classifier"
    if not (output / "config.json").exists():
        BertForSequenceClassification.from_pretrained(str(encoder), num_labels=len(LABELS)).save_pretrained(output)
        AutoTokenizer.from_pretrained(str(encoder)).save_pretrained(output)
    return output


def hf_pipeline(path: Path, texts: List[str]) -> List[Callable[[], None]]:
    """HF's text-classification pipeline, one step per batch of 32 texts (in the given order)."""
    from transformers import pipeline

    classifier = pipeline("text-classification", model=str(path), tokenizer=str(path), device=-1)
    return [(lambda batch: lambda: list(classifier(batch, batch_size=32, truncation=True)))(texts[i : i + 32])
            for i in range(0, len(texts), 32)]


def plain_training(path: Path, batches: List[List[Item]]) -> List[Callable[[], None]]:
    """A plain PyTorch loop, one step per update: tokenise, forward, cross-entropy, backward, AdamW."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = BertForSequenceClassification.from_pretrained(str(path), num_labels=len(LABELS)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)

    def update(items: List[Item]) -> None:
        encoded = tokenizer([item.text for item in items], padding=True, truncation=True, return_tensors="pt")
        labels = torch.tensor([LABELS.index(item.label) for item in items])
        model(**encoded, labels=labels).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    return [(lambda items: lambda: update(items))(items) for items in batches]


def run_interleaved(systems: Dict[str, List[Callable[[], None]]], rounds: int) -> Dict[str, float]:
    """Median over rounds of each system's total time; the systems' steps take turns.

    Step k of every system runs before step k + 1 of any, so a busy machine
    slows all of them alike.
    """
    for steps in systems.values():  # warm-up
        for step in steps:
            step()
    totals: Dict[str, List[float]] = {name: [] for name in systems}
    for _ in range(rounds):
        spent = dict.fromkeys(systems, 0.0)
        for k in range(max(len(steps) for steps in systems.values())):
            for name, steps in systems.items():
                if k < len(steps):
                    start = time.perf_counter()
                    steps[k]()
                    spent[name] += time.perf_counter() - start
        for name in systems:
            totals[name].append(spent[name])
    return {name: statistics.median(values) for name, values in totals.items()}


def bench_size(size: str, texts: List[str], train: List[Item], args) -> Dict[str, float]:
    encoder = make_encoder(read_glue("sst2", "train"), args.workdir, "sst2", size)
    classifier = hf_classifier(encoder, args.workdir)
    nlp, examples, optimizer = build_ours(encoder, train)
    n_steps = args.train_steps

    def ours_pipe(batch: List[str]) -> Callable[[], None]:
        return lambda: list(nlp.pipe(batch, batch_size=32))

    def ours_update(batch: list) -> Callable[[], None]:
        return lambda: nlp.update(batch, sgd=optimizer)

    inference = {
        "ours": [ours_pipe(texts[i : i + 32]) for i in range(0, len(texts), 32)],
        "raw": raw_forward(encoder, texts),
        "HF pipeline": hf_pipeline(classifier, texts),
    }
    training = {
        "ours train": [ours_update(examples[i * 32 : (i + 1) * 32]) for i in range(n_steps)],
        "plain train": plain_training(classifier, [train[i * 32 : (i + 1) * 32] for i in range(n_steps)]),
    }
    medians = {**run_interleaved(inference, args.rounds), **run_interleaved(training, args.rounds)}
    rates = {name: len(texts) / medians[name] for name in inference}
    rates.update({name: n_steps / medians[name] for name in training})
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--n-texts", type=int, default=872, help="SST-2 dev sentences to classify")
    parser.add_argument("--train-steps", type=int, default=10, help="updates per timed training run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/textcat_bench"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    texts = [item.text for item in subsample(read_glue("sst2", "dev"), args.n_texts, seed=0)]
    train = subsample(read_glue("sst2", "train"), 32 * args.train_steps, seed=1)
    print(f"{len(texts)} SST-2 dev texts; training batches of 32; {args.rounds} rounds, medians; "
          f"{args.threads} torch thread(s); init-encoder encoders (random weights)")
    header = (f"{'size':6s} {'ours t/s':>9s} {'raw t/s':>9s} {'HF t/s':>9s} {'ours/raw':>9s} {'ours/HF':>8s}"
              f" {'ours upd/s':>11s} {'plain upd/s':>12s} {'train ratio':>12s}")
    rows = []
    for size in args.sizes:
        rates = bench_size(size, texts, train, args)
        rows.append(
            f"{size:6s} {rates['ours']:9.1f} {rates['raw']:9.1f} {rates['HF pipeline']:9.1f} "
            f"{rates['ours'] / rates['raw']:9.2f} {rates['ours'] / rates['HF pipeline']:8.2f} "
            f"{rates['ours train']:11.2f} {rates['plain train']:12.2f} {rates['ours train'] / rates['plain train']:12.2f}"
        )
        print(rows[-1], flush=True)
    print("\n" + header + "\n" + "\n".join(rows))
    print("targets: ours/raw >= 0.85, ours/HF >= 1.3, train ratio >= 0.8")
    print("\nReproduce: nice -n 10 python bench/textcat_speed.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
