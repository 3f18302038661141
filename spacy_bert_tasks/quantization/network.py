"""An int8 encoder network run by ONNX Runtime, in the place of the Hugging Face one.

``OnnxNetwork`` is a ``torch.nn.Module`` that answers the encoder's calls as a
Hugging Face model does (``last_hidden_state`` from ``input_ids``,
``attention_mask``, ``token_type_ids``) by running an ONNX graph whose linear
layers hold int8 weights (ONNX Runtime's dynamic quantization: weights int8
per output channel, activations quantized per batch). The graph's bytes are a
buffer of the module, so spacy-transformers' serialisation (config, tokenizer
and ``state_dict``) saves and restores it unchanged; ``from_config`` and
``load_state_dict`` are what its loader calls.
"""
import os
import tempfile
import weakref
from pathlib import Path
from typing import Any, Optional

import numpy
import torch
from transformers import PretrainedConfig
from transformers.modeling_outputs import BaseModelOutput

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
_NETWORKS: "weakref.WeakSet[OnnxNetwork]" = weakref.WeakSet()


def _close_sessions_before_fork() -> None:
    """Close every ONNX Runtime session before a fork (``nlp.pipe(n_process=...)``).

    A session's thread pool does not survive a fork, and a child that makes a
    session while the parent's pool is alive can wait forever. Closed, each
    process (the parent included) makes its own on the next call.
    """
    for network in list(_NETWORKS):
        network._session, network._session_key = None, None


os.register_at_fork(before=_close_sessions_before_fork)


class OnnxNetwork(torch.nn.Module):
    """The encoder's network as an ONNX Runtime session (one per process, made on first use)."""

    def __init__(self, config: PretrainedConfig, onnx_model: bytes = b""):
        super().__init__()
        self.config = config
        self.register_buffer("onnx_model", torch.frombuffer(bytearray(onnx_model), dtype=torch.uint8) if onnx_model else torch.zeros(0, dtype=torch.uint8))
        # The encoder asks a network's parameters for its device.
        self.device_anchor = torch.nn.Parameter(torch.zeros(0), requires_grad=False)
        self._session: Any = None
        self._session_key: Optional[tuple] = None
        _NETWORKS.add(self)

    @classmethod
    def from_config(cls, config: PretrainedConfig) -> "OnnxNetwork":
        """An empty network; ``load_state_dict`` gives it its graph."""
        return cls(config)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Take the graph's bytes whatever their length (torch would insist on the empty buffer's)."""
        if "onnx_model" not in state_dict:
            raise ValueError("This quantized encoder's saved state holds no ONNX graph; quantize the pipeline again.")
        self.onnx_model = state_dict["onnx_model"].detach().to("cpu", torch.uint8).clone()
        self._session = None
        return torch.nn.modules.module._IncompatibleKeys([], [])

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        **unused: Any,
    ) -> BaseModelOutput:
        if output_hidden_states:
            raise ValueError(
                "A quantized encoder gives only its last hidden states; a head that reads every layer "
                "(scalar mix, layer select) needs the fp32 pipeline."
            )
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        session = self.session()
        feeds = {}
        for node in session.get_inputs():
            value = inputs.get(node.name)
            if value is None:
                value = torch.zeros_like(input_ids) if node.name == "token_type_ids" else torch.ones_like(input_ids)
            feeds[node.name] = value.detach().cpu().numpy().astype("int64")
        (hidden,) = session.run(None, feeds)
        return BaseModelOutput(last_hidden_state=torch.from_numpy(numpy.ascontiguousarray(hidden)))

    def session(self) -> Any:
        """The ONNX Runtime session of this process, on torch's thread count.

        A session does not survive a fork (``nlp.pipe(n_process=...)``): each
        process makes its own.
        """
        import onnxruntime

        key = (os.getpid(), torch.get_num_threads())
        if self._session is None or self._session_key != key:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = key[1]
            options.inter_op_num_threads = 1
            graph = self.onnx_model.numpy().tobytes()
            self._session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
            self._session_key = key
        return self._session

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_session"], state["_session_key"] = None, None
        return state


def export_int8(transformer: torch.nn.Module, *, use_token_types: bool, quantize_embeddings: bool = False) -> bytes:
    """Export a Hugging Face encoder to ONNX and quantize its linear layers to int8.

    use_token_types (bool): whether the graph takes ``token_type_ids``.
    quantize_embeddings (bool): also store the embedding tables as int8
        (smaller on disk; off by default: they are lookups, not matrix products).
    RETURNS (bytes): the quantized ONNX graph.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [name for name in INPUT_NAMES if use_token_types or name != "token_type_ids"]
    wrapped = _LastHiddenState(transformer).eval()
    example = tuple(torch.ones((2, 16), dtype=torch.int64) for _ in names)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=transformer.config.max_position_embeddings)
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        program = torch.onnx.export(
            wrapped, example, input_names=names, output_names=["last_hidden_state"],
            dynamic_shapes=tuple({0: batch, 1: length} for _ in names), dynamo=True, verbose=False,
        )
        program.save(str(fp32), external_data=False)
        ops = ["MatMul", "Gather"] if quantize_embeddings else ["MatMul"]
        quantize_dynamic(
            fp32, int8, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=ops,
            extra_options={"MatMulConstBOnly": True},
        )
        return int8.read_bytes()


class _LastHiddenState(torch.nn.Module):
    """The encoder as a function of its inputs to its last hidden states."""

    def __init__(self, transformer: torch.nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.transformer(**kwargs, return_dict=True).last_hidden_state
