"""The start of an MLM run: the encoder (adapted, or fresh from ``init_encoder``),
its tokenizer (optionally extended with domain words) and the tokenised text split."""
import dataclasses
import logging
from pathlib import Path
from typing import Any, List

import numpy as np
import torch

from transformers import AutoTokenizer

from ..encoder_folder import check_encoder_folder
from ..ml.encoder import max_positions
from .init_encoder import extend_wordpiece_vocabulary, find_domain_words, init_encoder
from .model import extend_embeddings, load_pretraining_model
from .settings import PretrainSettings
from .text import TokenizedText, load_tokenized, read_documents, split_documents
from .trainer import INIT_DIR

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RunStart:
    """What the run starts from: the encoder, its tokenizer and model, and the text split."""

    encoder: Path
    tokenizer: Any
    model: torch.nn.Module
    loading: Any
    text: TokenizedText
    train_docs: np.ndarray
    held_out: TokenizedText
    eval_docs: np.ndarray
    added_words: List[str]


def prepare_start(s: PretrainSettings, texts: List[Path], eval_texts: List[Path], checkpoint_dir: Path, cache_dir: Path,
             *, is_main: bool) -> RunStart:
    """The starting encoder and model, the (extended) tokenizer, and the tokenised text split."""
    n_docs = [len(read_documents(path, s.layout)) for path in texts]  # clear errors for bad files, early
    encoder = s.encoder
    if s.size is not None:
        encoder = _fresh_encoder(
            texts, checkpoint_dir / INIT_DIR, size=s.size, vocab_size=s.vocab_size, lowercase=s.lowercase,
            max_positions=max(512, s.max_seq_length), seed=s.seed, log=is_main,
        )
    encoder = check_encoder_folder(encoder)
    tokenizer = AutoTokenizer.from_pretrained(encoder, local_files_only=True)
    model, loading = load_pretraining_model(encoder, nsp=s.nsp, seed=s.seed)
    if is_main:
        loading.log()
    _check_length(s.max_seq_length, model.config, encoder)
    # Held-out text: whole documents for NSP (its chunks need them), else sequences
    # (see _make_datasets), so that one long line still gives held-out text.
    train_docs, eval_docs = (
        split_documents(sum(n_docs), s.eval_fraction, s.seed) if s.nsp and not eval_texts
        else (np.arange(sum(n_docs)), np.zeros(0, np.int64))
    )
    added_words: List[str] = []
    if s.extend_vocab:
        tokenizer, added_words = _extend_vocabulary(
            model, tokenizer, texts, train_docs, layout=s.layout, max_words=s.extend_vocab,
            min_count=s.extend_vocab_min_count, min_pieces=s.extend_vocab_min_pieces, log=is_main,
        )
    text = TokenizedText.concat([load_tokenized(p, tokenizer, layout=s.layout, cache_dir=cache_dir) for p in texts])
    held_out = text
    if eval_texts:
        held_out = TokenizedText.concat(
            [load_tokenized(p, tokenizer, layout=s.layout, cache_dir=cache_dir) for p in eval_texts]
        )
        eval_docs = np.arange(held_out.n_docs)
    return RunStart(encoder, tokenizer, model, loading, text, train_docs, held_out, eval_docs, added_words)


def _fresh_encoder(texts, init_dir: Path, *, size: str, vocab_size: int, lowercase: bool,
                   max_positions: int, seed: int, log: bool) -> Path:
    """A fresh BERT from ``init_encoder``, made once per run and reused on resume."""
    if not (init_dir / "config.json").exists():
        if log:
            logger.info("Training a %d-piece vocabulary on %d file(s) for a fresh %s BERT", vocab_size, len(texts), size)
        init_encoder(texts, init_dir, size=size, vocab_size=vocab_size, lowercase=lowercase,
                     max_positions=max_positions, seed=seed)
    return init_dir


def _check_length(max_seq_length: int, config, encoder: Path) -> None:
    """Refuse sequences longer than the encoder's position table."""
    limit = max_positions(config)
    if limit is not None and max_seq_length > limit:
        raise ValueError(
            f"--max-seq-length {max_seq_length} is longer than the {limit} positions of the encoder in "
            f"{encoder}. Pass --max-seq-length {limit} or less."
        )


def _extend_vocabulary(model, tokenizer, texts, train_docs, *, layout, max_words, min_count, min_pieces, log):
    """Add frequent, much-split words of the training documents to tokenizer and model."""
    keep = set(train_docs.tolist())
    lines, offset = [], 0
    for path in texts:
        docs = read_documents(path, layout)
        lines.extend(line for i, doc in enumerate(docs) if offset + i in keep for line in doc)
        offset += len(docs)
    words = find_domain_words(lines, tokenizer, max_words=max_words, min_count=min_count, min_pieces=min_pieces)
    if not words:
        if log:
            logger.info("No word occurs %d times and splits into %d pieces; the vocabulary stays as it is", min_count, min_pieces)
        return tokenizer, []
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"]
    extended = extend_wordpiece_vocabulary(tokenizer, words)
    extend_embeddings(model, pieces)
    if log:
        logger.info(
            "Added %d domain words to the vocabulary (%d -> %d), each started as the mean of its pieces: %s",
            len(words), len(tokenizer), len(extended), ", ".join(words[:20]) + (" ..." if len(words) > 20 else ""),
        )
    return extended, words
