"""The shared, pair-aware encoder: one pass per window feeds every head.

``build_encoder_model`` returns the model of spacy-transformers' ``transformer``
component. It differs from ``spacy-transformers.TransformerModel.v3`` in four ways:

- **Pairs.** A doc with ``doc._.question`` is read as ``[CLS] question [SEP]
  window [SEP]``; a doc with ``doc._.text_pair`` as ``[CLS] window [SEP]
  text_pair [SEP]``, with the segment ids BERT was pre-trained with. The
  encoder reads only the inputs that a head listening to it reads (its
  ``doc_inputs`` attr, set by ``pipeline.base.link_doc_inputs``): a text pair
  for a textcat trained on pairs, the question for QA. A head trained on
  single texts behind its own encoder never sees either; on a shared encoder
  it reads the one pass per doc that its neighbours need.
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
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy
import torch
from spacy.tokens import Doc, Span
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch, HFObjects, TransformerData, WordpieceBatch
from spacy_transformers.layers.split_trf import split_trf_batch
from spacy_transformers.layers.transformer_model import TransformerModel
from thinc.api import Model, chain, get_torch_default_device, torch2xp, xp2torch
from thinc.types import Ragged
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel
from transformers.modeling_outputs import ModelOutput

from ..encoder_folder import EncoderFolderError, check_encoder_folder, is_local, load_weights_checked
from ..extensions import QUESTION, TEXT_PAIR, doc_input
from .allocator import release_freed_memory

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
    name: Optional[str],
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

    name (Optional[str]): a local folder with config, fast tokenizer and safetensors
        weights (or a hub name, where a network allows it). It may be null in a config
        that is loaded before its paths are set; initialising needs it.
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
        # The doc inputs (question, text pair) this encoder reads; None: whichever a doc has.
        self.attrs["doc_inputs"] = None
        self.attrs["replace_listener"] = replace_listener
        self.attrs["replace_listener_cfg"] = replace_listener_cfg

    def copy(self) -> "EncoderModel":
        settings = {key: self.attrs[key] for key in _SETTINGS}
        copied = EncoderModel(self.attrs["name"], tokenizer_config=self._init_tokenizer_config,
                              transformer_config=self._init_transformer_config, **settings)
        copied.attrs["output_hidden_states"] = self.attrs["output_hidden_states"]
        copied.attrs["doc_inputs"] = copy.copy(self.attrs["doc_inputs"])
        copied.layers[0] = copy.deepcopy(self.layers[0])
        if self.attrs["has_transformer"]:
            copied.attrs["has_transformer"] = True
            copied.set_dim("nO", self.get_dim("nO"))
        return copied


_SETTINGS = ("max_length", "stride", "max_question_length", "max_pair_length", "max_batch_tokens", "frozen")


def listened_inputs(listeners: Sequence[Model]) -> List[str]:
    """The doc inputs that the heads behind these listeners read, sorted.

    A head marks its listener with ``attrs["doc_inputs"]``
    (``BertTaskPipe.doc_inputs``); a listener without the mark reads none.
    """
    return sorted({name for listener in listeners for name in listener.attrs.get("doc_inputs", ())})


def replace_listener(model: EncoderModel, listener: Model, transformer_pipe: Any) -> Model:
    """What spaCy's ``replace_listeners`` puts where a head's listener was.

    The head's copy of the encoder reads what that head reads; the shared
    encoder, what its remaining listeners read.
    """
    model.attrs["doc_inputs"] = listened_inputs([listener])
    others = [node for nodes in transformer_pipe.listener_map.values() if listener not in nodes for node in nodes]
    if isinstance(transformer_pipe.model, EncoderModel):
        transformer_pipe.model.attrs["doc_inputs"] = listened_inputs(others)
    return chain(model, split_trf_batch())


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

    A local folder is checked first (``check_encoder_folder``), so a bad one gets an
    error that names the folder or file, the fault and the fix. A name that is not a
    local path goes to the Hugging Face hub, where a network allows it.
    """
    source = str(check_encoder_folder(name)) if is_local(name) else str(name)
    tok_cfg = {"use_fast": True, **tokenizer_config}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **tok_cfg)
        config = AutoConfig.from_pretrained(source, trust_remote_code=False, **{**transformer_config, "return_dict": True})
        transformer = load_weights_checked(AutoModel, Path(source), config=config)
    except OSError as err:
        raise OSError(
            f"Could not load the encoder '{name}': {err}\nPass a local folder with config.json, "
            "tokenizer files and model.safetensors (make one with `spacy-bert-tasks init-encoder` "
            "or `spacy-bert-tasks pretrain`), or check the path in `paths.encoder`."
        ) from None
    except ImportError as err:  # a slow tokenizer that needs sentencepiece/protobuf to become fast
        raise EncoderFolderError(
            f"Could not build a fast tokenizer from the files in {source}: {str(err).strip()} "
            "Add the tokenizer.json of the model the weights came from to the folder."
        ) from None
    if not tokenizer.is_fast:
        raise ValueError(f"The encoder '{name}' has no fast tokenizer; the encoder needs character offsets.")
    vocab_file_contents = _vocab_file_contents(tokenizer)
    transformer.to(get_torch_default_device())
    return HFObjects(tokenizer, transformer, vocab_file_contents)


def _vocab_file_contents(tokenizer: Any) -> Optional[bytes]:
    """The bytes spacy-transformers saves as the tokenizer's ``vocab_file``.

    Its serialiser writes these bytes wherever the tokenizer has a ``vocab_file``
    attribute, and its loader reads that file back. SentencePiece-based fast
    tokenizers (ALBERT, XLM-R, DeBERTa-v2/v3) keep the attribute even when the
    folder has only ``tokenizer.json`` (``vocab_file`` is None); those get an empty
    placeholder, so saving and loading work. The fast tokenizer reads only
    ``tokenizer.json``, and never saves the empty file as a SentencePiece model.
    """
    vocab_file = getattr(tokenizer, "vocab_file", None)
    if vocab_file and Path(vocab_file).exists():
        return Path(vocab_file).read_bytes()
    return b"" if hasattr(tokenizer, "vocab_file") else None


def init(model: EncoderModel, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    if model.attrs["has_transformer"]:
        return
    hf_model = load_hf_encoder(model.attrs["name"], model._init_tokenizer_config, model._init_transformer_config)
    model.attrs["set_transformer"](model, hf_model)
    _check_settings(model)


def _check_settings(model: EncoderModel) -> None:
    limit = max_positions(model.transformer.config)
    if limit and model.attrs["max_length"] > limit:
        model.attrs["max_length"] = limit
    layout = _SpecialLayout(model.tokenizer, pair=True)  # refuses a tokenizer without a layout
    room = model.attrs["max_length"] - layout.n_special
    room -= max(model.attrs["max_question_length"], 0)
    if room < 2 or model.attrs["stride"] >= room:
        raise ValueError(
            f"Encoder settings leave no room for the doc: max_length={model.attrs['max_length']}, "
            f"max_question_length={model.attrs['max_question_length']}, stride={model.attrs['stride']}. "
            "Raise max_length or lower stride and max_question_length."
        )


def forward(model: EncoderModel, docs: List[Doc], is_train: bool) -> Tuple[FullTransformerBatch, Callable]:
    frozen = model.attrs["frozen"]
    if is_train and not frozen:  # the last step's tensors are free now: see ml/allocator.py
        release_freed_memory()
    windows = encode_windows(model.tokenizer, docs, model.attrs)
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
    output = EncoderBatch(
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
    run = _run_chunks
    position_offset = packing_position_offset(transformer)
    if position_offset is not None:
        run = partial(_run_packed, position_offset=position_offset)
    grad_mode = torch.inference_mode() if (frozen or not is_train) else nullcontext()
    with grad_mode:
        return run(transformer, wordpieces, max_batch_tokens=max_batch_tokens, output_hidden_states=output_hidden_states)


# Networks whose position ids count from pad_token_id + 1 (fairseq's convention),
# so that their position table holds pad_token_id + 1 fewer pieces.
_POSITIONS_AFTER_PADDING = frozenset({"roberta", "xlm-roberta", "camembert"})
# Networks whose windows can be packed into one row: they take a 3D attention
# mask and explicit absolute position ids.
_PACKABLE = frozenset({"bert", "electra", *_POSITIONS_AFTER_PADDING})


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
    transformer: torch.nn.Module,
    wordpieces: WordpieceBatch,
    *,
    max_batch_tokens: int,
    output_hidden_states: bool,
    position_offset: int,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    device = next(transformer.parameters()).device
    lengths = numpy.asarray(wordpieces.lengths, dtype="int64")
    n_windows, seq_len = wordpieces.input_ids.shape
    row_of, offset_of, n_rows = _pack_windows(lengths)
    width = int(lengths.max()) if n_windows else 0
    # Every piece of every window: its window and position, and its row and column once packed.
    window = numpy.repeat(numpy.arange(n_windows), lengths)
    position = _ranges(lengths)
    row, column = row_of[window], offset_of[window] + position
    input_ids = numpy.full((n_rows, width), transformer.config.pad_token_id or 0, dtype="int64")
    input_ids[row, column] = wordpieces.input_ids[window, position]
    token_types = numpy.zeros((n_rows, width), dtype="int64")
    if wordpieces.token_type_ids is not None:
        token_types[row, column] = wordpieces.token_type_ids[window, position]
    positions = numpy.zeros((n_rows, width), dtype="int64")
    positions[row, column] = position + position_offset
    segment = numpy.full((n_rows, width), -1, dtype="int64")
    segment[row, column] = window
    outputs, layer_outputs = [], []
    rows_per_call = max(1, max_batch_tokens // max(width, 1))
    for start in range(0, n_rows, rows_per_call):
        rows = slice(start, start + rows_per_call)
        # (rows, width, width): a piece sees the pieces of its own window (padding sees padding).
        attention = segment[rows, :, None] == segment[rows, None, :]
        kwargs = {
            "input_ids": torch.as_tensor(input_ids[rows], device=device),
            "attention_mask": torch.as_tensor(attention, dtype=torch.float32, device=device),
            "position_ids": torch.as_tensor(positions[rows], device=device),
        }
        if wordpieces.token_type_ids is not None:
            kwargs["token_type_ids"] = torch.as_tensor(token_types[rows], device=device)
        out = transformer(**kwargs, output_hidden_states=output_hidden_states, return_dict=True)
        outputs.append(out.last_hidden_state)  # (rows, width, hidden)
        if output_hidden_states:
            layer_outputs.append(torch.stack(out.hidden_states, dim=1))  # (rows, n_layers + 1, width, hidden)
    src_row = torch.as_tensor(row, device=device)
    src_col = torch.as_tensor(column, device=device)
    dst = torch.as_tensor(window * seq_len + position, device=device)
    packed = torch.cat(outputs)
    hidden = packed.new_zeros((n_windows * seq_len, packed.shape[-1]))
    hidden = hidden.index_copy(0, dst, packed[src_row, src_col]).view(n_windows, seq_len, -1)
    layers = None
    if output_hidden_states:
        packed_layers = torch.cat(layer_outputs)
        n_layers = packed_layers.shape[1]
        layers = packed_layers.new_zeros((n_windows * seq_len, n_layers, packed.shape[-1]))
        layers = layers.index_copy(0, dst, packed_layers[src_row, :, src_col])
        layers = layers.view(n_windows, seq_len, n_layers, -1).transpose(1, 2).contiguous()
    return hidden, layers


def _pack_windows(lengths: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray, int]:
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
    transformer: torch.nn.Module,
    wordpieces: WordpieceBatch,
    *,
    max_batch_tokens: int,
    output_hidden_states: bool,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    device = next(transformer.parameters()).device
    lengths = numpy.asarray(wordpieces.lengths, dtype="i")
    n_windows, seq_len = wordpieces.input_ids.shape
    order = numpy.argsort(-lengths, kind="stable")
    chunks, layer_chunks = [], []
    for chunk in _length_chunks(lengths[order], max_batch_tokens, chunk_overhead(transformer)):
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


def chunk_overhead(transformer: torch.nn.Module) -> int:
    """The fixed cost of one forward call, in padded pieces of this network.

    A call costs about the same whatever the width (op dispatch, reading the
    weights), while a piece costs in proportion to ``hidden_size ** 2``; on
    CPU a call is worth about 256 pieces at width 128 and 16 at width 512.
    """
    config = transformer.config
    width = getattr(config, "hidden_size", None) or getattr(config, "dim", None) or 768
    return int(min(max(2**22 // (width * width), 8), 1024))


def _length_chunks(sorted_lengths: numpy.ndarray, max_batch_tokens: int, overhead: int = 64) -> List[slice]:
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


class EncoderBatch(FullTransformerBatch):
    """``FullTransformerBatch`` with a fast split per doc.

    Each doc's alignment rows are contiguous and its windows consecutive, so
    the split needs only the docs' lengths, not spacy-transformers' lookup of
    every token (which costs more than a tiny encoder's forward pass).
    """

    def split_by_doc(self) -> List[TransformerData]:
        outputs: Dict[str, Any] = {}
        for key, value in self.model_output.items():
            if isinstance(value, torch.Tensor):
                outputs[key] = torch2xp(value)
        seq_len = self.wordpieces.input_ids.shape[1] if len(self.wordpieces.lengths) else 0
        doc_data = []
        window = row = 0
        for doc_spans in self.spans:
            if not doc_spans:
                doc_data.append(TransformerData.empty())
                continue
            n_windows, n_tokens = len(doc_spans), len(doc_spans[0].doc)
            align = self.align[row : row + n_tokens]
            align.data = align.data - window * seq_len
            model_output = ModelOutput()
            for key, value in outputs.items():
                model_output[key] = value[window : window + n_windows]
            doc_data.append(
                TransformerData(wordpieces=self.wordpieces[window : window + n_windows], model_output=model_output, align=align)
            )
            window += n_windows
            row += n_tokens
        return doc_data


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
    # Whole docs are tokenised once and cut into windows below, so a doc longer than
    # the model is expected: verbose=False silences the tokenizer's "too long" warning.
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                        return_attention_mask=False, return_token_type_ids=False, verbose=False)
    extras, extra_first = _extra_segments(tokenizer, docs, settings)
    use_types = "token_type_ids" in tokenizer.model_input_names
    layouts = {pair: _SpecialLayout(tokenizer, pair) for pair in (False, True)}

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
        layout = layouts[extra is not None]
        room = max_length - layout.n_special - (len(extra) if extra is not None else 0)
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
            input_ids, token_types, b_start = layout.build(a, b)
            seq_ids.append(input_ids)
            if use_types:
                seq_types.append(token_types)
            doc_start = b_start if b is window else len(layout.prefix)
            doc_pos = numpy.arange(doc_start, doc_start + len(window))
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


class _SpecialLayout:
    """Where a tokenizer puts its special tokens around one or two segments.

    Read from the tokenizer's own post-processor (the template its ``__call__``
    applies), by encoding one-word placeholder segments and reading which
    positions belong to no segment. A fast tokenizer's class may not know its
    template (a generic ``PreTrainedTokenizerFast``'s ``build_inputs_with_special_tokens``
    adds nothing), its ``tokenizer.json`` does. A layout with no special token
    before the text, or none between two segments, is refused: the [CLS] pooling
    and QA's null answer read the first piece, and a pair needs a separator.
    """

    def __init__(self, tokenizer: Any, pair: bool):
        encoding = tokenizer.backend_tokenizer.encode("a", "a" if pair else None, add_special_tokens=True)
        real = [i for i, mask in enumerate(encoding.attention_mask) if mask]  # no padding, if the backend pads
        ids = [encoding.ids[i] for i in real]
        types = [encoding.type_ids[i] for i in real]
        segment = [encoding.sequence_ids[i] for i in real]
        a_pos = [i for i, s in enumerate(segment) if s == 0]
        b_pos = [i for i, s in enumerate(segment) if s == 1] if pair else [len(ids)]
        if not a_pos or not b_pos or any(s is None for s in segment[a_pos[0] : a_pos[-1] + 1]):
            raise ValueError(
                f"Could not read the special-token layout of the tokenizer of {_tokenizer_name(tokenizer)}: "
                f"encoding 'a'{' + a' if pair else ''} gave {encoding.tokens}. Check its tokenizer.json."
            )
        i, j = a_pos[0], b_pos[0]
        self.prefix, self.middle = ids[:i], ids[a_pos[-1] + 1 : j]
        self.suffix = ids[b_pos[-1] + 1 :] if pair else []
        self.prefix_types, self.middle_types = types[:i], types[a_pos[-1] + 1 : j]
        self.suffix_types = types[b_pos[-1] + 1 :] if pair else []
        self.a_type, self.b_type = types[i], types[j] if pair else 0
        self.n_special = len(self.prefix) + len(self.middle) + len(self.suffix)
        if not self.prefix or (pair and not self.middle):
            where = "before the text" if not self.prefix else "between the two texts of a pair"
            raise ValueError(
                f"The tokenizer of {_tokenizer_name(tokenizer)} adds no special token {where} "
                f"(its template gives {tokenizer.convert_ids_to_tokens(ids)} for 'a'{' + a' if pair else ''}). "
                "The encoder needs the layout the model was pre-trained with, e.g. [CLS] a [SEP] b [SEP]: "
                "give the tokenizer.json a post-processor (tokenizers' TemplateProcessing) that adds it."
            )

    def build(self, a: List[int], b: Optional[List[int]]) -> Tuple[List[int], List[int], int]:
        """The ids and segment ids of ``[specials] a [specials] b [specials]``, and where b starts."""
        b = b or []
        ids = self.prefix + a + self.middle + b + self.suffix
        types = (
            self.prefix_types + [self.a_type] * len(a) + self.middle_types + [self.b_type] * len(b) + self.suffix_types
        )
        return ids, types, len(self.prefix) + len(a) + len(self.middle)


def _tokenizer_name(tokenizer: Any) -> str:
    return f"'{tokenizer.name_or_path}'" if getattr(tokenizer, "name_or_path", "") else "this encoder"


def _piece_tokens(doc: Doc, offsets: Sequence[Tuple[int, int]]) -> Tuple[numpy.ndarray, numpy.ndarray]:
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
