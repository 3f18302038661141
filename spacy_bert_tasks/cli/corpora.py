"""Commands on corpora: ``convert``, ``merge-corpora`` and ``split-squad``."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ..corpus.converters import formats_epilog, formats_help
from .app import app, parse_pairs


@app.command("convert", epilog=formats_epilog())
def convert_cli(
    paths: List[Path] = typer.Argument(..., metavar="INPUT OUTPUT [INPUT OUTPUT]...", help="A raw corpus file and the DocBin (.spacy) to write; give several pairs to convert several files in one run."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=f"{formats_help()}, for every INPUT; inferred for each file from its extension and content when omitted."),
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
    from ..corpus import ConversionError, convert_file, write_docbin

    if len(paths) % 2:
        msg.fail("Give INPUT OUTPUT pairs", f"Got {len(paths)} paths: '{paths[-1]}' has no OUTPUT.", exits=1)
    pairs = list(zip(paths[::2], paths[1::2]))
    names = dict(parse_pairs(label_names.split(","), what="--label-names", form="OLD=NEW", example="'0=negative,1=positive'")) if label_names else None
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
    from ..project import merge_corpora

    pairs = [(name, Path(path)) for name, path in parse_pairs(inputs, what="an input", form="NAME=PATH", example="ner=corpus/conll/train.spacy")]
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
    from ..project import split_squad

    try:
        n_train, n_dev = split_squad(input_path, train_output, dev_output, dev_articles=dev_articles)
    except ValueError as err:
        msg.fail("Could not split the SQuAD file", str(err), exits=1)
    msg.good(f"Wrote {n_train} articles to {train_output} and {n_dev} to {dev_output}")
