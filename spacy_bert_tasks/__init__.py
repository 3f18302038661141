"""Fine-tune BERT-family encoders inside spaCy.

Importing the package registers its components, architectures, layers,
readers and scorers, and installs the Doc extensions they use. spaCy finds
all of them through entry points, so ``spacy.load`` works without an import.
"""
from .about import __version__
from .extensions import install_extensions

install_extensions()

from . import ml  # noqa: E402,F401  (registers architectures and layers)
from . import pipeline  # noqa: E402,F401  (registers factories and scorers)
from . import corpus  # noqa: E402,F401  (registers readers)
from . import quantization  # noqa: E402,F401  (registers the quantized encoder)
from .pipeline.qa import answer_questions  # noqa: E402

__all__ = ["__version__", "install_extensions", "answer_questions"]
