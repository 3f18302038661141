"""Constrained decoding in tagging.py: Viterbi over allowed transitions, argmax + repair."""
import itertools

import numpy
import pytest

from spacy_bert_tasks.tagging import (
    argmax_repair,
    is_valid_path,
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
