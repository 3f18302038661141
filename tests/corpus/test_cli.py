"""``spacy-bert-tasks convert`` (spacy_bert_tasks/cli/corpora.py) and its table of formats (corpus/converters.py)."""
import json
import re

import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_bert_tasks.cli import app

runner = CliRunner()

CONLL = """-DOCSTART- -X- -X- O

Alice NNP B-NP B-PER
visited VBD B-VP O
Oslo NNP B-NP B-LOC

Bob NNP B-NP B-PER

-DOCSTART- -X- -X- O

Globex NNP B-NP B-ORG
rose VBD B-VP O
"""


def printed(result) -> str:
    """The output without colours or whitespace, so that wrapped lines compare whole."""
    return "".join(re.sub(r"\x1b\[[0-9;]*m", "", result.output).split())


def has(result, text: str) -> bool:
    return "".join(text.split()) in printed(result)


def load(path):
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


def test_convert_conll_infers_format_and_prints_counts(tmp_path):
    raw, out = tmp_path / "train.txt", tmp_path / "out" / "train.spacy"
    raw.write_text(CONLL, encoding="utf8")
    result = runner.invoke(app, ["convert", str(raw), str(out)])
    assert result.exit_code == 0, result.output
    assert has(result, "format 'conll' inferred")
    assert has(result, "Read 3 sentences: wrote 3, skipped 0")
    assert has(result, "documents (-DOCSTART-) 2 sentences 3 tokens 6")
    assert has(result, "Wrote 3 docs (sentences)")
    docs = load(out)
    assert [doc.text for doc in docs] == ["Alice visited Oslo", "Bob", "Globex rose"]
    assert [[e.label_ for e in doc.ents] for doc in docs] == [["PER", "LOC"], ["PER"], ["ORG"]]


def test_convert_doc_level(tmp_path):
    raw, out = tmp_path / "train.txt", tmp_path / "train.spacy"
    raw.write_text(CONLL, encoding="utf8")
    result = runner.invoke(app, ["convert", str(raw), str(out), "--format", "conll", "--doc-level"])
    assert result.exit_code == 0, result.output
    docs = load(out)
    assert len(docs) == 2
    assert [s.text for s in docs[0].sents] == ["Alice visited Oslo", "Bob"]


def test_convert_bad_tags_fails_with_file_and_line(tmp_path):
    raw = tmp_path / "train.txt"
    raw.write_text(CONLL.replace("Oslo NNP B-NP B-LOC", "Oslo NNP B-NP I-LOC"), encoding="utf8")
    result = runner.invoke(app, ["convert", str(raw), str(tmp_path / "x.spacy")])
    assert result.exit_code == 1
    assert has(result, f"{raw}, line 5: invalid tag sequence")
    assert not (tmp_path / "x.spacy").exists()


def test_convert_skip_invalid_prints_reasons(tmp_path):
    raw, out = tmp_path / "train.txt", tmp_path / "x.spacy"
    raw.write_text(CONLL.replace("Oslo NNP B-NP B-LOC", "Oslo NNP B-NP I-LOC"), encoding="utf8")
    result = runner.invoke(app, ["convert", str(raw), str(out), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert has(result, "Skipped 1 sentences")
    assert has(result, "invalid tag sequence: 1 (first at line 5)")
    assert len(load(out)) == 2


def test_convert_squad_and_pairs(tmp_path):
    squad = {"data": [{"title": "t", "paragraphs": [{"context": "Alice founded Globex.", "qas": [
        {"id": "q1", "question": "Who founded Globex?", "answers": [{"text": "Alice", "answer_start": 0}]}]}]}]}
    (tmp_path / "dev.json").write_text(json.dumps(squad), encoding="utf8")
    result = runner.invoke(app, ["convert", str(tmp_path / "dev.json"), str(tmp_path / "qa.spacy")])
    assert result.exit_code == 0, result.output
    assert has(result, "Wrote 1 docs (questions)")
    doc = load(tmp_path / "qa.spacy")[0]
    assert doc._.question == "Who founded Globex?"
    assert doc.spans["answers"].attrs["id"] == "q1"

    (tmp_path / "rte.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tyes\n1\tC.\tD.\tno\n", encoding="utf8")
    result = runner.invoke(app, ["convert", str(tmp_path / "rte.tsv"), str(tmp_path / "rte.spacy")])
    assert result.exit_code == 0, result.output
    assert has(result, "single-label")
    docs = load(tmp_path / "rte.spacy")
    assert [(d.text, d._.text_pair, d.cats) for d in docs] == [
        ("A.", "B.", {"no": 0.0, "yes": 1.0}), ("C.", "D.", {"no": 1.0, "yes": 0.0})
    ]


def test_convert_unknown_format_and_scheme_fail(tmp_path):
    raw = tmp_path / "notes.txt"
    raw.write_text("Just prose.\n", encoding="utf8")
    result = runner.invoke(app, ["convert", str(raw), str(tmp_path / "x.spacy")])
    assert result.exit_code == 1 and has(result, "--format")
    result = runner.invoke(app, ["convert", str(raw), str(tmp_path / "x.spacy"), "--format", "iob", "--scheme", "bio3"])
    assert result.exit_code == 1 and has(result, "unknown tag scheme")


def test_convert_several_pairs_in_one_run(tmp_path):
    (tmp_path / "a.iob").write_text("Alice B-PER\nleft O\n", encoding="utf8")
    (tmp_path / "b.tsv").write_text("sentence\tlabel\nGood film.\t1\nBad film.\t0\n", encoding="utf8")
    args = [str(tmp_path / "a.iob"), str(tmp_path / "a.spacy"), str(tmp_path / "b.tsv"), str(tmp_path / "b.spacy")]
    result = runner.invoke(app, ["convert", *args])
    assert result.exit_code == 0, result.output
    nlp = spacy.blank("en")
    ner_docs = list(DocBin().from_disk(tmp_path / "a.spacy").get_docs(nlp.vocab))
    cat_docs = list(DocBin().from_disk(tmp_path / "b.spacy").get_docs(nlp.vocab))
    assert [(e.text, e.label_) for e in ner_docs[0].ents] == [("Alice", "PER")]
    assert [doc.cats for doc in cat_docs] == [{"0": 0.0, "1": 1.0}, {"0": 1.0, "1": 0.0}]


def test_convert_odd_paths_or_missing_input_fail_before_writing(tmp_path):
    (tmp_path / "a.iob").write_text("Alice B-PER\n", encoding="utf8")
    result = runner.invoke(app, ["convert", str(tmp_path / "a.iob"), str(tmp_path / "a.spacy"), str(tmp_path / "b.iob")])
    assert result.exit_code == 1 and "has no OUTPUT" in " ".join(result.output.split())
    result = runner.invoke(app, ["convert", str(tmp_path / "a.iob"), str(tmp_path / "a.spacy"), str(tmp_path / "nope.iob"), str(tmp_path / "b.spacy")])
    assert result.exit_code == 1 and "nope.iob" in "".join(result.output.split())
    assert not (tmp_path / "a.spacy").exists()


def test_convert_label_names(tmp_path):
    (tmp_path / "sst.tsv").write_text("sentence\tlabel\na fine film .\t1\na dull film .\t0\n", encoding="utf8")
    out = tmp_path / "sst.spacy"
    result = runner.invoke(app, ["convert", str(tmp_path / "sst.tsv"), str(out), "--label-names", "0=negative,1=positive"])
    assert result.exit_code == 0, result.output
    assert has(result, "labels renamed: 0 -> negative, 1 -> positive")
    assert [doc.cats for doc in load(out)] == [{"negative": 0.0, "positive": 1.0}, {"negative": 1.0, "positive": 0.0}]
    result = runner.invoke(app, ["convert", str(tmp_path / "sst.tsv"), str(out), "--label-names", "2=neutral"])
    assert result.exit_code == 1
    assert has(result, "names ['2'], but the file's labels are ['0', '1']")
    result = runner.invoke(app, ["convert", str(tmp_path / "sst.tsv"), str(out), "--label-names", "0=x,1=x"])
    assert result.exit_code == 1 and has(result, "two labels the same name")
    result = runner.invoke(app, ["convert", str(tmp_path / "sst.tsv"), str(out), "--label-names", "0"])
    assert result.exit_code == 1 and has(result, "is not OLD=NEW")


def test_convert_a_high_skip_rate_fails_and_max_skip_rate_insists(tmp_path):
    raw, out = tmp_path / "train.iob", tmp_path / "x.spacy"
    raw.write_text("".join(f"Alice B-PER\nmet O\nBob B-PER\n\n" for _ in range(30)), encoding="utf8")
    args = ["convert", str(raw), str(out), "--scheme", "bilou", "--skip-invalid"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and has(result, "too many examples skipped: 30 of 30 sentences")
    assert not out.exists()
    result = runner.invoke(app, [*args, "--max-skip-rate", "1"])
    assert result.exit_code == 0, result.output
    assert has(result, "Skipped 30 sentences") and load(out) == []


def test_convert_a_folder_or_an_empty_file_names_the_fault(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    result = runner.invoke(app, ["convert", str(folder), str(tmp_path / "x.spacy")])
    assert result.exit_code == 1 and has(result, f"Input is a folder: {folder}")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf8")
    for extra in ([], ["--format", "ner-jsonl"]):
        result = runner.invoke(app, ["convert", str(empty), str(tmp_path / "x.spacy"), *extra])
        assert result.exit_code == 1 and has(result, f"{empty}: empty file"), result.output
        assert not (tmp_path / "x.spacy").exists()


def test_help_and_errors_name_every_format_of_the_table(tmp_path):
    """The formats come from one table: --help lists them, an unknown one is refused with the list."""
    from spacy_bert_tasks.corpus.converters import CONVERTERS

    result = runner.invoke(app, ["convert", "--help"])
    assert result.exit_code == 0
    for name, fmt in CONVERTERS.items():
        assert has(result, name) and has(result, fmt.description), name
    path = tmp_path / "in.conll"
    path.write_text(CONLL, encoding="utf8")
    bad = runner.invoke(app, ["convert", str(path), str(tmp_path / "out.spacy"), "--format", "xml"])
    assert bad.exit_code == 1 and has(bad, ", ".join(CONVERTERS))
