"""Tag schemes for token-level labelling: IOB2 (BIO), IOB1 and BILUO.

Plain functions on lists of strings and ``(start, end, label)`` tuples, with
no knowledge of spaCy. A tag is ``"O"`` or ``"<prefix>-<label>"``; BILUO also
accepts the BIOES spellings ``S-`` (for ``U-``) and ``E-`` (for ``L-``).
Span ends are exclusive token indices.

Which tag may follow which is decided in one place, :func:`is_allowed`, so
validation and constrained decoding agree.
"""
from typing import Iterable, List, Optional, Sequence, Tuple

IOB2 = "iob2"
IOB1 = "iob1"
BILUO = "bilou"
SCHEMES = (IOB2, IOB1, BILUO)
OUTSIDE = "O"

Span = Tuple[int, int, str]

_PREFIXES = {
    IOB2: ("B", "I"),
    IOB1: ("B", "I"),
    BILUO: ("B", "I", "L", "U"),
}
# BIOES spellings of the BILUO prefixes.
_ALIASES = {"S": "U", "E": "L"}


class TagSequenceError(ValueError):
    """A tag sequence that breaks its scheme.

    index (int): position of the offending tag in the sequence.
    tag (str): the offending tag.
    """

    def __init__(self, message: str, index: int, tag: str) -> None:
        super().__init__(message)
        self.index = index
        self.tag = tag


def split_tag(tag: str) -> Tuple[str, str]:
    """Split a tag into prefix and label: ``"B-PER"`` -> ``("B", "PER")``.

    tag (str): ``"O"`` or ``"<prefix>-<label>"``; the label may contain ``-``.
    RETURNS (Tuple[str, str]): ``("O", "")`` for the outside tag. ``S``/``E``
        are returned as ``U``/``L``.
    """
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, sep, label = tag.partition("-")
    if not sep or not label or len(prefix) != 1:
        raise ValueError(f"'{tag}' is not a tag: expected 'O' or '<prefix>-<label>' such as 'B-PER'")
    return _ALIASES.get(prefix, prefix), label


def detect_scheme(tags: Iterable[str]) -> str:
    """Guess the scheme: BILUO if any ``L-``/``U-``/``S-``/``E-`` tag occurs, else IOB2.

    IOB1 is never guessed: an IOB1 file reads as IOB2 with errors, and the
    error suggests the IOB1 scheme.
    """
    for tag in tags:
        if tag[:2] in ("L-", "U-", "S-", "E-"):
            return BILUO
    return IOB2


def resolve_scheme(tags: Sequence[str], scheme: str) -> str:
    """Return ``scheme``, or the detected scheme when it is ``"auto"``."""
    if scheme == "auto":
        return detect_scheme(tags)
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown tag scheme '{scheme}'. Choose one of: auto, {', '.join(SCHEMES)}.")
    return scheme


def is_allowed(prev: Optional[str], tag: Optional[str], scheme: str = IOB2) -> bool:
    """Whether ``tag`` may follow ``prev`` in a sequence of the given scheme.

    prev (Optional[str]): the previous tag, or None at the start of a sequence.
    tag (Optional[str]): the next tag, or None at the end of a sequence.
    scheme (str): "iob2", "iob1" or "bilou".
    RETURNS (bool): False for transitions the scheme forbids.
    """
    prev_prefix, prev_label = split_tag(prev) if prev is not None else (OUTSIDE, "")
    prefix, label = split_tag(tag) if tag is not None else (OUTSIDE, "")
    if prefix != OUTSIDE and prefix not in _PREFIXES[scheme]:
        return False
    if prev_prefix != OUTSIDE and prev_prefix not in _PREFIXES[scheme]:
        return False
    if scheme == IOB2:
        # I-X continues an entity of type X.
        return prefix != "I" or (prev_prefix in ("B", "I") and prev_label == label)
    if scheme == IOB1:
        # I-X may open an entity; B-X only separates two adjacent entities of
        # type X, but reading it anywhere as "start of X" is unambiguous.
        return True
    # BILUO: an open entity (after B or I) must go on with I or L of its type.
    inside = prev_prefix in ("B", "I")
    if inside:
        return prefix in ("I", "L") and label == prev_label
    return prefix not in ("I", "L")


def validate_tags(tags: Sequence[str], scheme: str = IOB2) -> None:
    """Raise TagSequenceError, with the index of the first bad tag, if ``tags`` break ``scheme``.

    tags (Sequence[str]): the tag sequence of one sentence.
    scheme (str): "iob2", "iob1", "bilou" or "auto".
    """
    scheme = resolve_scheme(tags, scheme)
    prev: Optional[str] = None
    for i, tag in enumerate(tags):
        try:
            prefix, _ = split_tag(tag)
        except ValueError as err:
            raise TagSequenceError(str(err), i, tag) from None
        if prefix != OUTSIDE and prefix not in _PREFIXES[scheme]:
            raise TagSequenceError(f"'{tag}' has a prefix the {scheme.upper()} scheme does not use", i, tag)
        if not is_allowed(prev, tag, scheme):
            where = f"after '{prev}'" if prev is not None else "at the start of a sentence"
            raise TagSequenceError(f"'{tag}' {where} is not valid {scheme.upper()}", i, tag)
        prev = tag
    if tags and not is_allowed(prev, None, scheme):
        raise TagSequenceError(
            f"'{prev}' at the end of a sentence leaves an entity open, which is not valid {scheme.upper()}",
            len(tags) - 1,
            prev,
        )


def tags_to_spans(tags: Sequence[str], scheme: str = "auto") -> List[Span]:
    """Read the entity spans off a tag sequence, after validating it.

    tags (Sequence[str]): one tag per token.
    scheme (str): "iob2", "iob1", "bilou" or "auto" (see detect_scheme).
    RETURNS (List[Tuple[int, int, str]]): ``(start, end, label)``, end exclusive, in order.
    """
    scheme = resolve_scheme(tags, scheme)
    validate_tags(tags, scheme)
    spans: List[Span] = []
    start: Optional[int] = None
    label = ""
    for i, tag in enumerate(tags):
        prefix, tag_label = split_tag(tag)
        # Once the sequence is valid, an entity starts at B or U, at an I that
        # does not continue the open entity (IOB1), and ends before the next start or O.
        continues = start is not None and prefix in ("I", "L") and tag_label == label
        if not continues:
            if start is not None:
                spans.append((start, i, label))
            start, label = (i, tag_label) if prefix != OUTSIDE else (None, "")
        if prefix in ("L", "U"):
            spans.append((start, i + 1, label))
            start, label = None, ""
    if start is not None:
        spans.append((start, len(tags), label))
    return spans


def spans_to_tags(n: int, spans: Iterable[Span], scheme: str = IOB2) -> List[str]:
    """Write entity spans as a tag sequence of length ``n``.

    n (int): number of tokens.
    spans (Iterable[Tuple[int, int, str]]): ``(start, end, label)``, end exclusive; must not overlap.
    scheme (str): "iob2", "iob1" or "bilou".
    RETURNS (List[str]): one tag per token.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown tag scheme '{scheme}'. Choose one of: {', '.join(SCHEMES)}.")
    tags = [OUTSIDE] * n
    prev_end, prev_label = -1, ""
    for start, end, label in sorted(spans):
        if not 0 <= start < end <= n:
            raise ValueError(f"Span ({start}, {end}, {label!r}) does not fit in {n} tokens")
        if start < prev_end:
            raise ValueError(f"Span ({start}, {end}, {label!r}) overlaps the span before it")
        if scheme == BILUO and end - start == 1:
            tags[start] = f"U-{label}"
        else:
            first = "B"
            if scheme == IOB1 and not (start == prev_end and label == prev_label):
                first = "I"
            tags[start] = f"{first}-{label}"
            for i in range(start + 1, end):
                tags[i] = f"I-{label}"
            if scheme == BILUO:
                tags[end - 1] = f"L-{label}"
        prev_end, prev_label = end, label
    return tags


def to_iob2(tags: Sequence[str], scheme: str = "auto") -> List[str]:
    """Convert a tag sequence of any scheme to IOB2 (validating it first)."""
    return spans_to_tags(len(tags), tags_to_spans(tags, scheme), IOB2)


# Constrained decoding ------------------------------------------------------
# Scores are per-token log-probabilities over a tag list; the transitions a
# scheme forbids come from is_allowed, so decoding never yields a sequence
# that validate_tags would reject.

import numpy  # noqa: E402


def transition_masks(tags: Sequence[str], scheme: str = IOB2) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Which tags may open a sequence, follow each other, and close it.

    tags (Sequence[str]): the tag list, in the order of the score columns.
    scheme (str): "iob2", "iob1" or "bilou".
    RETURNS (Tuple[ndarray, ndarray, ndarray]): boolean ``start`` (n_tags,),
        ``trans`` (n_tags, n_tags) with ``trans[prev, next]``, and ``end`` (n_tags,).
    """
    start = numpy.asarray([is_allowed(None, tag, scheme) for tag in tags], dtype=bool)
    end = numpy.asarray([is_allowed(tag, None, scheme) for tag in tags], dtype=bool)
    trans = numpy.asarray([[is_allowed(prev, tag, scheme) for tag in tags] for prev in tags], dtype=bool)
    trans = trans.reshape(len(tags), len(tags))
    return start, trans, end


def is_valid_path(path: numpy.ndarray, start: numpy.ndarray, trans: numpy.ndarray, end: numpy.ndarray) -> bool:
    """Whether a sequence of tag indices obeys the masks of :func:`transition_masks`."""
    if len(path) == 0:
        return True
    return bool(start[path[0]] and end[path[-1]] and trans[path[:-1], path[1:]].all())


def viterbi_decode(
    scores: numpy.ndarray, start: numpy.ndarray, trans: numpy.ndarray, end: numpy.ndarray
) -> numpy.ndarray:
    """The best tag sequence among those the masks allow.

    scores (ndarray): (n_tokens, n_tags) log-probabilities (-inf marks a tag a
        token may not take).
    start, trans, end (ndarray): boolean masks from :func:`transition_masks`.
    RETURNS (ndarray): (n_tokens,) tag indices.
    """
    return viterbi_decode_batch([scores], start, trans, end)[0]


def viterbi_decode_batch(
    batch: Sequence[numpy.ndarray], start: numpy.ndarray, trans: numpy.ndarray, end: numpy.ndarray
) -> List[numpy.ndarray]:
    """:func:`viterbi_decode` for many sequences, one dynamic programme for all.

    With hard constraints only, the best allowed path maximises the summed
    scores; when the per-token argmax is already allowed it is that path, so
    the programme runs only for the sequences that need it, padded to the
    longest of them (a finished sequence keeps its scores and tags).

    batch (Sequence[ndarray]): per sequence, (n_tokens, n_tags) log-probabilities.
    RETURNS (List[ndarray]): per sequence, (n_tokens,) tag indices.
    """
    paths: List[numpy.ndarray] = []
    todo = []
    for i, scores in enumerate(batch):
        best = scores.argmax(axis=1).astype("i") if len(scores) else numpy.zeros((0,), dtype="i")
        paths.append(best)
        finite = numpy.isfinite(scores[numpy.arange(len(best)), best]).all()
        if not (finite and is_valid_path(best, start, trans, end)):
            todo.append(i)
    if not todo:
        return paths
    n_tags = len(start)
    lengths = numpy.asarray([len(batch[i]) for i in todo])
    n_seqs, n_steps = len(todo), int(lengths.max())
    padded = numpy.zeros((n_seqs, n_steps, n_tags), dtype="float64")
    for row, i in enumerate(todo):
        padded[row, : lengths[row]] = batch[i]
    blocked = -numpy.inf
    trans_scores = numpy.where(trans, 0.0, blocked)  # (n_tags, n_tags), [prev, next]
    total = numpy.where(start, padded[:, 0], blocked)  # (n_seqs, n_tags)
    back = numpy.broadcast_to(numpy.arange(n_tags), (n_seqs, n_steps, n_tags)).copy()
    for t in range(1, n_steps):
        candidates = total[:, :, None] + trans_scores  # (n_seqs, prev, next)
        best_prev = candidates.argmax(axis=1)  # (n_seqs, next)
        step_total = numpy.take_along_axis(candidates, best_prev[:, None, :], axis=1)[:, 0] + padded[:, t]
        running = (t < lengths)[:, None]
        total = numpy.where(running, step_total, total)
        back[:, t] = numpy.where(running, best_prev, back[:, t])
    total = numpy.where(end, total, blocked)
    if not numpy.isfinite(total.max(axis=1)).all():
        raise ValueError(
            "No tag sequence satisfies the transition constraints: the scores rule out every allowed path. "
            "Check that -inf is not set on the outside tag 'O'."
        )
    tags = numpy.zeros((n_seqs, n_steps), dtype="i")
    tags[:, -1] = total.argmax(axis=1)
    rows = numpy.arange(n_seqs)
    for t in range(n_steps - 1, 0, -1):
        tags[:, t - 1] = back[rows, t, tags[:, t]]
    for row, i in enumerate(todo):
        paths[i] = tags[row, : lengths[row]]
    return paths


def argmax_repair(scores: numpy.ndarray, tags: Sequence[str]) -> numpy.ndarray:
    """Per-token argmax, then the usual IOB2 repair: an ``I-X`` that does not
    continue an ``X`` entity opens one (becomes ``B-X``).

    scores (ndarray): (n_tokens, n_tags) scores or probabilities.
    tags (Sequence[str]): the IOB2 tag list, in the order of the score columns.
    RETURNS (ndarray): (n_tokens,) tag indices of a valid IOB2 sequence.
    """
    index = {tag: i for i, tag in enumerate(tags)}
    path = scores.argmax(axis=1).astype("i") if len(scores) else numpy.zeros((0,), dtype="i")
    prev: Optional[str] = None
    for t, tag_id in enumerate(path):
        tag = tags[tag_id]
        if not is_allowed(prev, tag, IOB2):
            _, label = split_tag(tag)
            tag = f"B-{label}" if f"B-{label}" in index else OUTSIDE
            path[t] = index[tag]
        prev = tag
    return path
