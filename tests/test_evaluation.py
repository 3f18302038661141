"""`spacy-bert-tasks evaluate` (spacy_bert_tasks/evaluation.py): a corpus without gold is an error."""
import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from typer.testing import CliRunner

from spacy_bert_tasks.cli import app

from .conftest import encoder_config

runner = CliRunner()


@pytest.fixture(scope="module")
def joint_model(tiny_encoder, tmp_path_factory):
    """An untrained pipeline with an NER and a textcat head on one encoder, saved."""
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=encoder_config(tiny_encoder))
    nlp.add_pipe("bert_ner")
    nlp.add_pipe("bert_textcat")
    doc = nlp.make_doc("Alice left Oslo")
    examples = [Example.from_dict(doc, {"entities": ["U-PER", "O", "U-LOC"], "cats": {"POS": 1.0, "NEG": 0.0}})]
    nlp.initialize(lambda: examples)
    path = tmp_path_factory.mktemp("evaluate") / "model"
    nlp.to_disk(path)
    return path


def _corpus(path, **gold):
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Alice left Oslo")
    if "cats" in gold:
        doc.cats = gold["cats"]
    DocBin(docs=[doc]).to_disk(path)
    return path


def test_corpus_without_any_gold_is_an_error(joint_model, tmp_path):
    data = _corpus(tmp_path / "plain.spacy")
    result = runner.invoke(app, ["evaluate", str(joint_model), str(data), "--output", str(tmp_path / "m.json")])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "'bert_ner' needs entity annotation (doc.ents)" in output and "'bert_textcat' needs categories" in output
    assert not (tmp_path / "m.json").exists()


def test_corpus_with_one_heads_gold_scores_it_and_names_the_rest(joint_model, tmp_path):
    data = _corpus(tmp_path / "cats.spacy", cats={"POS": 1.0, "NEG": 0.0})
    result = runner.invoke(app, ["evaluate", str(joint_model), str(data)])
    output = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "No scores for 'bert_ner'" in output and "entity annotation" in output
    assert "No scores for 'bert_textcat'" not in output


def test_several_corpora_in_one_run_each_to_its_own_file(joint_model, tmp_path):
    import json

    cats = _corpus(tmp_path / "cats.spacy", cats={"POS": 1.0, "NEG": 0.0})
    other = _corpus(tmp_path / "other.spacy", cats={"POS": 0.0, "NEG": 1.0})
    outputs = [tmp_path / "a.json", tmp_path / "b.json"]
    args = ["evaluate", str(joint_model), str(cats), str(other), "--output", str(outputs[0]), "--output", str(outputs[1])]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = [json.loads(path.read_text()) for path in outputs]
    assert all("cats_score" in s for s in scores)
    # One doc each, gold classes opposite: the accuracy-like per-type F scores differ between the files.
    assert scores[0]["cats_f_per_type"] != scores[1]["cats_f_per_type"]
    result = runner.invoke(app, ["evaluate", str(joint_model), str(cats), str(other), "--output", str(outputs[0])])
    assert result.exit_code == 1 and "one --output per DATA" in " ".join(result.output.split())


def test_gold_preproc_scores_the_corpus_tokens(joint_model, tmp_path):
    """CoNLL-style tokens ("all-rounder", "1996-08-30") that spaCy's tokenizer splits are kept with --gold-preproc."""
    import json

    from spacy.tokens import Doc

    words = ["Phil", "the", "all-rounder", "left", "on", "1996-08-30"]
    doc = Doc(spacy.blank("en").vocab, words=words, spaces=[True] * 5 + [False])
    doc.set_ents([], default="outside")
    data = tmp_path / "conll.spacy"
    DocBin(docs=[doc]).to_disk(data)
    scores = {}
    for flag in ([], ["--gold-preproc"]):
        output = tmp_path / f"m{len(flag)}.json"
        result = runner.invoke(app, ["evaluate", str(joint_model), str(data), "--output", str(output), *flag])
        assert result.exit_code == 0, result.output
        scores[bool(flag)] = json.loads(output.read_text())
    assert scores[True]["token_f"] == 1.0
    assert scores[False]["token_f"] < 0.5  # 12 predicted tokens for 6 gold ones
