"""Pooling: from the encoder's pieces to token rows or one vector per doc.

Two families, both registered layers:

- token level, ``List[TransformerData] -> List[Ragged]``: each token's piece
  vectors (``trf_pieces``), and ``reduce_first_safe``, the first piece of each
  token with zeros where a token has no piece;
- doc level, ``List[TransformerData] -> Floats2d``: ``cls`` (the [CLS] vector,
  averaged over a long doc's windows), ``mean`` over the doc's pieces, and
  ``first_token`` (the first piece of the first token).
"""
from typing import Callable, List, Tuple

from spacy.util import registry
from spacy_transformers.align import apply_alignment
from spacy_transformers.data_classes import TransformerData
from thinc.api import Model, get_array_module
from thinc.types import Floats2d, Floats3d, Ragged
from transformers.modeling_outputs import ModelOutput


def has_output(trf_data: TransformerData) -> bool:
    """Whether the encoder gave this doc any output (an empty doc gets none)."""
    return "last_hidden_state" in trf_data.model_output and trf_data.model_output.last_hidden_state.size > 0


def _d_trf_data(trf_data: TransformerData, d_hidden: Floats3d) -> TransformerData:
    # Zeros for the encoder's other outputs (e.g. "hidden_layers"), in order: spacy-transformers
    # adds the gradients of several heads position by position.
    d_output = ModelOutput(last_hidden_state=d_hidden)
    for key, value in trf_data.model_output.items():
        if key != "last_hidden_state" and hasattr(value, "shape"):
            d_output[key] = get_array_module(d_hidden).zeros(value.shape, dtype=value.dtype)
    return TransformerData(wordpieces=trf_data.wordpieces, model_output=d_output, align=trf_data.align)


def backprop_to_trf(model: Model, trf_datas: List[TransformerData], d_hiddens: List) -> List[TransformerData]:
    """Gradients for the docs that have encoder output; empty docs get none, as upstream expects."""
    grad_factor = model.attrs["grad_factor"]
    return [
        _d_trf_data(trf_data, d_hidden * grad_factor)
        for trf_data, d_hidden in zip(trf_datas, d_hiddens)
        if has_output(trf_data)
    ]


@registry.layers("spacy_bert_tasks.trf_pieces.v1")
def trf_pieces(grad_factor: float = 1.0) -> Model[List[TransformerData], List[Ragged]]:
    """Each token's piece vectors, one Ragged per doc (one group per token).

    A token may hold pieces from two overlapping windows; a whitespace token
    holds none.
    """
    return Model("trf_pieces", _pieces_forward, attrs={"grad_factor": grad_factor})


def _pieces_forward(model: Model, trf_datas: List[TransformerData], is_train: bool) -> Tuple[List[Ragged], Callable]:
    outputs, backprops = [], []
    width = 0
    for trf_data in trf_datas:
        if has_output(trf_data):
            hidden = trf_data.model_output.last_hidden_state
            width = hidden.shape[-1]
            dst, get_d_src = apply_alignment(model.ops, trf_data.align, model.ops.reshape2f(hidden, -1, width))
            outputs.append(dst)
            backprops.append(get_d_src)
        else:
            outputs.append(None)
            backprops.append(None)
    for i, trf_data in enumerate(trf_datas):
        if outputs[i] is None:  # an empty doc, or one the encoder never saw
            n_tokens = len(trf_data.align.lengths)
            outputs[i] = Ragged(model.ops.alloc2f(0, width), model.ops.alloc1i(n_tokens))

    def backprop(d_outputs: List[Ragged]) -> List[TransformerData]:
        d_hiddens = []
        for trf_data, d_output, get_d_src in zip(trf_datas, d_outputs, backprops):
            if get_d_src is None:
                d_hiddens.append(None)
            else:
                shape = trf_data.model_output.last_hidden_state.shape
                d_hiddens.append(get_d_src(d_output).reshape(shape))
        return backprop_to_trf(model, trf_datas, d_hiddens)

    return outputs, backprop


@registry.layers("spacy_bert_tasks.reduce_first_safe.v1")
def reduce_first_safe() -> Model[Ragged, Floats2d]:
    """First row of each group, zeros for empty groups (thinc's reduce_first raises)."""
    return Model("reduce_first_safe", _reduce_first_forward)


def _reduce_first_forward(model: Model, X: Ragged, is_train: bool) -> Tuple[Floats2d, Callable]:
    xp = model.ops.xp
    lengths = X.lengths
    starts = xp.cumsum(lengths) - lengths
    has = lengths > 0
    Y = model.ops.alloc2f(len(lengths), X.dataXd.shape[1] if X.dataXd.ndim == 2 else 0)
    Y[has] = X.dataXd[starts[has]]

    def backprop(dY: Floats2d) -> Ragged:
        dX = model.ops.alloc2f(*X.dataXd.shape)
        dX[starts[has]] = dY[has]
        return Ragged(dX, lengths)

    return Y, backprop


@registry.layers("spacy_bert_tasks.cls_pooling.v1")
def cls_pooling(grad_factor: float = 1.0) -> Model[List[TransformerData], Floats2d]:
    """The [CLS] vector of each doc; a doc read in several windows averages them."""
    return Model("cls_pooling", _doc_pooling_forward, attrs={"grad_factor": grad_factor, "mode": "cls"})


@registry.layers("spacy_bert_tasks.mean_pooling.v1")
def mean_pooling(grad_factor: float = 1.0) -> Model[List[TransformerData], Floats2d]:
    """The mean of the vectors of the doc's own pieces (no specials, no question or pair)."""
    return Model("mean_pooling", _doc_pooling_forward, attrs={"grad_factor": grad_factor, "mode": "mean"})


@registry.layers("spacy_bert_tasks.first_token_pooling.v1")
def first_token_pooling(grad_factor: float = 1.0) -> Model[List[TransformerData], Floats2d]:
    """The vector of the first piece of the doc's first token that has one."""
    return Model("first_token_pooling", _doc_pooling_forward, attrs={"grad_factor": grad_factor, "mode": "first_token"})


def _doc_pooling_forward(model: Model, trf_datas: List[TransformerData], is_train: bool) -> Tuple[Floats2d, Callable]:
    mode = model.attrs["mode"]
    xp = model.ops.xp
    widths = [td.model_output.last_hidden_state.shape[-1] for td in trf_datas if has_output(td)]
    width = widths[0] if widths else (model.get_dim("nO") if model.has_dim("nO") else 0)
    Y = model.ops.alloc2f(len(trf_datas), width)
    # Per doc: flat piece rows of its (n_windows * seq_len) hidden array, and their weights.
    picks: List = []
    for i, trf_data in enumerate(trf_datas):
        if not has_output(trf_data):
            picks.append(None)
            continue
        hidden = trf_data.model_output.last_hidden_state
        n_windows, seq_len = hidden.shape[:2]
        if mode == "cls":
            rows = xp.arange(n_windows) * seq_len
        elif mode == "mean":
            rows = xp.unique(trf_data.align.dataXd.ravel())
        else:
            nonempty = xp.flatnonzero(trf_data.align.lengths > 0)
            rows = trf_data.align.dataXd.ravel()[:1] if len(nonempty) == 0 else trf_data.align[int(nonempty[0])].dataXd.ravel()[:1]
        if len(rows) == 0:  # a doc of whitespace only: fall back to [CLS]
            rows = xp.arange(n_windows) * seq_len
        flat = hidden.reshape(-1, hidden.shape[-1])
        Y[i] = flat[rows].mean(axis=0)
        picks.append(rows)

    def backprop(dY: Floats2d) -> List[TransformerData]:
        d_hiddens = []
        for i, (trf_data, rows) in enumerate(zip(trf_datas, picks)):
            if rows is None:
                d_hiddens.append(None)
                continue
            hidden = trf_data.model_output.last_hidden_state
            d_flat = model.ops.alloc2f(hidden.shape[0] * hidden.shape[1], hidden.shape[2])
            d_flat[rows] = dY[i] / len(rows)
            d_hiddens.append(d_flat.reshape(hidden.shape))
        return backprop_to_trf(model, trf_datas, d_hiddens)

    return Y, backprop
