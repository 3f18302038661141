"""The ``sweep`` command: one config trained at several learning rates, dev scores side by side."""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from .app import app, parse_overrides


@app.command("sweep", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sweep_cli(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="The training config (.cfg).", exists=True, dir_okay=False),
    output: Path = typer.Argument(..., help="Folder for the runs, one lr-<rate> folder each."),
    learn_rates: str = typer.Option(..., "--learn-rates", help="Comma-separated learning rates, e.g. 1e-4,3e-4,1e-3."),
    metric: str = typer.Option(..., "--metric", help="The dev score to compare, e.g. cats_score or ents_f."),
    table: Optional[Path] = typer.Option(None, "--table", help="Also write the Markdown table here."),
    learn_rate_key: Optional[str] = typer.Option(None, "--learn-rate-key", help="The config setting to sweep (found from the config when omitted)."),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to train on; -1 for CPU."),
) -> None:
    """Train CONFIG once per learning rate and put the dev scores side by side.

    Other `--section.key value` arguments are config overrides, as for `spacy train`.
    Writes OUTPUT/lr-<rate>/ (spaCy's model-best and model-last; a run that has
    model-last already is not trained again) and prints the table (Markdown), also
    written to --table when given.
    """
    from ..sweep import run_sweep, sweep_table

    try:
        rates = [float(rate) for rate in learn_rates.split(",") if rate.strip()]
    except ValueError:
        msg.fail(f"Cannot read --learn-rates '{learn_rates}'", "Give numbers separated by commas, e.g. 1e-4,3e-4.", exits=1)
    try:
        runs = run_sweep(config, output, rates, parse_overrides(ctx.args), key=learn_rate_key, gpu_id=gpu_id)
    except ValueError as err:
        msg.fail("Could not run the sweep", str(err), exits=1)
    text = sweep_table(runs, metric)
    if table is not None:
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(text, encoding="utf8")
    typer.echo(text)
