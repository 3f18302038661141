"""What ``spacy train`` must record for the analyses.

- ``spacy_bert_tasks.save_weights.v1`` (``[training.before_update]``): saves the
  pipeline's weights every ``every`` steps as ``step-NNNNNN.safetensors``. It runs
  before each update, so ``step-000000`` holds the weights right after
  ``nlp.initialize``: θ0 of the encoder AND of the freshly initialised heads.
- ``spacy_bert_tasks.TrainingLog.v1`` (``[training.logger]``): spaCy's console
  table, plus one JSON line per evaluation (step, losses, score, scores).
- ``instrument_config``: a copy of a training config with both set.
(The from-scratch baseline, an encoder folder with another's config and tokenizer
and fresh weights, is ``pretraining.init_encoder.reinit_encoder``.)
"""
import sys
from pathlib import Path
from typing import IO, Any, Callable, Dict, Optional, Tuple, Union

import srsly
from spacy.language import Language
from spacy.util import load_config, registry

from .params import get_weights, save_weights

WEIGHTS_CALLBACK = "spacy_bert_tasks.save_weights.v1"
LOGGER = "spacy_bert_tasks.TrainingLog.v1"


@registry.callbacks(WEIGHTS_CALLBACK)
def configure_save_weights(output_dir: str, every: int = 100) -> Callable[[Language, Dict[str, Any]], None]:
    """A ``before_update`` callback that saves the weights every ``every`` steps.

    output_dir (str): folder for ``step-NNNNNN.safetensors`` files.
    every (int): steps between two saves; step 0 (before any update) is always saved.
    """
    if every < 1:
        raise ValueError(f"save_weights: `every` must be at least 1, got {every}.")
    folder = Path(output_dir)

    def before_update(nlp: Language, args: Dict[str, Any]) -> None:
        step = int(args["step"])
        if step % every == 0:
            save_weights(get_weights(nlp), folder / f"step-{step:06d}.safetensors")

    return before_update


@registry.loggers(LOGGER)
def configure_training_log(path: str, console: bool = True) -> Callable:
    """spaCy's console logger plus a JSON-lines file with one row per evaluation.

    path (str): the ``.jsonl`` file to write (overwritten when training starts).
    console (bool): also print spaCy's usual table.
    """
    console_logger = registry.loggers.get("spacy.ConsoleLogger.v3")(progress_bar=None, console_output=console)

    def setup(nlp: Language, stdout: IO = sys.stdout, stderr: IO = sys.stderr) -> Tuple[Callable, Callable]:
        log_step, finalize = console_logger(nlp, stdout, stderr)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("", encoding="utf8")

        def log(info: Optional[Dict[str, Any]]) -> None:
            log_step(info)
            if info is None:
                return
            row = {
                "step": info["step"],
                "epoch": info["epoch"],
                "seconds": info.get("seconds"),
                "losses": {k: float(v) for k, v in info["losses"].items()},
                "score": info["score"],
                "scores": {k: v for k, v in (info.get("other_scores") or {}).items() if isinstance(v, (int, float))},
            }
            with out.open("a", encoding="utf8") as file_:
                file_.write(srsly.json_dumps(row) + "\n")

        return log, finalize

    return setup


def read_training_log(path: Union[str, Path]) -> list:
    """The rows a ``TrainingLog.v1`` logger wrote."""
    return list(srsly.read_jsonl(path))


def instrument_config(
    config_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    weights_dir: Union[str, Path],
    log_path: Union[str, Path],
    every: int = 100,
) -> Path:
    """Write a copy of a training config that saves weights and logs for the analyses.

    config_path (Union[str, Path]): the training config (e.g. ``configs/ner.cfg``).
    output_path (Union[str, Path]): where to write the new config.
    weights_dir (Union[str, Path]): folder for the weight checkpoints.
    log_path (Union[str, Path]): the JSON-lines training log.
    every (int): steps between checkpoints.
    """
    config = load_config(config_path, interpolate=False)
    if "training" not in config:
        raise ValueError(f"{config_path} has no [training] section; pass a spaCy training config.")
    config["training"]["before_update"] = {"@callbacks": WEIGHTS_CALLBACK, "output_dir": str(weights_dir), "every": every}
    config["training"]["logger"] = {"@loggers": LOGGER, "path": str(log_path), "console": True}
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    config.to_disk(output_path)
    return output_path
