"""Weight drift: how far fine-tuning moved each layer and module.

The drift of a group of weights is ``||W_ft - W_0|| / ||W_0||``, with the norms
taken over all the group's parameters as one vector. Groups are layers
(``embeddings``, ``layer 0`` ... ``layer N-1``, ``pooler``, then one per head)
and, within a layer, modules (``attention.self.query``, ``intermediate.dense``,
``output.LayerNorm`` ...: the parameter's name without ``.weight``/``.bias``).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import numpy

from .params import Weights

_LAYER = re.compile(r"^(?:.*\.)?(?:layer|layers)\.(\d+)\.(.+)$")


def group_of(key: str) -> Tuple[str, str]:
    """The (layer, module) a weight key belongs to.

    key (str): a key of ``get_weights`` (``"transformer/encoder.layer.3.output.dense.weight"``).
    RETURNS (Tuple[str, str]): e.g. ``("layer 3", "output.dense")``; a head's weights
        give ``(<pipe>, "<i>.<layer name>")``.
    """
    pipe, _, name = key.partition("/")
    head = re.match(r"^(\d+)\.(.+)\.[^.]+$", name)
    if head:  # "<i>.<layer name>.<param>"
        return pipe, f"{head.group(1)}.{head.group(2)}"
    module = re.sub(r"\.(weight|bias)$", "", name)
    match = _LAYER.match(module)
    if match:
        return f"layer {int(match.group(1))}", match.group(2)
    top, _, rest = module.partition(".")
    return top, rest or top


def _layer_order(layer: str) -> Tuple[int, int, str]:
    if layer == "embeddings":
        return (0, 0, layer)
    if layer.startswith("layer "):
        return (1, int(layer.split()[1]), layer)
    if layer == "pooler":
        return (2, 0, layer)
    return (3, 0, layer)


def weight_drift(before: Weights, after: Weights) -> Dict[str, object]:
    """Relative change of each layer and module between two weight sets.

    before (Weights): the weights before fine-tuning (W_0).
    after (Weights): the fine-tuned weights (W_ft); keys missing from ``before``
        (e.g. heads when only the encoder folder is known) are left out.
    RETURNS (Dict[str, object]): ``{"layers": {layer: drift}, "modules": {layer: {module: drift}},
        "total": drift, "keys": n}``, layers in network order (embeddings first, heads last).
    """
    shared = [k for k in after if k in before]
    if not shared:
        raise ValueError(
            "The two weight sets share no key. Pass the encoder or pipeline the fine-tuned "
            "pipeline started from."
        )
    diff_sq: Dict[Tuple[str, str], float] = {}
    base_sq: Dict[Tuple[str, str], float] = {}
    for key in shared:
        if before[key].shape != after[key].shape:
            raise ValueError(f"Weight {key} changed shape ({before[key].shape} -> {after[key].shape}).")
        group = group_of(key)
        w0 = before[key].astype("float64")
        diff_sq[group] = diff_sq.get(group, 0.0) + float(numpy.sum((after[key].astype("float64") - w0) ** 2))
        base_sq[group] = base_sq.get(group, 0.0) + float(numpy.sum(w0**2))
    layers: List[str] = sorted({layer for layer, _ in diff_sq}, key=_layer_order)
    modules: Dict[str, Dict[str, float]] = OrderedDict((layer, OrderedDict()) for layer in layers)
    layer_drift: Dict[str, float] = OrderedDict()
    for layer in layers:
        groups = [g for g in diff_sq if g[0] == layer]
        for group in groups:
            modules[layer][group[1]] = _ratio(diff_sq[group], base_sq[group])
        layer_drift[layer] = _ratio(sum(diff_sq[g] for g in groups), sum(base_sq[g] for g in groups))
    total = _ratio(sum(diff_sq.values()), sum(base_sq.values()))
    return {"layers": layer_drift, "modules": modules, "total": total, "keys": len(shared)}


def _ratio(diff_sq: float, base_sq: float) -> float:
    # a group that starts at zero (e.g. biases) is measured in absolute terms
    if base_sq == 0.0:
        return diff_sq**0.5
    return (diff_sq / base_sq) ** 0.5
