"""Masking collators for MLM pretraining: tokens, whole words, spans (NSP pairs: ``nsp.py``).

A collator pads a batch of examples and masks it afresh each time it is called, so a
sequence gets a new mask every time it is seen (dynamic masking, as in RoBERTa).
Examples are dicts with ``input_ids`` (special tokens included), ``word_start`` (True
where a piece begins a word) and optionally ``token_type_ids``. Examples that already
carry ``labels`` (a fixed evaluation set, see ``mask_once``) are only padded. Special
tokens and padding are never selected, and random replacements never draw a special
token.

Selected pieces get ``labels`` (the original id; -100 elsewhere) and are replaced:
``mask_replace_prob`` of them by ``[MASK]``, ``random_replace_prob`` by a random piece,
the rest kept. How many to select is ``mlm_probability`` of a sequence's pieces,
rounded at random (floor(x + U)) so that the expected fraction is exact, and at least
one per sequence.

Randomness comes from torch's global generator, which Trainer seeds per process and
restores when it resumes from a checkpoint.
"""
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch



class MaskingCollator:
    """Token masking as in BERT: ``mlm_probability`` of the pieces, split 80/10/10.

    tokenizer (PreTrainedTokenizerFast): gives the special, pad and mask ids and the vocabulary size.
    mlm_probability (float): fraction of the pieces to select.
    mask_replace_prob (float): fraction of the selected pieces replaced by ``[MASK]``.
    random_replace_prob (float): fraction replaced by a random piece; the rest stay as they are.
    max_predictions_per_seq (Optional[int]): at most this many selected pieces per sequence.
    pad_to_multiple_of (Optional[int]): pad the batch length to a multiple of this.
    """

    def __init__(
        self,
        tokenizer,
        *,
        mlm_probability: float = 0.15,
        mask_replace_prob: float = 0.8,
        random_replace_prob: float = 0.1,
        max_predictions_per_seq: Optional[int] = None,
        pad_to_multiple_of: Optional[int] = None,
    ) -> None:
        if not 0.0 < mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), not {mlm_probability}.")
        if mask_replace_prob < 0 or random_replace_prob < 0 or mask_replace_prob + random_replace_prob > 1:
            raise ValueError(
                f"mask_replace_prob ({mask_replace_prob}) and random_replace_prob ({random_replace_prob}) "
                "must be at least 0 and add up to at most 1."
            )
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError(f"{type(tokenizer).__name__} has no mask or pad token; MLM needs both.")
        self.mlm_probability = mlm_probability
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.max_predictions_per_seq = max_predictions_per_seq
        self.pad_to_multiple_of = pad_to_multiple_of
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.cls_id, self.sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids) | {self.pad_id}))
        is_special = torch.zeros(len(tokenizer), dtype=torch.bool)
        is_special[self.special_ids] = True
        self.replacement_ids = torch.nonzero(~is_special).squeeze(1)

    def __call__(self, examples: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        batch = self.pad(examples)
        word_start = batch.pop("word_start")
        if "labels" in batch:
            return batch  # masked already (a fixed evaluation set, see mask_once)
        candidates = batch["attention_mask"].bool() & ~torch.isin(batch["input_ids"], self.special_ids)
        selected, units = self.select(candidates, word_start)
        batch["labels"] = torch.where(selected, batch["input_ids"], -100)
        batch["input_ids"] = self.replace(batch["input_ids"], selected, units)
        return batch

    def pad(self, examples: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        """Stack examples into (batch, length) tensors, padding on the right."""
        length = max(len(eg["input_ids"]) for eg in examples)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(examples)
        input_ids = np.full((n, length), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((n, length), dtype=np.int64)
        token_type_ids = np.zeros((n, length), dtype=np.int64)
        word_start = np.ones((n, length), dtype=bool)
        labels = np.full((n, length), -100, dtype=np.int64) if "labels" in examples[0] else None
        for i, eg in enumerate(examples):
            size = len(eg["input_ids"])
            input_ids[i, :size] = eg["input_ids"]
            attention_mask[i, :size] = 1
            if eg.get("word_start") is not None:
                word_start[i, :size] = eg["word_start"]
            if eg.get("token_type_ids") is not None:
                token_type_ids[i, :size] = eg["token_type_ids"]
            if labels is not None:
                labels[i, :size] = eg["labels"]
        input_ids, attention_mask, token_type_ids, word_start = map(
            torch.from_numpy, (input_ids, attention_mask, token_type_ids, word_start)
        )
        if labels is not None:
            labels = torch.from_numpy(labels)
        # A piece right after a special token or padding always starts a new word.
        not_text = ~attention_mask.bool() | torch.isin(input_ids, self.special_ids)
        word_start |= not_text
        word_start[:, 1:] |= not_text[:, :-1]
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "word_start": word_start,
        }
        if labels is not None:
            batch["labels"] = labels
        return batch

    def budget(self, n_candidates: torch.Tensor) -> torch.Tensor:
        """How many units to select per sequence: floor(p * n + U), at least 1 if any."""
        n_select = torch.floor(n_candidates * self.mlm_probability + torch.rand(n_candidates.shape)).long()
        return torch.where(n_candidates > 0, n_select.clamp(min=1), 0)

    def select(self, candidates: torch.Tensor, word_start: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Choose the pieces to predict.

        RETURNS (Tuple[Tensor, Optional[Tensor]]): (batch, length) selection, and (batch,
            length) unit ids that share one replacement decision (None: each piece alone).
        """
        n_select = self.budget(candidates.sum(1))
        if self.max_predictions_per_seq is not None:
            n_select = n_select.clamp(max=self.max_predictions_per_seq)
        return _select_top_ranked(candidates, n_select), None

    def replace(self, input_ids: torch.Tensor, selected: torch.Tensor, units: Optional[torch.Tensor]) -> torch.Tensor:
        """Apply the [MASK] / random / keep split to the selected pieces."""
        if units is None:
            draw = torch.rand(input_ids.shape)
        else:
            # One draw per unit, shared by all its pieces.
            draw = torch.rand(int(units.max()) + 2)[units + 1]
        to_mask = selected & (draw < self.mask_replace_prob)
        to_random = selected & ~to_mask & (draw < self.mask_replace_prob + self.random_replace_prob)
        output = input_ids.clone()
        output[to_mask] = self.mask_id
        n_random = int(to_random.sum())
        if n_random:
            picks = torch.randint(len(self.replacement_ids), (n_random,))
            output[to_random] = self.replacement_ids[picks]
        return output


class WholeWordMaskingCollator(MaskingCollator):
    """Whole-word masking: every piece of a chosen word, or none of it.

    Words come from ``word_start`` (the tokenizer's word ids), not from a ``##`` prefix, so
    RoBERTa-style tokenizers work too. Each sequence selects floor(p * n_words + U) words
    at random, which selects p of its pieces in expectation whatever the word lengths.
    The 80/10/10 split is drawn per piece, as in BERT's whole-word release.
    """

    def select(self, candidates: torch.Tensor, word_start: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        word_ids = word_start.long().cumsum(1) - 1  # (batch, length)
        candidate_words = torch.zeros_like(candidates).scatter_(1, word_ids, candidates)  # (batch, n_words<=length)
        n_select = self.budget(candidate_words.sum(1))
        chosen_words = _select_top_ranked(candidate_words, n_select)
        if self.max_predictions_per_seq is not None:
            chosen_words = self._cap(chosen_words, word_ids, candidates)
        return chosen_words.gather(1, word_ids) & candidates, None

    def _cap(self, chosen_words: torch.Tensor, word_ids: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Drop chosen words, last first, until at most max_predictions_per_seq pieces remain."""
        word_sizes = torch.zeros_like(word_ids).scatter_add_(1, word_ids, candidates.long())
        sizes = torch.where(chosen_words, word_sizes, 0)
        return chosen_words & (sizes.cumsum(1) <= self.max_predictions_per_seq)


class SpanMaskingCollator(MaskingCollator):
    """Span masking as in SpanBERT: contiguous runs of whole words.

    Span lengths, in words, follow Geometric(``span_p``) over 1..``max_span_length``,
    renormalised as in SpanBERT's code (mean 3.8 words for p=0.2 and 10; clipping with
    min(L, 10) would give 4.5). Each sequence places floor(p * n_words / mean + U)
    spans, which masks p of its pieces in expectation, so span lengths are never cut to
    fit a budget. A span starts at a random word, stays between special tokens, and
    neither overlaps nor touches another span. The 80/10/10 split is drawn per span.
    """

    def __init__(self, tokenizer, *, span_p: float = 0.2, max_span_length: int = 10, **kwargs: Any) -> None:
        super().__init__(tokenizer, **kwargs)
        if not 0.0 < span_p <= 1.0 or max_span_length < 1:
            raise ValueError(f"Need 0 < span_p <= 1 and max_span_length >= 1, not {span_p} and {max_span_length}.")
        self.span_lengths = np.arange(1, max_span_length + 1)
        probs = span_p * (1 - span_p) ** (self.span_lengths - 1)
        self.span_probs = probs / probs.sum()
        self.span_cdf = np.cumsum(self.span_probs)[:-1]  # inverse-CDF sampling of lengths 1..max

    @property
    def mean_span_length(self) -> float:
        """The expected span length in words."""
        return float((self.span_lengths * self.span_probs).sum())

    def select(self, candidates: torch.Tensor, word_start: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        rng = numpy_rng()
        word_ids = (word_start.long().cumsum(1) - 1).numpy()
        is_candidate = candidates.numpy()
        selected = np.zeros(candidates.shape, dtype=bool)
        units = np.full(candidates.shape, -1, dtype=np.int64)
        n_units = 0
        for i in range(len(selected)):
            n_units = self._select_spans(is_candidate[i], word_ids[i], rng, selected[i], units[i], n_units)
        return torch.from_numpy(selected), torch.from_numpy(units)

    def _select_spans(
        self,
        is_candidate: np.ndarray,
        word_ids: np.ndarray,
        rng: np.random.Generator,
        selected: np.ndarray,
        units: np.ndarray,
        n_units: int,
    ) -> int:
        """Fill one sequence's ``selected`` and ``units`` in place; return the units used."""
        positions = np.flatnonzero(is_candidate)  # candidate pieces
        if len(positions) == 0:
            return n_units
        # Candidate words, numbered 0..n-1 in order; a piece's word is word_index[k].
        word_index = np.cumsum(np.diff(word_ids[positions], prepend=-1) > 0) - 1
        n_words = int(word_index[-1]) + 1
        word_first_piece = np.searchsorted(word_index, np.arange(n_words + 1))
        # A gap in the original word ids means a special token between: a new segment.
        first_word_ids = word_ids[positions[word_first_piece[:-1]]]
        segment = np.concatenate([[0], np.cumsum(np.diff(first_word_ids) > 1)])
        n_spans = max(int(np.floor(n_words * self.mlm_probability / self.mean_span_length + rng.random())), 1)
        lengths = np.searchsorted(self.span_cdf, rng.random(n_spans * 4), side="right") + 1
        blocked = np.zeros(n_words + 1, dtype=bool)  # masked or next to a masked word
        n_selected, draw = 0, 0
        for _ in range(n_spans):
            start = None
            while start is None and draw < len(lengths):
                length = int(lengths[draw])
                draw += 1
                start = self._place(length, blocked, segment, rng)
            if start is None:
                continue
            lo, hi = word_first_piece[start], word_first_piece[start + length]
            if self.max_predictions_per_seq is not None and n_selected + hi - lo > self.max_predictions_per_seq:
                break
            span = positions[lo:hi]
            selected[span] = True
            units[span] = n_units
            n_units += 1
            n_selected += hi - lo
            blocked[max(start - 1, 0) : start + length + 1] = True
        return n_units

    @staticmethod
    def _place(length: int, blocked: np.ndarray, segment: np.ndarray, rng: np.random.Generator) -> Optional[int]:
        """A start word, uniform over those where the span fits; None if there is none."""
        n_starts = len(segment) - length + 1
        if n_starts <= 0:
            return None
        # Uniform proposals, kept if valid, are uniform over the valid starts.
        for start in rng.integers(n_starts, size=8).tolist():
            if segment[start] == segment[start + length - 1] and not blocked[start : start + length].any():
                return start
        free = np.concatenate([[0], np.cumsum(blocked[: len(segment)])])
        starts = np.arange(n_starts)
        valid = starts[(free[starts + length] == free[starts]) & (segment[starts] == segment[starts + length - 1])]
        return int(valid[rng.integers(len(valid))]) if len(valid) else None


def mask_once(dataset, masker: MaskingCollator, *, seed: int, batch_size: int = 256) -> List[Dict[str, np.ndarray]]:
    """Mask every example of ``dataset`` once with a fixed seed, for a stable evaluation set.

    The collators pad such examples (they carry ``labels``) without masking them again,
    so the loss before and after training is measured on the same masks. The global
    torch generator is left as it was.
    """
    examples: List[Dict[str, np.ndarray]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(dataset), batch_size):
            batch = masker([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            for i, length in enumerate(batch["attention_mask"].sum(1).tolist()):
                examples.append({key: value[i, :length].numpy() for key, value in batch.items()})
    return examples


def _select_top_ranked(candidates: torch.Tensor, n_select: torch.Tensor) -> torch.Tensor:
    """Select ``n_select[i]`` random candidate positions in row i."""
    scores = torch.rand(candidates.shape)
    scores[~candidates] = 2.0  # never ranked before a candidate
    order = scores.argsort(dim=1)
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
    return (ranks < n_select.unsqueeze(1)) & candidates


def numpy_rng() -> np.random.Generator:
    """A numpy generator seeded from torch's global one, so Trainer's seeding covers it."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
