"""How the encoder is trained: layer-wise learning rates, gradual unfreezing, reports.

- ``spacy_bert_tasks.LayerwiseAdam.v1`` (``[training.optimizer]``): thinc's Adam
  with the learning rate of each encoder parameter scaled by ``decay ** depth``,
  counting depth from the top (ELECTRA's layer-wise decay). Schedules for
  ``learn_rate`` work as with ``Adam.v1``.
- ``spacy_bert_tasks.GlobalClipAdam.v1`` (``[training.optimizer]``): thinc's
  Adam with the gradient clipped by its norm over all parameters of a step
  (BERT's and Hugging Face's ``max_grad_norm``), not parameter by parameter.
- ``spacy_bert_tasks.gradual_unfreezing.v1`` (``[training.before_update]``):
  the top layers train first; one more layer opens every ``every`` steps.
- ``link_hidden_states(nlp)``: switches on the encoder's hidden states for the
  heads whose model holds a layer that reads them (``ml/layer_mix.py``).
- ``trainable_summary(nlp)``: what an update changes, in parameters and bytes.

Depth, for a model of ``n`` layers: 0 for the heads (and the pooler), 1 for the
top layer, ``n`` for the bottom one, ``n + 1`` for the embeddings.
"""
import io
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from spacy.language import Language
from spacy.util import registry
from thinc.api import Model, Optimizer, get_array_module
from thinc.optimizers import ADAM_DEFAULTS, FloatOrSeq

_LAYER = re.compile(r"(?:^|\.)(?:layer|layers)\.(\d+)\.")
_EMBEDDINGS = re.compile(r"(?:^|\.)embeddings\.")


def layer_depth(param_name: str, n_layers: int) -> int:
    """How far below the heads a parameter sits (see the module docstring).

    param_name (str): a torch parameter name, e.g. "encoder.layer.3.output.dense.weight";
        thinc parameter names ("W", "b") are head parameters, depth 0.
    n_layers (int): the encoder's number of layers.
    """
    match = _LAYER.search(param_name)
    if match:
        index = int(match.group(1))
        if index >= n_layers:
            raise ValueError(
                f"The parameter '{param_name}' belongs to layer {index}, but n_layers = {n_layers}. "
                "Set n_layers to the encoder's `num_hidden_layers` (in its config.json)."
            )
        return n_layers - index
    if _EMBEDDINGS.search(param_name):
        return n_layers + 1
    return 0


class LayerwiseOptimizer(Optimizer):
    """thinc's ``Optimizer``, with a learning-rate scale per encoder layer."""

    def __init__(self, learn_rate: FloatOrSeq, *, decay: float, n_layers: int, **settings: Any):
        super().__init__(learn_rate, **settings)
        self.decay = decay
        self.n_layers = n_layers
        self.scales: Dict[str, float] = {}

    def __call__(self, key: Tuple[int, str], weights, gradient, *, lr_scale: float = 1.0):
        name = key[1]
        if name not in self.scales:
            self.scales[name] = self.decay ** layer_depth(name, self.n_layers)
        return super().__call__(key, weights, gradient, lr_scale=lr_scale * self.scales[name])


@registry.optimizers("spacy_bert_tasks.LayerwiseAdam.v1")
def configure_layerwise_adam(
    learn_rate: FloatOrSeq = ADAM_DEFAULTS["learn_rate"],
    *,
    n_layers: int,
    decay: float = 0.8,
    L2: FloatOrSeq = ADAM_DEFAULTS["L2"],
    beta1: FloatOrSeq = ADAM_DEFAULTS["beta1"],
    beta2: FloatOrSeq = ADAM_DEFAULTS["beta2"],
    eps: FloatOrSeq = ADAM_DEFAULTS["eps"],
    grad_clip: FloatOrSeq = ADAM_DEFAULTS["grad_clip"],
    L2_is_weight_decay: bool = True,
    use_averages: bool = True,
) -> Optimizer:
    """Adam where an encoder parameter at depth d learns at ``learn_rate * decay ** d``.

    n_layers (int): the encoder's ``num_hidden_layers``.
    decay (float): the factor per layer going down (ELECTRA: 0.8); 1.0 is plain Adam.
    The other settings are those of thinc's ``Adam.v1``.
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"LayerwiseAdam: decay={decay} must be in (0, 1].")
    return LayerwiseOptimizer(
        learn_rate, decay=decay, n_layers=n_layers, L2=L2, beta1=beta1, beta2=beta2, eps=eps,
        grad_clip=grad_clip, L2_is_weight_decay=L2_is_weight_decay, use_averages=use_averages, use_radam=False,
    )


@registry.callbacks("spacy_bert_tasks.gradual_unfreezing.v1")
def configure_gradual_unfreezing(
    every: int = 100, start: int = 1, component: str = "transformer"
) -> Callable[[Language, Dict[str, Any]], None]:
    """A ``[training.before_update]`` callback: the top ``start + step // every`` layers train.

    The embeddings count as the layer below the bottom one. While no layer
    trains, the encoder runs frozen (no backward pass at all); while some do,
    the others keep ``requires_grad = False`` and the backward pass stops at them.

    every (int): steps between two openings.
    start (int): layers open at step 0 (0 = heads only).
    component (str): the name of the ``transformer`` component.
    """
    if every < 1 or start < 0:
        raise ValueError(f"gradual_unfreezing: every={every} must be >= 1 and start={start} >= 0.")

    def before_update(nlp: Language, args: Dict[str, Any]) -> None:
        if component not in nlp.pipe_names:
            raise ValueError(f"gradual_unfreezing: no component '{component}' in the pipeline ({nlp.pipe_names}).")
        set_trainable_layers(nlp.get_pipe(component).model, start + args["step"] // every)

    return before_update


def set_trainable_layers(encoder: Model, n_open: int) -> None:
    """Let only the top ``n_open`` layers of the encoder train (heads always do).

    encoder (Model): the ``transformer`` component's model.
    n_open (int): how many layers from the top train; ``n_layers + 1`` opens the embeddings too.
    """
    transformer = encoder.transformer
    n_layers = transformer.config.num_hidden_layers
    for name, param in transformer.named_parameters():
        depth = layer_depth(name, n_layers)
        trainable = 0 < depth <= n_open
        if param.requires_grad != trainable:
            param.requires_grad_(trainable)
            param.grad = None
    encoder.attrs["frozen"] = n_open <= 0


def link_hidden_states(nlp: Language) -> List[str]:
    """Switch on the hidden states of each encoder that a layer-reading head listens to.

    A head asks by holding a layer with ``attrs["needs_hidden_states"]`` (see
    ``ml/layer_mix.py``). The setting is an attr of the encoder model, so it is
    saved with the pipeline. RETURNS (List[str]): the encoders switched on.
    """
    switched = []
    for name, proc in nlp.pipeline:
        listener_map = getattr(proc, "listener_map", None)
        if not listener_map or "output_hidden_states" not in getattr(proc.model, "attrs", {}):
            continue
        for head_name in listener_map:
            head = nlp.get_pipe(head_name) if head_name in nlp.component_names else None
            model = getattr(head, "model", None)
            if isinstance(model, Model) and any(node.attrs.get("needs_hidden_states") for node in model.walk()):
                proc.model.attrs["output_hidden_states"] = True
                switched.append(name)
                break
    return switched


def listened_encoder(nlp: Language, head_name: str) -> Optional[Model]:
    """The encoder model a head reads: its own (after ``replace_listeners``) or the ``transformer`` it listens to."""
    from spacy_transformers.layers.transformer_model import TransformerModel

    from .ml.encoder import EncoderModel

    head = nlp.get_pipe(head_name)
    for node in head.model.walk():
        if isinstance(node, (EncoderModel, TransformerModel)):
            return node
    for _, proc in nlp.pipeline:
        if head_name in (getattr(proc, "listener_map", None) or {}):
            return proc.model
    return None


def trainable_summary(nlp: Language) -> Dict[str, Dict[str, int]]:
    """Per component: parameters an update changes, and their size when saved.

    An encoder with ``frozen = true`` counts none of its own weights; otherwise
    its torch parameters with ``requires_grad`` count (adapters, unfrozen layers).
    RETURNS (Dict[str, Dict[str, int]]): ``{name: {"params": n, "bytes": size}}``.
    """
    summary = {}
    for name, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if not isinstance(model, Model):
            continue
        tensors = dict(_trainable_tensors(model))
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        summary[name] = {"params": sum(t.numel() for t in tensors.values()), "bytes": len(buffer.getvalue()) if tensors else 0}
    return summary


def _trainable_tensors(model: Model) -> Iterator[Tuple[str, torch.Tensor]]:
    frozen = {inner.id for node in model.walk() if node.attrs.get("frozen") for inner in node.walk()}
    for node in model.walk():
        for param_name in node.param_names:
            if node.has_param(param_name):
                yield f"{node.name}.{node.id}.{param_name}", torch.as_tensor(node.get_param(param_name))
        if node.id in frozen:
            continue
        for shim in node.shims:
            torch_model = getattr(shim, "_model", None)
            if isinstance(torch_model, torch.nn.Module):
                for param_name, param in torch_model.named_parameters():
                    if param.requires_grad:
                        yield f"{shim.id}.{param_name}", param.detach()


class GlobalClipOptimizer(Optimizer):
    """thinc's ``Optimizer`` with the step's gradient clipped by its global norm.

    thinc hands an optimizer one parameter at a time, from each component's
    ``finish_update``, and its ``grad_clip`` clips each one on its own. A
    global norm needs all of them, so a step's gradients are kept (copied)
    until ``step_schedules()``, which spaCy's training loop calls once per
    step after every ``finish_update``; then they are scaled by
    ``min(1, max_grad_norm / norm)`` and applied. A loop that never calls
    ``step_schedules()`` gets each step applied when the next one begins.
    """

    def __init__(self, learn_rate: FloatOrSeq, *, max_grad_norm: float, **settings: Any):
        super().__init__(learn_rate, **settings)
        self.max_grad_norm = max_grad_norm
        self._pending: Dict[Tuple[int, str], Tuple[Any, Any, float]] = {}

    def __call__(self, key: Tuple[int, str], weights, gradient, *, lr_scale: float = 1.0):
        if self.max_grad_norm <= 0:
            return super().__call__(key, weights, gradient, lr_scale=lr_scale)
        if key in self._pending:  # a new step began before step_schedules()
            self.apply_pending()
        self._pending[key] = (weights, gradient.copy(), lr_scale)
        gradient *= 0
        return weights, gradient

    def apply_pending(self) -> None:
        """Clip the kept gradients by their global norm and update their weights in place."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        norm = sum(float((gradient * gradient).sum()) for _, gradient, _ in pending.values()) ** 0.5
        factor = min(1.0, self.max_grad_norm / (norm + 1e-6))
        for key, (weights, gradient, lr_scale) in pending.items():
            gradient *= factor
            updated, _ = super().__call__(key, weights, gradient, lr_scale=lr_scale)
            if not get_array_module(weights).may_share_memory(updated, weights):
                weights[...] = updated.reshape(weights.shape)

    def step_schedules(self) -> None:
        self.apply_pending()
        super().step_schedules()


@registry.optimizers("spacy_bert_tasks.GlobalClipAdam.v1")
def configure_global_clip_adam(
    learn_rate: FloatOrSeq = ADAM_DEFAULTS["learn_rate"],
    *,
    max_grad_norm: float = 1.0,
    L2: FloatOrSeq = ADAM_DEFAULTS["L2"],
    beta1: FloatOrSeq = ADAM_DEFAULTS["beta1"],
    beta2: FloatOrSeq = ADAM_DEFAULTS["beta2"],
    eps: FloatOrSeq = ADAM_DEFAULTS["eps"],
    grad_clip: FloatOrSeq = 0.0,
    L2_is_weight_decay: bool = True,
    use_averages: bool = True,
) -> Optimizer:
    """Adam whose step is clipped to ``max_grad_norm`` over all parameters together.

    max_grad_norm (float): the largest global L2 norm of a step's gradient
        (BERT: 1.0); 0 turns the global clipping off.
    grad_clip (float): thinc's clipping of each parameter on its own (0: off).
    The other settings are those of thinc's ``Adam.v1``.
    """
    if max_grad_norm < 0:
        raise ValueError(f"GlobalClipAdam: max_grad_norm={max_grad_norm} must be >= 0 (0 turns clipping off).")
    return GlobalClipOptimizer(
        learn_rate, max_grad_norm=max_grad_norm, L2=L2, beta1=beta1, beta2=beta2, eps=eps, grad_clip=grad_clip,
        L2_is_weight_decay=L2_is_weight_decay, use_averages=use_averages, use_radam=False,
    )
