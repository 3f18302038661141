"""Raw text for MLM pretraining: read documents, tokenise once (cached).

A text file holds either one document per line, or paragraphs, one per line, with a
blank line between documents (the layout BERT's data builders expect). Each file is
tokenised once into flat arrays (pieces, word starts, sentence/line/document offsets)
and cached on disk under a key made from the file's contents, the tokenizer and the
settings, so a second or resumed run reads the cache instead.

``sequences.py`` cuts the arrays into examples.
"""
import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

logger = logging.getLogger(__name__)

LAYOUTS = ("auto", "lines", "paragraphs")
# Bump when the cached arrays change meaning.
CACHE_FORMAT = "1"
# A sentence ends at . ! or ? followed by space and an upper-case letter, digit or
# opening bracket/quote. Good enough to draw NSP segments from; not a linguistic parser.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def read_documents(path: Union[str, Path], layout: str = "auto") -> List[List[str]]:
    """Read a text file as documents, each a list of non-blank lines.

    path (Path): a UTF-8 text file.
    layout (str): "lines" (one document per line), "paragraphs" (a blank line
        between documents) or "auto" ("paragraphs" if the file has a blank line
        between two text lines, else "lines").
    RETURNS (List[List[str]]): the documents.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown text layout '{layout}'. Choose one of: {', '.join(LAYOUTS)}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Text file not found: {path}. Pass an existing plain-text file.")
    if not path.is_file():
        raise ValueError(f"{path} is not a file. Pass plain-text files, one document or paragraph per line.")
    try:
        raw = path.read_text(encoding="utf8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start}). Convert it to UTF-8 first.") from None
    except OSError as err:
        raise ValueError(f"Could not read {path}: {err.strerror}. Check the file's permissions.") from None
    lines = [line.strip() for line in raw.splitlines()]
    if not any(lines):
        raise ValueError(f"{path} holds no text. Pass a file with at least one non-blank line.")
    if layout == "auto":
        text_seen = blank_after_text = False
        layout = "lines"
        for line in lines:
            if line and blank_after_text:
                layout = "paragraphs"
                break
            text_seen = text_seen or bool(line)
            blank_after_text = text_seen and not line
    if layout == "lines":
        return [[line] for line in lines if line]
    docs: List[List[str]] = [[]]
    for line in lines:
        if line:
            docs[-1].append(line)
        elif docs[-1]:
            docs.append([])
    return [doc for doc in docs if doc]


def split_sentences(line: str) -> List[Tuple[int, int]]:
    """Character spans of the sentences in a line (see ``_SENTENCE_END``)."""
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(line):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(line)))
    return spans


@dataclass
class TokenizedText:
    """Documents as word pieces in flat arrays.

    input_ids (np.ndarray): (n_pieces,) piece ids, no special tokens.
    word_start (np.ndarray): (n_pieces,) True where a piece begins a word, taken from
        the tokenizer's word ids (so it holds for WordPiece and byte-level BPE alike).
    sent_bounds (np.ndarray): (n_sents + 1,) piece offsets of the sentences.
    line_bounds (np.ndarray): (n_lines + 1,) sentence offsets of the lines.
    doc_bounds (np.ndarray): (n_docs + 1,) line offsets of the documents.
    """

    input_ids: np.ndarray
    word_start: np.ndarray
    sent_bounds: np.ndarray
    line_bounds: np.ndarray
    doc_bounds: np.ndarray

    @property
    def n_docs(self) -> int:
        return len(self.doc_bounds) - 1

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    def doc_token_range(self, doc: int) -> Tuple[int, int]:
        first_line, end_line = self.doc_bounds[doc], self.doc_bounds[doc + 1]
        return (
            int(self.sent_bounds[self.line_bounds[first_line]]),
            int(self.sent_bounds[self.line_bounds[end_line]]),
        )

    def doc_sentences(self, doc: int) -> Tuple[int, int]:
        """The range of sentence indices of a document."""
        return (
            int(self.line_bounds[self.doc_bounds[doc]]),
            int(self.line_bounds[self.doc_bounds[doc + 1]]),
        )

    def line_token_ranges(self, docs: Iterable[int]) -> List[Tuple[int, int]]:
        ranges = []
        for doc in docs:
            for line in range(self.doc_bounds[doc], self.doc_bounds[doc + 1]):
                start = self.sent_bounds[self.line_bounds[line]]
                end = self.sent_bounds[self.line_bounds[line + 1]]
                ranges.append((int(start), int(end)))
        return ranges

    @classmethod
    def concat(cls, texts: Sequence["TokenizedText"]) -> "TokenizedText":
        """Join the documents of several texts, in order."""
        if len(texts) == 1:
            return texts[0]
        sent_bounds, line_bounds, doc_bounds = [np.zeros(1, np.int64)] * 3
        for text in texts:
            sent_bounds = np.concatenate([sent_bounds, text.sent_bounds[1:] + sent_bounds[-1]])
            line_bounds = np.concatenate([line_bounds, text.line_bounds[1:] + line_bounds[-1]])
            doc_bounds = np.concatenate([doc_bounds, text.doc_bounds[1:] + doc_bounds[-1]])
        return cls(
            input_ids=np.concatenate([text.input_ids for text in texts]),
            word_start=np.concatenate([text.word_start for text in texts]),
            sent_bounds=sent_bounds,
            line_bounds=line_bounds,
            doc_bounds=doc_bounds,
        )


def tokenize_documents(docs: List[List[str]], tokenizer, *, batch_size: int = 1000) -> TokenizedText:
    """Tokenise documents into a ``TokenizedText`` (needs a fast tokenizer)."""
    backend = _plain_backend(tokenizer)
    ids_parts: List[np.ndarray] = []
    start_parts: List[np.ndarray] = []
    sent_bounds, line_bounds, doc_bounds = [0], [0], [0]
    n_tokens = 0
    lines = [(d, line) for d, doc in enumerate(docs) for line in doc]
    kept_lines_per_doc = np.zeros(len(docs), dtype=np.int64)
    for batch_start in range(0, len(lines), batch_size):
        batch = lines[batch_start : batch_start + batch_size]
        encodings = backend.encode_batch([line for _, line in batch], add_special_tokens=False)
        for (d, line), enc in zip(batch, encodings):
            if not enc.ids:
                continue
            ids = np.asarray(enc.ids, dtype=np.int32)
            word_ids = np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64)
            char_starts = np.asarray([start for start, _ in enc.offsets], dtype=np.int64)
            sent_starts = np.asarray([start for start, _ in split_sentences(line)], dtype=np.int64)
            sent_of_token = np.searchsorted(sent_starts, char_starts, side="right") - 1
            new_sent = np.ones(len(ids), dtype=bool)
            new_sent[1:] = sent_of_token[1:] != sent_of_token[:-1]
            word_start = new_sent.copy()
            word_start[1:] |= word_ids[1:] != word_ids[:-1]
            word_start |= word_ids < 0
            for offset in np.flatnonzero(new_sent)[1:]:
                sent_bounds.append(n_tokens + int(offset))
            n_tokens += len(ids)
            sent_bounds.append(n_tokens)
            line_bounds.append(len(sent_bounds) - 1)
            ids_parts.append(ids)
            start_parts.append(word_start)
            kept_lines_per_doc[d] += 1
    # Every document keeps its index, even one that gave no pieces.
    for n_lines in kept_lines_per_doc:
        doc_bounds.append(doc_bounds[-1] + int(n_lines))
    return TokenizedText(
        input_ids=np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int32),
        word_start=np.concatenate(start_parts) if start_parts else np.zeros(0, bool),
        sent_bounds=np.asarray(sent_bounds, dtype=np.int64),
        line_bounds=np.asarray(line_bounds, dtype=np.int64),
        doc_bounds=np.asarray(doc_bounds, dtype=np.int64),
    )


def load_tokenized(
    path: Union[str, Path],
    tokenizer,
    *,
    layout: str = "auto",
    cache_dir: Optional[Union[str, Path]] = None,
) -> TokenizedText:
    """Read and tokenise a text file, or load it from the cache.

    path (Path): the text file (see ``read_documents``).
    tokenizer (PreTrainedTokenizerFast): the encoder's tokenizer.
    layout (str): "auto", "lines" or "paragraphs".
    cache_dir (Optional[Path]): where tokenised files are kept; None to not cache.
    RETURNS (TokenizedText): the file's documents as pieces.
    """
    path = Path(path)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{path.stem}-{cache_key(path, tokenizer, layout)}.npz"
        if cache_file.exists():
            logger.info("Read tokenised %s from the cache %s", path, cache_file)
            with np.load(cache_file) as arrays:
                return TokenizedText(**{name: arrays[name] for name in arrays.files})
    docs = read_documents(path, layout)
    text = tokenize_documents(docs, tokenizer)
    if text.n_tokens == 0:
        raise ValueError(f"{path} gives no word pieces with this tokenizer. Check that it holds text.")
    logger.info("Tokenised %s: %d documents, %d pieces", path, text.n_docs, text.n_tokens)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a killed run or a second process never reads half a file.
        fd, tmp_name = tempfile.mkstemp(suffix=".npz", dir=cache_file.parent)
        with os.fdopen(fd, "wb") as file_:
            np.savez(file_, **text.__dict__)
        os.replace(tmp_name, cache_file)
    return text


def cache_key(path: Path, tokenizer, layout: str) -> str:
    """Hash of the file's bytes, the tokenizer's full definition and the settings."""
    digest = hashlib.sha256()
    digest.update(f"format={CACHE_FORMAT};layout={layout};".encode("utf8"))
    digest.update(_plain_backend(tokenizer).to_str().encode("utf8"))
    with Path(path).open("rb") as file_:
        for block in iter(lambda: file_.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:20]


def _plain_backend(tokenizer):
    """The Rust tokenizer without truncation or padding, for cache keys and batch encoding."""
    from tokenizers import Tokenizer

    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast tokenizer. Pretraining needs one (word ids "
            "and offsets); save the encoder with a tokenizer.json."
        )
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    return backend


def split_documents(n_docs: int, eval_fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Choose held-out items (documents or sequences): a seeded random ``eval_fraction`` of
    ``n_docs``, at least one when there are two or more, never all."""
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"The held-out fraction must be in [0, 1), not {eval_fraction}.")
    order = np.random.default_rng(seed).permutation(n_docs)
    n_eval = int(round(n_docs * eval_fraction))
    if eval_fraction > 0 and n_docs > 1:
        n_eval = min(max(n_eval, 1), n_docs - 1)
    else:
        n_eval = 0
    return np.sort(order[n_eval:]), np.sort(order[:n_eval])
