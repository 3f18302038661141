"""The network's thinc wrapper, with an optimizer step that updates the weights in place.

thinc's ``PyTorchShim.finish_update`` (which spacy-transformers' ``HFShim``
inherits) hands each parameter to the optimizer as a numpy view
(``torch2xp``) and then replaces the parameter's tensor with one made from the
optimizer's result (``param.data = xp2torch(...)``). thinc's Adam updates the
view in place, so the data is the same, but the new tensor holds the numpy
array through DLPack, the array holds the previous tensor, and that one the
step before it: each step adds one unreachable link per parameter that is
never freed. On the tiny test encoder that is 37 tensors and their arrays per
update; on MiniLM, about a hundred. They are small, but they sit between each
step's large freed blocks, so glibc cannot give those pages back and the
resident memory climbs (tiny encoder, 300 updates: heap 159 → 272 MB with
thinc's step, 161 → 206 MB and level from update 75 with this one).
``EncoderShim`` writes the update into the tensor the parameter already has.
"""
from typing import Any

from spacy_transformers.data_classes import HFObjects
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Model, Optimizer, get_array_module, torch2xp, xp2torch
from thinc.layers.pytorchwrapper import convert_pytorch_default_inputs, convert_pytorch_default_outputs
from thinc.layers.pytorchwrapper import forward as pytorch_forward


class EncoderShim(HFShim):
    """``HFShim`` whose ``finish_update`` keeps each parameter's tensor."""

    def finish_update(self, optimizer: Optimizer) -> None:
        for name, param in self._model.named_parameters():
            if param.grad is None:
                continue
            if not self._grad_scaler.found_inf:  # an overflowed fp16 step is skipped, as in thinc
                weights = torch2xp(param.data)
                updated, _ = optimizer((self.id, name), weights, torch2xp(param.grad))
                if not get_array_module(weights).may_share_memory(updated, weights):
                    param.data.copy_(xp2torch(updated, device=param.device).reshape(param.shape))
            param.grad.zero_()
        self._grad_scaler.update()


def encoder_wrapper(hf_model: HFObjects, network_cls: Any) -> Model:
    """spacy-transformers' ``HFWrapper`` (same name, forward and serialisation) around an ``EncoderShim``."""
    return Model(
        "hf-pytorch",
        pytorch_forward,
        attrs={"convert_inputs": convert_pytorch_default_inputs, "convert_outputs": convert_pytorch_default_outputs},
        shims=[EncoderShim(hf_model, model_cls=network_cls)],
        dims={"nI": None, "nO": None},
    )
