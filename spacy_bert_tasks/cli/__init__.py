"""The command line: ``spacy-bert-tasks`` or ``python -m spacy_bert_tasks``.

Each command parses its options, calls one function of the package and prints
what it did; the work itself lives in the package's rooms. One module per group
of commands: ``encoders``, ``corpora``, ``evaluate``, ``sweep``, ``analyze``,
``pretrain``, ``compress``; ``app`` holds the typer apps and the shared parsers.
"""
# Imported in the order the commands are listed in --help.
from . import encoders, corpora, evaluate, sweep, analyze, pretrain, compress  # noqa: F401,I001  (register the commands)
from .app import app

__all__ = ["app"]
