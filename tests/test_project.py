"""The spaCy project: the joint-corpus merge, the metrics summary, the whole workflow."""
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span, SpanGroup
from typer.testing import CliRunner

from spacy_bert_tasks.cli import app
from spacy_bert_tasks.project import corpus_task, doc_tasks, keep_only, merge_corpora, summarize_metrics

ROOT = Path(__file__).resolve().parents[1]


def _textcat_docs(nlp, pair: bool = False):
    docs = []
    for i, (text, label) in enumerate([("a fine film .", "1"), ("a dull film .", "0"), ("warm and funny", "1")]):
        doc = nlp.make_doc(text)
        if pair:
            doc._.text_pair = f"the second text {i} ."
            doc.cats = {"paraphrase": float(label == "1"), "not_paraphrase": float(label == "0")}
        else:
            doc.cats = {"positive": float(label == "1"), "negative": float(label == "0")}
        docs.append(doc)
    return docs


def _ner_docs(nlp):
    doc = nlp.make_doc("Ana Moravec visited Varnholm on Monday .")
    doc.ents = [Span(doc, 0, 2, label="PER"), Span(doc, 3, 4, label="LOC")]
    # A sentence without entities is annotated ("O" everywhere), not missing.
    empty = nlp.make_doc("It rained all day .")
    empty.set_ents([], default="outside")
    return [doc, empty]


def _qa_docs(nlp):
    doc = nlp.make_doc("Varnholm was founded in 1554 by Kemal Castellan .")
    doc._.question = "Who founded Varnholm?"
    group = SpanGroup(doc, name="answers", spans=[doc[6:8]], attrs={"texts": ["Kemal Castellan"], "id": "q1"})
    doc.spans["answers"] = group
    return [doc]


@pytest.fixture
def corpora(tmp_path):
    nlp = spacy.blank("en")
    paths = {}
    for name, docs in [
        ("textcat", _textcat_docs(nlp)),
        ("pair", _textcat_docs(nlp, pair=True)),
        ("ner", _ner_docs(nlp)),
        ("qa", _qa_docs(nlp)),
    ]:
        paths[name] = tmp_path / f"{name}.spacy"
        DocBin(docs=docs, store_user_data=True).to_disk(paths[name])
    return paths


def _read(path):
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


def test_merge_keeps_one_task_per_doc(corpora, tmp_path):
    output = tmp_path / "joint.spacy"
    counts = merge_corpora(list(corpora.items()), output, labels_dir=tmp_path / "labels")
    assert counts == {"textcat": 3, "pair": 3, "ner": 2, "qa": 1}
    docs = _read(output)
    assert len(docs) == 9
    by_task = {}
    for doc in docs:
        tasks = doc_tasks(doc)
        assert len(tasks) == 1, (doc.text, tasks)
        by_task.setdefault(tasks[0], []).append(doc)
    assert {k: len(v) for k, v in by_task.items()} == {"textcat": 6, "ner": 2, "qa": 1}
    # Other tasks' annotations read as missing, not as negatives.
    for doc in by_task["textcat"] + by_task["qa"]:
        assert not doc.has_annotation("ENT_IOB")
        assert all(token.ent_iob_ == "" for token in doc)
    for doc in by_task["ner"] + by_task["qa"]:
        assert doc.cats == {}
        assert doc._.text_pair is None
    for doc in by_task["textcat"] + by_task["ner"]:
        assert doc._.question is None
        assert "answers" not in doc.spans
    # Each task's own annotation survives: entities, an all-"O" sentence, pairs, answers.
    ner = {doc.text: doc for doc in by_task["ner"]}
    assert [(e.text, e.label_) for e in ner["Ana Moravec visited Varnholm on Monday ."].ents] == [
        ("Ana Moravec", "PER"), ("Varnholm", "LOC")
    ]
    assert ner["It rained all day ."].has_annotation("ENT_IOB")
    assert all(token.ent_iob_ == "O" for token in ner["It rained all day ."])
    assert sum(doc._.text_pair is not None for doc in by_task["textcat"]) == 3
    qa = by_task["qa"][0]
    assert qa._.question == "Who founded Varnholm?"
    assert [s.text for s in qa.spans["answers"]] == ["Kemal Castellan"]
    assert qa.spans["answers"].attrs["id"] == "q1"
    # Each classifier gets only its own labels.
    assert json.loads((tmp_path / "labels" / "textcat.json").read_text()) == ["negative", "positive"]
    assert json.loads((tmp_path / "labels" / "pair.json").read_text()) == ["not_paraphrase", "paraphrase"]
    assert not (tmp_path / "labels" / "ner.json").exists()


def test_merge_strips_foreign_annotation():
    """A doc that wrongly carries two tasks' annotations keeps only the one it is merged for."""
    nlp = spacy.blank("en")
    doc = _ner_docs(nlp)[0]
    doc.cats = {"positive": 1.0}
    doc._.question = "Who?"
    keep_only(doc, "textcat")
    assert doc_tasks(doc) == ["textcat"]
    assert not doc.has_annotation("ENT_IOB")
    with pytest.raises(ValueError, match="Unknown task 'pos'"):
        keep_only(doc, "pos")


def test_merge_max_per_task_is_seeded(corpora, tmp_path):
    out_a, out_b = tmp_path / "a.spacy", tmp_path / "b.spacy"
    assert merge_corpora(list(corpora.items()), out_a, max_per_task=2, seed=3) == {
        "textcat": 2, "pair": 2, "ner": 2, "qa": 1
    }
    merge_corpora(list(corpora.items()), out_b, max_per_task=2, seed=3)
    assert [d.text for d in _read(out_a)] == [d.text for d in _read(out_b)]


def test_merge_rejects_mixed_or_missing_corpora(corpora, tmp_path):
    nlp = spacy.blank("en")
    mixed = tmp_path / "mixed.spacy"
    DocBin(docs=_ner_docs(nlp) + _qa_docs(nlp), store_user_data=True).to_disk(mixed)
    with pytest.raises(ValueError, match="mixed.spacy holds 2 docs with ner annotation, 1 docs with qa"):
        merge_corpora([("x", mixed)], tmp_path / "out.spacy")
    with pytest.raises(FileNotFoundError, match="nope.spacy"):
        merge_corpora([("x", tmp_path / "nope.spacy")], tmp_path / "out.spacy")
    with pytest.raises(ValueError, match="unique"):
        merge_corpora([("ner", corpora["ner"]), ("ner", corpora["ner"])], tmp_path / "out.spacy")
    assert corpus_task(_qa_docs(nlp), "qa.spacy") == "qa"


def test_merge_cli(corpora, tmp_path):
    output = tmp_path / "joint.spacy"
    args = ["merge-corpora", *[f"{k}={v}" for k, v in corpora.items()], "--output", str(output)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Wrote 9 docs" in result.output
    assert len(_read(output)) == 9
    result = CliRunner().invoke(app, ["merge-corpora", "no-equals-sign", "--output", str(output)])
    assert result.exit_code == 1
    assert "NAME=PATH" in result.output


def test_summarize(tmp_path):
    (tmp_path / "ner.json").write_text(json.dumps({"ents_p": 0.5, "ents_r": 0.25, "ents_f": 1 / 3, "speed": 10}))
    (tmp_path / "qa.json").write_text(json.dumps({"qa_exact": 0.1, "qa_f1": 0.2, "ents_f": None}))
    rows = summarize_metrics([tmp_path / "ner.json", tmp_path / "qa.json"])
    assert [(run, key) for run, key, _, _ in rows] == [
        ("ner", "ents_p"), ("ner", "ents_r"), ("ner", "ents_f"), ("qa", "qa_exact"), ("qa", "qa_f1")
    ]
    result = CliRunner().invoke(app, ["summarize", str(tmp_path / "ner.json"), str(tmp_path / "qa.json"),
                                      "--output", str(tmp_path / "summary.md")])
    assert result.exit_code == 0, result.output
    assert "0.333" in result.output and "qa_f1" in result.output
    assert "| ner | F (ents_f) | 0.333 |" in (tmp_path / "summary.md").read_text()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        summarize_metrics([tmp_path / "bad.json"])
