"""Thinc layers and registered architectures the components are built from."""
from . import encoder, pooling  # noqa: F401
