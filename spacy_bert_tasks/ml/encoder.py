"""The shared, pair-aware encoder: one pass per window feeds every head.

``build_encoder_model`` returns the model of spacy-transformers' ``transformer``
component. It differs from ``spacy-transformers.TransformerModel.v3`` in four ways:

- **Pairs.** A doc with ``doc._.question`` is read as ``[CLS] question [SEP]
  window [SEP]``; a doc with ``doc._.text_pair`` as ``[CLS] window [SEP]
  text_pair [SEP]``, with the segment ids BERT was pre-trained with.
- **Windows in word pieces.** Each doc is tokenised once; windows of at most
  ``max_length`` pieces (specials and the question included) overlap by
  ``stride`` pieces, as in SQuAD's ``doc_stride``. No text is ever dropped.
- **Length-sorted chunks.** The windows of a batch run through the network in
  chunks of similar length, so little padding is computed.
- **Frozen mode.** With ``frozen = true`` the network runs under
  ``torch.inference_mode`` in training too, and its weights get no gradients.

The output is spacy-transformers' ``FullTransformerBatch``, so its listeners,
``TransformerData`` and ``doc._.trf_data`` work unchanged. The alignment has one
row per doc token, pointing at the token's pieces in every window.
"""
import copy
import logging
import os
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy
import torch
from spacy.tokens import Doc, Span
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch, HFObjects, WordpieceBatch
from spacy_transformers.layers.transformer_model import TransformerModel
from thinc.api import Model, get_torch_default_device, torch2xp, xp2torch
from thinc.types import Ragged
from transformers import AutoConfig, AutoModel, AutoTokenizer
from transformers.modeling_outputs import ModelOutput

logger = logging.getLogger(__name__)


def _single_threaded_after_fork() -> None:
    """Run torch on one thread in a forked child (``nlp.pipe(n_process=...)``).

    OpenMP's worker threads do not survive a fork: a child whose first torch
    op opens a parallel region waits for them forever. One thread per process
    avoids that; the processes are the parallelism.
    """
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_single_threaded_after_fork)


@registry.architectures("spacy_bert_tasks.Encoder.v1")
def build_encoder_model(
    name: str,
    max_length: int = 512,
    stride: int = 128,
    max_question_length: int = 64,
    max_pair_length: int = 256,
    max_batch_tokens: int = 4096,
    frozen: bool = False,
    tokenizer_config: Dict[str, Any] = {"use_fast": True},
    transformer_config: Dict[str, Any] = {},
) -> Model[List[Doc], FullTransformerBatch]:
    """Build the pair-aware encoder around a local Hugging Face folder.

    name (str): a local folder with config, fast tokenizer and safetensors
        weights (or a hub name, where a network allows it).
    max_length (int): word pieces per window, specials and question included.
    stride (int): word pieces shared by consecutive windows of a long doc.
    max_question_length (int): longer questions are cut to this many pieces.
    max_pair_length (int): longer ``text_pair`` texts are cut to this many pieces.
    max_batch_tokens (int): padded pieces per forward chunk.
    frozen (bool): never compute gradients for the encoder (feature extraction).
    """
    return EncoderModel(
        name,
        max_length=max_length,
        stride=stride,
        max_question_length=max_question_length,
        max_pair_length=max_pair_length,
        max_batch_tokens=max_batch_tokens,
        frozen=frozen,
        tokenizer_config=tokenizer_config,
        transformer_config=transformer_config,
    )


class EncoderModel(TransformerModel):
    """spacy-transformers' ``TransformerModel`` with our forward pass.

    Subclassing keeps what spaCy and spacy-transformers rely on: the HF
    wrapper and its serialisation, ``tokenizer``/``transformer`` properties,
    and the ``replace_listener`` hooks.
    """

    def __init__(self, name: str, **settings: Any):
        tokenizer_config = dict(settings.pop("tokenizer_config", {}))
        transformer_config = dict(settings.pop("transformer_config", {}))
        super().__init__(name, get_spans=None, tokenizer_config=tokenizer_config,
                         transformer_config=transformer_config)
        self._func = forward
        self.init = init
        self.attrs.update(settings)
        self.attrs["output_hidden_states"] = False
        self.attrs["replace_listener_cfg"] = replace_listener_cfg

    def copy(self) -> "EncoderModel":
        settings = {key: self.attrs[key] for key in _SETTINGS}
        copied = EncoderModel(self.attrs["name"], tokenizer_config=self._init_tokenizer_config,
                              transformer_config=self._init_transformer_config, **settings)
        copied.attrs["output_hidden_states"] = self.attrs["output_hidden_states"]
        copied.layers[0] = copy.deepcopy(self.layers[0])
        if self.attrs["has_transformer"]:
            copied.attrs["has_transformer"] = True
            copied.set_dim("nO", self.get_dim("nO"))
        return copied


_SETTINGS = ("max_length", "stride", "max_question_length", "max_pair_length", "max_batch_tokens", "frozen")


def replace_listener_cfg(encoder_cfg: Dict[str, Any], listener_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The config spaCy's ``replace_listeners`` writes where a head's listener was.

    The copied encoder goes into the head as ``spacy_bert_tasks.StandaloneEncoder.v1``
    (for our raw listener) or ``spacy_bert_tasks.EncoderTok2Vec.v1`` (for
    spacy-transformers' pooled one), so the saved config rebuilds the model.
    """
    architecture = listener_cfg.get("@architectures", "")
    if architecture == "spacy_bert_tasks.Listener.v1":
        return {**encoder_cfg, "@architectures": "spacy_bert_tasks.StandaloneEncoder.v1"}
    if "TransformerListener" in architecture:
        extra = {key: listener_cfg[key] for key in ("pooling", "grad_factor") if key in listener_cfg}
        return {**encoder_cfg, **extra, "@architectures": "spacy_bert_tasks.EncoderTok2Vec.v1"}
    return dict(encoder_cfg)


def load_hf_encoder(name: Union[str, Path], tokenizer_config: Dict, transformer_config: Dict) -> HFObjects:
    """Load tokenizer and weights: safetensors only, never remote code.

    A local folder is read as it is; any other name goes to the Hugging Face
    hub, which fails with a clear message when there is no network.
    """
    source = str(Path(name).expanduser().absolute()) if Path(str(name)).expanduser().exists() else str(name)
    tok_cfg = {"use_fast": True, **tokenizer_config}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **tok_cfg)
        config = AutoConfig.from_pretrained(source, trust_remote_code=False, **{**transformer_config, "return_dict": True})
        transformer = AutoModel.from_pretrained(source, config=config, use_safetensors=True, trust_remote_code=False)
    except OSError as err:
        raise OSError(
            f"Could not load the encoder '{name}': {err}\nPass a local folder with config.json, "
            "tokenizer files and model.safetensors (make one with `spacy-bert-tasks init-encoder` "
            "or `spacy-bert-tasks pretrain`), or check the path in `paths.encoder`."
        ) from None
    if not tokenizer.is_fast:
        raise ValueError(f"The encoder '{name}' has no fast tokenizer; the encoder needs character offsets.")
    vocab_file_contents = None
    if getattr(tokenizer, "vocab_file", None) and Path(tokenizer.vocab_file).exists():
        vocab_file_contents = Path(tokenizer.vocab_file).read_bytes()
    transformer.to(get_torch_default_device())
    return HFObjects(tokenizer, transformer, vocab_file_contents)


def init(model: EncoderModel, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    if model.attrs["has_transformer"]:
        return
    hf_model = load_hf_encoder(model.attrs["name"], model._init_tokenizer_config, model._init_transformer_config)
    model.attrs["set_transformer"](model, hf_model)
    _check_settings(model)


def _check_settings(model: EncoderModel) -> None:
    limit = getattr(model.transformer.config, "max_position_embeddings", None)
    if limit and model.attrs["max_length"] > limit:
        model.attrs["max_length"] = limit
    room = model.attrs["max_length"] - model.tokenizer.num_special_tokens_to_add(pair=True)
    room -= max(model.attrs["max_question_length"], 0)
    if room < 2 or model.attrs["stride"] >= room:
        raise ValueError(
            f"Encoder settings leave no room for the doc: max_length={model.attrs['max_length']}, "
            f"max_question_length={model.attrs['max_question_length']}, stride={model.attrs['stride']}. "
            "Raise max_length or lower stride and max_question_length."
        )


def forward(model: EncoderModel, docs: List[Doc], is_train: bool) -> Tuple[FullTransformerBatch, Callable]:
    windows = encode_windows(model.tokenizer, docs, model.attrs)
    frozen = model.attrs["frozen"]
    hidden, hidden_layers = run_transformer(
        model.transformer,
        windows.wordpieces,
        max_batch_tokens=model.attrs["max_batch_tokens"],
        is_train=is_train,
        frozen=frozen,
        output_hidden_states=model.attrs["output_hidden_states"],
    )
    model_output = ModelOutput(last_hidden_state=hidden)
    if hidden_layers is not None:
        model_output["hidden_layers"] = hidden_layers
    output = FullTransformerBatch(
        spans=windows.spans, wordpieces=windows.wordpieces, model_output=model_output, align=windows.align
    )

    def backprop(d_output: FullTransformerBatch) -> List[Doc]:
        if frozen or not is_train:
            return docs
        outputs, grads = [], []
        for tensor, d_tensor in zip(model_output.values(), d_output.model_output.values()):
            if tensor.requires_grad:
                outputs.append(tensor)
                grads.append(d_tensor.to(tensor.device, tensor.dtype))
        if outputs:
            torch.autograd.backward(outputs, grad_tensors=grads)
        return docs

    return output, backprop


def run_transformer(
    transformer: torch.nn.Module,
    wordpieces: WordpieceBatch,
    *,
    max_batch_tokens: int,
    is_train: bool,
    frozen: bool,
    output_hidden_states: bool,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Run the network over windows sorted by length, in chunks of similar length.

    RETURNS: the last hidden states, (n_windows, seq_len, width), in input order,
        and, when asked for, every layer's states, (n_windows, n_layers + 1, seq_len, width).
    """
    transformer.train(is_train)
    device = next(transformer.parameters()).device
    lengths = numpy.asarray(wordpieces.lengths, dtype="i")
    n_windows, seq_len = wordpieces.input_ids.shape
    order = numpy.argsort(-lengths, kind="stable")
    grad_mode = torch.inference_mode() if (frozen or not is_train) else nullcontext()
    chunks, layer_chunks = [], []
    with grad_mode:
        for chunk in _length_chunks(lengths[order], max_batch_tokens):
            rows = order[chunk]
            width = int(lengths[rows].max()) if len(rows) else 0
            kwargs = {
                "input_ids": xp2torch(wordpieces.input_ids[rows, :width], device=device),
                "attention_mask": xp2torch(wordpieces.attention_mask[rows, :width], device=device),
            }
            if wordpieces.token_type_ids is not None:
                kwargs["token_type_ids"] = xp2torch(wordpieces.token_type_ids[rows, :width], device=device)
            out = transformer(**kwargs, output_hidden_states=output_hidden_states, return_dict=True)
            pad = seq_len - width
            # (chunk, width, hidden) -> (chunk, seq_len, hidden)
            chunks.append(torch.nn.functional.pad(out.last_hidden_state, (0, 0, 0, pad)))
            if output_hidden_states:
                stacked = torch.stack(out.hidden_states, dim=1)  # (chunk, n_layers + 1, width, hidden)
                layer_chunks.append(torch.nn.functional.pad(stacked, (0, 0, 0, pad)))
        inverse = torch.as_tensor(numpy.argsort(order), device=device)
        hidden = torch.cat(chunks)[inverse]
        layers = torch.cat(layer_chunks)[inverse] if output_hidden_states else None
    return hidden, layers


def _length_chunks(sorted_lengths: numpy.ndarray, max_batch_tokens: int) -> List[slice]:
    """Cut lengths sorted longest first into slices of at most ``max_batch_tokens`` padded pieces."""
    chunks = []
    start = 0
    while start < len(sorted_lengths):
        width = max(int(sorted_lengths[start]), 1)
        size = max(1, max_batch_tokens // width)
        chunks.append(slice(start, start + size))
        start += size
    return chunks


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
    max_length = settings["max_length"]
    stride = settings["stride"]
    texts = [doc.text for doc in docs]
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                        return_attention_mask=False, return_token_type_ids=False)
    extras, extra_first = _extra_segments(tokenizer, docs, settings)
    use_types = "token_type_ids" in tokenizer.model_input_names

    spans: List[List[Span]] = []
    seq_ids: List[List[int]] = []
    seq_types: List[List[int]] = []
    # Per window: (doc token rows, piece positions in the window), concatenated later.
    align_rows: List[numpy.ndarray] = []
    align_pos: List[numpy.ndarray] = []
    row_offset = 0
    for doc, ids, offsets, extra, first in zip(docs, encoded["input_ids"], encoded["offset_mapping"], extras, extra_first):
        if len(doc) == 0:
            spans.append([])
            continue
        n_special = tokenizer.num_special_tokens_to_add(pair=extra is not None)
        room = max_length - n_special - (len(extra) if extra is not None else 0)
        step = room - min(stride, room // 2)
        first_tok, last_tok = _piece_tokens(doc, offsets)
        doc_spans = []
        starts = list(range(0, max(len(ids) - room, 0) + 1, step)) if len(ids) > room else [0]
        if starts[-1] + room < len(ids):
            starts.append(len(ids) - room)
        for w, start in enumerate(starts):
            end = min(start + room, len(ids))
            window = list(ids[start:end])
            if extra is None:
                a, b = window, None
            elif first:
                a, b = extra, window
            else:
                a, b = window, extra
            input_ids = tokenizer.build_inputs_with_special_tokens(a, b)
            doc_pos = _segment_positions(tokenizer, len(a), None if b is None else len(b), second=b is window)
            seq_ids.append(input_ids)
            if use_types:
                seq_types.append(tokenizer.create_token_type_ids_from_sequences(a, b))
            # A piece may straddle tokens (e.g. "do|n't"): align it to each of them.
            lo, hi = first_tok[start:end], last_tok[start:end]
            reps = numpy.maximum(hi - lo + 1, 0)
            rows = numpy.repeat(lo, reps) + _ranges(reps)
            align_rows.append(rows + row_offset)
            align_pos.append((len(seq_ids) - 1, numpy.repeat(doc_pos, reps)))
            valid = reps > 0
            span_start = 0 if w == 0 or not valid.any() else int(lo[valid].min())
            span_end = len(doc) if w == len(starts) - 1 or not valid.any() else int(hi[valid].max()) + 1
            doc_spans.append([span_start, span_end])
        for w in range(len(doc_spans) - 1):  # leave no token between windows uncovered
            doc_spans[w][1] = max(doc_spans[w][1], doc_spans[w + 1][0])
        spans.append([doc[s:e] for s, e in doc_spans])
        row_offset += len(doc)

    wordpieces = _pad(tokenizer, seq_ids, seq_types if use_types else None)
    seq_len = wordpieces.input_ids.shape[1] if seq_ids else 0
    if align_rows:
        rows = numpy.concatenate(align_rows)
        flat = numpy.concatenate([i * seq_len + pos for i, pos in align_pos])
        order = numpy.lexsort((flat, rows))
        lengths = numpy.bincount(rows, minlength=row_offset).astype("i")
        align = Ragged(flat[order].astype("i"), lengths)
    else:
        align = Ragged(numpy.zeros((0,), dtype="i"), numpy.zeros((row_offset,), dtype="i"))
    return WindowBatch(spans, wordpieces, align)


def _extra_segments(
    tokenizer: Any, docs: Sequence[Doc], settings: Dict[str, Any]
) -> Tuple[List[Optional[List[int]]], List[bool]]:
    """The question or text pair of each doc as piece ids, cut to their limits.

    RETURNS: per doc the ids (or None) and whether they go before the doc.
    """
    extras: List[Optional[List[int]]] = []
    first: List[bool] = []
    cut = {"question": 0, "text_pair": 0}
    texts = []
    for doc in docs:
        question, pair = doc._.question, doc._.text_pair
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
                            return_attention_mask=False, return_token_type_ids=False)
        for i, ids in zip(wanted, encoded["input_ids"]):
            kind = "question" if first[i] else "text_pair"
            limit = settings["max_question_length"] if first[i] else settings["max_pair_length"]
            if len(ids) > limit:
                cut[kind] += 1
                ids = ids[:limit]
            ids_by_doc[i] = list(ids)
    for kind, count in cut.items():
        if count:
            setting = "max_question_length" if kind == "question" else "max_pair_length"
            warnings.warn(
                f"{count} {kind.replace('_', ' ')}(s) in this batch were longer than {setting}="
                f"{settings[setting]} pieces and were cut. Raise {setting} to keep them whole."
            )
    extras = [ids_by_doc.get(i) for i in range(len(docs))]
    return extras, first


def _segment_positions(tokenizer: Any, len_a: int, len_b: Optional[int], second: bool) -> numpy.ndarray:
    """Positions of one segment's pieces once the special tokens are added.

    Placeholder ids (-1 for the first segment, -2 for the second) mark where
    the tokenizer's template puts each segment, for any BERT-family layout.
    """
    marked = tokenizer.build_inputs_with_special_tokens([-1] * len_a, None if len_b is None else [-2] * len_b)
    return numpy.flatnonzero(numpy.asarray(marked) == (-2 if second else -1))


def _piece_tokens(doc: Doc, offsets: Sequence[Tuple[int, int]]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """For each piece, the first and last doc token its characters overlap (-1/-2 for none)."""
    if len(offsets) == 0:
        return numpy.zeros((0,), dtype="i"), numpy.zeros((0,), dtype="i")
    token_starts = numpy.asarray([token.idx for token in doc], dtype="i")
    offsets_arr = numpy.asarray(offsets, dtype="i").reshape(-1, 2)
    starts, ends = offsets_arr[:, 0], offsets_arr[:, 1]
    first = numpy.searchsorted(token_starts, starts, side="right") - 1
    last = numpy.searchsorted(token_starts, numpy.maximum(ends, starts + 1), side="left") - 1
    empty = ends <= starts
    first[empty], last[empty] = 0, -1  # pieces with no characters align to nothing
    return first.astype("i"), numpy.maximum(last, first - 1).astype("i")


def _ranges(lengths: numpy.ndarray) -> numpy.ndarray:
    """Concatenated ``arange(n)`` for each n: [2, 3] -> [0, 1, 0, 1, 2]."""
    total = int(lengths.sum())
    if total == 0:
        return numpy.zeros((0,), dtype="i")
    ends = numpy.cumsum(lengths)
    return numpy.arange(total) - numpy.repeat(ends - lengths, lengths)


def _pad(tokenizer: Any, seq_ids: List[List[int]], seq_types: Optional[List[List[int]]]) -> WordpieceBatch:
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
