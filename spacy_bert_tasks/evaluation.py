"""``spacy-bert-tasks evaluate``: ``spacy evaluate`` that keeps the task inputs.

``spacy evaluate`` reads its data with spaCy's own ``Corpus``, which builds
each predicted doc from the reference text alone: a pair model then sees no
``doc._.text_pair`` and a QA model no ``doc._.question``. This command reads
with ``spacy_bert_tasks.Corpus.v1`` instead, and writes the same JSON (every
score of ``nlp.evaluate``), so spaCy users find what they expect.
"""
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import srsly
from spacy import util
from thinc.api import require_gpu
from spacy.cli.evaluate import handle_scores_per_type
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from wasabi import Printer

from .corpus.readers import TaskCorpus
from .scoring import headline_scores
from .tasks import TASKS

def table_metrics() -> List[Tuple[str, str]]:
    """(score key, table label): spaCy's token accuracy and speed around every task's metrics."""
    return [("token_acc", "TOK"), *(metric for task in TASKS.values() for metric in task.evaluate), ("speed", "SPEED")]


def gold_needs() -> Dict[str, Tuple[str, Callable[[Doc], bool]]]:
    """What each head is scored against: factory -> (description, whether a gold doc has it)."""
    needs: Dict[str, Tuple[str, Callable[[Doc], bool]]] = {}
    for task in TASKS.values():
        needs.setdefault(task.factory, (task.gold, task.has_gold))
    return needs


def load_for_evaluation(model: Union[str, Path], *, gpu_id: int = -1, silent: bool = True) -> Language:
    """Set up the device, then load the pipeline (a package name or a folder)."""
    use_device(gpu_id, silent=silent)
    return util.load_model(model)


def use_device(gpu_id: int, *, silent: bool = True) -> None:
    """Run on GPU ``gpu_id`` (an error where there is none), or on the CPU for -1."""
    msg = Printer(no_print=silent)
    if gpu_id >= 0:
        require_gpu(gpu_id)
        msg.info(f"Using GPU: {gpu_id}")
    else:
        msg.info("Using CPU")


def evaluate(
    model: Union[str, Path],
    data_path: Union[str, Path],
    output: Optional[Union[str, Path]] = None,
    *,
    gpu_id: int = -1,
    limit: int = 0,
    gold_preproc: bool = False,
    silent: bool = True,
    nlp: Optional[Language] = None,
) -> Dict[str, Any]:
    """Score a pipeline on a ``.spacy`` corpus, with ``doc._.text_pair`` and ``doc._.question`` kept.

    model (Union[str, Path]): a package name or a pipeline folder.
    data_path (Union[str, Path]): a DocBin (or a folder of them) with gold annotations.
    output (Optional[Path]): write the scores here as JSON.
    gpu_id (int): GPU to run on; -1 for CPU.
    limit (int): score at most this many docs; 0 for all.
    gold_preproc (bool): keep the corpus's own tokens (CoNLL F1 is reported on them)
        instead of re-tokenising each text with the pipeline's tokenizer.
    silent (bool): do not print the tables.
    nlp (Optional[Language]): ``model`` already loaded (to score several corpora with one load).
    RETURNS (Dict[str, Any]): every score of ``nlp.evaluate``.
    """
    msg = Printer(no_print=silent, pretty=not silent)
    data_path = Path(data_path)
    if not data_path.exists():
        raise FileNotFoundError(f"Evaluation data not found: {data_path}. Convert it first with `spacy-bert-tasks convert`.")
    if nlp is None:
        nlp = load_for_evaluation(model, gpu_id=gpu_id, silent=silent)
    util.fix_random_seed()
    examples = list(TaskCorpus([data_path], limit=limit, gold_preproc=gold_preproc)(nlp))
    if not examples:
        raise ValueError(f"{data_path} holds no docs to evaluate on.")
    for name, needs in lacking_gold(nlp, examples).items():
        msg.warn(f"No scores for '{name}': {data_path} holds no {needs}.")
    scores = nlp.evaluate(examples)
    table = {}
    for key, label, value in headline_scores(scores, table_metrics()):
        if key == "cats_score":
            label = f"{label} ({scores.get('cats_score_desc', 'unk')})"
        table[label] = f"{value:.0f}" if key == "speed" else f"{value * 100:.2f}"
    msg.table(table, title=f"Results: {model} on {data_path} ({len(examples)} docs)")
    handle_scores_per_type(scores, {}, silent=silent)
    # Every score goes to the JSON, as spacy evaluate writes it.
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, scores)
        msg.good(f"Saved results to {output}")
    return scores


def lacking_gold(nlp: Language, examples: Iterable[Example]) -> Dict[str, str]:
    """The heads whose gold annotations no example holds, each with what it needs.

    A corpus that holds gold for none of the heads is an error: every score would be
    missing, and a table of token accuracy alone looks like a result. A joint pipeline
    evaluated on one task's corpus lacks the other heads' gold, which is fine.
    RETURNS (Dict[str, str]): head name -> the annotation the corpus lacks.
    """
    examples = list(examples)
    needs = gold_needs()
    heads = {name: needs[nlp.get_pipe_meta(name).factory] for name in nlp.pipe_names
             if nlp.get_pipe_meta(name).factory in needs}
    lacking = {
        name: needs for name, (needs, has_gold) in heads.items()
        if not any(has_gold(eg.reference) for eg in examples)
    }
    if heads and len(lacking) == len(heads):
        raise ValueError(
            "The corpus holds none of the gold annotations the pipeline is scored on: "
            + "; ".join(f"'{name}' needs {needs}" for name, needs in lacking.items())
            + ". Evaluate on a corpus converted with its labels (`spacy-bert-tasks convert`)."
        )
    return lacking
