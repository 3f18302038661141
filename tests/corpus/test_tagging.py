"""Tag schemes (spacy_bert_tasks/tagging.py): plain lists in, plain lists out."""
import pytest

from spacy_bert_tasks.tagging import (
    TagSequenceError,
    detect_scheme,
    is_allowed,
    spans_to_tags,
    split_tag,
    tags_to_spans,
    to_iob2,
    validate_tags,
)

SPANS = [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC"), (5, 8, "ORG")]
TAGS = {
    "iob2": ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "I-ORG"],
    "iob1": ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "I-ORG"],
    "bilou": ["B-PER", "L-PER", "U-PER", "O", "U-LOC", "B-ORG", "I-ORG", "L-ORG"],
}


@pytest.mark.parametrize("scheme", ["iob2", "iob1", "bilou"])
def test_spans_round_trip(scheme):
    assert spans_to_tags(8, SPANS, scheme) == TAGS[scheme]
    assert tags_to_spans(TAGS[scheme], scheme) == SPANS
    assert to_iob2(TAGS[scheme], scheme) == TAGS["iob2"]


def test_bioes_spellings_read_as_bilou():
    tags = ["B-PER", "E-PER", "S-LOC", "O"]
    assert detect_scheme(tags) == "bilou"
    assert tags_to_spans(tags) == [(0, 2, "PER"), (2, 3, "LOC")]


def test_auto_detects_iob2_and_bilou():
    assert detect_scheme(TAGS["iob2"]) == "iob2"
    assert detect_scheme(TAGS["bilou"]) == "bilou"
    assert tags_to_spans(TAGS["bilou"]) == SPANS


def test_labels_may_contain_hyphens():
    assert split_tag("B-GPE-CITY") == ("B", "GPE-CITY")
    assert tags_to_spans(["B-GPE-CITY", "I-GPE-CITY"]) == [(0, 2, "GPE-CITY")]


@pytest.mark.parametrize(
    "tags,scheme,index",
    [
        (["O", "I-PER"], "iob2", 1),
        (["I-PER"], "iob2", 0),
        (["B-PER", "I-LOC"], "iob2", 1),
        (["B-PER", "O"], "bilou", 1),
        (["O", "B-PER"], "bilou", 1),
        (["I-PER", "L-PER"], "bilou", 0),
        (["B-PER", "L-LOC"], "bilou", 1),
        (["O", "U-PER"], "iob2", 1),
        (["O", "PER"], "iob2", 1),
        (["O", "B-"], "iob1", 1),
    ],
)
def test_invalid_sequences_name_the_bad_index(tags, scheme, index):
    with pytest.raises(TagSequenceError) as err:
        validate_tags(tags, scheme)
    assert err.value.index == index
    assert err.value.tag == tags[index]


def test_iob1_accepts_inside_tags_that_open_entities():
    validate_tags(["O", "I-PER", "I-PER", "B-PER"], "iob1")


def test_is_allowed_covers_start_and_end():
    assert not is_allowed(None, "I-PER", "iob2")
    assert is_allowed(None, "B-PER", "iob2")
    assert not is_allowed("B-PER", None, "bilou")
    assert is_allowed("L-PER", None, "bilou")
    assert is_allowed("O", "I-PER", "iob1")


def test_spans_to_tags_rejects_overlaps_and_out_of_range():
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_tags(4, [(0, 2, "PER"), (1, 3, "LOC")])
    with pytest.raises(ValueError, match="does not fit"):
        spans_to_tags(2, [(1, 3, "PER")])
    with pytest.raises(ValueError, match="Unknown tag scheme"):
        spans_to_tags(2, [], "bio3")


def test_empty_sequence():
    assert tags_to_spans([]) == []
    assert spans_to_tags(0, []) == []
