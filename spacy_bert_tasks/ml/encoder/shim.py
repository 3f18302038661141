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

It also writes the weights in ``save_dtype`` (the encoder setting), so that a
pipeline for production can be half the size on disk.

And it takes its optimizer step after the backward pass of the step it
belongs to. ``Language.update(examples, sgd=...)`` calls each component's
``finish_update`` right after that component's own ``update``, in pipeline
order, so the ``transformer``'s comes before its listeners (the heads after it)
have sent their gradients back: spacy-transformers' ``HFShim`` would apply
each update's encoder gradient one update late, and the first one never
(``spacy train`` finishes every component after all the updates, so it is not
affected). A ``finish_update`` that arrives while a training forward pass is
still waiting for its backward pass is kept and run when that backward pass
ends, so ``nlp.update(..., sgd=optimizer)`` steps as ``spacy train`` does.
"""
from io import BytesIO
from typing import Any, Optional

import srsly
import torch
from spacy_transformers.data_classes import HFObjects
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Model, Optimizer, get_array_module, torch2xp, xp2torch
from thinc.layers.pytorchwrapper import convert_pytorch_default_inputs, convert_pytorch_default_outputs
from thinc.layers.pytorchwrapper import forward as pytorch_forward


SAVE_DTYPES = ("float32", "float16", "bfloat16")


def check_save_dtype(dtype: str) -> str:
    """``dtype``, if the encoder can write its weights as it."""
    if dtype not in SAVE_DTYPES:
        raise ValueError(f"save_dtype={dtype!r}: use one of {', '.join(SAVE_DTYPES)}.")
    return dtype


class EncoderShim(HFShim):
    """``HFShim`` whose ``finish_update`` keeps each parameter's tensor, and which saves in ``save_dtype``."""

    def __init__(self, hf_model: HFObjects, *, model_cls: Any, save_dtype: str = "float32"):
        super().__init__(hf_model, model_cls=model_cls)
        self.save_dtype = check_save_dtype(save_dtype)
        self._backward_due = False  # a training forward pass ran and its backward pass has not
        self._deferred: Optional[Optimizer] = None  # a finish_update that came before that backward pass

    def expect_backward(self) -> None:
        """A training forward pass ran: its backward pass will come (see the module docstring)."""
        self._backward_due = True
        self._deferred = None

    def backward_done(self) -> None:
        """The backward pass ran: take the optimizer step that was asked for before it, if any."""
        self._backward_due = False
        optimizer, self._deferred = self._deferred, None
        if optimizer is not None:
            self.finish_update(optimizer)

    def finish_update(self, optimizer: Optimizer) -> None:
        if self._backward_due:
            self._deferred = optimizer
            return
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

    def to_bytes(self) -> bytes:
        data = super().to_bytes()
        if self.save_dtype == "float32":
            return data
        msg = srsly.msgpack_loads(data)
        if msg["state"]:  # HFShim.from_bytes loads it into a float32 network, which casts it back
            dtype = getattr(torch, self.save_dtype)
            state = torch.load(BytesIO(msg["state"]), map_location="cpu")
            state = {key: value.to(dtype) if value.is_floating_point() else value for key, value in state.items()}
            saved = BytesIO()
            torch.save(state, saved)
            msg["state"] = saved.getvalue()
        return srsly.msgpack_dumps(msg)


def encoder_wrapper(hf_model: HFObjects, network_cls: Any, *, save_dtype: str = "float32") -> Model:
    """spacy-transformers' ``HFWrapper`` (same name, forward and serialisation) around an ``EncoderShim``."""
    return Model(
        "hf-pytorch",
        pytorch_forward,
        attrs={"convert_inputs": convert_pytorch_default_inputs, "convert_outputs": convert_pytorch_default_outputs},
        shims=[EncoderShim(hf_model, model_cls=network_cls, save_dtype=save_dtype)],
        dims={"nI": None, "nO": None},
    )
