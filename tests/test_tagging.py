"""tagging.py: tag schemes (plain lists in, plain lists out) and constrained decoding
(Viterbi over allowed transitions, argmax + repair)."""
import itertools

import numpy
import pytest

from spacy_bert_tasks.tagging import (
    TagSequenceError,
    argmax_repair,
    detect_scheme,
    is_allowed,
    is_valid_path,
    spans_to_tags,
    split_tag,
    tags_to_spans,
    to_iob2,
    transition_masks,
    validate_tags,
    viterbi_decode,
    viterbi_decode_batch,
)

IOB2_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BILUO_TAGS = ["O", "B-PER", "I-PER", "L-PER", "U-PER"]


def _brute_force(scores, start, trans, end):
    """The best allowed path by enumeration (small inputs only)."""
    n_tokens, n_tags = scores.shape
    best, best_path = -numpy.inf, None
    for path in itertools.product(range(n_tags), repeat=n_tokens):
        path = numpy.asarray(path)
        if is_valid_path(path, start, trans, end):
            total = scores[numpy.arange(n_tokens), path].sum()
            if total > best:
                best, best_path = total, path
    return best, best_path


def test_transition_masks_iob2():
    start, trans, end = transition_masks(IOB2_TAGS)
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()
    i_per = IOB2_TAGS.index("I-PER")
    assert trans[:, i_per].tolist() == [False, True, True, False, False]
    assert trans[IOB2_TAGS.index("I-LOC"), IOB2_TAGS.index("B-PER")]


def test_transition_masks_biluo():
    start, trans, end = transition_masks(BILUO_TAGS, scheme="bilou")
    assert start.tolist() == [True, True, False, False, True]
    assert end.tolist() == [True, False, False, True, True]  # B and I leave an entity open
    assert not trans[BILUO_TAGS.index("B-PER"), 0]


@pytest.mark.parametrize("tags,scheme", [(IOB2_TAGS, "iob2"), (BILUO_TAGS, "bilou")])
@pytest.mark.parametrize("seed", range(12))
def test_viterbi_finds_the_best_allowed_path(tags, scheme, seed):
    rng = numpy.random.default_rng(seed)
    n_tokens = int(rng.integers(1, 6))
    scores = numpy.log(rng.dirichlet(numpy.ones(len(tags)), size=n_tokens))
    start, trans, end = transition_masks(tags, scheme)
    path = viterbi_decode(scores, start, trans, end)
    best, _ = _brute_force(scores, start, trans, end)
    assert is_valid_path(path, start, trans, end)
    validate_tags([tags[i] for i in path], scheme)
    assert scores[numpy.arange(n_tokens), path].sum() == pytest.approx(best)


def test_viterbi_batch_matches_each_sequence_alone():
    """Sequences of different lengths, some with a valid argmax and some not, decoded together."""
    rng = numpy.random.default_rng(7)
    start, trans, end = transition_masks(IOB2_TAGS)
    batch = [numpy.log(rng.dirichlet(numpy.ones(5), size=n)) for n in (4, 1, 0, 5, 2, 3)]
    batch.append(numpy.log(numpy.tile([0.9, 0.025, 0.025, 0.025, 0.025], (3, 1))))  # argmax all O: valid
    decoded = viterbi_decode_batch(batch, start, trans, end)
    assert [len(path) for path in decoded] == [len(scores) for scores in batch]
    for scores, path in zip(batch, decoded):
        if len(scores):
            best, _ = _brute_force(scores, start, trans, end)
            assert scores[numpy.arange(len(scores)), path].sum() == pytest.approx(best)
    assert decoded[-1].tolist() == [0, 0, 0]


def test_viterbi_keeps_a_valid_argmax_and_fixes_an_invalid_one():
    start, trans, end = transition_masks(IOB2_TAGS)
    valid = numpy.log(numpy.asarray([[0.1, 0.8, 0.05, 0.025, 0.025], [0.1, 0.1, 0.7, 0.05, 0.05]]))
    assert viterbi_decode(valid, start, trans, end).tolist() == [1, 2]
    # I-PER first is not allowed: B-PER I-PER beats O I-...(not allowed) and O O.
    invalid = numpy.log(numpy.asarray([[0.3, 0.3, 0.4, 1e-6, 1e-6], [0.1, 0.05, 0.8, 0.025, 0.025]]))
    assert viterbi_decode(invalid, start, trans, end).tolist() == [1, 2]


def test_viterbi_respects_forbidden_tags_and_empty_input():
    start, trans, end = transition_masks(IOB2_TAGS)
    scores = numpy.log(numpy.full((3, 5), 0.2))
    scores[1, 1:] = -numpy.inf  # the middle token must be O
    scores[0, 1] = scores[2, 2] = 0.0
    path = viterbi_decode(scores, start, trans, end)
    assert path[1] == 0 and is_valid_path(path, start, trans, end)
    assert viterbi_decode(numpy.zeros((0, 5)), start, trans, end).shape == (0,)
    with pytest.raises(ValueError, match="No tag sequence"):
        viterbi_decode(numpy.full((2, 5), -numpy.inf), start, trans, end)


def test_argmax_repair():
    tags = IOB2_TAGS
    wanted = ["O", "I-PER", "I-PER", "B-LOC", "I-PER", "I-LOC"]
    scores = numpy.eye(len(tags))[[tags.index(tag) for tag in wanted]]
    repaired = [tags[i] for i in argmax_repair(scores, tags)]
    assert repaired == ["O", "B-PER", "I-PER", "B-LOC", "B-PER", "B-LOC"]
    assert argmax_repair(numpy.zeros((0, 5)), tags).shape == (0,)


@pytest.mark.parametrize("seed", range(5))
def test_argmax_repair_is_always_valid(seed):
    scores = numpy.random.default_rng(seed).random((40, len(IOB2_TAGS)))
    path = argmax_repair(scores, IOB2_TAGS)
    validate_tags([IOB2_TAGS[i] for i in path], "iob2")


# Tag schemes

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
