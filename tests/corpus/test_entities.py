"""NER JSONL with character offsets (spacy_bert_tasks/corpus/entities.py)."""
import json

import pytest

from spacy_bert_tasks.corpus import ConversionError, convert_file


def write_jsonl(tmp_path, lines, name="ner.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf8")
    return path


def test_list_and_dict_entities(tmp_path):
    path = write_jsonl(tmp_path, [
        {"text": "Alice Smith flew to Oslo.", "entities": [[0, 11, "PER"], [20, 24, "LOC"]]},
        {"text": "Globex rose.", "spans": [{"start": 0, "end": 6, "label": "ORG"}]},
        {"text": "Nothing here.", "entities": []},
    ])
    docs, report = convert_file(path, "ner-jsonl")
    assert [[(e.text, e.label_) for e in doc.ents] for doc in docs] == [
        [("Alice Smith", "PER"), ("Oslo", "LOC")], [("Globex", "ORG")], []
    ]
    assert (report.n_read, report.n_written, report.stats["entities"]) == (3, 3, 3)
    # A doc with no entities is annotated: every token is outside.
    assert docs[2].has_annotation("ENT_IOB")


def test_misaligned_entity_is_widened_and_counted(tmp_path):
    path = write_jsonl(tmp_path, [{"text": "Alice Smith flew.", "entities": [[0, 9, "PER"]]}])
    docs, report = convert_file(path, "ner-jsonl")
    assert docs[0].ents[0].text == "Alice Smith"
    assert report.stats["entities widened to token boundaries"] == 1


@pytest.mark.parametrize(
    "line,fault",
    [
        ('{"text": "Alice", "entities": [[0, 5, "PER"]]', "malformed JSON"),
        ({"text": "Alice", "entities": [[0, 9, "PER"]]}, "entity offsets out of range"),
        ({"text": "Alice Smith", "entities": [[0, 5, "PER"], [0, 11, "PER"]]}, "overlapping entities"),
        ({"text": "Alice", "entities": [[0, "PER"]]}, "malformed entity"),
        ({"text": "Alice"}, "no entity list"),
        ({"entities": []}, "no text"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, fault):
    good = {"text": "Oslo", "entities": [[0, 4, "LOC"]]}
    path = write_jsonl(tmp_path, [good, "", line])
    with pytest.raises(ConversionError) as err:
        convert_file(path, "ner-jsonl")
    assert f"{path}, line 3: {fault}" in str(err.value)
    docs, report = convert_file(path, "ner-jsonl", skip_invalid=True)
    assert (report.n_read, report.n_written, dict(report.skipped)) == (2, 1, {fault: 1})
    assert report.first_skip[fault] == "line 3"
