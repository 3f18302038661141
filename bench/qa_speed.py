"""Inference speed of bert_qa on CPU, in questions per second, against two baselines.

- raw forward: the Hugging Face tokenizer cutting the same (question, context)
  windows (``--max-length``/``--stride``, run_qa.py's 384/128), in the same
  batches of ``--batch-size`` questions as ours; each batch's windows sorted
  by length and run through the bare encoder (``AutoModel``) in chunks of at
  most ``--max-batch-tokens`` padded pieces, under ``torch.inference_mode``.
  No answer is decoded: this is the floor bert_qa's overhead is measured on.
- ``transformers.pipeline("question-answering")`` on the same weights (a
  ``BertForQuestionAnswering`` folder saved from the encoder), ``batch_size``
  as ours, top-1 answers.
- ours: ``answer_questions(nlp, pairs)`` with ``transformer`` + ``bert_qa``,
  from strings to ``doc._.answer`` (spaCy tokenisation, windows, head, n-best
  decoding included). "our encoder only" is the same pipeline with bert_qa
  disabled: the difference is what the head and the decoding cost.

Encoders are made with ``spacy-bert-tasks init-encoder`` on the SQuAD training
contexts (random weights; speed does not depend on them). Questions: a seeded
sample of the dev articles of ../shared/data/squad_v1.1. Each system runs
``--repeats`` times in turn, in one process; medians of the process's CPU
seconds are reported (wall time on a shared machine mostly measures the neighbours).

Run: nice -n 10 python bench/qa_speed.py --sizes tiny,small --questions 200
"""
import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from padding import pad_rows  # noqa: E402
from qa_common import SQUAD, Question, load_split, make_encoder, subsample  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SQUAD)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/qa_bench"))
    parser.add_argument("--sizes", default="tiny,small")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--max-batch-tokens", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def raw_forward(encoder: Path, args) -> Callable[[List[Question]], None]:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModel.from_pretrained(encoder, use_safetensors=True).eval()

    def run(questions: List[Question]) -> None:
        for i in range(0, len(questions), args.batch_size):
            run_batch(questions[i : i + args.batch_size])

    def run_batch(questions: List[Question]) -> None:
        enc = tokenizer([q.question for q in questions], [q.context for q in questions], truncation="only_second",
                        max_length=args.max_length, stride=args.stride, return_overflowing_tokens=True)
        ids, types = enc["input_ids"], enc["token_type_ids"]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        with torch.inference_mode():
            start = 0
            while start < len(order):
                width = len(ids[order[start]])  # the longest left: order is by decreasing length
                rows = order[start : start + max(1, args.max_batch_tokens // width)]
                start += len(rows)
                model(**pad_rows(ids, types, rows))

    return run


def hf_pipeline(encoder: Path, workdir: Path, args) -> Callable[[List[Question]], None]:
    from transformers import AutoTokenizer, BertForQuestionAnswering, pipeline

    folder = workdir / f"qa-{encoder.name}"
    if not (folder / "config.json").exists():
        torch.manual_seed(args.seed)
        BertForQuestionAnswering.from_pretrained(encoder, use_safetensors=True).save_pretrained(folder)
        AutoTokenizer.from_pretrained(encoder).save_pretrained(folder)
    qa = pipeline("question-answering", model=str(folder), tokenizer=str(folder), device=-1)

    def run(questions: List[Question]) -> None:
        qa(question=[q.question for q in questions], context=[q.context for q in questions],
           batch_size=args.batch_size, max_seq_len=args.max_length, doc_stride=args.stride,
           max_question_len=64, max_answer_len=30, top_k=1)

    return run


def ours(encoder: Path, args, *, head: bool = True) -> Callable[[List[Question]], None]:
    import spacy

    from spacy_bert_tasks import answer_questions

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {
        "@architectures": "spacy_bert_tasks.Encoder.v1", "name": str(encoder), "max_length": args.max_length,
        "stride": args.stride, "max_question_length": 64, "max_batch_tokens": args.max_batch_tokens}})
    nlp.add_pipe("bert_qa", config={"allow_no_answer": False})
    nlp.initialize()
    if not head:
        nlp.disable_pipe("bert_qa")

    def run(questions: List[Question]) -> None:
        for doc in answer_questions(nlp, [(q.question, q.context) for q in questions], batch_size=args.batch_size):
            doc._.answer  # noqa: B018  (read the answer, as a user would)

    return run


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    train, dev = load_split(args.data)
    questions = subsample(dev, args.questions, args.seed)
    print(f"{len(questions)} SQuAD dev questions (last 8 articles, seeded sample); windows {args.max_length}/"
          f"{args.stride}; batch {args.batch_size}; {args.threads} torch threads; {args.repeats} runs, median of CPU seconds")
    for size in args.sizes.split(","):
        encoder = make_encoder(train, args.workdir, size, args.vocab_size)
        systems: Dict[str, Callable] = {
            "raw forward": raw_forward(encoder, args),
            "HF pipeline": hf_pipeline(encoder, args.workdir, args),
            "bert_qa": ours(encoder, args),
            "our encoder only": ours(encoder, args, head=False),
        }
        for run in systems.values():  # warm-up
            run(questions[:8])
        times: Dict[str, List[float]] = {name: [] for name in systems}
        for _ in range(args.repeats):
            for name, run in systems.items():
                # CPU seconds of this process: on a shared machine, wall time mostly measures the neighbours.
                start = time.process_time()
                run(questions)
                times[name].append(time.process_time() - start)
        qps = {name: len(questions) / statistics.median(ts) for name, ts in times.items()}
        print(f"[{size}] " + "  ".join(f"{name}: {value:7.1f} q/s" for name, value in qps.items()))
        print(f"[{size}] head + decoding: {100 * (1 - qps['bert_qa'] / qps['our encoder only']):.0f}% of bert_qa's time")
        print(f"[{size}] bert_qa / raw forward = {qps['bert_qa'] / qps['raw forward']:.2f}  (target >= 0.85);  "
              f"bert_qa / HF pipeline = {qps['bert_qa'] / qps['HF pipeline']:.2f}  (target >= 1.3)", flush=True)
    print("reproduce: nice -n 10 python bench/qa_speed.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
