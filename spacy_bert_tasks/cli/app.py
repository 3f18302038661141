"""The typer apps and the small parsers the commands share."""
import json
from typing import Any, Dict, List, Tuple

import typer
from wasabi import msg

app = typer.Typer(
    name="spacy-bert-tasks",
    help="Fine-tune BERT-family encoders inside spaCy: convert corpora, make and pretrain encoders, analyse.",
    no_args_is_help=True,
    add_completion=False,
)

analyze_app = typer.Typer(
    help="What fine-tuning did to the weights: drift per layer, loss interpolation, landscapes, trajectories.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Fine-tune BERT-family encoders inside spaCy."""


def parse_pairs(items: List[str], *, what: str, form: str, example: str) -> List[Tuple[str, str]]:
    """``KEY=VALUE`` items as pairs; exits with a message naming the bad item.

    what (str): where the items come from, for the message (e.g. "--label-names").
    form (str): the expected shape, e.g. "NAME=PATH"; example (str): a well-formed item.
    """
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            msg.fail(f"Could not read {what} '{item}'", f"'{item}' is not {form}; write e.g. {example}.", exits=1)
        pairs.append((key.strip(), value.strip()))
    return pairs


def parse_overrides(args: List[str]) -> Dict[str, Any]:
    """Config overrides given as ``--section.key value`` or ``--section.key=value``, as ``spacy train`` takes them.

    Values are read as JSON where they parse (numbers, true/false, lists), else kept as strings.
    """
    overrides: Dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            msg.fail(f"Cannot read the override '{arg}'", "Write config overrides as --section.key value.", exits=1)
        key, sep, value = arg[2:].partition("=")
        if not sep:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                msg.fail(f"The override --{key} has no value", f"Write it as --{key} VALUE.", exits=1)
            value = args[i + 1]
            i += 1
        try:
            overrides[key.replace("-", "_")] = json.loads(value)
        except ValueError:
            overrides[key.replace("-", "_")] = value
        i += 1
    return overrides
