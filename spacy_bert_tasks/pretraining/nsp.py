"""Next-sentence prediction: sentence pairs made afresh each time, then masked."""
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from .collators import MaskingCollator, numpy_rng
from .sequences import SentenceChunkDataset


class NextSentenceCollator:
    """Sentence pairs for next-sentence prediction, then masking by ``masker``.

    Takes examples ``{"chunk": i}`` of a ``SentenceChunkDataset``. Each chunk is split
    at a random sentence boundary into A and B; with ``random_next_prob`` B is instead
    taken from a random point of another document (``next_sentence_label`` 1, else 0).
    Pairs are made afresh each time, then cut to fit ``[CLS] A [SEP] B [SEP]``.
    """

    def __init__(self, masker: MaskingCollator, chunks: SentenceChunkDataset, *, random_next_prob: float = 0.5) -> None:
        self.masker = masker
        self.chunks = chunks
        self.random_next_prob = random_next_prob
        if masker.cls_id is None or masker.sep_id is None:
            raise ValueError("Next-sentence prediction needs a tokenizer with [CLS] and [SEP] tokens.")
        self.cls_id, self.sep_id = masker.cls_id, masker.sep_id

    def __call__(self, examples: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        if "labels" in examples[0]:
            return self.masker(examples)  # masked sequences of a fixed evaluation set
        rng = numpy_rng()
        pairs, labels = [], []
        for eg in examples:
            pair, is_random = self._make_pair(eg["chunk"], rng)
            pairs.append(pair)
            labels.append(int(is_random))
        batch = self.masker(pairs)
        batch["next_sentence_label"] = torch.tensor(labels, dtype=torch.long)
        return batch

    def _make_pair(self, index: int, rng: np.random.Generator) -> Tuple[Dict[str, np.ndarray], bool]:
        text, max_length = self.chunks.text, self.chunks.max_pair_length
        segments = self.chunks.chunk_segments(index)
        if len(segments) == 1:
            # One sentence: cut it in two at a random piece.
            start, end = segments[0]
            if end - start >= 2:
                cut = int(rng.integers(start + 1, end))
                segments = [(start, cut), (cut, end)]
        a_end = int(rng.integers(1, len(segments))) if len(segments) > 1 else 1
        part_a = segments[:a_end]
        is_random = len(segments) == 1 or rng.random() < self.random_next_prob
        a_length = sum(end - start for start, end in part_a)
        if is_random:
            need = max(max_length - a_length, 1)
            part_b = self.chunks.random_segments(self.chunks.chunk_doc(index), need, rng)
        else:
            part_b = segments[a_end:]
        ids_a, starts_a = _gather(text, part_a)
        ids_b, starts_b = _gather(text, part_b)
        # Trim the longer side from its end until the pair fits.
        while len(ids_a) + len(ids_b) > max_length:
            if len(ids_a) > len(ids_b):
                ids_a, starts_a = ids_a[:-1], starts_a[:-1]
            else:
                ids_b, starts_b = ids_b[:-1], starts_b[:-1]
        ids = np.concatenate([[self.cls_id], ids_a, [self.sep_id], ids_b, [self.sep_id]]).astype(np.int64)
        word_start = np.concatenate([[True], starts_a, [True], starts_b, [True]])
        token_type_ids = np.zeros(len(ids), dtype=np.int64)
        token_type_ids[len(ids_a) + 2 :] = 1
        return {"input_ids": ids, "word_start": word_start, "token_type_ids": token_type_ids}, is_random


def _gather(text, segments: List[Tuple[int, int]]) -> Tuple[np.ndarray, np.ndarray]:
    ids = np.concatenate([text.input_ids[start:end] for start, end in segments])
    starts = np.concatenate([text.word_start[start:end] for start, end in segments]).copy()
    if len(starts):
        starts[0] = True
    return ids, starts
