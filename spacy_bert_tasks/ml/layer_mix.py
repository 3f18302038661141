"""Which encoder layers a head reads: a chosen layer, a combination, or a learned mix.

Both layers map ``List[TransformerData] -> List[TransformerData]`` and sit right
after the raw listener. The ``last_hidden_state`` of their output holds the
selected or mixed layers, so every head (which reads ``last_hidden_state``)
works unchanged:

- ``spacy_bert_tasks.layer_select.v1``: one layer (``layers = [-2]``), or the
  ``sum``, ``mean`` or ``concat`` of several (``[-4, -3, -2, -1]``);
- ``spacy_bert_tasks.scalar_mix.v1``: ELMo's ``gamma * sum_l softmax(w)_l * h_l``
  over all layers, with ``w`` and ``gamma`` learned.

``spacy_bert_tasks.LayersListener.v1`` chains the listener and one of them, to
put where a head's config takes ``spacy_bert_tasks.Listener.v1``::

    [components.bert_textcat.model.tok2vec]
    @architectures = "spacy_bert_tasks.LayersListener.v1"
    upstream = "*"

    [components.bert_textcat.model.tok2vec.layers]
    @layers = "spacy_bert_tasks.layer_select.v1"
    layers = [-4, -3, -2, -1]
    combine = "sum"

The layers read ``model_output["hidden_layers"]``, ``(n_windows, n_layers + 1,
seq_len, width)``, which the encoder only computes when its
``output_hidden_states`` attr is on. The layers mark themselves with
``attrs["needs_hidden_states"]``; ``spacy_bert_tasks.fine_tuning.link_hidden_states``
(called by ``BertTaskPipe.initialize``) switches the attr on for the encoder they
listen to, and it is saved with the pipeline.

Gradients go back as ``hidden_layers`` gradients (``last_hidden_state`` gets
zeros), in the order of the encoder's ``model_output``, so a plain head on the
same encoder adds its gradients position by position.
"""
from typing import Callable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import TransformerData
from thinc.api import Model, chain
from thinc.types import Floats1d, Floats3d, Floats4d
from transformers.modeling_outputs import ModelOutput

from .listener import build_listener

COMBINE = ("sum", "mean", "concat")


@registry.architectures("spacy_bert_tasks.LayersListener.v1")
def build_layers_listener(
    layers: Model[List[TransformerData], List[TransformerData]], upstream: str = "*"
) -> Model[List[Doc], List[TransformerData]]:
    """The raw listener followed by a layer choice (``layer_select`` or ``scalar_mix``).

    layers (Model): ``spacy_bert_tasks.layer_select.v1`` or ``spacy_bert_tasks.scalar_mix.v1``.
    upstream (str): the ``transformer`` component to listen to ("*" for any).
    """
    return chain(build_listener(upstream), layers)


@registry.layers("spacy_bert_tasks.layer_select.v1")
def layer_select(layers: Sequence[int] = (-1,), combine: str = "sum") -> Model[List[TransformerData], List[TransformerData]]:
    """Read chosen encoder layers: -1 is the last, -2 the one below; 0 is the embeddings.

    layers (Sequence[int]): indices into the ``n_layers + 1`` hidden states.
    combine (str): "sum", "mean" or "concat" (the width grows ``len(layers)`` times).
    """
    if combine not in COMBINE:
        raise ValueError(f"layer_select: combine={combine!r} is not one of {COMBINE}.")
    if not layers:
        raise ValueError("layer_select: `layers` is empty; name at least one layer, e.g. [-1].")
    return Model(
        "layer_select",
        _select_forward,
        attrs={"layers": [int(i) for i in layers], "combine": combine, "needs_hidden_states": True},
    )


@registry.layers("spacy_bert_tasks.scalar_mix.v1")
def scalar_mix() -> Model[List[TransformerData], List[TransformerData]]:
    """ELMo's scalar mix of all encoder layers: softmax weights and a gamma, learned.

    The weights start equal and gamma at 1; their size is set by the first batch.
    """
    return Model(
        "scalar_mix",
        _mix_forward,
        params={"weights": None, "gamma": None},
        dims={"nL": None},
        attrs={"needs_hidden_states": True},
    )


def _stack(model: Model, trf_data: TransformerData, is_train: bool) -> Optional[Floats4d]:
    """The doc's hidden layers, (n_windows, n_layers + 1, seq_len, width), or None for an empty doc."""
    output = trf_data.model_output
    if "hidden_layers" in output:
        return output["hidden_layers"]
    if "last_hidden_state" not in output or output.last_hidden_state.size == 0:
        return None
    hidden = output.last_hidden_state
    if not is_train and not model.ops.xp.any(hidden):
        # The listener's all-zero placeholder during initialisation: one layer.
        return hidden[:, None]
    raise ValueError(
        f"The '{model.name}' layer needs every encoder layer, but the encoder gave only the last. "
        "Its `output_hidden_states` attr is switched on by `BertTaskPipe.initialize`; for another "
        "component call `spacy_bert_tasks.fine_tuning.link_hidden_states(nlp)` after `nlp.initialize()`, "
        "or set `nlp.get_pipe('transformer').model.attrs['output_hidden_states'] = True`."
    )


def _output(trf_data: TransformerData, hidden: Floats3d) -> TransformerData:
    return TransformerData(wordpieces=trf_data.wordpieces, model_output=ModelOutput(last_hidden_state=hidden), align=trf_data.align)


def _d_input(model: Model, trf_data: TransformerData, d_layers: Floats4d) -> TransformerData:
    """The gradient for one doc, with a zero for every other tensor of its output, in order."""
    d_output = ModelOutput()
    for key, value in trf_data.model_output.items():
        d_output[key] = d_layers if key == "hidden_layers" else model.ops.alloc(value.shape, dtype=value.dtype)
    return TransformerData(wordpieces=trf_data.wordpieces, model_output=d_output, align=trf_data.align)


def _select_forward(model: Model, trf_datas: List[TransformerData], is_train: bool) -> Tuple[List[TransformerData], Callable]:
    chosen = model.attrs["layers"]
    combine = model.attrs["combine"]
    outputs, stacks = [], []
    for trf_data in trf_datas:
        stack = _stack(model, trf_data, is_train)
        stacks.append(stack)
        if stack is None:
            outputs.append(trf_data)
            continue
        n_layers = stack.shape[1]
        if any(not -n_layers <= i < n_layers for i in chosen) and stack.shape[1] > 1:
            raise ValueError(f"layer_select: layers={chosen} but the encoder has {n_layers} hidden states (-{n_layers}..{n_layers - 1}).")
        picked = stack[:, [i % n_layers for i in chosen]]  # (n_windows, k, seq_len, width)
        if combine == "sum":
            hidden = picked.sum(axis=1)
        elif combine == "mean":
            hidden = picked.mean(axis=1)
        else:  # (n_windows, seq_len, k * width), layers side by side in the order given
            hidden = model.ops.xp.concatenate(list(picked.transpose(1, 0, 2, 3)), axis=-1)
        outputs.append(_output(trf_data, model.ops.xp.ascontiguousarray(hidden, dtype="f")))

    def backprop(d_outputs: List[TransformerData]) -> List[TransformerData]:
        d_inputs = []
        # Downstream layers return gradients only for docs with encoder output.
        for trf_data, stack, d_output in zip(_with_output(trf_datas, stacks), _with_output(stacks, stacks), d_outputs):
            d_hidden = d_output.model_output.last_hidden_state
            d_stack = model.ops.alloc(stack.shape, dtype="f")
            width = stack.shape[-1]
            for k, i in enumerate(chosen):
                if combine == "sum":
                    d_stack[:, i] += d_hidden
                elif combine == "mean":
                    d_stack[:, i] += d_hidden / len(chosen)
                else:
                    d_stack[:, i] += d_hidden[..., k * width : (k + 1) * width]
            d_inputs.append(_d_input(model, trf_data, d_stack))
        return d_inputs

    return outputs, backprop


def _mix_forward(model: Model, trf_datas: List[TransformerData], is_train: bool) -> Tuple[List[TransformerData], Callable]:
    xp = model.ops.xp
    stacks = [_stack(model, trf_data, is_train) for trf_data in trf_datas]
    real = [s for s in stacks if s is not None and s.shape[1] > 1]
    if real and not model.has_param("weights"):
        _init_mix(model, real[0].shape[1])
    if not model.has_param("weights"):  # the placeholder during initialisation: pass it on
        return [_output(td, s[:, 0]) if s is not None else td for td, s in zip(trf_datas, stacks)], lambda d: d
    weights = model.get_param("weights")
    gamma = float(model.get_param("gamma")[0])
    scale = _softmax(xp, weights)  # (n_layers + 1,)
    outputs, mixes = [], []
    for trf_data, stack in zip(trf_datas, stacks):
        if stack is None:
            outputs.append(trf_data)
            mixes.append(None)
            continue
        if stack.shape[1] != len(scale):
            raise ValueError(f"scalar_mix was set up for {len(scale)} hidden states but got {stack.shape[1]}.")
        mixed = (stack * scale[None, :, None, None]).sum(axis=1)  # (n_windows, seq_len, width)
        mixes.append(mixed)
        outputs.append(_output(trf_data, (gamma * mixed).astype("f")))

    def backprop(d_outputs: List[TransformerData]) -> List[TransformerData]:
        d_scale = xp.zeros_like(scale)
        d_gamma = 0.0
        d_inputs = []
        for trf_data, stack, d_output, mixed in zip(
            _with_output(trf_datas, stacks), _with_output(stacks, stacks), d_outputs, _with_output(mixes, stacks)
        ):
            d_hidden = d_output.model_output.last_hidden_state  # (n_windows, seq_len, width)
            d_gamma += float((d_hidden * mixed).sum())
            # d_scale[l] = gamma * <d_hidden, stack[:, l]>
            d_scale += gamma * xp.einsum("wsd,wlsd->l", d_hidden, stack)
            d_stack = (gamma * scale[None, :, None, None] * d_hidden[:, None]).astype("f")
            d_inputs.append(_d_input(model, trf_data, d_stack))
        # softmax backward: dw = s * (ds - <s, ds>)
        model.inc_grad("weights", (scale * (d_scale - (scale * d_scale).sum())).astype("f"))
        model.inc_grad("gamma", model.ops.asarray1f([d_gamma]))
        return d_inputs

    return outputs, backprop


def _init_mix(model: Model, n_layers: int) -> None:
    model.set_dim("nL", n_layers)
    model.set_param("weights", model.ops.alloc1f(n_layers))
    model.set_param("gamma", model.ops.asarray1f([1.0]))


def _softmax(xp, weights: Floats1d) -> Floats1d:
    exp = xp.exp(weights - weights.max())
    return exp / exp.sum()


def _with_output(items: list, stacks: list) -> list:
    """The items of the docs that have encoder output, in order."""
    return [item for item, stack in zip(items, stacks) if stack is not None]
