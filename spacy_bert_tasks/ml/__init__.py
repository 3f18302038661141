"""Thinc layers and registered architectures the components are built from."""
from . import encoder, heads, layer_mix, listener, ner, pooling, qa, textcat  # noqa: F401
