"""Accuracy parity: bert_ner against a plain PyTorch ``BertForTokenClassification`` on CoNLL-2003.

Both systems start from the same encoder folder, see the same training
sentences in the same batches (``--batch-size`` sentences, seeded order), take
the same number of updates with the same learning rate (linear warm-up over
10% of the steps, then linear decay), weight decay 0.01, gradient clipping at
1.0 and dropout 0.1 before the classifier:

- (a) ours: ``transformer`` + ``bert_ner`` trained with ``nlp.update`` and
  ``spacy_bert_tasks.GlobalClipAdam.v1`` (thinc's Adam, the step clipped by
  its global norm as torch does), first-piece alignment;
  ``--per-parameter-clipping`` uses thinc's plain ``Adam.v1`` instead;
- (b) Hugging Face: ``BertForTokenClassification`` (a fresh classifier on the
  same encoder weights) trained with ``torch.optim.AdamW``; labels on each
  word's first piece, -100 elsewhere.

Both are scored on the CoNLL-2003 valid sentences with the same function,
spaCy's entity scorer (exact spans and labels, micro-averaged). (b)'s tags
are the per-word argmax read as spans the conlleval way (an ``I-X`` that
opens an entity starts one); ours are printed with Viterbi decoding (the
default) and with the same argmax reading.

The encoder is made with ``spacy-bert-tasks init-encoder`` on the training
sentences: random weights, no MLM pretraining (the machine is small), so the
absolute F1 is far below a pretrained BERT's; the comparison is what counts.

Run: nice -n 10 python bench/ner_parity.py --size tiny --steps 800 --lr 1e-3
"""
import argparse
import sys
import time
from pathlib import Path
from typing import List, Sequence

import numpy
import torch
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import fix_random_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ner_common import (  # noqa: E402
    CONLL, copy_tokens, encoder_command, entity_labels, first_piece_labels, iob2_tags, make_encoder, make_ner_pipeline,
    read_conll, save_token_classifier, subsample, train_ner, training_plan,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=CONLL)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ner_bench"))
    parser.add_argument("--encoder", type=Path, default=None,
                        help="a local encoder folder, e.g. the pretrained all-MiniLM-L6-v2 "
                             "(models/all-MiniLM-L6-v2); made with init-encoder --size SIZE if absent")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--save-pipeline", type=Path, default=None, help="write our trained pipeline here")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-sentences", type=int, default=0, help="0: all 14,041")
    parser.add_argument("--dev-sentences", type=int, default=0, help="0: all 3,250")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", nargs="+", choices=["ours", "hf"], default=["ours", "hf"],
                        help="run only these (e.g. two processes, one per core); the HF side is seeded, so its "
                             "figure from an earlier run of the same command stands")
    parser.add_argument("--per-parameter-clipping", action="store_true",
                        help="train ours with thinc's Adam.v1 (each parameter clipped on its own) instead of GlobalClipAdam")
    return parser.parse_args()


def train_ours(encoder: Path, labels: List[str], plan: List[List[Doc]], args):
    fix_random_seed(args.seed)
    nlp = make_ner_pipeline(encoder, labels)
    return train_ner(nlp, plan, args.lr, per_parameter_clipping=args.per_parameter_clipping)


def train_hf(classifier: Path, tags: List[str], plan: List[List[Doc]], args):
    from transformers import AutoTokenizer, BertForTokenClassification, get_linear_schedule_with_warmup

    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(classifier)
    model = BertForTokenClassification.from_pretrained(classifier, use_safetensors=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, eps=1e-8)
    scheduler = get_linear_schedule_with_warmup(optimizer, args.steps // 10, args.steps)
    index = {tag: i for i, tag in enumerate(tags)}
    model.train()
    for batch in plan:
        encoded = tokenizer([[t.text for t in doc] for doc in batch], is_split_into_words=True, padding=True,
                            return_tensors="pt")
        loss = model(**encoded, labels=first_piece_labels(encoded, batch, index)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return tokenizer, model.eval()


def hf_predict(tokenizer, model, docs: Sequence[Doc], tags: List[str]) -> List[numpy.ndarray]:
    """Per doc, the (n_words, n_tags) probabilities at each word's first piece."""
    out: List[numpy.ndarray] = [None] * len(docs)
    order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            rows = order[start : start + 64]
            encoded = tokenizer([[t.text for t in docs[i]] for i in rows], is_split_into_words=True, padding=True,
                                return_tensors="pt")
            probs = model(**encoded).logits.softmax(-1).numpy()
            for r, i in enumerate(rows):
                first = {}
                for position, word in enumerate(encoded.word_ids(r)):
                    if word is not None and word not in first:
                        first[word] = position
                doc_probs = numpy.zeros((len(docs[i]), len(tags)), dtype="f")
                doc_probs[:, 0] = 1.0  # a word with no piece is O
                for word, position in first.items():
                    doc_probs[word] = probs[r, position]
                out[i] = doc_probs
    return out


def with_ents(doc: Doc, path: numpy.ndarray, tags: List[str]) -> Doc:
    """A copy of ``doc``'s tokens with the entities of a valid IOB2 path."""
    from spacy_bert_tasks.tagging import tags_to_spans

    predicted = copy_tokens(doc, doc.vocab)
    predicted.ents = [Span(predicted, s, e, label=label) for s, e, label in tags_to_spans([tags[i] for i in path], "iob2")]
    return predicted


def score(predicted: List[Doc], gold: List[Doc]) -> dict:
    return get_ner_prf([Example(p, g) for p, g in zip(predicted, gold)])


def main() -> None:
    from spacy_bert_tasks.tagging import argmax_repair

    args = parse_args()
    torch.set_num_threads(args.threads)
    train = read_conll(args.data / "train.txt")
    dev = read_conll(args.data / "valid.txt")
    if args.dev_sentences > 0:
        dev = dev[: args.dev_sentences]
    encoder = args.encoder or make_encoder(train, args.workdir, args.size)
    train = subsample(train, args.train_sentences, seed=args.seed)
    labels = entity_labels(train)
    tags = iob2_tags(labels)
    name = encoder.name if args.encoder else args.size
    classifier = save_token_classifier(encoder, tags, args.workdir / f"classifier-{name}", seed=args.seed)
    plan = training_plan(train, args.steps, args.batch_size, args.seed)
    if args.encoder:
        print(f"encoder {encoder}")
    else:
        print(f"{args.size} encoder, random weights ({encoder_command(args.workdir, args.size)})")
    print(f"{args.steps} updates of {args.batch_size} sentences from {len(train)} training sentences, lr {args.lr}; "
          f"dev: {len(dev)} valid sentences, {sum(len(d.ents) for d in dev)} entities")

    rows = []
    if "ours" in args.systems:
        start = time.perf_counter()
        nlp = train_ours(encoder, labels, plan, args)
        ours_time = time.perf_counter() - start
        if args.save_pipeline:
            nlp.to_disk(args.save_pipeline)
        ner = nlp.get_pipe("bert_ner")
        ours_viterbi = score(list(nlp.pipe((copy_tokens(doc, nlp.vocab) for doc in dev), batch_size=64)), dev)
        ner.cfg["decoding"] = "argmax"
        ours_argmax = score(list(nlp.pipe((copy_tokens(doc, nlp.vocab) for doc in dev), batch_size=64)), dev)
        rows += [("ours, viterbi (default)", ours_viterbi, ours_time), ("ours, argmax", ours_argmax, ours_time)]
    if "hf" in args.systems:
        start = time.perf_counter()
        tokenizer, model = train_hf(classifier, tags, plan, args)
        hf_time = time.perf_counter() - start
        hf_probs = hf_predict(tokenizer, model, dev, tags)
        hf_scores = score([with_ents(doc, argmax_repair(p, tags), tags) for doc, p in zip(dev, hf_probs)], dev)
        rows.append(("HF BertForTokenClassification", hf_scores, hf_time))
    print(f"\n{'system':<32}{'P':>8}{'R':>8}{'F1':>8}   train wall s")
    for name, scores, seconds in rows:
        print(f"{name:<32}{scores['ents_p'] * 100:8.2f}{scores['ents_r'] * 100:8.2f}{scores['ents_f'] * 100:8.2f}   {seconds:.0f}")
    if len(rows) == 3:
        gap = (ours_viterbi["ents_f"] - hf_scores["ents_f"]) * 100
        print(f"\nours (viterbi) - HF: {gap:+.2f} F1 points   (target: >= -0.5)")
        print(f"ours (argmax) - HF: {(ours_argmax['ents_f'] - hf_scores['ents_f']) * 100:+.2f} F1 points")
        per_type = "  ".join(f"{label} {ours_viterbi['ents_per_type'][label]['f'] * 100:.1f}/"
                             f"{hf_scores['ents_per_type'].get(label, {'f': 0.0})['f'] * 100:.1f}" for label in labels)
        print(f"per type F1, ours/HF: {per_type}")
    source = f"--encoder {args.encoder}" if args.encoder else f"--size {args.size}"
    print(f"\nReproduce: nice -n 10 python bench/ner_parity.py {source} --steps {args.steps} --lr {args.lr} "
          f"--batch-size {args.batch_size} --train-sentences {args.train_sentences} --dev-sentences {args.dev_sentences} "
          f"--threads {args.threads} --seed {args.seed} --systems {' '.join(args.systems)}"
          + (" --per-parameter-clipping" if args.per_parameter_clipping else ""))


if __name__ == "__main__":
    main()
