"""Quantization: the pipeline with an int8 encoder run by ONNX Runtime (registers QuantizedEncoder.v1)."""
from .network import OnnxNetwork, export_int8
from .quantize import ARCHITECTURE, QuantizedEncoderModel, build_quantized_encoder, quantize, quantize_pipeline

__all__ = ["ARCHITECTURE", "OnnxNetwork", "QuantizedEncoderModel", "build_quantized_encoder", "export_int8", "quantize", "quantize_pipeline"]
