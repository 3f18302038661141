"""The QA head: start and end scores for the word pieces of every window.

``build_qa_model`` reads the shared encoder through a raw listener and puts
one ``Linear(nO=2)`` on every piece, as ``BertForQuestionAnswering`` does. For
each doc with a question it returns ``WindowLogits``: the start/end logits,
``(n_windows, seq_len, 2)``, and the alignment they refer to. Only the doc's
own pieces and the [CLS] piece of each window (the null answer) are
candidates; the question, [SEP] and padding get ``NEG_INF``.

The rest is plain array code the component uses: ``window_targets`` (the gold
start/end position per window, [CLS] where a window does not hold the whole
answer), ``span_loss`` (the mean of the start and end cross-entropies) and
``decode_spans`` (run_qa.py's n-best search over all windows).
"""
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import TransformerData
from thinc.api import Linear, Model, get_array_module, zero_init
from thinc.types import Floats3d, Ints2d, Ragged

from ..extensions import QUESTION, doc_input
from .heads import bert_init
from .pooling import backprop_to_trf, has_output

NEG_INF = -10000.0  # the logit of a position that can never be an answer


class WindowLogits(NamedTuple):
    """The head's output for one doc with a question.

    logits (Floats3d): (n_windows, seq_len, 2) start and end logits;
        non-candidate positions hold ``NEG_INF``.
    align (Ragged): one row per doc token, the flat indices
        ``window * seq_len + position`` of its pieces.
    """

    logits: Floats3d
    align: Ragged


@registry.architectures("spacy_bert_tasks.QA.v1")
def build_qa_model(
    tok2vec: Model[List[Doc], List[TransformerData]], grad_factor: float = 1.0
) -> Model[List[Doc], List[Optional[WindowLogits]]]:
    """Start/end logits over the encoder's pieces for docs with ``doc._.question``.

    tok2vec (Model[List[Doc], List[TransformerData]]): the raw listener
        (``spacy_bert_tasks.Listener.v1``), or an encoder of the head's own.
    grad_factor (float): scale of the gradient passed to the encoder; 0 keeps
        it fixed with respect to this head.
    RETURNS: per doc, ``WindowLogits`` or None (no question, or empty doc).
    """
    output = Linear(nO=2, init_W=bert_init, init_b=zero_init)
    return Model(
        "qa_span_head", _forward, init=_init, layers=[tok2vec, output], attrs={"grad_factor": grad_factor}
    )


def _init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    tok2vec, output = model.layers
    tok2vec.initialize(X=X)
    if not output.has_dim("nI"):
        widths = [node.get_dim("nO") for node in tok2vec.walk() if node.has_dim("nO")]
        if not widths and X is not None:
            widths = [td.width for td in (doc._.trf_data for doc in X) if td is not None and has_output(td)]
        if not widths:
            raise ValueError(
                "The QA head cannot tell the encoder's width: its listener was never connected to a "
                "`transformer` component. Add one before `bert_qa` and initialise the whole pipeline "
                "with `nlp.initialize()`."
            )
        output.set_dim("nI", widths[0])
    output.initialize()


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Optional[WindowLogits]], Callable]:
    listener, output = model.layers
    xp = model.ops.xp
    trf_datas, bp_listener = listener(docs, is_train)
    read = [i for i, (doc, td) in enumerate(zip(docs, trf_datas)) if doc_input(doc, QUESTION) is not None and has_output(td)]
    shapes = [trf_datas[i].model_output.last_hidden_state.shape for i in read]
    results: List[Optional[WindowLogits]] = [None] * len(docs)
    masks: Dict[int, numpy.ndarray] = {}
    bp_output = None
    if read:
        # Every piece of every window of every doc read, as rows: (total_pieces, width)
        flat = xp.concatenate([trf_datas[i].model_output.last_hidden_state.reshape(-1, s[-1]) for i, s in zip(read, shapes)])
        Y_flat, bp_output = output(flat, is_train)  # (total_pieces, 2)
        start = 0
        for i, (n_windows, seq_len, _) in zip(read, shapes):
            logits = Y_flat[start : start + n_windows * seq_len].reshape(n_windows, seq_len, 2)
            start += n_windows * seq_len
            mask = xp.asarray(candidate_mask(trf_datas[i].align, n_windows, seq_len))
            masks[i] = mask
            results[i] = WindowLogits(xp.where(mask[..., None], logits, NEG_INF).astype("f"), trf_datas[i].align)

    def backprop(d_scores: List[Optional[Floats3d]]) -> List[Doc]:
        d_hiddens = [
            None if not has_output(td) else model.ops.alloc3f(*td.model_output.last_hidden_state.shape)
            for td in trf_datas
        ]
        if read:
            d_flat = xp.concatenate([
                (d_scores[i] * masks[i][..., None]).reshape(-1, 2)
                if d_scores[i] is not None else model.ops.alloc2f(s[0] * s[1], 2)
                for i, s in zip(read, shapes)
            ])
            d_hidden_flat = bp_output(d_flat)  # (total_pieces, width)
            start = 0
            for i, shape in zip(read, shapes):
                size = shape[0] * shape[1]
                d_hiddens[i] = d_hidden_flat[start : start + size].reshape(shape)
                start += size
        return bp_listener(backprop_to_trf(model, trf_datas, d_hiddens))

    return results, backprop


def candidate_mask(align: Ragged, n_windows: int, seq_len: int) -> numpy.ndarray:
    """Which positions may hold an answer's start or end: doc pieces and [CLS].

    RETURNS (numpy.ndarray): bool, (n_windows, seq_len).
    """
    mask = numpy.zeros((n_windows * seq_len,), dtype=bool)
    mask[_to_numpy(align.dataXd).ravel()] = True
    mask[numpy.arange(n_windows) * seq_len] = True  # [CLS] of each window
    return mask.reshape(n_windows, seq_len)


def piece_tokens(align: Ragged, n_windows: int, seq_len: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """For each flat position, the first and last doc token its piece belongs to.

    A piece may belong to two tokens ("do|n't"); positions of no token get -1.
    RETURNS: two int arrays of shape (n_windows * seq_len,).
    """
    flat = _to_numpy(align.dataXd).ravel()
    lengths = _to_numpy(align.lengths)
    rows = numpy.repeat(numpy.arange(len(lengths)), lengths)
    first = numpy.full((n_windows * seq_len,), numpy.iinfo("i").max, dtype="i")
    last = numpy.full((n_windows * seq_len,), -1, dtype="i")
    numpy.minimum.at(first, flat, rows)
    numpy.maximum.at(last, flat, rows)
    first[last < 0] = -1
    return first, last


def window_targets(align: Ragged, n_windows: int, seq_len: int, span: Optional[Tuple[int, int]]) -> Ints2d:
    """The gold (start, end) position in each window; 0 ([CLS]) where there is none.

    span (Optional[Tuple[int, int]]): the answer's first and last token
        (inclusive), or None for an unanswerable question.
    A window holds the answer when it holds every piece of the first and of
    the last token; only then does it target the answer's pieces.
    RETURNS (Ints2d): (n_windows, 2).
    """
    targets = numpy.zeros((n_windows, 2), dtype="i")
    if span is None:
        return targets
    first_tok, last_tok = span
    lengths = _to_numpy(align.lengths)
    starts = numpy.cumsum(lengths) - lengths
    flat = _to_numpy(align.dataXd).ravel()
    pieces_first = flat[starts[first_tok] : starts[first_tok] + lengths[first_tok]]
    pieces_last = flat[starts[last_tok] : starts[last_tok] + lengths[last_tok]]
    count_first = numpy.bincount(pieces_first // seq_len, minlength=n_windows)
    count_last = numpy.bincount(pieces_last // seq_len, minlength=n_windows)
    for w in range(n_windows):
        # A token is whole in a window when it has there as many pieces as it has in any window.
        if count_first[w] == count_first.max() > 0 and count_last[w] == count_last.max() > 0:
            in_w_first = pieces_first[pieces_first // seq_len == w] % seq_len
            in_w_last = pieces_last[pieces_last // seq_len == w] % seq_len
            targets[w] = (in_w_first.min(), in_w_last.max())
    return targets


def span_loss(logits: List[Floats3d], targets: List[Ints2d]) -> Tuple[float, List[Floats3d]]:
    """The mean over windows of the mean of the start and end cross-entropies.

    logits (List[Floats3d]): per doc, (n_windows, seq_len, 2), masked with ``NEG_INF``.
    targets (List[Ints2d]): per doc, (n_windows, 2) gold positions.
    RETURNS: the loss and, per doc, its gradient with respect to the logits.
    """
    n_windows = sum(len(t) for t in targets)
    if n_windows == 0:
        return 0.0, [l * 0 for l in logits]
    loss = 0.0
    d_logits = []
    for L, T in zip(logits, targets):
        xp = get_array_module(L)
        shifted = L - L.max(axis=1, keepdims=True)  # (n_windows, seq_len, 2)
        probs = xp.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        T = xp.asarray(T)
        rows = xp.arange(len(T))
        for k in (0, 1):  # start, end
            loss -= float(xp.log(probs[rows, T[:, k], k] + 1e-12).sum())
        d = probs.copy()
        for k in (0, 1):
            d[rows, T[:, k], k] -= 1.0
        d_logits.append(d / (2 * n_windows))
    return loss / (2 * n_windows), d_logits


class SpanCandidate(NamedTuple):
    """An answer candidate: first and last token (inclusive) and its score."""

    start: int
    end: int
    score: float


def decode_spans(
    logits: Floats3d, align: Ragged, *, n_best_size: int, max_answer_length: int
) -> Tuple[List[SpanCandidate], float]:
    """The n best token spans over all windows, and the null answer's score.

    Per window, the ``n_best_size`` best start and end pieces of the doc are
    paired; a pair is valid when the end does not come before the start and
    it spans at most ``max_answer_length`` pieces. Its score is start logit +
    end logit; it covers the whole tokens of its pieces. A span found in two
    windows keeps its best score. The null score is the smallest [CLS]
    start + end over the windows, as in SQuAD 2.0.
    RETURNS: candidates best first (at most ``n_best_size``), and the null score.
    """
    logits = _to_numpy(logits)
    n_windows, seq_len, _ = logits.shape
    first_tok, last_tok = piece_tokens(align, n_windows, seq_len)
    first_tok, last_tok = first_tok.reshape(n_windows, seq_len), last_tok.reshape(n_windows, seq_len)
    span_starts, span_ends, span_scores = [], [], []
    for w in range(n_windows):
        positions = numpy.flatnonzero(last_tok[w] >= 0)
        if len(positions) == 0:
            continue
        starts = positions[numpy.argsort(-logits[w, positions, 0], kind="stable")[:n_best_size]]
        ends = positions[numpy.argsort(-logits[w, positions, 1], kind="stable")[:n_best_size]]
        scores = logits[w, starts, 0][:, None] + logits[w, ends, 1][None, :]  # (n_starts, n_ends)
        length = ends[None, :] - starts[:, None] + 1
        a, b = numpy.nonzero((length >= 1) & (length <= max_answer_length))
        span_starts.append(first_tok[w, starts[a]])
        span_ends.append(last_tok[w, ends[b]])
        span_scores.append(scores[a, b])
    null_score = float((logits[:, 0, 0] + logits[:, 0, 1]).min())
    if not span_scores:
        return [], null_score
    starts, ends, scores = (numpy.concatenate(x) for x in (span_starts, span_ends, span_scores))
    order = numpy.argsort(-scores, kind="stable")
    # The first (best) occurrence of each token span, in score order.
    _, first = numpy.unique(starts[order].astype("int64") * (len(align.lengths) + 1) + ends[order], return_index=True)
    best = order[numpy.sort(first)][:n_best_size]
    return [SpanCandidate(int(starts[i]), int(ends[i]), float(scores[i])) for i in best], null_score


def _to_numpy(array) -> numpy.ndarray:
    return array.get() if hasattr(array, "get") else numpy.asarray(array)
