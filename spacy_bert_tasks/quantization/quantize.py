"""``spacy-bert-tasks quantize``: the same pipeline with an int8 encoder.

Each ``transformer`` component's network is exported to ONNX and its linear
layers quantized to int8 with ONNX Runtime (``network.export_int8``); the
component's architecture becomes ``spacy_bert_tasks.QuantizedEncoder.v1``,
which restores that network from the pipeline's own files, so ``spacy.load``
reads the quantized pipeline in any process. The heads are untouched.
"""
import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Union

import spacy
from spacy.language import Language
from spacy.util import registry
from spacy_transformers import Transformer
from spacy_transformers.data_classes import HFObjects
from thinc.api import Model

from ..ml.encoder import EncoderModel, EncoderSettings, set_network, takes_encoder_settings
from .network import OnnxNetwork, export_int8

ARCHITECTURE = "spacy_bert_tasks.QuantizedEncoder.v1"


@registry.architectures(ARCHITECTURE)
@takes_encoder_settings(frozen=True)
def build_quantized_encoder(name: str, *, settings: EncoderSettings) -> Model:
    """The encoder of a quantized pipeline: ``spacy_bert_tasks.Encoder.v1`` run by ONNX Runtime in int8.

    Its network is restored from the pipeline's files, never built from
    ``name``; make one with ``spacy-bert-tasks quantize``. It cannot be trained.
    """
    return QuantizedEncoderModel(name, dataclasses.replace(settings, frozen=True), init=_init, network_cls=OnnxNetwork)


class QuantizedEncoderModel(EncoderModel):
    """``EncoderModel`` whose network is an ``OnnxNetwork`` (and is loaded as one)."""


def _init(model: QuantizedEncoderModel, X: Any = None, Y: Any = None) -> None:
    if not model.attrs["has_transformer"]:
        raise ValueError(
            f"A {ARCHITECTURE} encoder holds its int8 network in the pipeline's files and cannot be "
            "initialised from a name. Train with spacy_bert_tasks.Encoder.v1, then run `spacy-bert-tasks quantize`."
        )


def quantize(
    model_path: Union[str, Path], output: Union[str, Path], *, quantize_embeddings: bool = False
) -> Dict[str, Any]:
    """Quantize the encoders of the pipeline at ``model_path`` and write it to ``output``.

    quantize_embeddings (bool): store the embedding tables as int8 too.
    RETURNS (Dict[str, Any]): what was done, per encoder component (also in the meta).
    """
    nlp = spacy.load(model_path)
    done = quantize_pipeline(nlp, quantize_embeddings=quantize_embeddings)
    nlp.meta["name"] = f"{nlp.meta.get('name', 'pipeline')}_int8"
    nlp.meta["quantization"] = done
    nlp.to_disk(output)
    return done


def quantize_pipeline(nlp: Language, *, quantize_embeddings: bool = False) -> Dict[str, Any]:
    """Swap each ``transformer`` component's network for its int8 ONNX version, in place."""
    done: Dict[str, Any] = {}
    for name, pipe in nlp.pipeline:
        if not isinstance(pipe, Transformer) or not isinstance(pipe.model, EncoderModel):
            continue
        if isinstance(pipe.model, QuantizedEncoderModel):
            raise ValueError(f"The component '{name}' is quantized already.")
        if pipe.model.attrs.get("output_hidden_states"):
            raise ValueError(f"A head reads every layer of '{name}'; a quantized encoder gives only the last one.")
        start = time.perf_counter()
        encoder = pipe.model
        use_types = "token_type_ids" in encoder.tokenizer.model_input_names
        int8 = export_int8(encoder.transformer, use_token_types=use_types, quantize_embeddings=quantize_embeddings)
        quantized = QuantizedEncoderModel(encoder.attrs["name"], dataclasses.replace(encoder.settings(), frozen=True),
                                          init=_init, network_cls=OnnxNetwork)
        quantized.attrs["doc_inputs"] = encoder.attrs["doc_inputs"]
        shim = encoder.layers[0].shims[0]
        set_network(quantized, HFObjects(encoder.tokenizer, OnnxNetwork(encoder.transformer.config, int8),
                                         shim._hfmodel.vocab_file_contents))
        pipe.model = quantized
        nlp.get_pipe_config(name)["model"]["@architectures"] = ARCHITECTURE
        nlp.get_pipe_config(name)["model"]["frozen"] = True
        done[name] = {"runtime": "onnxruntime", "weights": "int8 per channel", "embeddings_int8": quantize_embeddings,
                      "seconds": round(time.perf_counter() - start, 1)}
    if not done:
        raise ValueError("The pipeline has no spacy_bert_tasks `transformer` component to quantize.")
    own = _own_encoders(nlp)
    if own:
        warnings.warn(f"The heads {', '.join(own)} hold encoders of their own; those stay fp32.")
    return done


def _own_encoders(nlp: Language) -> List[str]:
    return [
        name for name, pipe in nlp.pipeline
        if not isinstance(pipe, Transformer) and isinstance(getattr(pipe, "model", None), Model)
        and any(isinstance(node, EncoderModel) for node in pipe.model.walk())
    ]
