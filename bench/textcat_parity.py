"""Accuracy parity: bert_textcat trained with nlp.update vs a plain BertForSequenceClassification.

Both start from the same encoder folder, see the same examples in the same
batches (``--batch-size``), take the same number of updates (``--steps``) with
the same learning-rate schedule (linear warm-up over 10% of the steps, then
linear decay), Adam(W) with weight decay 0.01, eps 1e-8 and gradient clipping
at 1.0, dropout 0.1, windows/truncation at ``--max-length`` pieces.

(a) ours: ``transformer`` (spacy_bert_tasks.Encoder.v1) + ``bert_textcat``
    ([CLS] pooling, softmax), trained with ``nlp.update``; the prediction is
    the top class of ``doc.cats``. MRPC is read as pairs (``doc._.text_pair``).
(b) baseline: ``transformers.BertForSequenceClassification`` with its own
    tokenizer call (``tokenizer(text, text_pair, truncation=True)``) in a plain
    PyTorch loop (``torch.optim.AdamW`` + ``get_linear_schedule_with_warmup``).

Data: ../shared/data/sst2 and ../shared/data/mrpc, read in place; a seeded
subsample of ``--n-train`` training examples, the full dev set. The encoder
is made by ``spacy-bert-tasks init-encoder`` on the training texts, so it
starts from random weights (no pretraining): absolute scores are low and
MRPC mostly learns its majority class; the comparison is what counts.
Differences that remain: dropout masks; thinc's Adam adds eps before the bias
correction (torch after); ours has BERT's pooler only with ``--dense-tanh`` or
``--pretrained-pooler`` (the latter is HF's head), and clips per parameter
only with ``--per-parameter-clipping``. With dropout off and the same head
weights the two take the same steps (tests/pipeline/test_hf_step_parity.py).

Run: nice -n 10 python bench/textcat_parity.py --task sst2 --n-train 8000 --steps 600 --seeds 0 1 2
"""
import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import seeded_batches  # noqa: E402
from textcat_common import (  # noqa: E402
    POSITIVE, Item, accuracy_and_f1, classification_example, make_encoder, read_glue, subsample,
)

LABELS = ["0", "1"]


def train_ours(encoder: Path, train: List[Item], dev: List[Item], plan: List[List[int]], args) -> Dict[str, float]:
    import spacy
    from spacy.util import fix_random_seed
    from thinc.api import Adam, warmup_linear

    from spacy_bert_tasks.fine_tuning import configure_global_clip_adam

    fix_random_seed(args.seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {
        "@architectures": "spacy_bert_tasks.Encoder.v1", "name": str(encoder), "max_length": args.max_length,
        "stride": args.max_length // 4, "max_question_length": 0, "max_pair_length": args.max_length // 2,
    }})
    pooler_init = "checkpoint" if args.pretrained_pooler else "random"
    nlp.add_pipe("bert_textcat", config={"model": {"dropout": 0.1, "dense_tanh": args.dense_tanh or args.pretrained_pooler,
                                                   "pooler_init": pooler_init}})

    examples = [classification_example(nlp, item, {label: label for label in LABELS}) for item in train]
    nlp.initialize(lambda: examples[:64])
    schedule = warmup_linear(args.lr, max(1, len(plan) // 10), len(plan))
    if args.per_parameter_clipping:
        optimizer = Adam(schedule, L2=0.01, L2_is_weight_decay=True, grad_clip=1.0, eps=1e-8, beta1=0.9, beta2=0.999,
                         use_averages=False)
    else:  # the configs' optimizer: the step clipped by its global norm, as torch's clip_grad_norm_
        optimizer = configure_global_clip_adam(schedule, max_grad_norm=1.0, L2=0.01, eps=1e-8, use_averages=False)
    start = time.perf_counter()
    for batch in plan:
        nlp.update([examples[i] for i in batch], sgd=optimizer, drop=0.1)
        optimizer.step_schedules()
    train_s = time.perf_counter() - start
    docs = []
    for item in dev:
        doc = nlp.make_doc(item.text)
        doc._.text_pair = item.pair
        docs.append(doc)
    predicted = [max(doc.cats, key=doc.cats.get) for doc in nlp.pipe(docs, batch_size=32)]
    accuracy, f1 = accuracy_and_f1([item.label for item in dev], predicted)
    if args.save_pipeline:
        nlp.to_disk(args.save_pipeline)
    return {"accuracy": accuracy, "f1": f1, "train_s": train_s}


def train_baseline(encoder: Path, train: List[Item], dev: List[Item], plan: List[List[int]], args) -> Dict[str, float]:
    from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup

    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(encoder))
    model = BertForSequenceClassification.from_pretrained(str(encoder), num_labels=len(LABELS))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, max(1, len(plan) // 10), len(plan))
    label_ids = {label: i for i, label in enumerate(LABELS)}

    def encode(items: List[Item]):
        pairs = [item.pair for item in items] if items[0].pair is not None else None
        return tokenizer([item.text for item in items], pairs, truncation=True, max_length=args.max_length,
                         padding=True, return_tensors="pt")

    model.train()
    start = time.perf_counter()
    for batch in plan:
        items = [train[i] for i in batch]
        labels = torch.tensor([label_ids[item.label] for item in items])
        loss = model(**encode(items), labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    train_s = time.perf_counter() - start
    model.eval()
    predicted = []
    with torch.inference_mode():
        for i in range(0, len(dev), 32):
            logits = model(**encode(dev[i : i + 32])).logits
            predicted.extend(LABELS[j] for j in logits.argmax(-1).tolist())
    accuracy, f1 = accuracy_and_f1([item.label for item in dev], predicted)
    return {"accuracy": accuracy, "f1": f1, "train_s": train_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=["sst2", "mrpc"], default="sst2")
    parser.add_argument("--n-train", type=int, default=8000, help="training subsample; 0 for all")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4, help="random-weight encoders need more than BERT's 2e-5")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--size", default="tiny", help="init-encoder size: tiny, mini, small, base")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--dense-tanh", action="store_true", help="ours with a dense + tanh layer, as BERT's pooler")
    parser.add_argument("--pretrained-pooler", action="store_true",
                        help="ours with dense + tanh started from the checkpoint's pooler (pooler_init = checkpoint), "
                             "as BertForSequenceClassification")
    parser.add_argument("--per-parameter-clipping", action="store_true",
                        help="ours with thinc's Adam.v1 (each parameter clipped on its own) instead of GlobalClipAdam")
    parser.add_argument("--encoder", type=Path, default=None,
                        help="a local encoder folder (e.g. the pretrained all-MiniLM-L6-v2); made with init-encoder if absent")
    parser.add_argument("--save-pipeline", type=Path, default=None, help="write our trained pipeline (last seed) here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/textcat_bench"))
    parser.add_argument("--systems", nargs="+", choices=["ours", "hf"], default=["ours", "hf"],
                        help="run only these (e.g. two processes, one per core); the HF side is seeded, so its "
                             "figure from an earlier run of the same command stands")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train_all = read_glue(args.task, "train")
    dev = read_glue(args.task, "dev")
    train = subsample(train_all, args.n_train, seed=0)
    encoder = args.encoder or make_encoder(train_all, args.workdir, args.task, args.size)
    origin = "given" if args.encoder else f"init-encoder '{args.size}' on the training text, random weights"
    print(f"{args.task}: {len(train)} of {len(train_all)} training examples, {len(dev)} dev; encoder {encoder} "
          f"({origin}); {args.steps} updates of {args.batch_size}, lr {args.lr}, {args.threads} torch thread(s); "
          f"ours: dense_tanh = {args.dense_tanh}, pretrained pooler = {args.pretrained_pooler}, "
          f"{'per-parameter' if args.per_parameter_clipping else 'global-norm'} clipping")
    systems = {"ours": ("bert_textcat (nlp.update)", train_ours), "hf": ("BertForSequenceClassification", train_baseline)}
    results: Dict[str, List[Dict[str, float]]] = {systems[key][0]: [] for key in args.systems}
    for seed in args.seeds:
        args.seed = seed
        plan = seeded_batches(len(train), args.batch_size, args.steps, seed)
        for name, run in (systems[key] for key in args.systems):
            result = run(encoder, train, dev, plan, args)
            results[name].append(result)
            print(f"  seed {seed} {name:32s} dev acc {result['accuracy']:.2f}  F1({POSITIVE}) {result['f1']:.2f}  "
                  f"train {result['train_s']:.0f}s")
    print(f"\n{'':32s} {'dev acc':>8s} {'F1':>8s}   (mean over seeds {args.seeds})")
    means = {}
    for name, runs in results.items():
        means[name] = {key: statistics.mean(run[key] for run in runs) for key in ("accuracy", "f1")}
        print(f"{name:32s} {means[name]['accuracy']:8.2f} {means[name]['f1']:8.2f}")
    if len(means) == 2:
        ours, base = means.values()
        print(f"{'ours - baseline':32s} {ours['accuracy'] - base['accuracy']:+8.2f} {ours['f1'] - base['f1']:+8.2f}")
    print("\nReproduce: nice -n 10 python bench/textcat_parity.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
