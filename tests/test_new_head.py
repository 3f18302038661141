"""A fourth head, added as docs/new_head.md says: its component, its model, its task; nothing else.

The head is the test-only classifier of ``tests/toy_head.py`` (its component and its
model in one module, standing for ``pipeline/<head>.py`` and ``ml/<head>.py``), with
its own score keys (``toy_*``). Declaring its ``Task`` is the only other step: then
``evaluate`` prints its scores, checks its corpora for gold, ``summarize`` shows its
headline metric and the corpus formats that write its annotation are known, with no
edit to evaluation.py, project.py, scoring.py or the CLI.
"""
import json

import pytest
import spacy
from spacy.tokens import DocBin
from thinc.api import fix_random_seed
from typer.testing import CliRunner

from spacy_bert_tasks.cli import app
from spacy_bert_tasks.evaluation import gold_needs, table_metrics
from spacy_bert_tasks.project import doc_tasks, keep_only
from spacy_bert_tasks.tasks import TASKS, Task, summary_metrics

from .conftest import encoder_config
from .toy_head import FACTORY, cats_examples

TRAIN = [("good great fine", "POS"), ("bad awful terrible", "NEG"), ("great fine good day", "POS"), ("awful bad night", "NEG")]
TOY = Task(
    "toy", FACTORY, "textcat", "categories (doc.cats)",
    has_gold=lambda doc: bool(doc.cats), carries=lambda doc: bool(doc.cats), clear=lambda doc: setattr(doc, "cats", {}),
    scorer_keys=("toy_*",), summary=(("toy_score", "toy"),), evaluate=(("toy_score", "TOY"),),
)
runner = CliRunner()


@pytest.fixture
def toy_task(monkeypatch):
    """The fourth task, declared for this test only."""
    monkeypatch.setitem(TASKS, TOY.name, TOY)
    return TOY


@pytest.fixture(scope="module")
def toy_pipeline(tiny_encoder, tmp_path_factory):
    """transformer + the toy head, trained on TRAIN, saved; and a gold corpus of TRAIN."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=encoder_config(tiny_encoder))
    scorer = {"@scorers": "spacy_bert_tasks.textcat_scorer.v2", "prefix": "toy"}
    nlp.add_pipe(FACTORY, name="toy", config={"scorer": scorer})
    examples = cats_examples(nlp, TRAIN)
    optimizer = nlp.initialize(lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer, drop=0.0)["toy"] for _ in range(30)]
    root = tmp_path_factory.mktemp("toy")
    nlp.to_disk(root / "model")
    DocBin(docs=[eg.reference for eg in examples]).to_disk(root / "gold.spacy")
    return {"model": root / "model", "gold": root / "gold.spacy", "losses": losses, "root": root}


def test_declared_task_reaches_every_table(toy_task):
    assert ("toy_score", "TOY") in table_metrics() and ("toy_score", "toy") in summary_metrics()
    assert gold_needs()[FACTORY][0] == "categories (doc.cats)"
    assert toy_task.formats == ("csv", "tsv", "textcat-jsonl")  # the converters that write doc.cats
    nlp = spacy.blank("en")
    doc = nlp.make_doc("good day")
    doc.cats = {"POS": 1.0, "NEG": 0.0}
    assert doc_tasks(doc) == ["textcat"]
    keep_only(doc, "ner")
    assert doc.cats == {}


def test_evaluate_and_summarize_show_the_new_head(toy_task, toy_pipeline, tmp_path):
    assert toy_pipeline["losses"][-1] < 0.01 * toy_pipeline["losses"][0]
    out = tmp_path / "toy.json"
    result = runner.invoke(app, ["evaluate", str(toy_pipeline["model"]), str(toy_pipeline["gold"]), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "TOY" in result.output
    scores = json.loads(out.read_text())
    assert scores["toy_score"] == 1.0 and "cats_score" not in scores  # overfitted on the corpus it is scored on
    summary = runner.invoke(app, ["summarize", str(out)])
    assert summary.exit_code == 0, summary.output
    assert "toy (toy_score)" in summary.output


def test_corpus_without_the_new_heads_gold_is_named(toy_task, toy_pipeline, tmp_path):
    nlp = spacy.blank("en")
    DocBin(docs=[nlp.make_doc("no labels here")]).to_disk(tmp_path / "plain.spacy")
    result = runner.invoke(app, ["evaluate", str(toy_pipeline["model"]), str(tmp_path / "plain.spacy")])
    assert result.exit_code == 1
    assert "'toy' needs categories (doc.cats)" in " ".join(result.output.split())
