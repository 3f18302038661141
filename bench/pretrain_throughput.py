"""MLM pretraining throughput: a stock run_mlm.py-style Trainer run against ours.

Both sides use Hugging Face Trainer with the same BERT config, batch, sequence
length, packed text, optimiser and seed:

- stock: ``BertForMaskedLM`` + ``DataCollatorForLanguageModeling`` (15%, 80/10/10);
  the head projects every position onto the vocabulary.
- ours: ``spacy_bert_tasks``' ``MaskingCollator`` + the masked-positions
  ``BertForMaskedLM`` (``pretraining/model.py``); the head runs only at the selected
  positions, as in the original BERT code.

Runs alternate (stock, ours, stock, ours, ...) so that load from other processes hits
both alike; each run times ``--steps`` optimiser steps after ``--warmup`` steps
(data collation included). The figures are medians over all timed steps of all
repeats. It also checks that the two losses agree on one batch.

    python bench/pretrain_throughput.py --sizes tiny small
"""
import argparse
import shlex
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging

from spacy_bert_tasks.pretraining.collators import MaskingCollator
from spacy_bert_tasks.pretraining.init_encoder import ENCODER_SIZES, init_encoder
from spacy_bert_tasks.pretraining.model import masked_positions_class
from spacy_bert_tasks.pretraining.sequences import pack_documents
from spacy_bert_tasks.pretraining.text import load_tokenized

DEFAULT_TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "craft_biomed" / "craft_paragraphs.txt"


class StepTimer(TrainerCallback):
    """Wall and process CPU time between the ends of consecutive optimiser steps."""

    def __init__(self) -> None:
        self.ends = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.ends = [(time.perf_counter(), time.process_time())]

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append((time.perf_counter(), time.process_time()))

    @property
    def durations(self):
        """(wall, cpu) seconds of each step."""
        return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(self.ends, self.ends[1:])]


def make_config(size: str, vocab_size: int, seq_len: int) -> BertConfig:
    dims = ENCODER_SIZES[size]
    return BertConfig(
        vocab_size=vocab_size,
        intermediate_size=4 * dims["hidden_size"],
        max_position_embeddings=max(512, seq_len),
        **dims,
    )


def time_run(variant, size, args, tokenizer, sequences, work_dir):
    config = make_config(size, args.vocab_size, args.seq_len)
    torch.manual_seed(0)
    if variant == "stock":
        model = BertForMaskedLM(config)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
        dataset = [{"input_ids": eg["input_ids"].tolist()} for eg in sequences]
    else:
        model = masked_positions_class(BertForMaskedLM)(config)
        collator = MaskingCollator(tokenizer)
        dataset = sequences
    training_args = TrainingArguments(
        output_dir=str(work_dir / f"{size}-{variant}"),
        max_steps=args.warmup + args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=1e-4,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_pin_memory=False,
        seed=0,
        use_cpu=args.device == "cpu",
    )
    timer = StepTimer()
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset, data_collator=collator, callbacks=[timer])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return timer.durations[args.warmup:]


def loss_difference(size, args, tokenizer, sequences) -> float:
    """|stock loss - our loss| on one batch, same weights, dropout off."""
    config = make_config(size, args.vocab_size, args.seq_len)
    torch.manual_seed(0)
    ours = masked_positions_class(BertForMaskedLM)(config).eval()
    stock = BertForMaskedLM(config).eval()
    stock.load_state_dict(ours.state_dict())
    batch = MaskingCollator(tokenizer)([sequences[i] for i in range(args.batch_size)])
    with torch.no_grad():
        return abs(stock(**batch).loss.item() - ours(**batch).loss.item())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="text to pack into sequences")
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=list(ENCODER_SIZES))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=30522, help="model vocabulary (BERT's 30522 by default)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant, alternating")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", choices=["cpu", "auto"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()

    with tempfile.TemporaryDirectory() as tmp:
        work_dir = Path(tmp)
        # A WordPiece vocabulary trained on the text, up to --vocab-size pieces; the model
        # has --vocab-size rows either way (the projection cost is what is measured).
        tokenizer = AutoTokenizer.from_pretrained(
            init_encoder([args.text], work_dir / "tokenizer", size="tiny", vocab_size=args.vocab_size)
        )
        text = load_tokenized(args.text, tokenizer)
        packed = pack_documents(
            text, range(text.n_docs), max_seq_length=args.seq_len,
            cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id,
        )
        sequences = [packed[i] for i in range(len(packed)) if len(packed[i]["input_ids"]) == args.seq_len]
        tokens_per_step = args.batch_size * args.seq_len
        print(f"text: {args.text} ({len(sequences)} sequences of {args.seq_len}); tokenizer {len(tokenizer)} pieces, "
              f"model vocabulary {args.vocab_size}; batch {args.batch_size}; torch threads {args.threads}")
        rows = []
        for size in args.sizes:
            durations = {"stock": [], "ours": []}
            for repeat in range(args.repeats):
                for variant in ("stock", "ours"):
                    steps = time_run(variant, size, args, tokenizer, sequences, work_dir)
                    durations[variant].extend(steps)
                    print(f"  {size} {variant} repeat {repeat + 1}: median step "
                          f"{statistics.median(wall for wall, _ in steps):.3f}s wall, "
                          f"{statistics.median(cpu for _, cpu in steps):.3f}s CPU", flush=True)
            wall = {v: statistics.median(w for w, _ in durations[v]) for v in durations}
            cpu = {v: statistics.median(c for _, c in durations[v]) for v in durations}
            diff = loss_difference(size, args, tokenizer, sequences)
            rows.append((size, wall, cpu, diff))

    print()
    print(f"{'size':<6} {'stock s/step':>12} {'ours s/step':>12} {'stock tok/s':>12} {'ours tok/s':>11} "
          f"{'speed-up':>9} {'CPU s/step stock/ours':>22} {'CPU ratio':>10} {'|loss diff|':>12}")
    for size, wall, cpu, diff in rows:
        print(f"{size:<6} {wall['stock']:>12.3f} {wall['ours']:>12.3f} {tokens_per_step / wall['stock']:>12.0f} "
              f"{tokens_per_step / wall['ours']:>11.0f} {wall['stock'] / wall['ours']:>8.2f}x "
              f"{cpu['stock']:>10.3f} / {cpu['ours']:<9.3f} {cpu['stock'] / cpu['ours']:>9.2f}x {diff:>12.2e}")
    print("(tokens/s and speed-up from median wall time per step; CPU: process CPU seconds per step)")
    print()
    command = [
        "python", "bench/pretrain_throughput.py", "--text", str(args.text), "--sizes", *args.sizes,
        "--batch-size", args.batch_size, "--seq-len", args.seq_len, "--vocab-size", args.vocab_size,
        "--steps", args.steps, "--warmup", args.warmup, "--repeats", args.repeats, "--threads", args.threads,
        "--device", args.device,
    ]
    print("reproduce: " + " ".join(shlex.quote(str(arg)) for arg in command))


if __name__ == "__main__":
    main()
