"""The Hugging Face side of joint training: one BertModel, a token head and a sequence head, losses summed.

Does a multi-task encoder lose accuracy whatever the library? This trains the
plain PyTorch recipe on bench/joint_parity.py's CoNLL-2003 and SST-2 batches
(same plans, same seeds): ``BertForSequenceClassification`` (SST-2, with the
checkpoint's pooler) and ``BertForTokenClassification`` (CoNLL, gold tag on each
word's first piece) share one ``BertModel``; an update sums the two losses
(``joint``) or takes one (``single-ner``, ``single-sst2``). ``joint-by-task``
shares the encoder but takes one update per task's batch, in turn (joint_parity.py's
``--schedule by-task``, configs/joint.cfg's batcher), so it makes twice the updates.
AdamW (weight decay 0.01), global-norm clipping at 1.0, linear warm-up over 10% then
decay.

    python bench/joint_hf.py --encoder $MINILM --steps 300 --variants joint single-ner single-sst2
    python bench/joint_parity.py --encoder $MINILM --steps 300 --tasks sst2 conll --dev-limit 400 --workdir /tmp/j300
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import seeded_batches  # noqa: E402
from joint_parity import entity_labels, load_tasks  # noqa: E402
from ner_common import first_piece_labels, iob2_tags  # noqa: E402
from ner_parity import hf_predict, score as ner_score, with_ents  # noqa: E402

# The tasks of each update, for each variant.
VARIANTS = {"joint": [("sst2", "conll")], "joint-by-task": [("sst2",), ("conll",)], "single-ner": [("conll",)],
            "single-sst2": [("sst2",)]}


def main() -> None:
    from transformers import AutoTokenizer, BertForSequenceClassification, BertForTokenClassification
    from transformers import get_linear_schedule_with_warmup

    from spacy_bert_tasks.tagging import argmax_repair

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8, help="docs of each task per update")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--dev-limit", type=int, default=400, help="dev docs per task (0: all)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_tasks(["sst2", "conll"], args.dev_limit)
    tags = iob2_tags(entity_labels(data["conll"][0]))
    index = {tag: i for i, tag in enumerate(tags)}
    # The same plans as joint_parity.py (task i of its TASKS order is seeded seed + i).
    plans = {"sst2": seeded_batches(len(data["sst2"][0]), args.batch_size, args.steps, args.seed),
             "conll": seeded_batches(len(data["conll"][0]), args.batch_size, args.steps, args.seed + 2)}
    tokenizer = AutoTokenizer.from_pretrained(args.encoder)
    for variant in args.variants:
        updates = [(step, tasks) for step in range(args.steps) for tasks in VARIANTS[variant]]
        evaluated = {task for tasks in VARIANTS[variant] for task in tasks}
        torch.manual_seed(args.seed)
        classifier = BertForSequenceClassification.from_pretrained(args.encoder, num_labels=2)
        tagger = BertForTokenClassification.from_pretrained(args.encoder, num_labels=len(tags))
        tagger.bert = classifier.bert  # one encoder (with its pooler) under both heads
        params = list(classifier.parameters()) + list(tagger.classifier.parameters())
        optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, eps=1e-8)
        schedule = get_linear_schedule_with_warmup(optimizer, len(updates) // 10, len(updates))
        classifier.train()
        tagger.train()
        for step, tasks in updates:
            loss = torch.zeros(())
            if "sst2" in tasks:
                items = [data["sst2"][0][i] for i in plans["sst2"][step]]
                encoded = tokenizer([item.text for item in items], truncation=True, max_length=128, padding=True,
                                    return_tensors="pt")
                loss = loss + classifier(**encoded, labels=torch.tensor([int(item.label) for item in items])).loss
            if "conll" in tasks:
                docs = [data["conll"][0][i] for i in plans["conll"][step]]
                encoded = tokenizer([[t.text for t in doc] for doc in docs], is_split_into_words=True, padding=True,
                                    return_tensors="pt")
                loss = loss + tagger(**encoded, labels=first_piece_labels(encoded, docs, index)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
        classifier.eval()
        tagger.eval()
        scores = []
        if "conll" in evaluated:
            dev = data["conll"][1]
            probs = hf_predict(tokenizer, tagger, dev, tags)
            f1 = ner_score([with_ents(doc, argmax_repair(p, tags), tags) for doc, p in zip(dev, probs)], dev)["ents_f"]
            scores.append(f"CoNLL valid F1 {100 * f1:.2f}")
        if "sst2" in evaluated:
            dev = data["sst2"][1]
            correct = 0
            with torch.inference_mode():
                for i in range(0, len(dev), 32):
                    batch = dev[i : i + 32]
                    encoded = tokenizer([item.text for item in batch], truncation=True, max_length=128, padding=True,
                                        return_tensors="pt")
                    predicted = classifier(**encoded).logits.argmax(-1).tolist()
                    correct += sum(p == int(item.label) for p, item in zip(predicted, batch))
            scores.append(f"SST-2 dev accuracy {100 * correct / len(dev):.2f}")
        print(f"{variant:14s} " + "   ".join(scores), flush=True)
    print("\nReproduce: python bench/joint_hf.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
