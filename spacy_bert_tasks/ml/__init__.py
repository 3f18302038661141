"""Thinc layers and registered architectures the components are built from."""
from . import encoder, layer_mix, listener, ner, pooling  # noqa: F401
