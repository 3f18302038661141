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
import srsly
import spacy
from spacy.tokens import DocBin, Span, SpanGroup
from typer.testing import CliRunner

from spacy_bert_tasks.cli import app
from spacy_bert_tasks.project import corpus_task, doc_tasks, keep_only, merge_corpora, split_squad, summarize_metrics

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
    (tmp_path / "qa.json").write_text(json.dumps({"qa_exact": 0.1, "qa_f1": 0.2, "ents_f": None, "cats_score": None}))
    (tmp_path / "cats.json").write_text(json.dumps({"cats_score": 0.7, "cats_score_desc": "macro F", "cats_macro_f": 0.7, "cats_macro_auc": 0.8}))
    rows = summarize_metrics([tmp_path / "ner.json", tmp_path / "qa.json", tmp_path / "cats.json"])
    assert [(run, key) for run, key, _, _ in rows] == [
        ("ner", "ents_p"), ("ner", "ents_r"), ("ner", "ents_f"), ("qa", "qa_exact"), ("qa", "qa_f1"),
        ("cats", "cats_score"), ("cats", "cats_macro_auc"),
    ]
    result = CliRunner().invoke(app, ["summarize", str(tmp_path / "ner.json"), str(tmp_path / "qa.json"),
                                      "--output", str(tmp_path / "summary.md")])
    assert result.exit_code == 0, result.output
    assert "0.333" in result.output and "qa_f1" in result.output
    assert "| ner | F (ents_f) | 0.333 |" in (tmp_path / "summary.md").read_text()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        summarize_metrics([tmp_path / "bad.json"])


PACKAGE = "en_bert_tasks_sample"

# Runs in the fresh virtual environment, in a new process: no import of
# spacy_bert_tasks here; spaCy finds the components through entry points.
LOAD_SCRIPT = f"""
import sys
import spacy

nlp = spacy.load({PACKAGE!r})
names = set(nlp.pipe_names)
assert {{"transformer", "bert_textcat", "bert_pair", "bert_ner", "bert_qa"}} <= names, nlp.pipe_names
doc = nlp("Ana Moravec visited Varnholm on Monday .")
assert set(doc.cats) == {{"negative", "positive"}}, doc.cats  # the paraphrase head skips single texts
pair = nlp.make_doc("Ana Moravec visited Varnholm .")
pair._.text_pair = "Ana Moravec went to Varnholm ."
assert {{"paraphrase", "not_paraphrase"}} <= set(nlp(pair).cats), pair.cats
print("ents", [(e.text, e.label_) for e in doc.ents])
print("cats", doc.cats)
qa = nlp.make_doc("Varnholm is a town on the river Esk. It was founded in 1554 by Kemal Castellan.")
qa._.question = "Who founded Varnholm?"
qa = nlp(qa)
assert len(qa.spans["answers"]) > 0
print("answer", qa._.answer)
print("imported-by-entry-points", "spacy_bert_tasks" in sys.modules)
"""


def _run(cmd, cwd, env, timeout):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.mark.slow
def test_project_all_then_install_and_load(tmp_path):
    """``spacy project run all`` on the defaults from nothing, under 10 minutes;
    then the deploy workflow on its joint pipeline; then the wheel installs into a fresh
    venv and loads by name in a new process."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "project.yml", project / "project.yml")
    shutil.copytree(ROOT / "configs", project / "configs")
    shutil.copytree(ROOT / "assets", project / "assets", ignore=shutil.ignore_patterns("public", "__pycache__"))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    start = time.perf_counter()
    result = _run([sys.executable, "-m", "spacy", "project", "run", "all", str(project)], project, env, timeout=900)
    elapsed = time.perf_counter() - start
    print(f"spacy project run all: {elapsed:.0f} s")
    assert elapsed < 600, f"the default workflow took {elapsed:.0f} s; it must finish in under 10 minutes"
    assert "Metrics" in result.stdout and "ents_f" in result.stdout and "qa_f1" in result.stdout
    for name in ("textcat", "pair", "ner", "qa", "joint-textcat", "joint-pair", "joint-ner", "joint-qa"):
        assert (project / "metrics" / f"{name}.json").exists(), name
    wheels = list((project / "packages").glob(f"{PACKAGE}-*/dist/*.whl"))
    assert len(wheels) == 1, wheels

    # The deploy workflow on the trained joint pipeline: distil (a few steps), quantize, score.
    _run([sys.executable, "-m", "spacy", "project", "run", "deploy", str(project), "--vars.distill_steps", "4"],
         project, env, timeout=900)
    for model in ("distilled", "int8", "distilled-int8"):
        for task in ("textcat", "pair", "ner", "qa"):
            assert (project / "metrics" / f"deploy-{model}-{task}.json").exists(), (model, task)
    encoder_bytes = lambda name: (project / "training" / name / "transformer" / "model").stat().st_size  # noqa: E731
    assert encoder_bytes("joint-distilled") < 0.45 * encoder_bytes("joint/model-best")  # half the layers, float16 (0.77 in float32)

    # compare-init on a tiny budget: pretrained vs random MiniLM, NER and SST-2, all three findings.
    compare_vars = {"ner_steps": 4, "eval_frequency": 2, "compare_textcat_steps": 4, "compare_textcat_eval_frequency": 2,
                    "warmup_steps": 1, "analysis_batches": 1, "analysis_alpha_steps": 3, "analysis_grid_size": 3}
    cmd = [sys.executable, "-m", "spacy", "project", "run", "compare-init", str(project)]
    for name, value in compare_vars.items():
        cmd += [f"--vars.{name}", str(value)]
    _run(cmd, project, env, timeout=900)
    for task in ("ner", "sst2"):
        assert (project / "analysis" / "compare-init" / task / "compare.png").stat().st_size > 0
        findings = srsly.read_json(project / "analysis" / "compare-init" / task / "compare.json")
        assert set(findings["runs"]) == {"pre-trained", "from-scratch"}, task
        for run in findings["runs"].values():
            for key in ("sharpness_mean", "dev_drop_from_best", "drift_depth_correlation", "final_train_loss"):
                assert isinstance(run[key], float), (task, key, run[key])
            assert len(run["drift_layers"]) >= 6, run["drift_layers"]  # MiniLM's six layers at least

    # A fresh virtual environment: torch pinned first, then the plugin and the pipeline wheel.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run(pip + ["torch==2.13.0"], tmp_path, env, timeout=900)
    # The plugin from a copy of its sources, so the build leaves the checkout alone.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "spacy_bert_tasks", source / "spacy_bert_tasks", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    _run(pip + [str(source)], tmp_path, env, timeout=900)
    _run(pip + [str(wheels[0])], tmp_path, env, timeout=900)
    result = _run([str(python), "-c", LOAD_SCRIPT], tmp_path, env, timeout=300)
    assert "imported-by-entry-points True" in result.stdout
    assert "answer" in result.stdout


def test_split_squad(tmp_path):
    source = ROOT / "assets" / "squad_v1.1" / "dev-v1.1.articles00-42.json"
    train, dev = tmp_path / "train.json", tmp_path / "dev.json"
    result = CliRunner().invoke(app, ["split-squad", str(source), "--train", str(train), "--dev", str(dev), "--dev-articles", "8"])
    assert result.exit_code == 0, result.output
    original = json.loads(source.read_text())
    train_data, dev_data = json.loads(train.read_text()), json.loads(dev.read_text())
    assert train_data["version"] == dev_data["version"] == original["version"]
    assert train_data["data"] + dev_data["data"] == original["data"]
    assert len(dev_data["data"]) == 8
    assert not {a["title"] for a in train_data["data"]} & {a["title"] for a in dev_data["data"]}
    with pytest.raises(ValueError, match="has 20 articles; cannot keep 20"):
        split_squad(source, train, dev, dev_articles=20)


@pytest.fixture(scope="module")
def joint_nlp(tiny_encoder, tmp_path_factory):
    """configs/joint.cfg with the tiny encoder, initialised and briefly trained."""
    from .test_readme import _pipeline

    return spacy.load(_pipeline("joint.cfg", tiny_encoder, tmp_path_factory.mktemp("joint") / "nlp"))


def _zero(d_scores) -> bool:
    import numpy

    if d_scores is None:
        return True
    if isinstance(d_scores, list):
        return all(_zero(d) for d in d_scores)
    data = getattr(d_scores, "dataXd", d_scores)
    data = getattr(data, "logits", data)
    return not numpy.asarray(data).any()


def _corpus_of(doc) -> str:
    """The joint pipeline's component a gold doc is for (sentiment and paraphrase are both textcat)."""
    kind = doc_tasks(doc)[0]
    if kind == "textcat":
        return "bert_pair" if doc._.text_pair is not None else "bert_textcat"
    return {"ner": "bert_ner", "qa": "bert_qa"}[kind]


@pytest.mark.parametrize("head", ["bert_textcat", "bert_pair", "bert_ner", "bert_qa"])
def test_joint_heads_learn_nothing_from_other_tasks_docs(joint_nlp, head, tmp_path):
    """Through the merge, a doc of another task (or of the other classifier) gives a head
    no loss and no gradient; a doc of its own task does."""
    from .test_readme import _examples

    corpora = {}
    for kind in ("bert_textcat", "bert_pair", "bert_ner", "bert_qa"):
        docs = [eg.reference for eg in _examples(joint_nlp) if _corpus_of(eg.reference) == kind]
        corpora[kind] = tmp_path / f"{kind}.spacy"
        DocBin(docs=docs, store_user_data=True).to_disk(corpora[kind])
    merge_corpora(list(corpora.items()), tmp_path / "joint.spacy")
    from spacy_bert_tasks.corpus.readers import create_corpus_reader

    examples = list(create_corpus_reader(str(tmp_path / "joint.spacy"))(joint_nlp))
    pipe = joint_nlp.get_pipe(head)
    for eg in examples:
        joint_nlp.get_pipe("transformer")(eg.predicted)
        scores = pipe.model.predict([eg.predicted])
        loss, d_scores = pipe.get_loss([eg], scores)
        if _corpus_of(eg.reference) == head:
            assert loss > 0 and not _zero(d_scores), eg.reference.text
        else:
            assert loss == 0 and _zero(d_scores), (head, eg.reference.text, loss)


def test_every_task_declares_real_steps_and_its_own_scores():
    """tasks.py: each Task's project commands exist, and its table metrics are scores its scorer writes."""
    from spacy_bert_tasks.tasks import TASKS

    commands = {command["name"] for command in srsly.read_yaml(ROOT / "project.yml")["commands"]}
    for task in TASKS.values():
        assert task.steps and set(task.steps) <= commands, task.name
        for key, _ in (*task.summary, *task.evaluate):
            assert any(key == k or (k.endswith("*") and key.startswith(k[:-1])) for k in task.scorer_keys), (task.name, key)
        assert task.formats, task.name
