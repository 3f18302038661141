"""spaCy components: one module per component."""
from . import ner  # noqa: F401
