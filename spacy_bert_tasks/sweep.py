"""Learning-rate sweep: train one config at several learning rates, dev scores side by side.

    spacy-bert-tasks sweep configs/textcat.cfg training/sweep-textcat \\
        --learn-rates 1e-4,3e-4,1e-3 --metric cats_score --table metrics/sweep-textcat.md \\
        --paths.train corpus/sst2/train.spacy --paths.dev corpus/sst2/dev.spacy

Each run goes to ``<output>/lr-<rate>`` (spaCy's ``model-best`` and ``model-last``);
the table reads the dev scores spaCy writes into their ``meta.json``. Other
``--section.key value`` arguments are config overrides, as for ``spacy train``.
A run whose folder already has ``model-last`` is not trained again. The command
lives with the others in ``cli/sweep.py``.
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import srsly
from spacy.util import load_config


def learn_rate_key(config_path: Path) -> str:
    """The override that sets the learning rate: the schedule's ``initial_rate``, or the plain value."""
    optimizer = load_config(config_path, interpolate=False)["training"]["optimizer"]
    rate = optimizer.get("learn_rate")
    if isinstance(rate, dict):
        if "initial_rate" not in rate:
            raise ValueError(
                f"{config_path}: [training.optimizer.learn_rate] is a schedule without `initial_rate` "
                f"({rate.get('@schedules')}); pass --learn-rate-key with the setting to sweep."
            )
        return "training.optimizer.learn_rate.initial_rate"
    return "training.optimizer.learn_rate"


def run_sweep(
    config_path: Path,
    output: Path,
    learn_rates: Sequence[float],
    overrides: Dict[str, object],
    *,
    key: Optional[str] = None,
    gpu_id: int = -1,
) -> List[Path]:
    """Train once per learning rate; RETURNS the run folders, in the order of ``learn_rates``."""
    from spacy.cli.train import train

    key = key or learn_rate_key(config_path)
    runs = []
    for rate in learn_rates:
        run = output / f"lr-{rate:g}"
        if not (run / "model-last").exists():
            train(config_path, run, use_gpu=gpu_id, overrides={**overrides, key: rate})
        runs.append(run)
    return runs


def sweep_table(runs: Sequence[Path], metric: str) -> str:
    """A Markdown table: learning rate, best and last dev ``metric`` per run."""
    lines = [f"| learning rate | best dev {metric} | last dev {metric} |", "|---:|---:|---:|"]
    for run in runs:
        cells = []
        for name in ("model-best", "model-last"):
            meta = run / name / "meta.json"
            score = srsly.read_json(meta).get("performance", {}).get(metric) if meta.exists() else None
            cells.append("n/a" if score is None else f"{score:.4f}")
        lines.append(f"| {run.name.removeprefix('lr-')} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"
