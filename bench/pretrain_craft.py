"""Domain adaptation on CRAFT: held-out perplexity of a tiny encoder before and after.

Stage 1 makes the starting point, offline: a tiny BERT pretrained from scratch on
general-domain English from ../shared/data (SQuAD's Wikipedia paragraphs, CoNLL-2003
Reuters news, MRPC and RTE sentences), vocabulary included, saved with its MLM head.

Stage 2 is what is measured: ``spacy-bert-tasks pretrain`` adapts that encoder to the
CRAFT articles of the official train and dev lists, for a fixed step budget, and
reports MLM perplexity on the articles of ``ids/craft-ids-test.txt`` (held out,
fixed masks) before and after. The script builds the text files, runs both commands
(printed, so they can be rerun as they are), and prints the figures.

    python bench/pretrain_craft.py --work-dir /tmp/craft-bench
"""
import argparse
import csv
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_craft_split(craft_dir: Path, out_dir: Path) -> None:
    """train.txt (train + dev ids) and test.txt (test ids): paragraphs per line, a blank line between articles."""
    for name, lists in (("train", ["train", "dev"]), ("test", ["test"])):
        ids = [line.strip() for split in lists for line in (craft_dir / "ids" / f"craft-ids-{split}.txt").read_text().split()]
        docs = []
        for pmid in sorted(ids, key=int):
            path = craft_dir / "articles" / f"{pmid}.txt"
            if path.exists():  # five articles without reuse terms were removed from the copy
                paragraphs = [re.sub(r"\s+", " ", block).strip() for block in path.read_text(encoding="utf8").split("\n")]
                docs.append("\n".join(p for p in paragraphs if p))
        (out_dir / f"craft-{name}.txt").write_text("\n\n".join(docs) + "\n", encoding="utf8")
        print(f"craft-{name}.txt: {len(docs)} articles of {len(ids)} listed")


def write_general_text(data_dir: Path, out_path: Path) -> None:
    """General-domain documents: Wikipedia (SQuAD), news (CoNLL-2003), MRPC and RTE pairs."""
    docs: List[List[str]] = []
    squad = json.loads((data_dir / "squad_v1.1" / "dev-v1.1.articles00-42.json").read_text(encoding="utf8"))
    for article in squad["data"]:
        docs.append([" ".join(p["context"].split()) for p in article["paragraphs"]])
    doc: List[str] = []
    sentence: List[str] = []
    for line in (data_dir / "conll2003" / "train.txt").read_text(encoding="utf8").splitlines():
        if line.startswith("-DOCSTART-"):
            if doc:
                docs.append(doc)
            doc = []
        elif not line.strip():
            if sentence:
                doc.append(" ".join(sentence))
            sentence = []
        else:
            sentence.append(line.split()[0])
    docs.append(doc + ([" ".join(sentence)] if sentence else []))
    for path, columns in ((data_dir / "mrpc" / "train.tsv", (3, 4)), (data_dir / "rte" / "train.tsv", (1, 2))):
        with path.open(encoding="utf-8-sig") as file_:
            rows = list(csv.reader(file_, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
        docs.extend([row[c] for c in columns] for row in rows if len(row) > max(columns))
    text = "\n\n".join("\n".join(doc) for doc in docs if doc) + "\n"
    out_path.write_text(text, encoding="utf8")
    print(f"{out_path.name}: {len(docs)} documents, {len(text) / 1e6:.1f} MB")


def run(command: List[str]) -> Tuple[float, float]:
    """Run a command; return its wall time and CPU time (user + system), in seconds."""
    print("\n$ " + " ".join(shlex.quote(part) for part in command), flush=True)
    start, usage = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.time() - start, (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/pretrain-craft-bench"))
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--general-steps", type=int, default=1500, help="stage 1 budget (the starting point)")
    parser.add_argument("--adapt-steps", type=int, default=1500, help="stage 2 budget (what is measured)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--objective", default="mlm", choices=["mlm", "wwm", "span"])
    parser.add_argument("--extend-vocab", type=int, default=0, help="stage 2: add up to N CRAFT words to the vocabulary")
    parser.add_argument("--skip-general", action="store_true", help="reuse stage 1's encoder from an earlier run")
    parser.add_argument("--encoder", type=Path, default=None,
                        help="adapt this local encoder instead of stage 1's (e.g. the pretrained all-MiniLM-L6-v2); "
                             "a checkpoint without an MLM head starts the head fresh, so its 'before' perplexity is "
                             "that of a random head: use --control to separate the head's learning from the domain's")
    parser.add_argument("--adapt-lr", type=float, default=2e-4, help="stage 2 learning rate")
    parser.add_argument("--control", action="store_true",
                        help="also continue stage 1 on general text for the same budget, measured on the CRAFT test articles")
    args = parser.parse_args()
    torch_threads = os.environ.get("OMP_NUM_THREADS", "all cores")
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    write_craft_split(args.data_dir / "craft_biomed", work)
    cli = [sys.executable, "-m", "spacy_bert_tasks", "pretrain"]
    common = ["--batch-size", str(args.batch_size), "--max-seq-length", "128", "--save-steps", "500",
              "--logging-steps", "100", "--no-progress", "--overwrite"]
    general = args.encoder or work / "general-tiny"
    general_time = general_cpu = None
    if not args.skip_general and args.encoder is None:
        write_general_text(args.data_dir, work / "general.txt")
        general_time, general_cpu = run([
            *cli, str(work / "general.txt"), "--size", "tiny", "--vocab-size", "8000", "--output", str(general),
            "--with-head", "--max-steps", str(args.general_steps), "--lr", "5e-4", "--eval-fraction", "0.02", *common,
        ])
    start_name = args.encoder.name if args.encoder else "tiny"
    adapted = work / (f"craft-{start_name}-{args.objective}" + (f"-vocab{args.extend_vocab}" if args.extend_vocab else ""))
    adapt_time, adapt_cpu = run([
        *cli, str(work / "craft-train.txt"), "--encoder", str(general), "--eval-file", str(work / "craft-test.txt"),
        "--output", str(adapted), "--max-steps", str(args.adapt_steps), "--lr", str(args.adapt_lr),
        "--objective", args.objective, "--extend-vocab", str(args.extend_vocab), "--eval-steps", "500", *common,
    ])

    control = None
    if args.control:
        control_dir = work / f"general-continued-{start_name}"
        if not (work / "general.txt").exists():
            write_general_text(args.data_dir, work / "general.txt")
        run([
            *cli, str(work / "general.txt"), "--encoder", str(general), "--eval-file", str(work / "craft-test.txt"),
            "--output", str(control_dir), "--max-steps", str(args.adapt_steps), "--lr", str(args.adapt_lr),
            "--objective", args.objective, "--eval-steps", "500", *common,
        ])
        control = json.loads((control_dir / "pretrain_metrics.json").read_text())

    print()
    if general_time is not None:
        stage1 = json.loads((general / "pretrain_metrics.json").read_text())
        print(f"stage 1, general tiny from scratch: {stage1['steps']} steps in {general_time / 60:.1f} min "
              f"({general_cpu / 60:.1f} CPU min); "
              f"general held-out perplexity {stage1['perplexity_before']:.1f} -> {stage1['perplexity_after']:.1f}")
    stage2 = json.loads((adapted / "pretrain_metrics.json").read_text())
    before, after = stage2["perplexity_before"], stage2["perplexity_after"]
    print(f"stage 2, CRAFT adaptation ({args.objective}): {stage2['steps']} steps in {adapt_time / 60:.1f} min "
          f"({adapt_cpu / 60:.1f} CPU min, torch threads {torch_threads}); "
          f"{stage2['eval_sequences']} held-out sequences from the test articles")
    print(f"  held-out CRAFT perplexity: {before:.2f} -> {after:.2f} ({(after / before - 1) * 100:+.1f}%); "
          f"masked-token accuracy {stage2['masked_accuracy_before']:.1%} -> {stage2['masked_accuracy_after']:.1%}")
    if control is not None:
        print(f"  control, same budget on general text instead: {control['perplexity_before']:.2f} -> "
              f"{control['perplexity_after']:.2f} ({(control['perplexity_after'] / before - 1) * 100:+.1f}%); "
              f"masked-token accuracy {control['masked_accuracy_after']:.1%}")
        print(f"  adaptation against the control: perplexity {after / control['perplexity_after']:.2f}x the control's")
    if stage2["vocab_added"]:
        print(f"  {len(stage2['vocab_added'])} words added to the vocabulary, e.g. {', '.join(stage2['vocab_added'][:8])}")
    command = [f"OMP_NUM_THREADS={torch_threads}"] if "OMP_NUM_THREADS" in os.environ else []
    command += ["python", "bench/pretrain_craft.py", "--work-dir", str(work), "--general-steps", str(args.general_steps),
               "--adapt-steps", str(args.adapt_steps), "--batch-size", str(args.batch_size),
               "--objective", args.objective, "--extend-vocab", str(args.extend_vocab), "--adapt-lr", str(args.adapt_lr)]
    command += ["--encoder", str(args.encoder)] if args.encoder else []
    command += ["--skip-general"] if args.skip_general else []
    command += ["--control"] if args.control else []
    print("reproduce: " + " ".join(shlex.quote(part) for part in command))


if __name__ == "__main__":
    main()
