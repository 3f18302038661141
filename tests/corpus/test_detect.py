"""Format inference (spacy_bert_tasks/corpus/detect.py)."""
import json

import pytest

from spacy_bert_tasks.corpus import ConversionError, detect_format

CASES = [
    ("train.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n", "conll"),
    ("train.txt", "EU NNP B-ORG\nrejects VBZ O\n", "conll"),
    ("train.bio", "EU\tB-ORG\nrejects\tO\n\nOslo\tU-LOC\n", "iob"),
    ("train.tsv", "sentence\tlabel\nfine \t1\n", "tsv"),
    ("train.csv", "text,label\nfine,1\n", "csv"),
    ("labels.txt", "fine film\t1\nbad\t0\n", "tsv"),
    ("dev.json", json.dumps({"data": [{"title": "t", "paragraphs": []}], "version": "1.1"}), "squad"),
    ("dev2.json", '{\n  "version": "v2.0",\n  "data": [{"paragraphs": []}]\n}', "squad"),
    ("ner.jsonl", '{"text": "Oslo", "entities": [[0, 4, "LOC"]]}\n', "ner-jsonl"),
    ("ner.json", '{"text": "Oslo", "spans": []}\n{"text": "x", "spans": []}\n', "ner-jsonl"),
    ("cats.jsonl", '{"text": "good", "cats": {"pos": 1}}\n', "textcat-jsonl"),
    ("cats.jsonl", '\n{"text": "good", "label": "pos"}\n', "textcat-jsonl"),
]


@pytest.mark.parametrize("name,text,expected", CASES)
def test_detect_format(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    format, why = detect_format(path)
    assert format == expected
    assert why


@pytest.mark.parametrize(
    "name,text",
    [("notes.txt", "Just some prose.\nMore prose here.\n"), ("x.jsonl", '{"text": "no labels"}\n')],
)
def test_undetectable_files_ask_for_format(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    with pytest.raises(ConversionError, match="--format"):
        detect_format(path)


@pytest.mark.parametrize(
    "name,text,expected",
    [
        ("empty.txt", "", "empty file"),
        ("blank.jsonl", "\n \n", "empty file"),
        ("broken.jsonl", '{"text": "Oslo", "entities": [[0, 4, "LOC"]]\n{"text": "x", "entities": []}\n',
         "line 1: invalid JSON: Expecting ',' delimiter"),
        ("broken2.jsonl", '\n{"text": "Oslo" "cats": {}}\n', "line 2: invalid JSON"),
        ("five.txt", "EU NNP B-NP x B-ORG\nrejects VBZ B-VP x O\n", "line 1: unsupported column layout: 5 columns"),
        ("five.tsv.txt", "EU\tNNP\tB-NP\tx\tB-ORG\nrejects\tVBZ\tB-VP\tx\tO\n", "line 1: unsupported column layout"),
        ("bare.txt", "EU B-ORG\nrejects O\n\nOslo B\nis O\n", "line 4: not an NER tag.*'B'"),
    ],
)
def test_detection_names_the_real_fault(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    with pytest.raises(ConversionError, match=expected) as err:
        detect_format(path)
    assert str(path) in str(err.value)
