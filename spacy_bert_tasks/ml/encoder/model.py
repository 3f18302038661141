"""The encoder model: ``spacy_bert_tasks.Encoder.v1``, its init and forward pass.

Built with thinc's ``Model(name, forward, init=...)``; the network sits in
spacy-transformers' HF wrapper, which serialises it (with the in-place
optimizer step of ``shim.py``). Windows come from
``windows.py``, the network runs in ``runner.py``, the output is ``batch.EncoderBatch``.
"""
import copy
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch, HFObjects
from spacy_transformers.layers.split_trf import split_trf_batch
from spacy_transformers.layers.transformer_model import set_pytorch_transformer
from thinc.api import Model, chain
from transformers import AutoModel
from transformers.modeling_outputs import ModelOutput

from ..allocator import fix_mmap_threshold, release_freed_memory
from .batch import EncoderBatch
from .hf import load_hf_encoder
from .layout import SpecialLayout
from .runner import max_positions, run_transformer
from .settings import WINDOW_SETTINGS, EncoderSettings, takes_encoder_settings
from .shim import check_save_dtype, encoder_wrapper
from .windows import encode_windows


def _single_threaded_after_fork() -> None:
    """Run torch on one thread in a forked child (``nlp.pipe(n_process=...)``).

    OpenMP's worker threads do not survive a fork: a child whose first torch
    op opens a parallel region waits for them forever. One thread per process
    avoids that; the processes are the parallelism.
    """
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_single_threaded_after_fork)


@registry.architectures("spacy_bert_tasks.Encoder.v1")
@takes_encoder_settings()
def build_encoder_model(name: Optional[str], *, settings: EncoderSettings) -> Model[List[Doc], FullTransformerBatch]:
    """Build the pair-aware encoder around a local Hugging Face folder.

    name (Optional[str]): a local folder with config, fast tokenizer and safetensors
        weights (or a hub name, where a network allows it). It may be null in a config
        that is loaded before its paths are set; initialising needs it.
    The other settings are those of ``EncoderSettings``.
    """
    return EncoderModel(name, settings)


class EncoderModel(Model):
    """The shared encoder: docs in, ``FullTransformerBatch`` out.

    It keeps what spaCy and spacy-transformers rely on: the HF wrapper and its
    serialisation, the ``tokenizer``/``transformer`` properties, the
    ``set_transformer`` attr and the ``replace_listener`` hooks.

    init (Callable): how ``initialize`` gets the network (default: load it from ``name``).
    network_cls (Any): what the HF wrapper builds the network with when it loads saved bytes.
    """

    def __init__(self, name: Optional[str], settings: EncoderSettings, *, init: Optional[Callable] = None,
                 network_cls: Any = AutoModel):
        hf_model = HFObjects(None, None, None, dict(settings.tokenizer_config), dict(settings.transformer_config))
        attrs = {
            "name": name,
            "set_transformer": set_pytorch_transformer,
            "has_transformer": False,
            **{key: getattr(settings, key) for key in WINDOW_SETTINGS},
            "output_hidden_states": False,
            # The doc inputs (question, text pair) this encoder reads; None: whichever a doc has.
            "doc_inputs": None,
            "replace_listener": replace_listener,
            "replace_listener_cfg": replace_listener_cfg,
        }
        super().__init__("transformer", forward, init=init or init_encoder_model,
                         layers=[encoder_wrapper(hf_model, network_cls, save_dtype=settings.save_dtype)], dims={"nO": None}, attrs=attrs)

    @property
    def tokenizer(self) -> Any:
        return self.layers[0].shims[0]._hfmodel.tokenizer

    @property
    def transformer(self) -> torch.nn.Module:
        return self.layers[0].shims[0]._hfmodel.transformer

    @property
    def _init_tokenizer_config(self) -> Dict[str, Any]:
        return self.layers[0].shims[0]._hfmodel._init_tokenizer_config

    @property
    def _init_transformer_config(self) -> Dict[str, Any]:
        return self.layers[0].shims[0]._hfmodel._init_transformer_config

    @property
    def save_dtype(self) -> str:
        """What the network's floating-point weights are written to disk as (``EncoderSettings.save_dtype``)."""
        return self.layers[0].shims[0].save_dtype

    @save_dtype.setter
    def save_dtype(self, dtype: str) -> None:
        self.layers[0].shims[0].save_dtype = check_save_dtype(dtype)

    def settings(self) -> EncoderSettings:
        """The settings this encoder was built with (as they are now)."""
        return EncoderSettings(**{key: self.attrs[key] for key in WINDOW_SETTINGS}, save_dtype=self.save_dtype,
                               tokenizer_config=self._init_tokenizer_config,
                               transformer_config=self._init_transformer_config)

    def copy(self) -> "EncoderModel":
        copied = type(self)(self.attrs["name"], self.settings(), init=self.init,
                            network_cls=self.layers[0].shims[0].model_cls)
        for key in ("output_hidden_states", "doc_inputs", *(k for k in self.attrs if k not in copied.attrs)):
            copied.attrs[key] = copy.copy(self.attrs[key])
        copied.layers[0] = copy.deepcopy(self.layers[0])
        if self.attrs["has_transformer"]:
            copied.attrs["has_transformer"] = True
            copied.set_dim("nO", self.get_dim("nO"))
        return copied


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


def init_encoder_model(model: EncoderModel, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    """Load the network named in ``model.attrs["name"]`` (once) and check the settings against it."""
    if model.attrs["has_transformer"]:
        return
    set_network(model, load_hf_encoder(model.attrs["name"], model._init_tokenizer_config, model._init_transformer_config))


def set_network(model: EncoderModel, hf_model: HFObjects) -> None:
    """Give the model its tokenizer and network, and fit ``max_length`` to the network."""
    model.attrs["set_transformer"](model, hf_model)
    limit = max_positions(model.transformer.config)
    if limit and model.attrs["max_length"] > limit:
        model.attrs["max_length"] = limit
    layout = SpecialLayout(model.tokenizer, pair=True)  # refuses a tokenizer without a layout
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
    shim = model.layers[0].shims[0]
    if is_train and not frozen:  # the last step's tensors are free now: see ml/allocator.py
        fix_mmap_threshold()
        release_freed_memory()
        shim.expect_backward()
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
        shim.backward_done()
        return docs

    return output, backprop
