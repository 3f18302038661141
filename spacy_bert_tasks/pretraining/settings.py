"""The settings of an MLM run, as one frozen dataclass.

``pretrain(texts, output_dir, settings)`` reads them; the ``pretrain`` command
fills them from its options. ``check`` refuses bad combinations with an error
that says what to pass instead.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

PathLike = Union[str, Path]

OBJECTIVE_NAMES = ("mlm", "wwm", "span")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class PretrainSettings:
    """What to start from, what to predict, and how Trainer trains.

    encoder (Optional[Path]): a local encoder folder to adapt. Give this or ``size``.
    size (Optional[str]): tiny, mini, small or base: a fresh BERT whose WordPiece
        vocabulary (``vocab_size``, ``lowercase``) is trained on the texts.
    objective (str): "mlm" (pieces), "wwm" (whole words) or "span" (SpanBERT spans).
    nsp (bool): add next-sentence prediction (BERT encoders).
    max_steps (Optional[int]): optimiser steps; None trains for ``epochs``.
    resume (bool): continue from the last checkpoint in ``checkpoint_dir``.
    overwrite (bool): delete earlier checkpoints and start again.
    max_seq_length (int): pieces per sequence, [CLS] and [SEP] included.
    line_by_line (bool): one sequence per line instead of packing documents.
    eval_fraction (float): fraction of documents held out, if ``eval_texts`` is not given.
    eval_texts (Optional[Sequence[Path]]): held-out text files.
    extend_vocab (int): add up to this many frequent domain words that the tokenizer
        splits into ``extend_vocab_min_pieces`` or more pieces (WordPiece only).
    with_head (bool): write the MLM model rather than the bare encoder.
    checkpoint_dir (Optional[Path]): Trainer's folder; default ``output_dir/checkpoints``.
    cache_dir (Optional[Path]): tokenised texts; default ``checkpoint_dir/cache``.
    The other settings are Trainer's (``precision``: auto picks bf16 or fp16 on a GPU
    that has it, fp32 on CPU) and the masking collators'.
    """

    encoder: Optional[PathLike] = None
    size: Optional[str] = None
    objective: str = "mlm"
    nsp: bool = False
    max_steps: Optional[int] = None
    epochs: float = 1.0
    resume: bool = False
    overwrite: bool = False
    max_seq_length: int = 128
    line_by_line: bool = False
    layout: str = "auto"
    eval_fraction: float = 0.05
    eval_texts: Optional[Sequence[PathLike]] = None
    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    max_predictions_per_seq: Optional[int] = None
    span_p: float = 0.2
    max_span_length: int = 10
    extend_vocab: int = 0
    extend_vocab_min_count: int = 20
    extend_vocab_min_pieces: int = 3
    vocab_size: int = 8000
    lowercase: bool = False
    batch_size: int = 32
    eval_batch_size: Optional[int] = None
    grad_accum: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    scheduler: str = "linear"
    precision: str = "auto"
    logging_steps: int = 50
    eval_steps: Optional[int] = None
    save_steps: int = 500
    save_total_limit: Optional[int] = 2
    seed: int = 0
    num_workers: int = 0
    with_head: bool = False
    checkpoint_dir: Optional[PathLike] = None
    cache_dir: Optional[PathLike] = None
    report_to: str = "none"
    show_progress: bool = True

    def check(self, sizes: Sequence[str], layouts: Sequence[str]) -> None:
        """Refuse settings that cannot run: ``sizes`` and ``layouts`` are the known ones."""
        if (self.encoder is None) == (self.size is None):
            raise ValueError("Give either an encoder folder to adapt (--encoder) or a size to start from scratch (--size).")
        choices = {"encoder size": (self.size, sizes), "objective": (self.objective, OBJECTIVE_NAMES),
                   "precision": (self.precision, PRECISIONS), "text layout": (self.layout, layouts)}
        for what, (value, known) in choices.items():
            if value is not None and value not in known:
                raise ValueError(f"Unknown {what} '{value}'. Choose one of: {', '.join(known)}.")
