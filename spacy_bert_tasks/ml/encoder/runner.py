"""Running the network over a batch of windows with little padding.

Two strategies share one call-and-collect (``_Collector``):

- **packed**: windows side by side in rows as long as the longest one, each
  attending only to itself (BERT-like networks with absolute positions);
- **chunked**: windows sorted by length, in chunks of similar length (any network).
"""
from contextlib import nullcontext
from typing import Any, Dict, List, Optional, Tuple

import numpy
import torch
from spacy_transformers.data_classes import WordpieceBatch
from thinc.api import xp2torch
from transformers import PreTrainedModel

from .windows import ranges

# Networks whose position ids count from pad_token_id + 1 (fairseq's convention),
# so that their position table holds pad_token_id + 1 fewer pieces.
_POSITIONS_AFTER_PADDING = frozenset({"roberta", "xlm-roberta", "camembert"})
# Networks whose windows can be packed into one row: they take a 3D attention
# mask and explicit absolute position ids.
_PACKABLE = frozenset({"bert", "electra", *_POSITIONS_AFTER_PADDING})


def run_transformer(
    transformer: torch.nn.Module,
    wordpieces: WordpieceBatch,
    *,
    max_batch_tokens: int,
    is_train: bool,
    frozen: bool,
    output_hidden_states: bool,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Run the network over the windows with little padding.

    Where the network allows it (see ``packing_position_offset``), windows
    are packed side by side into rows as long as the longest one, each
    attending only to itself and counting its own positions from 0: the
    outputs are those of separate windows, and a batch of short texts costs
    about what its pieces cost. Other networks run windows sorted by length,
    in chunks of similar length.

    RETURNS: the last hidden states, (n_windows, seq_len, width), in input order,
        and, when asked for, every layer's states, (n_windows, n_layers + 1, seq_len, width).
    """
    transformer.train(is_train)
    collector = _Collector(transformer, output_hidden_states)
    position_offset = packing_position_offset(transformer)
    grad_mode = torch.inference_mode() if (frozen or not is_train) else nullcontext()
    with grad_mode:
        if position_offset is not None:
            return _run_packed(collector, wordpieces, max_batch_tokens=max_batch_tokens, position_offset=position_offset)
        return _run_chunks(collector, wordpieces, max_batch_tokens=max_batch_tokens)


class _Collector:
    """Calls the network on one batch of inputs at a time and keeps its outputs."""

    def __init__(self, transformer: torch.nn.Module, output_hidden_states: bool):
        self.transformer = transformer
        self.device = next(transformer.parameters()).device
        self.output_hidden_states = output_hidden_states
        self.hidden: List[torch.Tensor] = []
        self.layers: List[torch.Tensor] = []

    def __call__(self, inputs: Dict[str, torch.Tensor], pad: int = 0) -> None:
        """Run one call; pad its outputs with ``pad`` zero positions at the end."""
        out = self.transformer(**inputs, output_hidden_states=self.output_hidden_states, return_dict=True)
        # (rows, width, hidden) -> (rows, width + pad, hidden)
        self.hidden.append(torch.nn.functional.pad(out.last_hidden_state, (0, 0, 0, pad)) if pad else out.last_hidden_state)
        if self.output_hidden_states:
            stacked = torch.stack(out.hidden_states, dim=1)  # (rows, n_layers + 1, width, hidden)
            self.layers.append(torch.nn.functional.pad(stacked, (0, 0, 0, pad)) if pad else stacked)

    def results(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """All calls' outputs, concatenated along their rows."""
        return torch.cat(self.hidden), (torch.cat(self.layers) if self.output_hidden_states else None)


def first_position_id(config: Any) -> int:
    """The position id of a sequence's first piece: 0, or pad_token_id + 1 for RoBERTa's family."""
    return config.pad_token_id + 1 if config.model_type in _POSITIONS_AFTER_PADDING else 0


def max_positions(config: Any) -> Optional[int]:
    """How many pieces (specials included) one sequence may hold, or None where the config sets no limit.

    RoBERTa's family spends the first pad_token_id + 1 rows of its position table
    (514 rows hold 512 pieces; a table of 512 holds 510).
    """
    limit = getattr(config, "max_position_embeddings", None)
    return limit - first_position_id(config) if limit else None


def packing_position_offset(transformer: torch.nn.Module) -> Optional[int]:
    """The first position id of a packed window, or None where packing is not safe.

    Only a plain Hugging Face network is packed: a wrapper (prefix tuning, say)
    may build its own attention mask from the 2D one.
    """
    if not isinstance(transformer, PreTrainedModel):
        return None
    config = transformer.config
    if config.model_type not in _PACKABLE:
        return None
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return None
    return first_position_id(config)


def _run_packed(
    collector: _Collector, wordpieces: WordpieceBatch, *, max_batch_tokens: int, position_offset: int
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    device = collector.device
    lengths = numpy.asarray(wordpieces.lengths, dtype="int64")
    n_windows, seq_len = wordpieces.input_ids.shape
    row_of, offset_of, n_rows = pack_windows(lengths)
    width = int(lengths.max()) if n_windows else 0
    # Every piece of every window: its window and position, and its row and column once packed.
    window = numpy.repeat(numpy.arange(n_windows), lengths)
    position = ranges(lengths)
    row, column = row_of[window], offset_of[window] + position
    input_ids = numpy.full((n_rows, width), collector.transformer.config.pad_token_id or 0, dtype="int64")
    input_ids[row, column] = wordpieces.input_ids[window, position]
    token_types = numpy.zeros((n_rows, width), dtype="int64")
    if wordpieces.token_type_ids is not None:
        token_types[row, column] = wordpieces.token_type_ids[window, position]
    positions = numpy.zeros((n_rows, width), dtype="int64")
    positions[row, column] = position + position_offset
    segment = numpy.full((n_rows, width), -1, dtype="int64")
    segment[row, column] = window
    rows_per_call = max(1, max_batch_tokens // max(width, 1))
    for start in range(0, n_rows, rows_per_call):
        rows = slice(start, start + rows_per_call)
        # (rows, width, width): a piece sees the pieces of its own window (padding sees padding).
        attention = segment[rows, :, None] == segment[rows, None, :]
        inputs = {
            "input_ids": torch.as_tensor(input_ids[rows], device=device),
            "attention_mask": torch.as_tensor(attention, dtype=torch.float32, device=device),
            "position_ids": torch.as_tensor(positions[rows], device=device),
        }
        if wordpieces.token_type_ids is not None:
            inputs["token_type_ids"] = torch.as_tensor(token_types[rows], device=device)
        collector(inputs)
    packed, packed_layers = collector.results()
    src_row = torch.as_tensor(row, device=device)
    src_col = torch.as_tensor(column, device=device)
    dst = torch.as_tensor(window * seq_len + position, device=device)
    hidden = packed.new_zeros((n_windows * seq_len, packed.shape[-1]))
    hidden = hidden.index_copy(0, dst, packed[src_row, src_col]).view(n_windows, seq_len, -1)
    layers = None
    if packed_layers is not None:
        n_layers = packed_layers.shape[1]
        layers = packed_layers.new_zeros((n_windows * seq_len, n_layers, packed.shape[-1]))
        layers = layers.index_copy(0, dst, packed_layers[src_row, :, src_col])
        layers = layers.view(n_windows, seq_len, n_layers, -1).transpose(1, 2).contiguous()
    return hidden, layers


def pack_windows(lengths: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray, int]:
    """First-fit decreasing: put windows into rows as long as the longest window.

    RETURNS (Tuple[ndarray, ndarray, int]): each window's row and offset in
        that row, and the number of rows.
    """
    width = int(lengths.max()) if len(lengths) else 0
    row_of = numpy.zeros((len(lengths),), dtype="int64")
    offset_of = numpy.zeros((len(lengths),), dtype="int64")
    free = numpy.zeros((len(lengths),), dtype="int64")  # room left in each row opened so far
    n_rows = 0
    for i in numpy.argsort(-lengths, kind="stable"):
        fits = numpy.flatnonzero(free[:n_rows] >= lengths[i])
        row = int(fits[0]) if len(fits) else n_rows
        if row == n_rows:
            free[row] = width
            n_rows += 1
        row_of[i], offset_of[i] = row, width - free[row]
        free[row] -= lengths[i]
    return row_of, offset_of, n_rows


def _run_chunks(
    collector: _Collector, wordpieces: WordpieceBatch, *, max_batch_tokens: int
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    device = collector.device
    lengths = numpy.asarray(wordpieces.lengths, dtype="i")
    seq_len = wordpieces.input_ids.shape[1]
    order = numpy.argsort(-lengths, kind="stable")
    for chunk in length_chunks(lengths[order], max_batch_tokens, chunk_overhead(collector.transformer)):
        rows = order[chunk]
        width = int(lengths[rows].max()) if len(rows) else 0
        inputs = {
            "input_ids": xp2torch(wordpieces.input_ids[rows, :width], device=device),
            "attention_mask": xp2torch(wordpieces.attention_mask[rows, :width], device=device),
        }
        if wordpieces.token_type_ids is not None:
            inputs["token_type_ids"] = xp2torch(wordpieces.token_type_ids[rows, :width], device=device)
        collector(inputs, pad=seq_len - width)
    inverse = torch.as_tensor(numpy.argsort(order), device=device)
    hidden, layers = collector.results()
    return hidden[inverse], (layers[inverse] if layers is not None else None)


def chunk_overhead(transformer: torch.nn.Module) -> int:
    """The fixed cost of one forward call, in padded pieces of this network.

    A call costs about the same whatever the width (op dispatch, reading the
    weights), while a piece costs in proportion to ``hidden_size ** 2``; on
    CPU a call is worth about 256 pieces at width 128 and 16 at width 512.
    """
    config = transformer.config
    width = getattr(config, "hidden_size", None) or getattr(config, "dim", None) or 768
    return int(min(max(2**22 // (width * width), 8), 1024))


def length_chunks(sorted_lengths: numpy.ndarray, max_batch_tokens: int, overhead: int = 64) -> List[slice]:
    """Cut lengths sorted longest first into chunks of similar length.

    Chooses the cuts that minimise the padded pieces computed plus
    ``overhead`` pieces per chunk (see ``chunk_overhead``), with at most
    ``max_batch_tokens`` padded pieces in a chunk (a longer window goes
    alone). A batch of short and long texts thus runs as a few chunks
    instead of padding every text to the longest.
    """
    widths = numpy.maximum(numpy.asarray(sorted_lengths, dtype="int64"), 1)
    n = len(widths)
    # best[j]: least cost of the first j windows; cut[j]: where their last chunk starts.
    best = numpy.zeros((n + 1,), dtype="float64")
    cut = numpy.zeros((n + 1,), dtype="int64")
    for j in range(1, n + 1):
        starts = numpy.arange(j)
        padded = widths[:j] * (j - starts)  # chunk i..j-1 is padded to widths[i]
        cost = best[:j] + overhead + padded
        cost[(padded > max_batch_tokens) & (starts < j - 1)] = numpy.inf
        cut[j] = int(cost.argmin())
        best[j] = cost[cut[j]]
    chunks = []
    j = n
    while j > 0:
        chunks.append(slice(int(cut[j]), j))
        j = int(cut[j])
    return chunks[::-1]

