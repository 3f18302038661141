"""Windows, pairs and alignment: what the network reads for a batch of docs.

Each doc is tokenised once and cut into windows of at most ``max_length``
pieces that overlap by ``stride``; the doc's question goes before each window,
its text pair after it, with the special-token layout of the tokenizer itself
(``layout.SpecialLayout``). Every doc token is aligned to its pieces in every
window that holds them.
"""
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span
from spacy_transformers.data_classes import WordpieceBatch
from thinc.types import Ragged

from ...extensions import QUESTION, TEXT_PAIR, doc_input
from .layout import SpecialLayout


class WindowBatch:
    """The windows of a batch of docs, ready for the network."""

    def __init__(self, spans: List[List[Span]], wordpieces: WordpieceBatch, align: Ragged):
        self.spans = spans
        self.wordpieces = wordpieces
        self.align = align


def encode_windows(tokenizer: Any, docs: Sequence[Doc], settings: Dict[str, Any]) -> WindowBatch:
    """Tokenise each doc once, cut it into windows, and add its question or pair.

    This is the one place where (question, context) and (text, text_pair)
    inputs are built. Every doc token is aligned to its pieces in every window
    that holds them; tokens with no piece (whitespace) get an empty row.
    """
    texts = [doc.text for doc in docs]
    # Whole docs are tokenised once and cut into windows below, so a doc longer than
    # the model is expected: verbose=False silences the tokenizer's "too long" warning.
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                        return_attention_mask=False, return_token_type_ids=False, verbose=False)
    extras, extra_first = extra_segments(tokenizer, docs, settings)
    layouts = {pair: SpecialLayout(tokenizer, pair) for pair in (False, True)}
    windows = _Windows(settings["max_length"], settings["stride"])
    spans = [
        windows.add_doc(doc, ids, offsets, layouts[extra is not None], extra, first)
        for doc, ids, offsets, extra, first in zip(docs, encoded["input_ids"], encoded["offset_mapping"], extras, extra_first)
    ]
    use_types = "token_type_ids" in tokenizer.model_input_names
    wordpieces = pad(tokenizer, windows.seq_ids, windows.seq_types if use_types else None)
    return WindowBatch(spans, wordpieces, windows.alignment(wordpieces))


class _Windows:
    """The windows of the docs added so far, and their tokens' piece positions."""

    def __init__(self, max_length: int, stride: int):
        self.max_length = max_length
        self.stride = stride
        self.seq_ids: List[List[int]] = []
        self.seq_types: List[List[int]] = []
        # Per window: (doc token rows, piece positions in the window), concatenated in alignment().
        self.align_rows: List[numpy.ndarray] = []
        self.align_pos: List[Tuple[int, numpy.ndarray]] = []
        self.n_rows = 0

    def add_doc(
        self, doc: Doc, ids: List[int], offsets: Sequence[Tuple[int, int]], layout: SpecialLayout,
        extra: Optional[List[int]], first: bool,
    ) -> List[Span]:
        """Add one doc's windows; RETURNS the span of doc tokens each window covers."""
        if len(doc) == 0:
            return []
        room = self.max_length - layout.n_special - (len(extra) if extra is not None else 0)
        starts = window_starts(len(ids), room, self.stride)
        first_tok, last_tok = piece_tokens(doc, offsets)
        doc_spans = []
        for w, start in enumerate(starts):
            end = min(start + room, len(ids))
            window = list(ids[start:end])
            if extra is None:
                a, b = window, None
            elif first:
                a, b = extra, window
            else:
                a, b = window, extra
            input_ids, token_types, b_start = layout.build(a, b)
            self.seq_ids.append(input_ids)
            self.seq_types.append(token_types)
            doc_start = b_start if b is window else len(layout.prefix)
            doc_pos = numpy.arange(doc_start, doc_start + len(window))
            # A piece may straddle tokens (e.g. "do|n't"): align it to each of them.
            lo, hi = first_tok[start:end], last_tok[start:end]
            reps = numpy.maximum(hi - lo + 1, 0)
            self.align_rows.append(numpy.repeat(lo, reps) + ranges(reps) + self.n_rows)
            self.align_pos.append((len(self.seq_ids) - 1, numpy.repeat(doc_pos, reps)))
            valid = reps > 0
            span_start = 0 if w == 0 or not valid.any() else int(lo[valid].min())
            span_end = len(doc) if w == len(starts) - 1 or not valid.any() else int(hi[valid].max()) + 1
            doc_spans.append([span_start, span_end])
        for w in range(len(doc_spans) - 1):  # leave no token between windows uncovered
            doc_spans[w][1] = max(doc_spans[w][1], doc_spans[w + 1][0])
        self.n_rows += len(doc)
        return [doc[s:e] for s, e in doc_spans]

    def alignment(self, wordpieces: WordpieceBatch) -> Ragged:
        """One row per doc token: its pieces' flat positions in the padded batch."""
        if not self.align_rows:
            return Ragged(numpy.zeros((0,), dtype="i"), numpy.zeros((self.n_rows,), dtype="i"))
        seq_len = wordpieces.input_ids.shape[1]
        rows = numpy.concatenate(self.align_rows)
        flat = numpy.concatenate([i * seq_len + pos for i, pos in self.align_pos])
        order = numpy.lexsort((flat, rows))
        lengths = numpy.bincount(rows, minlength=self.n_rows).astype("i")
        return Ragged(flat[order].astype("i"), lengths)


def window_starts(n_pieces: int, room: int, stride: int) -> List[int]:
    """Where each window of a doc of ``n_pieces`` starts; consecutive windows share ``stride`` pieces."""
    if n_pieces <= room:
        return [0]
    step = room - min(stride, room // 2)
    starts = list(range(0, n_pieces - room + 1, step))
    if starts[-1] + room < n_pieces:
        starts.append(n_pieces - room)
    return starts


def extra_segments(
    tokenizer: Any, docs: Sequence[Doc], settings: Dict[str, Any]
) -> Tuple[List[Optional[List[int]]], List[bool]]:
    """The question or text pair of each doc as piece ids, cut to their limits.

    Only the inputs in ``settings["doc_inputs"]`` are read: those that the heads
    listening to this encoder read (``spacy_bert_tasks.pipeline.base.link_doc_inputs``).
    None (an encoder never linked, as in pipelines saved before the setting
    existed) reads whichever the doc has. Empty or whitespace-only inputs count
    as unset (``extensions.doc_input``).

    RETURNS: per doc the ids (or None) and whether they go before the doc.
    """
    reads = settings.get("doc_inputs")
    reads = (QUESTION, TEXT_PAIR) if reads is None else tuple(reads)
    extras: List[Optional[List[int]]] = []
    first: List[bool] = []
    cut = {QUESTION: 0, TEXT_PAIR: 0}
    texts = []
    for doc in docs:
        question = doc_input(doc, QUESTION) if QUESTION in reads else None
        pair = doc_input(doc, TEXT_PAIR) if TEXT_PAIR in reads else None
        if question is not None and pair is not None:
            raise ValueError(
                f"A doc has both `doc._.question` and `doc._.text_pair` set ({doc.text[:40]!r}...). "
                "Set the question for QA or the pair for pair classification, not both."
            )
        texts.append(question if question is not None else pair)
        first.append(question is not None)
    wanted = [i for i, text in enumerate(texts) if text is not None]
    ids_by_doc: Dict[int, List[int]] = {}
    if wanted:
        encoded = tokenizer([texts[i] for i in wanted], add_special_tokens=False,
                            return_attention_mask=False, return_token_type_ids=False, verbose=False)
        for i, ids in zip(wanted, encoded["input_ids"]):
            kind = QUESTION if first[i] else TEXT_PAIR
            limit = settings["max_question_length"] if first[i] else settings["max_pair_length"]
            if len(ids) > limit:
                cut[kind] += 1
                ids = ids[:limit]
            ids_by_doc[i] = list(ids)
    for kind, count in cut.items():
        if count:
            setting = "max_question_length" if kind == QUESTION else "max_pair_length"
            warnings.warn(
                f"{count} {kind.replace('_', ' ')}(s) in this batch were longer than {setting}="
                f"{settings[setting]} pieces and were cut. Raise {setting} to keep them whole."
            )
    extras = [ids_by_doc.get(i) for i in range(len(docs))]
    return extras, first


def piece_tokens(doc: Doc, offsets: Sequence[Tuple[int, int]]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """For each piece, the first and last doc token whose characters it covers (0 and -1 for none).

    Only a token's own characters count. SentencePiece/Metaspace and unprefixed
    byte-level offsets include the space before a word ("▁reject" is (2, 9) in
    "EU rejects"), and that space belongs to no token; a piece of whitespace only
    (a lone "▁", or the text of a whitespace token) aligns to nothing.
    """
    offsets_arr = numpy.asarray(offsets, dtype="int64").reshape(-1, 2)
    starts, ends = offsets_arr[:, 0], offsets_arr[:, 1]
    idx, length, is_space = doc.to_array(["IDX", "LENGTH", "IS_SPACE"]).astype("int64").reshape(-1, 3).T
    words = numpy.flatnonzero(is_space == 0)
    if len(words) == 0:
        return numpy.zeros((len(starts),), dtype="i"), numpy.full((len(starts),), -1, dtype="i")
    first = numpy.searchsorted(idx[words] + length[words], starts, side="right")  # first word ending after the start
    last = numpy.searchsorted(idx[words], ends, side="left") - 1  # last word starting before the end
    none = (first > last) | (ends <= starts)
    first_tok, last_tok = words[numpy.minimum(first, len(words) - 1)], words[numpy.maximum(last, 0)]
    first_tok[none], last_tok[none] = 0, -1
    return first_tok.astype("i"), last_tok.astype("i")


def ranges(lengths: numpy.ndarray) -> numpy.ndarray:
    """Concatenated ``arange(n)`` for each n: [2, 3] -> [0, 1, 0, 1, 2]."""
    total = int(lengths.sum())
    if total == 0:
        return numpy.zeros((0,), dtype="i")
    ends = numpy.cumsum(lengths)
    return numpy.arange(total) - numpy.repeat(ends - lengths, lengths)


def pad(tokenizer: Any, seq_ids: List[List[int]], seq_types: Optional[List[List[int]]]) -> WordpieceBatch:
    """Pad the windows' ids (and segment ids, where the network reads them) into one batch."""
    if not seq_ids:
        return WordpieceBatch.empty()
    lengths = [len(ids) for ids in seq_ids]
    seq_len = max(lengths)
    input_ids = numpy.full((len(seq_ids), seq_len), tokenizer.pad_token_id or 0, dtype="int64")
    attention_mask = numpy.zeros((len(seq_ids), seq_len), dtype="float32")
    token_type_ids = numpy.zeros((len(seq_ids), seq_len), dtype="int64") if seq_types is not None else None
    for i, ids in enumerate(seq_ids):
        input_ids[i, : len(ids)] = ids
        attention_mask[i, : len(ids)] = 1
        if token_type_ids is not None:
            token_type_ids[i, : len(ids)] = seq_types[i]
    strings = [tokenizer.convert_ids_to_tokens(ids) for ids in seq_ids]
    return WordpieceBatch(strings=strings, input_ids=input_ids, attention_mask=attention_mask,
                          lengths=lengths, token_type_ids=token_type_ids)
