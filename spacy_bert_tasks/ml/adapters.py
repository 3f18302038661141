"""Parameter-efficient fine-tuning of the shared encoder, through ``peft``.

``spacy_bert_tasks.PeftEncoder.v1`` wraps ``spacy_bert_tasks.Encoder.v1`` and
adds, when the encoder is initialised, one of:

- **LoRA** (``spacy_bert_tasks.lora.v1``) on the attention projections, injected
  in place by ``peft.inject_adapter_in_model``: the network stays a plain
  ``BertModel`` (forward signature unchanged) and only the ``lora_A``/``lora_B``
  matrices have ``requires_grad``;
- **prefix tuning** (``spacy_bert_tasks.prefix_tuning.v1``): peft's prefix
  encoder gives every layer ``num_virtual_tokens`` extra keys and values.
  The sequence the heads see keeps its length, positions and segment ids, so
  the alignment of tokens to pieces holds. (Prompt tuning instead prepends
  virtual *tokens* to the input: every output row would shift by their number,
  [CLS] would no longer be at position 0 and ``align`` would point at the wrong
  pieces, so it is not offered.)

In a config::

    [components.transformer.model]
    @architectures = "spacy_bert_tasks.PeftEncoder.v1"

    [components.transformer.model.encoder]
    @architectures = "spacy_bert_tasks.Encoder.v1"
    name = ${paths.encoder}

    [components.transformer.model.adapter]
    @misc = "spacy_bert_tasks.lora.v1"
    r = 8

Only the adapter and head weights train. The adapter settings are written into
the Hugging Face config (key ``spacy_bert_tasks_peft``), which spacy-transformers
saves with the weights; the shim rebuilds the network with ``PeftAutoModel``,
which applies the same adapters before loading the saved weights, so a saved
pipeline loads with the same predictions. ``merge_adapters`` folds LoRA into
the base weights for inference and leaves a plain encoder.
"""
from typing import Any, Dict, List, Optional

import torch
from peft import LoraConfig, PrefixTuningConfig, get_peft_model, inject_adapter_in_model
from peft.tuners.tuners_utils import BaseTunerLayer
from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch, HFObjects
from thinc.api import Model
from transformers import AutoModel, PretrainedConfig, PreTrainedModel

from .encoder import EncoderModel, load_hf_encoder, set_network

PEFT_KEY = "spacy_bert_tasks_peft"


@registry.misc("spacy_bert_tasks.lora.v1")
def configure_lora(
    r: int = 8, alpha: int = 16, dropout: float = 0.1, target_modules: List[str] = ["query", "value"]
) -> Dict[str, Any]:
    """LoRA settings: rank-``r`` updates scaled by ``alpha / r`` on the named linear layers.

    target_modules (List[str]): module names to adapt; BERT, RoBERTa and ELECTRA call
        the attention projections "query", "key", "value"; DistilBERT "q_lin", "v_lin".
    """
    return {"type": "lora", "r": r, "alpha": alpha, "dropout": dropout, "target_modules": list(target_modules)}


@registry.misc("spacy_bert_tasks.prefix_tuning.v1")
def configure_prefix_tuning(num_virtual_tokens: int = 16) -> Dict[str, Any]:
    """Prefix-tuning settings: trained keys and values for ``num_virtual_tokens`` positions per layer."""
    return {"type": "prefix", "num_virtual_tokens": num_virtual_tokens}


@registry.architectures("spacy_bert_tasks.PeftEncoder.v1")
def build_peft_encoder(encoder: Model[List[Doc], FullTransformerBatch], adapter: Dict[str, Any]) -> Model[List[Doc], FullTransformerBatch]:
    """The shared encoder with adapters: only they (and the heads) train.

    encoder (Model): a ``spacy_bert_tasks.Encoder.v1`` with ``frozen = false``.
    adapter (Dict[str, Any]): ``spacy_bert_tasks.lora.v1`` or ``spacy_bert_tasks.prefix_tuning.v1``.
    """
    if not isinstance(encoder, EncoderModel):
        raise ValueError("PeftEncoder.v1 wraps a `spacy_bert_tasks.Encoder.v1`; put that in its `encoder` block.")
    if encoder.attrs["frozen"]:
        raise ValueError("PeftEncoder.v1: the encoder has frozen = true, so no adapter would train. Set frozen = false.")
    _check_adapter(adapter)
    adapted = EncoderModel(encoder.attrs["name"], encoder.settings(), init=_peft_init, network_cls=PeftAutoModel)
    adapted.attrs["peft"] = dict(adapter)
    return adapted


def _peft_init(model: EncoderModel, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    """Load the network as ``Encoder.v1`` does, with the adapters applied before it is set."""
    if model.attrs["has_transformer"]:
        return
    hf = load_hf_encoder(model.attrs["name"], model._init_tokenizer_config, model._init_transformer_config)
    network = apply_adapter(hf.transformer, model.attrs["peft"])
    set_network(model, HFObjects(hf.tokenizer, network, hf.vocab_file_contents))


class PeftAutoModel:
    """``AutoModel`` for the HF shim's ``from_bytes``: re-applies the adapters the config names."""

    @staticmethod
    def from_config(config: PretrainedConfig) -> torch.nn.Module:
        network = AutoModel.from_config(config)
        settings = getattr(config, PEFT_KEY, None)
        return apply_adapter(network, settings) if settings else network


def apply_adapter(network: PreTrainedModel, settings: Dict[str, Any]) -> torch.nn.Module:
    """Add the adapters ``settings`` describe; freeze everything else.

    RETURNS (torch.nn.Module): the same network (LoRA) or a ``PrefixTuned`` wrapper.
    """
    _check_adapter(settings)
    setattr(network.config, PEFT_KEY, dict(settings))
    if settings["type"] == "lora":
        config = LoraConfig(r=settings["r"], lora_alpha=settings["alpha"], lora_dropout=settings["dropout"],
                            target_modules=list(settings["target_modules"]), bias="none")
        return inject_adapter_in_model(config, network)
    return PrefixTuned(network, settings["num_virtual_tokens"])


class PrefixTuned(torch.nn.Module):
    """A network with peft's prefix encoder; called like the network itself.

    peft's own feature-extraction model drops ``token_type_ids`` and shifts the
    position ids by the prefix length; this forward keeps both as the encoder built them.
    """

    def __init__(self, network: PreTrainedModel, num_virtual_tokens: int):
        super().__init__()
        self.config = network.config
        self.num_virtual_tokens = num_virtual_tokens
        config = PrefixTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=num_virtual_tokens)
        self.peft = get_peft_model(network, config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> Any:
        n_rows, width = input_ids.shape
        past_key_values = self.peft.get_prompt(batch_size=n_rows)
        prefix_mask = attention_mask.new_ones((n_rows, self.num_virtual_tokens))
        position_ids = torch.arange(width, device=input_ids.device).expand(n_rows, width)
        return self.peft.base_model(
            input_ids=input_ids,
            attention_mask=torch.cat([prefix_mask, attention_mask], dim=1),  # (n_rows, prefix + width)
            position_ids=position_ids,
            past_key_values=past_key_values,
            **kwargs,
        )


def merge_adapters(encoder: Model) -> int:
    """Fold LoRA into the base weights for faster inference; the encoder becomes plain.

    The pipeline saved afterwards holds an ordinary encoder (no adapter settings).
    encoder (Model): the ``transformer`` component's model.
    RETURNS (int): the number of layers merged.
    """
    network = encoder.transformer
    if isinstance(network, PrefixTuned):
        raise ValueError("Prefix tuning adds keys and values rather than weight updates; it cannot be merged.")
    merged = 0
    for name, module in list(network.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(network.get_submodule(parent), child, module.get_base_layer())
            merged += 1
    if hasattr(network.config, PEFT_KEY):
        delattr(network.config, PEFT_KEY)
    return merged


def _check_adapter(settings: Dict[str, Any]) -> None:
    kind = settings.get("type") if isinstance(settings, dict) else None
    if kind not in ("lora", "prefix"):
        raise ValueError(
            f"Unknown adapter settings {settings!r}: use `@misc = \"spacy_bert_tasks.lora.v1\"` or "
            "`@misc = \"spacy_bert_tasks.prefix_tuning.v1\"` in the encoder's `adapter` block."
        )
