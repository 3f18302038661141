"""The README's tour: every snippet runs.

Python snippets run against small pipelines made here from the project's own
configs (``configs/joint.cfg``, ``configs/textcat.cfg``) with the tests' tiny
encoder; the names the README uses for the project's outputs are swapped for
these pipelines' folders. Shell snippets are checked against ``project.yml``
(commands, workflows, vars, the wheel's path); the slow test in
``test_project.py`` runs the workflow itself.
"""
import re
import shlex
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import SpanGroup
from spacy.training import Example
from spacy.util import load_config, load_model_from_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PACKAGE = "en_bert_tasks_sample"
TOUR = "## The tour"


def snippets(language: str):
    """The README tour's fenced code blocks in ``language``, in order."""
    text = README.read_text(encoding="utf8")
    assert TOUR in text, "the README has no tour section"
    tour = text[text.index(TOUR):]
    return re.findall(rf"```{language}\n(.*?)```", tour, flags=re.S)


def _examples(nlp):
    examples = []
    for text, label in [("the film is very charming .", "1"), ("the film is dull .", "0")] * 2:
        doc = nlp.make_doc(text)
        doc.cats = {"1": float(label == "1"), "0": float(label == "0")}
        examples.append(Example(nlp.make_doc(text), doc))
    if "bert_pair" in nlp.pipe_names:
        for pair, label in [("Ana Moravec went to Varnholm .", "paraphrase"), ("It rained .", "not_paraphrase")] * 2:
            doc = nlp.make_doc("Ana Moravec visited Varnholm .")
            doc._.text_pair = pair
            doc.cats = {"paraphrase": float(label == "paraphrase"), "not_paraphrase": float(label != "paraphrase")}
            predicted = nlp.make_doc(doc.text)
            predicted._.text_pair = pair
            examples.append(Example(predicted, doc))
    doc = nlp.make_doc("Ana Moravec visited Varnholm on Monday .")
    doc.ents = [doc.char_span(0, 11, label="PER"), doc.char_span(20, 28, label="LOC")]
    examples.append(Example(nlp.make_doc(doc.text), doc))
    context = "Varnholm is a town on the river Esk. It was founded in 1554 by Kemal Castellan."
    gold = nlp.make_doc(context)
    gold._.question = "Who founded Varnholm?"
    gold.spans["answers"] = SpanGroup(
        gold, name="answers", spans=[gold.char_span(63, 78)], attrs={"texts": ["Kemal Castellan"]}
    )
    predicted = nlp.make_doc(context)
    predicted._.question = gold._.question
    examples.append(Example(predicted, gold))
    return examples


def _pipeline(config_name: str, encoder: Path, folder: Path) -> Path:
    path = ROOT / "configs" / config_name
    overrides = {
        "paths.encoder": str(encoder),
        # Corpora are not read here; the readers only need a path.
        "paths.train": str(folder / "unused.spacy"),
        "paths.dev": str(folder / "unused.spacy"),
        "components.transformer.model.max_length": 128,
        "components.transformer.model.stride": 32,
    }
    if "labels" in load_config(path)["paths"]:  # the joint pipeline's two classifiers: their labels, as merge-corpora writes
        labels = folder / "labels"
        labels.mkdir(parents=True, exist_ok=True)
        (labels / "bert_textcat.json").write_text('["0", "1"]', encoding="utf8")
        (labels / "bert_pair.json").write_text('["not_paraphrase", "paraphrase"]', encoding="utf8")
        overrides["paths.labels"] = str(labels)
    config = load_config(path, overrides=overrides, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = [eg for eg in _examples(nlp) if _wanted(eg, nlp.pipe_names)]
    nlp.initialize(lambda: examples)
    optimizer = nlp.resume_training()
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(folder)
    return folder


def _wanted(eg: Example, names) -> bool:
    if eg.reference.cats:
        return "bert_textcat" in names
    if eg.reference._.question is not None:
        return "bert_qa" in names
    return "bert_ner" in names


@pytest.fixture(scope="module")
def pipelines(tiny_encoder, tmp_path_factory):
    """The README's names for the project's outputs -> small pipelines built here."""
    root = tmp_path_factory.mktemp("readme")
    return {
        PACKAGE: _pipeline("joint.cfg", tiny_encoder, root / "joint"),
        "training/textcat/model-best": _pipeline("textcat.cfg", tiny_encoder, root / "textcat"),
    }


def test_tour_has_the_three_uses():
    assert len(snippets("bash")) >= 3
    assert len(snippets("python")) >= 3


@pytest.mark.parametrize("index", range(len(snippets("python"))))
def test_python_snippet_runs(index, pipelines, capsys):
    code = snippets("python")[index]
    for name, folder in pipelines.items():
        code = code.replace(f'"{name}"', repr(str(folder)))
    assert "spacy_bert_tasks" not in code, "the README's snippets should not need to import the package"
    exec(compile(code, f"README.md python snippet {index}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip(), "each snippet prints what it shows"


def test_shell_snippets_match_the_project():
    project = srsly.read_yaml(ROOT / "project.yml")
    commands = {command["name"] for command in project["commands"]}
    workflows = set(project["workflows"])
    n_checked = 0
    for block in snippets("bash"):
        for line in block.strip().splitlines():
            words = shlex.split(line)
            if words[:3] == ["spacy", "project", "run"]:
                assert words[3] in commands | workflows, line
                for word in words[4:]:
                    if word.startswith("--vars."):
                        assert word[len("--vars."):] in project["vars"], f"unknown var in: {line}"
                n_checked += 1
            elif words[:2] == ["pip", "install"]:
                name, version = project["vars"]["package_name"], project["vars"]["package_version"]
                assert words[2] == f"packages/en_{name}-{version}/dist/en_{name}-{version}-py3-none-any.whl"
                n_checked += 1
    assert n_checked >= 3
