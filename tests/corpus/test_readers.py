"""Registered corpus readers (spacy_bert_tasks/corpus/readers.py)."""
import json

import pytest
import spacy
from spacy.util import registry

from spacy_bert_tasks.corpus import convert_file, write_docbin

PAIRS = "sentence1\tsentence2\tlabel\nA cat sat.\tA cat was sitting.\tyes\nIt rained.\tIt was dry.\tno\n"
SQUAD = {"data": [{"title": "t", "paragraphs": [{"context": "Alice founded Globex.", "qas": [
    {"id": "q1", "question": "Who founded Globex?", "answers": [{"text": "Alice", "answer_start": 0}]},
]}]}]}
IOB = "Alice B-PER\nleft O\n\nOslo B-LOC\n"


@pytest.fixture
def corpora(tmp_path):
    paths = {}
    for name, text, ext in [("pairs", PAIRS, "tsv"), ("qa", json.dumps(SQUAD), "json"), ("ner", IOB, "iob")]:
        raw = tmp_path / f"{name}.{ext}"
        raw.write_text(text, encoding="utf8")
        docs, _ = convert_file(raw)
        paths[name] = write_docbin(docs, tmp_path / f"{name}.spacy")
    return paths


def read(config):
    return list(registry.resolve({"corpus": config})["corpus"](spacy.blank("en")))


def test_corpus_copies_inputs_to_predicted_docs(corpora):
    examples = read({"@readers": "spacy_bert_tasks.Corpus.v1", "path": str(corpora["pairs"])})
    assert [eg.predicted._.text_pair for eg in examples] == ["A cat was sitting.", "It was dry."]
    assert examples[0].reference.cats == {"no": 0.0, "yes": 1.0}
    qa = read({"@readers": "spacy_bert_tasks.Corpus.v1", "path": str(corpora["qa"])})
    assert qa[0].predicted._.question == "Who founded Globex?"
    assert qa[0].predicted._.text_pair is None
    assert [s.text for s in qa[0].reference.spans["answers"]] == ["Alice"]


def test_corpus_limit(corpora):
    assert len(read({"@readers": "spacy_bert_tasks.Corpus.v1", "path": str(corpora["pairs"]), "limit": 1})) == 1


@pytest.mark.parametrize("as_string", [False, True])
def test_merged_corpus_reads_every_path(corpora, as_string):
    paths = [str(corpora[name]) for name in ("pairs", "qa", "ner")]
    config = {"@readers": "spacy_bert_tasks.MergedCorpus.v1", "paths": ",".join(paths) if as_string else paths}
    examples = read(config)
    assert [eg.reference.text for eg in examples] == [
        "A cat sat.", "It rained.", "Alice founded Globex.", "Alice left", "Oslo"
    ]
    assert examples[2].predicted._.question == "Who founded Globex?"
    # Each doc carries one task's annotations; the others are missing.
    assert not examples[0].reference.has_annotation("ENT_IOB")
    assert examples[3].reference.cats == {}


def test_merged_corpus_limit_per_path_and_shuffle(corpora):
    paths = [str(corpora["pairs"]), str(corpora["ner"])]
    examples = read({"@readers": "spacy_bert_tasks.MergedCorpus.v1", "paths": paths, "limit": 1, "shuffle": True})
    assert sorted(eg.reference.text for eg in examples) == ["A cat sat.", "Alice left"]
    assert [eg for eg in examples if eg.reference.text == "A cat sat."][0].predicted._.text_pair == "A cat was sitting."


def test_merged_corpus_needs_a_path():
    with pytest.raises(ValueError, match="at least one path"):
        registry.resolve({"c": {"@readers": "spacy_bert_tasks.MergedCorpus.v1", "paths": " , "}})


def test_gold_preproc_keeps_the_corpus_tokens(tmp_path):
    """CoNLL's "all-rounder" and "1996-08-30" stay one token each with gold_preproc; spaCy's tokenizer splits them."""
    from spacy_bert_tasks.corpus.readers import TaskCorpus

    raw = tmp_path / "ner.iob"
    raw.write_text("Phil B-PER\nSimmons I-PER\n, O\nall-rounder O\n, O\n1996-08-30 O\n", encoding="utf8")
    docs, _ = convert_file(raw)
    path = write_docbin(docs, tmp_path / "ner.spacy")
    nlp = spacy.blank("en")
    words = ["Phil", "Simmons", ",", "all-rounder", ",", "1996-08-30"]
    (gold,) = TaskCorpus([path], gold_preproc=True)(nlp)
    assert [t.text for t in gold.predicted] == words
    (retokenized,) = TaskCorpus([path])(nlp)
    assert [t.text for t in retokenized.predicted] != words
    assert [e.text for e in gold.reference.ents] == ["Phil Simmons"]


@pytest.mark.parametrize("reader", ["spacy_bert_tasks.Corpus.v1", "spacy_bert_tasks.MergedCorpus.v1"])
def test_gold_preproc_from_the_config_keeps_tokens_and_inputs(corpora, reader):
    key = "paths" if "Merged" in reader else "path"
    path = str(corpora["qa"])
    (example,) = read({"@readers": reader, key: path if key == "path" else [path], "gold_preproc": True})
    assert [t.text for t in example.predicted] == [t.text for t in example.reference]
    assert example.predicted._.question == example.reference._.question is not None
