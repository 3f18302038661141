"""The examples of an MLM run, cut from tokenised text (``text.TokenizedText``).

Packed sequences (documents laid end to end, ``[SEP]`` between documents, cut every
``max_seq_length`` pieces), line-by-line sequences (each line on its own, long lines
cut, never truncated), and sentence chunks for next-sentence prediction.
"""
from typing import Dict, Iterable, List, Tuple

import numpy as np
import torch

from .text import TokenizedText


class SequenceDataset(torch.utils.data.Dataset):
    """Examples ``[CLS] pieces [SEP]``, each a slice of flat piece arrays."""

    def __init__(
        self,
        input_ids: np.ndarray,
        word_start: np.ndarray,
        spans: List[Tuple[int, int]],
        *,
        cls_id: int,
        sep_id: int,
    ) -> None:
        self.input_ids = input_ids
        self.word_start = word_start
        self.spans = spans
        self.cls_id = cls_id
        self.sep_id = sep_id

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
        start, end = self.spans[index]
        ids = np.empty(end - start + 2, dtype=np.int64)
        ids[0], ids[1:-1], ids[-1] = self.cls_id, self.input_ids[start:end], self.sep_id
        word_start = np.ones(end - start + 2, dtype=bool)
        word_start[1:-1] = self.word_start[start:end]
        return {"input_ids": ids, "word_start": word_start}

    @property
    def n_tokens(self) -> int:
        return sum(end - start + 2 for start, end in self.spans)

    def subset(self, indices: Iterable[int]) -> "SequenceDataset":
        """The sequences at ``indices``, sharing the piece arrays."""
        spans = [self.spans[i] for i in indices]
        return SequenceDataset(self.input_ids, self.word_start, spans, cls_id=self.cls_id, sep_id=self.sep_id)


def pack_documents(
    text: TokenizedText, docs: Iterable[int], *, max_seq_length: int, cls_id: int, sep_id: int
) -> SequenceDataset:
    """Lay the documents end to end, ``[SEP]`` between them, and cut every ``max_seq_length``.

    The last, shorter sequence is kept, so no text is lost.
    """
    block = _content_length(max_seq_length)
    ids_parts, start_parts = [], []
    for i, doc in enumerate(docs):
        if i:
            ids_parts.append(np.array([sep_id], dtype=np.int32))
            start_parts.append(np.ones(1, dtype=bool))
        start, end = text.doc_token_range(doc)
        ids_parts.append(text.input_ids[start:end])
        start_parts.append(text.word_start[start:end])
    ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int32)
    word_start = np.concatenate(start_parts) if start_parts else np.zeros(0, bool)
    spans = [(start, min(start + block, len(ids))) for start in range(0, len(ids), block)]
    return SequenceDataset(ids, word_start, spans, cls_id=cls_id, sep_id=sep_id)


def split_lines(
    text: TokenizedText, docs: Iterable[int], *, max_seq_length: int, cls_id: int, sep_id: int
) -> SequenceDataset:
    """One sequence per line; a line longer than ``max_seq_length`` is cut into several."""
    block = _content_length(max_seq_length)
    spans = []
    for start, end in text.line_token_ranges(docs):
        spans.extend((s, min(s + block, end)) for s in range(start, end, block))
    return SequenceDataset(text.input_ids, text.word_start, spans, cls_id=cls_id, sep_id=sep_id)


class SentenceChunkDataset(torch.utils.data.Dataset):
    """Runs of consecutive sentences of one document, for next-sentence prediction.

    Each chunk holds sentences up to ``max_seq_length - 3`` pieces (room for
    ``[CLS] A [SEP] B [SEP]``); a longer sentence is cut into pieces of that length.
    ``NextSentenceCollator`` splits a chunk into A and B, or pairs A with sentences of
    another document, afresh each time the chunk is seen.
    """

    def __init__(self, text: TokenizedText, docs: Iterable[int], *, max_seq_length: int) -> None:
        self.text = text
        self.max_pair_length = max_seq_length - 3
        if self.max_pair_length < 2:
            raise ValueError(f"max_seq_length must be at least 5 for sentence pairs, not {max_seq_length}.")
        self.docs = list(docs)
        # Segments: (start, end) piece ranges, sentences cut to max_pair_length.
        self.segment_spans: List[Tuple[int, int]] = []
        self.segment_doc: List[int] = []
        self.chunks: List[Tuple[int, int]] = []  # (first segment, end segment)
        for doc in self.docs:
            chunk_start, chunk_tokens = len(self.segment_spans), 0
            first_sent, end_sent = text.doc_sentences(doc)
            for sent in range(first_sent, end_sent):
                start, end = int(text.sent_bounds[sent]), int(text.sent_bounds[sent + 1])
                for piece in range(start, end, self.max_pair_length):
                    piece_end = min(piece + self.max_pair_length, end)
                    if chunk_tokens and chunk_tokens + piece_end - piece > self.max_pair_length:
                        self.chunks.append((chunk_start, len(self.segment_spans)))
                        chunk_start, chunk_tokens = len(self.segment_spans), 0
                    self.segment_spans.append((piece, piece_end))
                    self.segment_doc.append(doc)
                    chunk_tokens += piece_end - piece
            if chunk_tokens:
                self.chunks.append((chunk_start, len(self.segment_spans)))
        self.doc_segments: Dict[int, Tuple[int, int]] = {}
        for i, doc in enumerate(self.segment_doc):
            first, _ = self.doc_segments.get(doc, (i, i))
            self.doc_segments[doc] = (first, i + 1)

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: int) -> Dict[str, int]:
        return {"chunk": index}

    def chunk_segments(self, index: int) -> List[Tuple[int, int]]:
        first, end = self.chunks[index]
        return self.segment_spans[first:end]

    def chunk_doc(self, index: int) -> int:
        return self.segment_doc[self.chunks[index][0]]

    def random_segments(self, exclude_doc: int, n_tokens: int, rng: np.random.Generator) -> List[Tuple[int, int]]:
        """Consecutive segments from a random point of another document (any, if there is one)."""
        others = [doc for doc in self.doc_segments if doc != exclude_doc] or list(self.doc_segments)
        doc = others[int(rng.integers(len(others)))]
        first, end = self.doc_segments[doc]
        segments, total = [], 0
        for i in range(int(rng.integers(first, end)), end):
            segments.append(self.segment_spans[i])
            total += segments[-1][1] - segments[-1][0]
            if total >= n_tokens:
                break
        return segments


def _content_length(max_seq_length: int) -> int:
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3 ([CLS] piece [SEP]), not {max_seq_length}.")
    return max_seq_length - 2
