"""Accuracy parity: bert_qa trained with nlp.update vs a plain BertForQuestionAnswering.

Both start from the same encoder folder, see the same questions in the same
order (one batch = the same ``--batch-size`` questions), take the same number
of updates with the same learning-rate schedule (linear warm-up and decay),
Adam(W) without weight decay and gradient clipping at 1.0. Windows:
``--max-length`` pieces with ``--stride`` overlap (run_qa.py's 384/128).

(a) ours: ``transformer`` (spacy_bert_tasks.Encoder.v1) + ``bert_qa``, trained
    with ``nlp.update``; answers are ``doc._.answer``.
(b) baseline: ``transformers.BertForQuestionAnswering``, run_qa.py-style
    preprocessing (offset mapping, overflowing windows, [CLS] targets for
    windows without the answer) and post-processing (n-best starts/ends over
    all windows, max answer length), written below; plain PyTorch loop.

Both are scored with the official SQuAD normalisation (spacy_bert_tasks.scoring),
max over the gold answers. Data: ../shared/data/squad_v1.1 read in place,
split by article (35 train / 8 dev). The encoder is made by
``spacy-bert-tasks init-encoder`` on the training contexts unless ``--encoder``
names one (e.g. an MLM-pretrained one: from random weights absolute scores are
low; the comparison is what counts). Both clip the step's global gradient norm
at 1.0 (ours with configs/qa.cfg's GlobalClipAdam). Differences that remain: the
head's initialisation (thinc Linear vs normal(0.02)), and bert_qa masks
question/padding positions out of the softmax.

Run: nice -n 10 python bench/qa_parity.py --steps 300 --dev-questions 500
"""
import argparse
import math
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qa_common import SQUAD, Question, load_split, make_encoder, predict_answers, squad_example, subsample  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SQUAD)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/qa_bench"))
    parser.add_argument("--encoder", type=Path, default=None, help="encoder folder; made with init-encoder if absent")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=float, default=0.1, help="fraction of the steps")
    parser.add_argument("--dev-questions", type=int, default=500, help="0: all dev questions")
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--n-best-size", type=int, default=20)
    parser.add_argument("--max-answer-length", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", nargs="+", choices=["ours", "hf"], default=["ours", "hf"],
                        help="run only these (two processes, one per core, halve the wall time)")
    return parser.parse_args()


def progress(name: str, step: int, start: float, args: argparse.Namespace) -> None:
    """One line every 50 updates: a long run says how far it is."""
    if (step + 1) % 50 == 0 or step + 1 == args.steps:
        elapsed = time.perf_counter() - start
        print(f"  {name}: update {step + 1}/{args.steps}, {elapsed:.0f}s "
              f"(~{elapsed / (step + 1) * (args.steps - step - 1):.0f}s left)", file=sys.stderr, flush=True)


def lr_at(step: int, args: argparse.Namespace) -> float:
    warmup = max(1, int(args.warmup * args.steps))
    if step < warmup:
        return args.lr * step / warmup
    return args.lr * max(0.0, (args.steps - step) / max(1, args.steps - warmup))


def batches(train: List[Question], args: argparse.Namespace) -> List[List[Question]]:
    order = subsample(train, 0, args.seed)
    needed = args.steps * args.batch_size
    order = (order * math.ceil(needed / len(order)))[:needed]
    return [order[i : i + args.batch_size] for i in range(0, needed, args.batch_size)]


# (a) bert_qa -----------------------------------------------------------------


def train_ours(encoder: Path, plan: List[List[Question]], dev: List[Question], args) -> Dict:
    import spacy
    import spacy_bert_tasks  # noqa: F401
    from spacy_bert_tasks.fine_tuning import configure_global_clip_adam

    spacy.util.fix_random_seed(args.seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {
        "@architectures": "spacy_bert_tasks.Encoder.v1", "name": str(encoder),
        "max_length": args.max_length, "stride": args.stride, "max_question_length": 64}})
    nlp.add_pipe("bert_qa", config={"n_best_size": args.n_best_size, "max_answer_length": args.max_answer_length,
                                    "allow_no_answer": False})

    examples = [[squad_example(nlp, q) for q in batch] for batch in plan]
    nlp.initialize(lambda: examples[0])
    # configs/qa.cfg's optimizer: the step clipped by its global norm, as clip_grad_norm_ does.
    optimizer = configure_global_clip_adam(0.0, max_grad_norm=1.0, L2=0.0, use_averages=False)
    start = time.perf_counter()
    losses = []
    for step, batch in enumerate(examples):
        optimizer.learn_rate = lr_at(step, args)
        losses.append(nlp.update(batch, sgd=optimizer, drop=0.0)["bert_qa"])
        progress("bert_qa", step, start, args)
    train_s = time.perf_counter() - start
    predictions = predict_answers(nlp, dev)
    return {"predictions": predictions, "train_s": train_s, "last_loss": float(numpy.mean(losses[-20:]))}


# (b) BertForQuestionAnswering, run_qa.py-style --------------------------------


def hf_features(tokenizer, questions: List[Question], args, with_targets: bool) -> Dict:
    """Tokenise (question, context) pairs into overflowing windows, as run_qa.py does."""
    enc = tokenizer(
        [q.question.lstrip() for q in questions], [q.context for q in questions],
        truncation="only_second", max_length=args.max_length, stride=args.stride,
        return_overflowing_tokens=True, return_offsets_mapping=True, padding=False,
    )
    features = {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
                "example": list(enc["overflow_to_sample_mapping"]), "offsets": []}
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        seq_ids = enc.sequence_ids(i)
        q = questions[features["example"][i]]
        features["offsets"].append([o if seq_ids[k] == 1 else None for k, o in enumerate(offsets)])
        if not with_targets:
            continue
        start_char, text = q.answers[0]
        end_char = start_char + len(text)
        first = seq_ids.index(1)
        last = len(seq_ids) - 1 - seq_ids[::-1].index(1)
        if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
            starts.append(0)
            ends.append(0)
            continue
        s = first
        while s <= last and offsets[s][0] <= start_char:
            s += 1
        e = last
        while e >= first and offsets[e][1] >= end_char:
            e -= 1
        starts.append(s - 1)
        ends.append(e + 1)
    features["start_positions"], features["end_positions"] = starts, ends
    return features


def pad(rows: List[List[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [0] * (width - len(r)) for r in rows])


def train_hf(encoder: Path, plan: List[List[Question]], dev: List[Question], args) -> Dict:
    from transformers import AutoTokenizer, BertForQuestionAnswering

    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = BertForQuestionAnswering.from_pretrained(encoder, use_safetensors=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, eps=1e-8)
    model.train()
    start = time.perf_counter()
    losses = []
    for step, batch in enumerate(plan):
        f = hf_features(tokenizer, batch, args, with_targets=True)
        ids = pad(f["input_ids"])
        out = model(input_ids=ids, token_type_ids=pad(f["token_type_ids"]), attention_mask=(ids != 0).long(),
                    start_positions=torch.tensor(f["start_positions"]), end_positions=torch.tensor(f["end_positions"]))
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args)
        optimizer.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(out.loss.item())
        progress("BertForQuestionAnswering", step, start, args)
    train_s = time.perf_counter() - start
    model.eval()
    predictions = []
    with torch.inference_mode():
        for i in range(0, len(dev), 64):
            chunk = dev[i : i + 64]
            f = hf_features(tokenizer, chunk, args, with_targets=False)
            ids = pad(f["input_ids"])
            out = model(input_ids=ids, token_type_ids=pad(f["token_type_ids"]), attention_mask=(ids != 0).long())
            predictions.extend(postprocess(chunk, f, out.start_logits.numpy(), out.end_logits.numpy(), args))
    return {"predictions": predictions, "train_s": train_s, "last_loss": float(numpy.mean(losses[-20:]))}


def postprocess(questions: List[Question], f: Dict, start_logits, end_logits, args) -> List[str]:
    """run_qa.py's post-processing (SQuAD v1): the best valid span over all windows."""
    best: Dict[int, tuple] = {}
    for i, example in enumerate(f["example"]):
        offsets = f["offsets"][i]
        n = len(offsets)
        s_log, e_log = start_logits[i][:n], end_logits[i][:n]
        top_s = numpy.argsort(s_log)[-1 : -args.n_best_size - 1 : -1]
        top_e = numpy.argsort(e_log)[-1 : -args.n_best_size - 1 : -1]
        for s in top_s:
            for e in top_e:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > args.max_answer_length:
                    continue
                score = float(s_log[s] + e_log[e])
                if example not in best or score > best[example][0]:
                    best[example] = (score, offsets[s][0], offsets[e][1])
    return [q.context[best[i][1] : best[i][2]] if i in best else "" for i, q in enumerate(questions)]


def main() -> None:
    from spacy_bert_tasks.scoring import squad_scores

    args = parse_args()
    torch.set_num_threads(args.threads)
    train, dev = load_split(args.data)
    dev = subsample(dev, args.dev_questions, args.seed)
    encoder = args.encoder or make_encoder(train, args.workdir, args.size, args.vocab_size)
    plan = batches(train, args)
    golds = [[text for _, text in q.answers] for q in dev]
    print(f"SQuAD v1.1 by article: {len(train)} train questions (35 articles), {len(dev)} dev questions "
          f"(of the last 8 articles); encoder {encoder} "
          f"({'given' if args.encoder else args.size + ', init-encoder, random weights'})")
    print(f"{args.steps} updates x {args.batch_size} questions, lr {args.lr} (warm-up {args.warmup:.0%}, linear decay), "
          f"windows {args.max_length}/{args.stride}, {args.threads} threads")
    results = {}
    systems = {"ours": ("bert_qa (nlp.update)", train_ours), "hf": ("BertForQuestionAnswering", train_hf)}
    for name, run in (systems[key] for key in args.systems):
        result = run(encoder, plan, dev, args)
        scores = squad_scores(result["predictions"], golds)
        results[name] = scores
        print(f"{name:26s} EM {100 * scores['exact']:6.2f}  F1 {100 * scores['f1']:6.2f}  "
              f"train {result['train_s']:7.1f}s  loss(last 20) {result['last_loss']:.3f}", flush=True)
    if len(results) == 2:
        ours, base = results["bert_qa (nlp.update)"], results["BertForQuestionAnswering"]
        print(f"difference (ours - baseline): EM {100 * (ours['exact'] - base['exact']):+.2f}  "
              f"F1 {100 * (ours['f1'] - base['f1']):+.2f} points")
    print("reproduce: nice -n 10 python bench/qa_parity.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
