"""Joint vs single-task: all heads on one encoder, trained together, against one pipeline per head.

The joint pipeline is configs/joint.cfg's: ``transformer`` + ``bert_textcat``
(SST-2 sentiment) + ``bert_pair`` (a second bert_textcat on MRPC pairs, with its
own labels and ``missing_pair = "skip"``) + ``bert_ner`` (CoNLL-2003) +
``bert_qa`` (SQuAD v1.1, split by article as bench/qa_parity.py). Each
single-task pipeline is ``transformer`` + that one head, with the same settings.
Both classifiers start their dense + tanh layer from the checkpoint's pooler, as
the parity benches' ``--pretrained-pooler`` and Hugging Face's head do.

Same examples, same order, same number of updates: update ``s`` of the joint
pipeline is one ``nlp.update`` on the ``s``-th batch of every task together
(``--batch-sizes`` docs of each: SST-2, MRPC, CoNLL, SQuAD); update ``s`` of a
single-task pipeline is its own task's ``s``-th batch alone. So every head sees
exactly the same docs; what differs is that the joint encoder also learns from
the other three tasks (and its step is clipped by the global norm of all four
gradients). With ``--schedule by-task``, the way configs/joint.cfg trains (its
batcher, ``spacy_bert_tasks.batch_by_task.v1``, puts one task in each batch), the
joint pipeline instead takes one update per task's batch, the tasks in turn: len(tasks)
x ``--steps`` updates, each head still on its own ``--steps`` batches, the learning-rate
schedule spread over all of them.

Optimiser as the configs: GlobalClipAdam (weight decay 0.01, global norm 1.0),
linear warm-up over 10% of the updates then linear decay, dropout 0.1. Windows
256/64, questions cut to 64 pieces, second texts to 128.

Scores: SST-2 dev accuracy, MRPC dev F1 of the paraphrase class, CoNLL valid
F1 (spaCy's entity scorer), SQuAD dev F1 (official normalisation); each joint
head scored on its own task's dev set.

Run the two systems as two processes, one per core; the second to finish
prints the table (results are kept in ``--workdir``):

    python bench/joint_parity.py --encoder $MINILM --steps 800 --systems joint --schedule by-task &
    python bench/joint_parity.py --encoder $MINILM --steps 800 --systems single

``--classifier-grad-factor`` and ``--ner-grad-factor`` weight the heads in the
joint encoder's step (the README's "All heads on one encoder" has the figures).
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import seeded_batches  # noqa: E402
from ner_common import CONLL, copy_tokens, entity_labels, read_conll, to_example  # noqa: E402
from qa_common import load_split, predict_answers, squad_example  # noqa: E402
from textcat_common import accuracy_and_f1, classification_example, read_glue  # noqa: E402

TASKS = ("sst2", "mrpc", "conll", "squad")
HEADS = {"sst2": "bert_textcat", "mrpc": "bert_pair", "conll": "bert_ner", "squad": "bert_qa"}
CLASS_NAMES = {"sst2": {"0": "negative", "1": "positive"}, "mrpc": {"0": "not_paraphrase", "1": "paraphrase"}}
POSITIVE = {"sst2": "positive", "mrpc": "paraphrase"}
METRIC = {"sst2": "SST-2 dev accuracy", "mrpc": "MRPC dev F1", "conll": "CoNLL valid F1", "squad": "SQuAD dev F1"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", type=Path, required=True, help="encoder folder, e.g. the pretrained all-MiniLM-L6-v2")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-sizes", type=int, nargs=4, default=[8, 8, 8, 4], metavar=("SST2", "MRPC", "CONLL", "SQUAD"),
                        help="docs of each task per update")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS),
                        help="the heads (a subset for a quick check; the joint pipeline holds these only)")
    parser.add_argument("--dev-limit", type=int, default=0, help="score at most this many dev docs per task (0: all)")
    parser.add_argument("--systems", nargs="+", choices=["joint", "single"], default=["joint", "single"])
    parser.add_argument("--classifier-grad-factor", type=float, default=1.0,
                        help="joint only: scale the gradient bert_textcat and bert_pair send to the shared encoder "
                             "(their cls_pooling grad_factor); the single-task classifiers keep 1.0")
    parser.add_argument("--ner-grad-factor", type=float, default=1.0,
                        help="joint only: scale the gradient bert_ner sends to the shared encoder (its grad_factor); "
                             "above 1, the other heads weigh less in the encoder's step")
    parser.add_argument("--schedule", choices=["by-task", "mixed"], default="by-task",
                        help="joint only: 'by-task' (configs/joint.cfg's way) takes one update per task's batch, the tasks "
                             "in turn, so the encoder takes len(tasks) x --steps updates while each head still sees "
                             "--steps batches; 'mixed' updates on step s's batch of every task at once")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/joint_bench"))
    return parser.parse_args()


def load_tasks(tasks: Sequence[str], dev_limit: int) -> Dict[str, tuple]:
    """(train, dev) per task, read in place from ../shared/data."""
    data: Dict[str, tuple] = {}
    for task in tasks:
        if task in ("sst2", "mrpc"):
            train, dev = read_glue(task, "train"), read_glue(task, "dev")
        elif task == "conll":
            train, dev = read_conll(CONLL / "train.txt"), read_conll(CONLL / "valid.txt")
        else:
            train, dev = load_split()
        data[task] = (train, dev[:dev_limit] if dev_limit else dev)
    return data


def make_pipeline(encoder: Path, tasks: Sequence[str], ner_labels: List[str], classifier_grad_factor: float = 1.0,
                  ner_grad_factor: float = 1.0):
    """``transformer`` + the heads of ``tasks``, as configs/joint.cfg but for the classifiers' pooler (not yet initialised)."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {
        "@architectures": "spacy_bert_tasks.Encoder.v1", "name": str(encoder), "max_length": 256, "stride": 64,
        "max_question_length": 64, "max_pair_length": 128}})
    classifier = {"dropout": 0.1, "dense_tanh": True, "pooler_init": "checkpoint",  # BERT's pooler, as HF's head
                  "pooling": {"@layers": "spacy_bert_tasks.cls_pooling.v1", "grad_factor": classifier_grad_factor}}
    init: Dict[str, dict] = {}
    if "sst2" in tasks:
        nlp.add_pipe("bert_textcat", config={"model": classifier})
        init["bert_textcat"] = {"labels": list(CLASS_NAMES["sst2"].values()), "positive_label": POSITIVE["sst2"]}
    if "mrpc" in tasks:
        nlp.add_pipe("bert_textcat", name="bert_pair", config={
            "missing_pair": "skip", "model": classifier,
            "scorer": {"@scorers": "spacy_bert_tasks.textcat_scorer.v2", "prefix": "pair"}})
        init["bert_pair"] = {"labels": list(CLASS_NAMES["mrpc"].values()), "positive_label": POSITIVE["mrpc"]}
    if "conll" in tasks:
        nlp.add_pipe("bert_ner", config={"model": {"grad_factor": ner_grad_factor}})
        init["bert_ner"] = {"labels": ner_labels}
    if "squad" in tasks:
        nlp.add_pipe("bert_qa", config={"n_best_size": 20, "max_answer_length": 30, "allow_no_answer": False})
    nlp.config["initialize"]["components"] = init
    return nlp


def example_maker(task: str, nlp) -> Callable:
    """A function from one of the task's training items to a spaCy Example."""
    if task in ("sst2", "mrpc"):
        return lambda item: classification_example(nlp, item, CLASS_NAMES[task])
    if task == "conll":
        return lambda doc: to_example(doc, nlp)

    return lambda q: squad_example(nlp, q)


def update_plan(tasks: Sequence[str], steps: int, schedule: str) -> List[List[tuple]]:
    """The (task, step) batches of each update: all tasks' step s together, or one task's per update."""
    if schedule == "mixed":
        return [[(task, step) for task in tasks] for step in range(steps)]
    return [[(task, step)] for step in range(steps) for task in tasks]


def train(nlp, tasks: Sequence[str], data: Dict[str, tuple], plans: Dict[str, List[List[int]]], args, name: str,
          schedule: str = "mixed") -> float:
    """Initialise ``nlp`` and train it on ``args.steps`` batches of every task in ``tasks``, as ``update_plan`` orders them."""
    from spacy.util import fix_random_seed
    from thinc.api import warmup_linear

    from spacy_bert_tasks.fine_tuning import configure_global_clip_adam

    fix_random_seed(args.seed)
    makers = {task: example_maker(task, nlp) for task in tasks}
    sample = [makers[task](data[task][0][i]) for task in tasks for i in plans[task][0]]
    nlp.initialize(lambda: sample)
    labels = {pipe: len(nlp.get_pipe(pipe).labels) for pipe in nlp.pipe_names if pipe in ("bert_textcat", "bert_pair", "bert_ner")}
    print(f"  {name}: {' + '.join(nlp.pipe_names)}; labels per head {labels}", file=sys.stderr, flush=True)
    updates = update_plan(tasks, args.steps, schedule)
    total = len(updates)
    learn_rate = warmup_linear(args.lr, max(1, total // 10), total)
    optimizer = configure_global_clip_adam(learn_rate, max_grad_norm=1.0, L2=0.01, eps=1e-8, use_averages=False)
    start = time.perf_counter()
    for n, parts in enumerate(updates, 1):
        batch = [makers[task](data[task][0][i]) for task, step in parts for i in plans[task][step]]
        nlp.update(batch, sgd=optimizer, drop=0.1)
        optimizer.step_schedules()
        if n % 50 == 0 or n == total:
            elapsed = time.perf_counter() - start
            print(f"  {name}: update {n}/{total}, {elapsed:.0f}s "
                  f"(~{elapsed / n * (total - n):.0f}s left)", file=sys.stderr, flush=True)
    return time.perf_counter() - start


def score(nlp, task: str, dev: list) -> Dict[str, float]:
    """The task's dev scores, from its own head only (the other heads switched off)."""
    from spacy.scorer import get_ner_prf
    from spacy.training import Example

    from spacy_bert_tasks.scoring import squad_scores

    with nlp.select_pipes(enable=["transformer", HEADS[task]]):
        if task in ("sst2", "mrpc"):
            names = CLASS_NAMES[task]
            docs = []
            for item in dev:
                doc = nlp.make_doc(item.text)
                doc._.text_pair = item.pair
                docs.append(doc)
            predicted = [max(names.values(), key=doc.cats.get) for doc in nlp.pipe(docs, batch_size=32)]
            accuracy, f1 = accuracy_and_f1([names[item.label] for item in dev], predicted, positive=POSITIVE[task])
            return {"accuracy": accuracy, "f1": f1, "main": accuracy if task == "sst2" else f1}
        if task == "conll":
            predicted = list(nlp.pipe((copy_tokens(doc, nlp.vocab) for doc in dev), batch_size=64))
            prf = get_ner_prf([Example(p, g) for p, g in zip(predicted, dev)])
            return {"p": 100 * prf["ents_p"], "r": 100 * prf["ents_r"], "f1": 100 * prf["ents_f"], "main": 100 * prf["ents_f"]}
        scores = squad_scores(predict_answers(nlp, dev), [[text for _, text in q.answers] for q in dev])
        return {"em": 100 * scores["exact"], "f1": 100 * scores["f1"], "main": 100 * scores["f1"]}


def result_name(system: str, args: argparse.Namespace) -> str:
    """Where a system's scores are kept: one file per setting that changes them."""
    factor = ""
    if system == "joint":
        factor += f"-gf{args.classifier_grad_factor:g}" if args.classifier_grad_factor != 1.0 else ""
        factor += f"-ner{args.ner_grad_factor:g}" if args.ner_grad_factor != 1.0 else ""
        factor += "-bytask" if args.schedule == "by-task" else ""
    return f"results-{system}{factor}-{args.steps}.json"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    tasks = [task for task in TASKS if task in args.tasks]
    data = load_tasks(tasks, args.dev_limit)
    sizes = dict(zip(TASKS, args.batch_sizes))
    # Task i of TASKS is shuffled with seed + i, so a subset (--tasks) sees the full run's batches.
    plans = {task: seeded_batches(len(data[task][0]), sizes[task], args.steps, args.seed + TASKS.index(task))
             for task in tasks}
    ner_labels = entity_labels(data["conll"][0]) if "conll" in data else []
    print(f"encoder {args.encoder}; {args.steps} updates, lr {args.lr}, {args.threads} torch thread(s); per update: "
          + ", ".join(f"{sizes[t]} {t} (of {len(data[t][0])} train, {len(data[t][1])} dev)" for t in tasks), flush=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    for system in args.systems:
        results: Dict[str, dict] = {}
        if system == "joint":
            nlp = make_pipeline(args.encoder, tasks, ner_labels, args.classifier_grad_factor, args.ner_grad_factor)
            seconds = train(nlp, tasks, data, plans, args, "joint", args.schedule)
            for task in tasks:
                results[task] = {**score(nlp, task, data[task][1]), "train_s": seconds}
        else:
            for task in tasks:
                nlp = make_pipeline(args.encoder, [task], ner_labels)
                seconds = train(nlp, [task], data, plans, args, f"single {task}")
                results[task] = {**score(nlp, task, data[task][1]), "train_s": seconds}
                print(f"  single {task}: {METRIC[task]} {results[task]['main']:.2f}", flush=True)
        for task, result in results.items():
            print(f"{system:6s} {METRIC[task]:20s} {result['main']:6.2f}   " +
                  "  ".join(f"{k} {v:.2f}" for k, v in result.items() if k not in ("main", "train_s")), flush=True)
        (args.workdir / result_name(system, args)).write_text(json.dumps(results, indent=2))
    files = {system: args.workdir / result_name(system, args) for system in ("joint", "single")}
    if all(path.exists() for path in files.values()):
        joint, single = (json.loads(files[s].read_text()) for s in ("joint", "single"))
        print(f"\n{'':22s}{'joint':>8s}{'single':>8s}{'gap':>8s}   (target: gap >= -1.5)")
        for task in tasks:
            if task in joint and task in single:
                j, s = joint[task]["main"], single[task]["main"]
                print(f"{METRIC[task]:22s}{j:8.2f}{s:8.2f}{j - s:+8.2f}")
        total_single = sum(single[t]["train_s"] for t in tasks if t in single)
        first = next(iter(joint.values()))
        print(f"training wall s: joint {first['train_s']:.0f}, single-task heads together {total_single:.0f}")
    print("\nReproduce: python bench/joint_parity.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
