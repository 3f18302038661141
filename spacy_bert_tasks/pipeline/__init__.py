"""spaCy components: one module per component."""
from . import ner  # noqa: F401
from . import qa  # noqa: F401
from . import textcat  # noqa: F401
