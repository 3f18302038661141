"""CoNLL-2003 and 2-column IOB files (spacy_bert_tasks/corpus/conll.py)."""
import pytest

from spacy_bert_tasks.corpus import ConversionError, convert_file, docs_to_conll
from spacy_bert_tasks.corpus.conll import CHUNKS_KEY, split_columns

# Written for these tests, in the CoNLL-2003 layout: two documents, three sentences.
CONLL = """-DOCSTART- -X- -X- O

Alice NNP B-NP B-PER
Smith NNP I-NP I-PER
visited VBD B-VP O
Acme NNP B-NP B-ORG
Corp NNP I-NP I-ORG
. . O O

Paris NNP B-NP B-LOC
1996-08-22 CD I-NP O

-DOCSTART- -X- -X- O

Chen NNP B-NP B-PER
left VBD B-VP O
Lima NNP B-NP B-LOC
. . O O

"""

IOB = "Alice B-PER\nSmith I-PER\nin O\nOslo B-LOC\n\nGlobex B-ORG\nrose O\n"


def write(tmp_path, text, name="train.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    return path


def read_columns(text):
    return [split_columns(line) for line in text.splitlines() if line.strip()]


def test_sentences_with_pos_and_entities(tmp_path):
    docs, report = convert_file(write(tmp_path, CONLL), "conll")
    assert [len(doc) for doc in docs] == [6, 2, 4]
    assert (report.n_read, report.n_written, report.n_skipped) == (3, 3, 0)
    assert report.stats["documents (-DOCSTART-)"] == 2
    assert report.stats["sentences"] == 3
    assert report.unit == "sentences"
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Alice Smith", "PER"), ("Acme Corp", "ORG")]
    assert [t.tag_ for t in docs[0]] == ["NNP", "NNP", "VBD", "NNP", "NNP", "."]
    assert docs[0].text == "Alice Smith visited Acme Corp ."
    assert report.labels == {"PER": 2, "ORG": 1, "LOC": 2}


def test_doc_level_sets_sentence_starts(tmp_path):
    docs, report = convert_file(write(tmp_path, CONLL), "conll", doc_level=True)
    assert (report.n_read, report.n_written, report.unit) == (2, 2, "documents")
    assert report.stats["sentences"] == 3
    assert [sent.text for sent in docs[0].sents] == ["Alice Smith visited Acme Corp .", "Paris 1996-08-22"]
    assert [e.text for e in docs[0].ents] == ["Alice Smith", "Acme Corp", "Paris"]


@pytest.mark.parametrize("doc_level", [False, True])
def test_round_trip_is_exact(tmp_path, doc_level):
    docs, _ = convert_file(write(tmp_path, CONLL), "conll", doc_level=doc_level)
    assert docs_to_conll(docs) == CONLL
    assert docs[0].user_data[CHUNKS_KEY][:2] == ["B-NP", "I-NP"]


def test_round_trip_through_docbin(tmp_path):
    from spacy.tokens import DocBin
    import spacy

    from spacy_bert_tasks.corpus import write_docbin

    docs, _ = convert_file(write(tmp_path, CONLL), "conll")
    write_docbin(docs, tmp_path / "out.spacy")
    loaded = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    assert docs_to_conll(loaded) == CONLL


def test_two_column_iob(tmp_path):
    docs, report = convert_file(write(tmp_path, IOB, "train.iob"), "iob")
    assert report.format == "iob"
    assert [[(e.text, e.label_) for e in doc.ents] for doc in docs] == [
        [("Alice Smith", "PER"), ("Oslo", "LOC")], [("Globex", "ORG")]
    ]
    assert report.stats["documents (-DOCSTART-)"] == 0
    assert docs_to_conll(docs) == IOB + "\n"


def test_iob1_file_and_writing_other_schemes(tmp_path):
    text = "Alice I-PER\nSmith I-PER\nBob B-PER\nleft O\n"
    with pytest.raises(ConversionError, match="--scheme iob1"):
        convert_file(write(tmp_path, text), "iob")
    docs, _ = convert_file(write(tmp_path, text), "iob", scheme="iob1")
    assert [e.text for e in docs[0].ents] == ["Alice Smith", "Bob"]
    assert read_columns(docs_to_conll(docs)) == [["Alice", "B-PER"], ["Smith", "I-PER"], ["Bob", "B-PER"], ["left", "O"]]
    assert docs_to_conll(docs, scheme="iob1") == text + "\n"
    assert [c[-1] for c in read_columns(docs_to_conll(docs, scheme="bilou"))] == ["B-PER", "L-PER", "U-PER", "O"]


def test_bilou_detected(tmp_path):
    text = "Alice B-PER\nSmith L-PER\nin O\nOslo U-LOC\n"
    docs, report = convert_file(write(tmp_path, text), "iob")
    assert "BILOU" in " ".join(report.notes)
    assert [e.text for e in docs[0].ents] == ["Alice Smith", "Oslo"]


def test_invalid_tag_names_file_line_and_hint(tmp_path):
    bad = CONLL.replace("Chen NNP B-NP B-PER", "Chen NNP B-NP O").replace("left VBD B-VP O", "left VBD B-VP I-PER")
    path = write(tmp_path, bad)
    with pytest.raises(ConversionError) as err:
        convert_file(path, "conll")
    message = str(err.value)
    assert str(path) in message and "line 16" in message
    assert "'I-PER' after 'O'" in message and "--scheme iob1" in message and "--skip-invalid" in message


def test_wrong_number_of_columns_names_file_and_line(tmp_path):
    path = write(tmp_path, CONLL.replace("visited VBD B-VP O", "visited VBD O"))
    with pytest.raises(ConversionError) as err:
        convert_file(path, "conll")
    assert str(path) in str(err.value) and "line 5" in str(err.value)
    assert "expected 4 columns, found 3" in str(err.value)


def test_skip_invalid_counts_skipped_sentences(tmp_path):
    bad = CONLL.replace("visited VBD B-VP O", "visited VBD O").replace("left VBD B-VP O", "left VBD B-VP I-LOC")
    docs, report = convert_file(write(tmp_path, bad), "conll", skip_invalid=True)
    assert (report.n_read, report.n_written, report.n_skipped) == (3, 1, 2)
    assert report.skipped == {"wrong number of columns": 1, "invalid tag sequence": 1}
    assert report.first_skip["wrong number of columns"] == "line 5"
    assert docs[0].text == "Paris 1996-08-22"


def test_skip_invalid_at_doc_level_skips_the_document(tmp_path):
    bad = CONLL.replace("left VBD B-VP O", "left VBD B-VP I-LOC")
    docs, report = convert_file(write(tmp_path, bad), "conll", doc_level=True, skip_invalid=True)
    assert (report.n_read, report.n_written, dict(report.skipped)) == (2, 1, {"invalid tag sequence": 1})


def test_too_many_columns_and_empty_file(tmp_path):
    with pytest.raises(ConversionError, match="line 1.*5 column"):
        convert_file(write(tmp_path, "a b c d B-PER\n"), "conll")
    with pytest.raises(ConversionError, match="empty file"):
        convert_file(write(tmp_path, "\n\n"), "conll")
    with pytest.raises(ConversionError, match="no token lines"):
        convert_file(write(tmp_path, "-DOCSTART- -X- -X- O\n\n"), "conll")


def _iob2_file(n_sentences=160, stray_at=None):
    """An IOB2 file of single-token and two-token entities, with one BIOES tag in sentence ``stray_at``."""
    lines = []
    for i in range(n_sentences):
        tag = "S-PER" if i == stray_at else "B-PER"
        lines += [f"Alice {tag}", "met O", "Globex B-ORG", "Corp I-ORG", ""]
    return "\n".join(lines)


def test_one_stray_bioes_tag_does_not_flip_the_scheme(tmp_path):
    path = write(tmp_path, _iob2_file(stray_at=100), name="train.iob")
    stray_line = 100 * 5 + 1
    with pytest.raises(ConversionError, match=f"line {stray_line}: invalid tag sequence.*S-PER") as err:
        convert_file(path, "iob")
    assert "reads as IOB2" in str(err.value)
    docs, report = convert_file(path, "iob", skip_invalid=True)
    assert (report.n_read, report.n_written, report.n_skipped) == (160, 159, 1)
    assert report.first_skip["invalid tag sequence"] == f"line {stray_line}"
    assert all([ent.label_ for ent in doc.ents] == ["PER", "ORG"] for doc in docs)
    assert any("IOB2 tags (inferred from the whole file: 159 of 160" in note for note in report.notes)


def test_a_real_bilou_file_is_still_bilou(tmp_path):
    text = _iob2_file(n_sentences=20).replace("B-PER", "U-PER").replace("I-ORG", "L-ORG")
    docs, report = convert_file(write(tmp_path, text, name="train.iob"), "iob")
    assert report.n_written == 20 and [ent.text for ent in docs[0].ents] == ["Alice", "Globex Corp"]
    assert any("BILOU tags" in note for note in report.notes)


def test_skipping_most_of_a_file_is_an_error_unless_insisted_on(tmp_path):
    # Read as BILUO (as an explicit --scheme would), most sentences of an IOB2 file are invalid.
    path = write(tmp_path, _iob2_file(n_sentences=40), name="train.iob")
    with pytest.raises(ConversionError, match="too many examples skipped.*40 of 40 sentences.*--max-skip-rate 1"):
        convert_file(path, "iob", scheme="bilou", skip_invalid=True)
    docs, report = convert_file(path, "iob", scheme="bilou", skip_invalid=True, max_skip_rate=1.0)
    assert report.n_skipped == 40 and docs == []
