"""The MLM model for pretraining: the vocabulary projection only where there is a loss.

A stock ``BertForMaskedLM`` projects every position onto the vocabulary, although
only the ~15% selected positions carry a loss; at small sizes that projection is most
of the step. As in the original BERT code (gather the masked positions), the model
here runs the encoder, gathers the hidden states where ``labels != -100`` and applies
the MLM head to those alone. The loss is the same number (mean cross-entropy over the
selected positions). It is done by subclassing the Hugging Face class, so the model is
still a ``PreTrainedModel``: Trainer saves, resumes and wraps it (DDP, mixed precision)
as it would the stock one, and ``save_pretrained`` writes a plain ``BertForMaskedLM``.
"""
import inspect
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Type, Union

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING

from ..encoder_folder import check_encoder_folder, load_weights_checked

logger = logging.getLogger(__name__)


# The MLM head of each supported class: its submodules, applied in order to hidden
# states of shape (n, width), giving (n, vocab).
MLM_HEADS: Dict[str, Tuple[str, ...]] = {
    "BertForMaskedLM": ("cls.predictions",),
    "BertForPreTraining": ("cls.predictions",),
    "RobertaForMaskedLM": ("lm_head",),
    "XLMRobertaForMaskedLM": ("lm_head",),
    "CamembertForMaskedLM": ("lm_head",),
    "AlbertForMaskedLM": ("predictions",),
    "ElectraForMaskedLM": ("generator_predictions", "generator_lm_head"),
    "DistilBertForMaskedLM": ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector"),
    # DeBERTa-v2/v3's default (config.legacy) head; the newer one also takes the embeddings.
    "DebertaV2ForMaskedLM": ("cls",),
    "ModernBertForMaskedLM": ("head", "decoder"),
}


def has_masked_positions_head(model: PreTrainedModel) -> bool:
    """Whether ``model`` has the submodules ``MLM_HEADS`` lists for its class."""
    names = MLM_HEADS.get(type(model).__name__, ())
    modules = dict(model.named_modules())
    return bool(names) and all(name in modules for name in names)


class MaskedPositionsMixin:
    """Compute the MLM head and loss at the selected positions only (``labels != -100``).

    With ``labels`` the output's ``logits`` are (n_selected, vocab), one row per
    selected position in row-major order; without ``labels``, or where the
    model's head is not the one ``MLM_HEADS`` lists, the stock forward runs.
    """

    # Tell Trainer the loss is a mean per batch (it then divides by the accumulation steps).
    accepts_loss_kwargs = False

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        next_sentence_label: Optional[torch.Tensor] = None,
    ) -> MaskedLMOutput:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and self._takes_token_types:
            inputs["token_type_ids"] = token_type_ids
        if position_ids is not None:
            inputs["position_ids"] = position_ids
        if labels is None or not has_masked_positions_head(self):
            if next_sentence_label is not None:
                inputs["next_sentence_label"] = next_sentence_label
            if labels is not None:
                inputs["labels"] = labels
            return super().forward(**inputs, return_dict=True)
        outputs = self.base_model(**inputs, return_dict=True)
        selected = labels != -100  # (batch, length)
        hidden = outputs.last_hidden_state[selected]  # (n_selected, width)
        logits = hidden
        for name in MLM_HEADS[self._head_name]:
            logits = self.get_submodule(name)(logits)  # ends as (n_selected, vocab)
        loss = F.cross_entropy(logits, labels[selected]) if len(hidden) else logits.sum() * 0.0
        if next_sentence_label is not None:
            nsp_logits = self.cls.seq_relationship(outputs.pooler_output)  # (batch, 2)
            loss = loss + F.cross_entropy(nsp_logits, next_sentence_label.view(-1))
        return MaskedLMOutput(loss=loss, logits=logits)

    @property
    def _takes_token_types(self) -> bool:
        return "token_type_ids" in inspect.signature(self.base_model.forward).parameters


_CLASSES: Dict[type, type] = {}


def masked_positions_class(model_class: Type[PreTrainedModel]) -> Type[PreTrainedModel]:
    """``model_class`` with ``MaskedPositionsMixin``'s forward, under the same name.

    Keeping the name means ``save_pretrained`` records the stock architecture, which is
    what the saved weights are.
    """
    if model_class.__name__ not in MLM_HEADS:
        raise ValueError(
            f"{model_class.__name__} has no masked-positions head here. Supported: {', '.join(MLM_HEADS)}."
        )
    if model_class not in _CLASSES:
        _CLASSES[model_class] = type(
            model_class.__name__,
            (MaskedPositionsMixin, model_class),
            {"_head_name": model_class.__name__, "__module__": __name__, "__qualname__": model_class.__name__},
        )
    return _CLASSES[model_class]


@dataclass
class LoadingReport:
    """What a load took from the checkpoint and what it started fresh."""

    source: str
    loaded: List[str] = field(default_factory=list)
    newly_initialised: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)
    head_prefixes: Tuple[str, ...] = ()
    seed: Optional[int] = None

    @property
    def new_encoder_weights(self) -> List[str]:
        """Newly initialised weights outside the pretraining heads and the pooler."""
        return [
            name for name in self.newly_initialised
            if not name.startswith(self.head_prefixes) and ".pooler." not in f".{name}"
        ]

    def log(self) -> None:
        logger.info("Loaded %d weight tensors from %s", len(self.loaded), self.source)
        if self.newly_initialised:
            seeded = f" (from seed {self.seed})" if self.seed is not None else ""
            logger.info("Newly initialised%s: %s", seeded, ", ".join(self.newly_initialised))
        if self.unused:
            logger.info("Weights in %s that the model does not use: %s", self.source, ", ".join(self.unused))
        if self.new_encoder_weights:
            logger.warning(
                "%s lacks %d encoder weights, which start random: %s. If that is not meant, "
                "check that the folder holds the encoder you want.",
                self.source, len(self.new_encoder_weights), ", ".join(self.new_encoder_weights),
            )

    def to_dict(self) -> Dict[str, object]:
        return {
            "source": self.source,
            "n_loaded": len(self.loaded),
            "newly_initialised": self.newly_initialised,
            "seed": self.seed,
            "unused": self.unused,
        }


def load_pretraining_model(
    encoder_dir: Union[str, Path], *, nsp: bool = False, seed: Optional[int] = None
) -> Tuple[PreTrainedModel, LoadingReport]:
    """Load a local encoder folder as a masked-positions MLM model, and say what was loaded.

    encoder_dir (Path): a Hugging Face folder (safetensors), with or without an MLM head.
    nsp (bool): add the next-sentence head (BERT only: ``BertForPreTraining``).
    seed (Optional[int]): initialise the weights the folder lacks (the MLM head of a
        bare encoder) from this seed, so that two runs start from the same model; the
        global torch generator is left as it was. None draws from the global generator.
    RETURNS (Tuple[PreTrainedModel, LoadingReport]): the model, and which weights came
        from the folder and which start fresh (the heads, when the folder has none).
    """
    import transformers
    from transformers import BertForPreTraining

    encoder_dir = check_encoder_folder(encoder_dir, tokenizer=False)  # the tokenizer is loaded apart
    config = AutoConfig.from_pretrained(encoder_dir, local_files_only=True)
    if nsp:
        if config.model_type != "bert":
            raise ValueError(
                f"--nsp needs a BERT encoder (BertForPreTraining); {encoder_dir} holds a "
                f"'{config.model_type}' model. Drop --nsp for this encoder."
            )
        model_class = BertForPreTraining
    elif type(config) in MODEL_FOR_MASKED_LM_MAPPING:
        model_class = MODEL_FOR_MASKED_LM_MAPPING[type(config)]
    else:
        raise ValueError(f"{encoder_dir} holds a '{config.model_type}' model, which has no masked-LM class.")
    if model_class.__name__ in MLM_HEADS:
        model_class = masked_positions_class(model_class)
    load_kwargs = {"local_files_only": True, "use_safetensors": True, "output_loading_info": True}
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # we report what was loaded ourselves
    try:
        with _seeded(seed):
            model, info = load_weights_checked(model_class, encoder_dir, **load_kwargs)
            prefix = model.base_model_prefix
            new_names = list(info["missing_keys"])
            unused = [name for name in info["unexpected_keys"] if ".pooler." not in f".{name}"]
            if getattr(model.base_model, "pooler", False) is None:
                # The MLM class drops the pooler; keep the folder's, so the output has it too.
                base, base_info = load_weights_checked(AutoModel, encoder_dir, **load_kwargs)
                base.config = model.config  # one config, so resizing the vocabulary updates both
                setattr(model, prefix, base)
                model.tie_weights()
                base.pooler.requires_grad_(False)  # MLM does not train it; frozen keeps DDP simple
                new_names += [f"{prefix}.{name}" for name in base_info["missing_keys"] if name.startswith("pooler.")]
    except OSError as err:
        raise ValueError(f"Could not load an encoder from {encoder_dir}: {err}") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    new_names += [name for name, *_ in info.get("mismatched_keys", [])]
    if not has_masked_positions_head(model):
        logger.warning(
            "%s has no masked-positions head here (its MLM head is not one of %s): pretraining uses the "
            "stock head, which projects every position onto the vocabulary. The loss is the same; steps are slower.",
            type(model).__name__, ", ".join(MLM_HEADS),
        )
    names = list(model.state_dict().keys())
    report = LoadingReport(
        source=str(encoder_dir),
        loaded=[name for name in names if name not in set(new_names) and not _is_tied(name, model)],
        newly_initialised=sorted(name for name in set(new_names) if not _is_tied(name, model)),
        unused=sorted(unused),
        head_prefixes=tuple(
            name for name, _ in model.named_children() if name != prefix
        ),
        seed=seed,
    )
    return model, report


def extend_embeddings(model: PreTrainedModel, piece_ids: List[List[int]]) -> None:
    """Add one embedding row per new word, started as the mean of its old pieces.

    piece_ids (List[List[int]]): for each new word, in the order of their new ids,
        the pieces the old tokenizer split it into. The MLM output bias of a new word
        starts as the mean of its pieces' biases.
    """
    old_size = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(old_size + len(piece_ids), mean_resizing=False)
    embeddings = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    bias = getattr(output, "bias", None) if output is not None else None
    with torch.no_grad():
        for i, pieces in enumerate(piece_ids):
            embeddings[old_size + i] = embeddings[pieces].mean(0)
            if bias is not None:
                bias[old_size + i] = bias[pieces].mean()
            if output is not None and output.weight is not embeddings:
                output.weight[old_size + i] = output.weight[pieces].mean(0)


def save_encoder(model: PreTrainedModel, tokenizer, output_dir: Union[str, Path], *, with_head: bool = False) -> Path:
    """Write a plain Hugging Face folder (safetensors, tokenizer) for ``paths.encoder``.

    with_head (bool): write the MLM model (BertForMaskedLM, ...); else the bare encoder
        (BertModel, with the pooler it was loaded with).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    to_save = model if with_head else model.base_model
    to_save.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    return output_dir


@contextmanager
def _seeded(seed: Optional[int]) -> Iterator[None]:
    """Draw from the torch generator seeded with ``seed``, and put it back after; None: as it is."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _is_tied(name: str, model: PreTrainedModel) -> bool:
    return any(name == key or name.endswith(f".{key}") for key in (model._tied_weights_keys or []))
