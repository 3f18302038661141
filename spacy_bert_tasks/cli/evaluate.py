"""Commands that score pipelines: ``evaluate`` and ``summarize``."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from .app import app


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Pipeline folder or installed package name."),
    data_paths: List[Path] = typer.Argument(..., metavar="DATA...", help="Gold .spacy corpora (or folders of them); several are scored in one run, the pipeline loaded once.", exists=True),
    outputs: Optional[List[Path]] = typer.Option(None, "--output", "-o", help="Write every score here as JSON; give one per DATA, in order."),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to run on; -1 for CPU."),
    limit: int = typer.Option(0, "--limit", help="Score at most this many docs (0: all)."),
    gold_preproc: bool = typer.Option(False, "--gold-preproc", "-G", help="Keep the corpus's own tokens, as CoNLL F1 is reported, instead of re-tokenising each text (as `spacy evaluate --gold-preproc`)."),
) -> None:
    """Evaluate a pipeline, keeping the pair and question inputs.

    Like `spacy evaluate` (same tables, same JSON), but DATA is read with
    spacy_bert_tasks.Corpus.v1, so `doc._.text_pair` and `doc._.question` reach
    the pipeline: use it for sentence-pair and QA models. Several DATA files
    (each with its own --output) are scored with one load of the pipeline.
    """
    from ..evaluation import evaluate, load_for_evaluation

    outputs = list(outputs or [])
    if outputs and len(outputs) != len(data_paths):
        msg.fail(f"Got {len(data_paths)} DATA and {len(outputs)} --output", "Give one --output per DATA, in order, or none.", exits=1)
    try:
        nlp = load_for_evaluation(model, gpu_id=gpu_id, silent=False)
        for i, data_path in enumerate(data_paths):
            evaluate(model, data_path, outputs[i] if outputs else None, gpu_id=gpu_id, limit=limit, gold_preproc=gold_preproc, silent=False, nlp=nlp)
    except (ValueError, FileNotFoundError, OSError) as err:
        msg.fail(f"Could not evaluate {model}", str(err), exits=1)


@app.command("summarize")
def summarize_cli(
    metrics: List[Path] = typer.Argument(..., help="Metrics JSON files written by `spacy evaluate`.", exists=True, dir_okay=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the table as Markdown here."),
) -> None:
    """Print a table of the headline metrics of each evaluated pipeline.

    Reads METRICS (one row group per file, named by the file's stem); writes
    OUTPUT as a Markdown table when given.
    """
    from ..project import summarize_metrics

    try:
        rows = summarize_metrics(metrics)
    except ValueError as err:
        msg.fail("Could not read the metrics", str(err), exits=1)
    table = [(run, f"{label} ({key})", f"{value:.3f}") for run, key, label, value in rows]
    header = ("run", "metric", "value")
    msg.divider("Metrics")
    msg.table(table, header=header, divider=True, aligns=("l", "l", "r"))
    if output is not None:
        lines = ["| run | metric | value |", "|---|---|---:|"] + [f"| {a} | {b} | {c} |" for a, b, c in table]
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("\n".join(lines) + "\n", encoding="utf8")
        msg.good(f"Wrote {output}")
