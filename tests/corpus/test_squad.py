"""SQuAD 1.1 / 2.0 JSON (spacy_bert_tasks/corpus/squad.py)."""
import json

import pytest

from spacy_bert_tasks.corpus import ConversionError, convert_file

CONTEXT = "Alice Smith founded Globex in Oslo in 1999."


def squad(qas, version="v2.0"):
    return {"version": version, "data": [{"title": "Globex", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}


QAS = [
    {"id": "q1", "question": "Who founded Globex?",
     "answers": [{"text": "Alice Smith", "answer_start": 0}, {"text": "Smith", "answer_start": 6}]},
    {"id": "q2", "question": "When was it founded?", "answers": [{"text": "199", "answer_start": 38}]},
    {"id": "q3", "question": "Who bought it?", "answers": [], "is_impossible": True,
     "plausible_answers": [{"text": "Alice", "answer_start": 0}]},
]


def write(tmp_path, obj, name="dev.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj, encoding="utf8")
    return path


def test_one_doc_per_question_with_gold_answers(tmp_path):
    docs, report = convert_file(write(tmp_path, squad(QAS)))
    assert report.format == "squad" and (report.n_read, report.n_written) == (3, 3)
    assert [doc.text for doc in docs] == [CONTEXT] * 3
    assert [doc._.question for doc in docs] == [qa["question"] for qa in QAS]
    answers = docs[0].spans["answers"]
    assert [span.text for span in answers] == ["Alice Smith", "Smith"]
    assert answers.attrs == {"unanswerable": False, "texts": ["Alice Smith", "Smith"], "id": "q1"}
    assert docs[0]._.answer.text == "Alice Smith"
    # Widened to the token; the gold string stays in attrs["texts"].
    assert docs[1].spans["answers"][0].text == "1999"
    assert docs[1].spans["answers"].attrs["texts"] == ["199"]
    assert report.stats["answers widened to token boundaries"] == 1
    assert len(docs[2].spans["answers"]) == 0
    assert docs[2].spans["answers"].attrs["unanswerable"] is True
    assert report.stats["unanswerable"] == 1


def test_answers_survive_the_docbin(tmp_path):
    import spacy
    from spacy.tokens import DocBin

    from spacy_bert_tasks.corpus import write_docbin

    docs, _ = convert_file(write(tmp_path, squad(QAS)))
    write_docbin(docs, tmp_path / "dev.spacy")
    loaded = list(DocBin().from_disk(tmp_path / "dev.spacy").get_docs(spacy.blank("en").vocab))
    assert [doc._.question for doc in loaded] == [qa["question"] for qa in QAS]
    assert [[s.text for s in doc.spans["answers"]] for doc in loaded] == [["Alice Smith", "Smith"], ["1999"], []]
    assert [doc.spans["answers"].attrs for doc in loaded] == [doc.spans["answers"].attrs for doc in docs]


def test_offsets_that_miss_the_context_name_file_and_id(tmp_path):
    qas = QAS + [{"id": "bad1", "question": "Where?", "answers": [{"text": "Oslo", "answer_start": 31}]}]
    path = write(tmp_path, squad(qas))
    with pytest.raises(ConversionError) as err:
        convert_file(path)
    message = str(err.value)
    assert f"{path}, SQuAD id bad1: answer offsets do not match the context" in message
    assert "'Oslo' at character 31" in message and "--skip-invalid" in message
    docs, report = convert_file(path, skip_invalid=True)
    assert (report.n_read, report.n_written) == (4, 3)
    assert report.skipped == {"answer offsets do not match the context": 1}
    assert report.first_skip["answer offsets do not match the context"] == "SQuAD id bad1"


@pytest.mark.parametrize(
    "qa,fault",
    [
        ({"id": "x", "question": "Who?", "answers": []}, "no answers"),
        ({"id": "x", "question": "Who?", "answers": [{"text": "Alice", "answer_start": 0}], "is_impossible": True},
         "answers on an unanswerable question"),
        ({"id": "x", "question": "", "answers": []}, "no question"),
        ({"id": "x", "question": "Who?", "answers": [{"text": "Alice"}]}, "malformed answer"),
    ],
)
def test_bad_questions_name_the_id(tmp_path, qa, fault):
    path = write(tmp_path, squad([qa]))
    with pytest.raises(ConversionError, match=f"SQuAD id x: {fault}"):
        convert_file(path, "squad")


def test_malformed_json_names_the_position(tmp_path):
    text = json.dumps(squad(QAS), indent=1).replace('"question": "Who bought it?"', '"question" "Who bought it?"')
    path = write(tmp_path, text)
    with pytest.raises(ConversionError) as err:
        convert_file(path, "squad")
    assert f"{path}, line " in str(err.value) and "column" in str(err.value) and "malformed JSON" in str(err.value)


def test_not_squad(tmp_path):
    with pytest.raises(ConversionError, match="not SQuAD JSON"):
        convert_file(write(tmp_path, {"data": [{"title": "x"}]}), "squad")


def test_duplicate_question_ids_are_rejected(tmp_path):
    qas = [QAS[0], {**QAS[1], "id": "q1"}]
    with pytest.raises(ConversionError, match="SQuAD id q1 .article 0, paragraph 0, question 1.: duplicate question id"):
        convert_file(write(tmp_path, squad(qas)))
    docs, report = convert_file(write(tmp_path, squad(qas)), skip_invalid=True)
    assert len(docs) == 1 and report.skipped == {"duplicate question id": 1}


def test_empty_context_is_not_written_even_when_impossible(tmp_path):
    data = squad([QAS[2]])
    data["data"].append({"title": "Empty", "paragraphs": [{"context": "  ", "qas": [{**QAS[2], "id": "q4"}]}]})
    with pytest.raises(ConversionError, match="SQuAD id q4: empty context"):
        convert_file(write(tmp_path, data))
    docs, report = convert_file(write(tmp_path, data), skip_invalid=True)
    assert [doc.spans["answers"].attrs["id"] for doc in docs] == ["q3"] and report.skipped == {"empty context": 1}
