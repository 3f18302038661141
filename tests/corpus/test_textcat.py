"""Text classification tables and JSONL (spacy_bert_tasks/corpus/textcat.py)."""
import json

import pytest

from spacy_bert_tasks.corpus import ConversionError, convert_file

# Written for these tests in the layouts of the GLUE files.
MRPC = (
    "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    '1\t101\t102\tShe said " no " .\tShe replied " no " .\n'
    "0\t103\t104\tPrices rose .\tThe team won .\n"
)
SST2 = "sentence\tlabel\na gentle , funny film \t1\nflat and dull \t0\nwarm \t1\n"
RTE = (
    "index\tsentence1\tsentence2\tlabel\n"
    '0\tA "big" dog ran.\tA dog ran.\tentailment\n'
    "1\tIt rained.\tIt was dry.\tnot_entailment\n"
)


def write(tmp_path, text, name):
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    return path


def test_mrpc_pairs_with_bom_and_bare_quotes(tmp_path):
    docs, report = convert_file(write(tmp_path, MRPC, "train.tsv"))
    assert (report.n_read, report.n_written, report.unit) == (2, 2, "pairs")
    assert docs[0].text == 'She said " no " .'
    assert docs[0]._.text_pair == 'She replied " no " .'
    assert [doc.cats for doc in docs] == [{"0": 0.0, "1": 1.0}, {"0": 1.0, "1": 0.0}]
    assert report.multilabel is False


def test_sst2_header_and_trailing_spaces(tmp_path):
    docs, report = convert_file(write(tmp_path, SST2, "train.tsv"))
    assert [doc.text for doc in docs] == ["a gentle , funny film", "flat and dull", "warm"]
    assert docs[0]._.text_pair is None
    assert report.labels == {"1": 2, "0": 1}
    assert report.unit == "texts"


def test_rte_string_labels(tmp_path):
    docs, report = convert_file(write(tmp_path, RTE, "train.tsv"))
    assert docs[0].text == 'A "big" dog ran.' and docs[0]._.text_pair == "A dog ran."
    assert docs[1].cats == {"entailment": 0.0, "not_entailment": 1.0}


def test_csv_without_header_label_first(tmp_path):
    text = 'pos,"I loved it, really"\nneg,Awful\nneg,Dull\n'
    docs, report = convert_file(write(tmp_path, text, "data.csv"))
    assert report.format == "csv"
    assert [doc.text for doc in docs] == ["I loved it, really", "Awful", "Dull"]
    assert docs[0].cats == {"neg": 0.0, "pos": 1.0}


def test_csv_without_header_label_last(tmp_path):
    docs, _ = convert_file(write(tmp_path, "Great fun,pos\nAwful,neg\nDull,neg\n", "data.csv"))
    assert [doc.text for doc in docs] == ["Great fun", "Awful", "Dull"]
    assert docs[1].cats == {"neg": 1.0, "pos": 0.0}


def test_multilabel_table_fills_every_label(tmp_path):
    text = "text\tlabels\nA tense, funny film\tcomedy|thriller\nA slow one\tdrama\nJust noise\t\n"
    docs, report = convert_file(write(tmp_path, text, "genres.tsv"))
    assert report.multilabel is True
    assert "multi-label" in " ".join(report.notes)
    assert docs[0].cats == {"comedy": 1.0, "drama": 0.0, "thriller": 1.0}
    assert docs[2].cats == {"comedy": 0.0, "drama": 0.0, "thriller": 0.0}


def test_wrong_number_of_columns_names_file_and_line(tmp_path):
    path = write(tmp_path, SST2 + "an extra\ttab\t1\n", "train.tsv")
    with pytest.raises(ConversionError) as err:
        convert_file(path)
    assert f"{path}, line 5: wrong number of columns: expected 2, found 3" in str(err.value)
    docs, report = convert_file(path, skip_invalid=True)
    assert (report.n_read, report.n_written, dict(report.skipped)) == (4, 3, {"wrong number of columns": 1})


def test_empty_label_is_an_error(tmp_path):
    path = write(tmp_path, "text,label\nGood,pos\nBad,\n", "data.csv")
    with pytest.raises(ConversionError, match=r"line 3: empty label"):
        convert_file(path)


def test_unknown_columns_say_what_to_name_them(tmp_path):
    path = write(tmp_path, "a\tb\tc\td\n1\t2\t3\t4\n", "x.tsv")
    with pytest.raises(ConversionError, match="header row naming the columns"):
        convert_file(path)


def write_jsonl(tmp_path, lines):
    path = tmp_path / "cats.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf8")
    return path


def test_jsonl_single_label_and_pairs(tmp_path):
    path = write_jsonl(tmp_path, [
        {"text": "Great", "label": "pos"},
        {"text": "A cat sat.", "text_pair": "A cat was sitting.", "label": "neg"},
    ])
    docs, report = convert_file(path)
    assert report.format == "textcat-jsonl" and report.multilabel is False
    assert docs[0].cats == {"neg": 0.0, "pos": 1.0}
    assert docs[1]._.text_pair == "A cat was sitting."


def test_jsonl_label_lists_and_cats_are_multilabel(tmp_path):
    path = write_jsonl(tmp_path, [
        {"text": "Funny and scary", "labels": ["comedy", "horror"]},
        {"text": "Sad", "cats": {"drama": 1}},
    ])
    docs, report = convert_file(path)
    assert report.multilabel is True
    assert docs[0].cats == {"comedy": 1.0, "drama": 0.0, "horror": 1.0}
    assert docs[1].cats == {"comedy": 0.0, "drama": 1.0, "horror": 0.0}
    assert report.stats["cats values absent from a line, set to 0.0"] == 2


def test_jsonl_cats_with_one_positive_each_are_exclusive(tmp_path):
    path = write_jsonl(tmp_path, [{"text": "A", "cats": {"x": 1, "y": 0}}, {"text": "B", "cats": {"x": 0.0, "y": 1.0}}])
    _, report = convert_file(path)
    assert report.multilabel is False


@pytest.mark.parametrize(
    "line,fault",
    [
        ("{not json", "malformed JSON"),
        ({"text": "A", "cats": {"x": 3}}, "malformed cats"),
        ({"text": "A"}, "no label"),
        ({"text": " ", "label": "x"}, "empty text"),
        ('["a list"]', "not a JSON object"),
    ],
)
def test_jsonl_bad_lines_name_file_and_line(tmp_path, line, fault):
    path = write_jsonl(tmp_path, [{"text": "Fine", "label": "pos"}, line])
    with pytest.raises(ConversionError) as err:
        convert_file(path, "textcat-jsonl")
    assert f"{path}, line 2: {fault}" in str(err.value)
    docs, report = convert_file(path, "textcat-jsonl", skip_invalid=True)
    assert (report.n_read, report.n_written, dict(report.skipped)) == (2, 1, {fault: 1})


def test_jsonl_integer_labels(tmp_path):
    docs, _ = convert_file(write_jsonl(tmp_path, [{"text": "A", "label": 1}, {"text": "B", "label": 0}]))
    assert docs[0].cats == {"0": 0.0, "1": 1.0}


def test_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("text\tlabel\ncaf\xe9\tpos\n".encode("latin-1"))
    with pytest.raises(ConversionError, match=r"latin1.tsv, byte 14: not UTF-8 text"):
        convert_file(path)


def test_an_empty_label_list_does_not_make_the_file_multilabel(tmp_path):
    rows = [{"text": "good", "labels": ["pos"]}, {"text": "bad", "labels": ["neg"]}, {"text": "meh", "labels": []}]
    path = tmp_path / "cats.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf8")
    with pytest.raises(ConversionError, match="line 3: no label.*single-label"):
        convert_file(path)
    docs, report = convert_file(path, skip_invalid=True)
    assert report.multilabel is False and report.skipped == {"no label": 1}
    assert [doc.cats for doc in docs] == [{"neg": 0.0, "pos": 1.0}, {"neg": 1.0, "pos": 0.0}]
    # With a text of several labels the file is multi-label, and an empty list is a text with none.
    path.write_text("".join(json.dumps(row) + "\n" for row in [*rows, {"text": "both", "labels": ["pos", "neg"]}]))
    docs, report = convert_file(path)
    assert report.multilabel is True and docs[2].cats == {"neg": 0.0, "pos": 0.0}
