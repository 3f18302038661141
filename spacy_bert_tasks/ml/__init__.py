"""Thinc layers and registered architectures the components are built from."""
from . import encoder, listener, ner, pooling  # noqa: F401
