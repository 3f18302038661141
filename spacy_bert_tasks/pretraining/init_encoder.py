"""Fresh encoders: ``init_encoder`` trains a WordPiece vocabulary and writes a new BERT
folder (``init-encoder``); ``reinit_encoder`` keeps another folder's config and tokenizer
and draws new weights (``analyze random-encoder``, the from-scratch baseline).

Nothing is downloaded. The folder is a plain Hugging Face checkpoint (config,
fast tokenizer, ``model.safetensors``) that loads with ``AutoModel`` and
``AutoTokenizer`` and works as the ``name`` of a ``transformer`` component.
"""
import json
import shutil
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Set, Union

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Sizes after Turc et al. (2019), "Well-Read Students Learn Better".
ENCODER_SIZES: Dict[str, Dict[str, int]] = {
    "tiny": {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2},
    "mini": {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4},
    "small": {"num_hidden_layers": 4, "hidden_size": 512, "num_attention_heads": 8},
    "base": {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12},
}


def read_text_lines(paths: Iterable[Union[str, Path]]) -> Iterator[str]:
    """Yield the non-blank lines of text files, with errors that name the file."""
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Text file not found: {path}. Pass an existing plain-text file.")
        n_lines = 0
        try:
            with path.open(encoding="utf8") as file_:
                for line in file_:
                    line = line.strip()
                    if line:
                        n_lines += 1
                        yield line
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{path} is not UTF-8 text (byte {err.start}). Convert it to UTF-8 first."
            ) from None
        if n_lines == 0:
            raise ValueError(f"{path} holds no text. Pass a file with at least one non-blank line.")


def train_wordpiece(
    paths: List[Union[str, Path]],
    *,
    vocab_size: int = 8000,
    lowercase: bool = False,
    min_frequency: int = 2,
    show_progress: bool = False,
) -> Tokenizer:
    """Train a BERT WordPiece tokenizer (``tokenizers`` library) on text files."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=lowercase, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # The trainer gives each "##c" piece its id in the order of a hash map that is
    # seeded per process, and breaks ties between merges by id, so the same text
    # gave other vocabularies in other processes (tokenizers#1794). Listed up front,
    # in sorted order, the pieces get fixed ids (they would be made anyway), and the
    # training is the same in every process; they are then made ordinary pieces again.
    continuing = sorted({f"##{char}" for char in _inner_chars(tokenizer, read_text_lines(paths))})
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS + continuing,
        show_progress=show_progress,
        continuing_subword_prefix="##",
    )
    tokenizer.train_from_iterator(read_text_lines(paths), trainer=trainer)
    state = json.loads(tokenizer.to_str())
    state["added_tokens"] = [token for token in state["added_tokens"] if token["content"] in SPECIAL_TOKENS]
    tokenizer = Tokenizer.from_str(json.dumps(state, ensure_ascii=False))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def _inner_chars(tokenizer: Tokenizer, lines: Iterable[str]) -> Set[str]:
    """The characters that occur inside words (not first), as the trainer splits them."""
    chars: Set[str] = set()
    for line in lines:
        for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(line)):
            chars.update(word[1:])
    return chars


def init_encoder(
    texts: List[Union[str, Path]],
    output_dir: Union[str, Path],
    *,
    size: str = "tiny",
    vocab_size: int = 8000,
    lowercase: bool = False,
    max_positions: int = 512,
    min_frequency: int = 2,
    seed: int = 0,
    show_progress: bool = False,
) -> Path:
    """Train a vocabulary on ``texts`` and write a randomly initialised BERT.

    texts (List[Path]): plain-text files, one document or paragraph per line.
    output_dir (Path): the Hugging Face folder to write.
    size (str): tiny (2x128), mini (4x256), small (4x512) or base (12x768).
    RETURNS (Path): ``output_dir``.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    if size not in ENCODER_SIZES:
        raise ValueError(f"Unknown encoder size '{size}'. Choose one of: {', '.join(ENCODER_SIZES)}.")
    output_dir = Path(output_dir)
    wordpiece = train_wordpiece(
        texts, vocab_size=vocab_size, lowercase=lowercase, min_frequency=min_frequency,
        show_progress=show_progress,
    )
    tokenizer = BertTokenizerFast(
        tokenizer_object=wordpiece,
        do_lower_case=lowercase,
        strip_accents=lowercase,
        model_max_length=max_positions,
        unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
    )
    dims = ENCODER_SIZES[size]
    config = BertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_positions,
        intermediate_size=4 * dims["hidden_size"],
        pad_token_id=tokenizer.pad_token_id,
        architectures=["BertModel"],
        **dims,
    )
    torch.manual_seed(seed)
    model = BertModel(config)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def find_domain_words(
    lines: Iterable[str],
    tokenizer,
    *,
    max_words: int,
    min_count: int = 20,
    min_pieces: int = 3,
) -> List[str]:
    """Frequent words that the tokenizer splits into many pieces, best first.

    Words are what the tokenizer's own normalizer and pre-tokenizer make of the text.
    A word qualifies if it holds a letter, occurs ``min_count`` times or more and
    takes ``min_pieces`` pieces or more; words are ranked by the pieces they would
    save, count * (pieces - 1).

    lines (Iterable[str]): the domain text.
    tokenizer (PreTrainedTokenizerFast): the encoder's tokenizer.
    RETURNS (List[str]): up to ``max_words`` words, in normalised form.
    """
    from collections import Counter

    backend = tokenizer.backend_tokenizer
    counts: Counter = Counter()
    for line in lines:
        text = backend.normalizer.normalize_str(line) if backend.normalizer else line
        pieces = backend.pre_tokenizer.pre_tokenize_str(text) if backend.pre_tokenizer else [(text, None)]
        counts.update(word for word, _ in pieces)
    vocab = tokenizer.get_vocab()
    frequent = [
        word for word, count in counts.items()
        if count >= min_count and word not in vocab and any(char.isalpha() for char in word)
    ]
    if not frequent:
        return []
    encodings = tokenizer(frequent, add_special_tokens=False)["input_ids"]
    ranked = sorted(
        (-counts[word] * (len(ids) - 1), word)  # most pieces saved first, then alphabetical
        for word, ids in zip(frequent, encodings)
        if len(ids) >= min_pieces
    )
    return [word for _, word in ranked[:max_words]]


def extend_wordpiece_vocabulary(tokenizer, words: List[str]):
    """A copy of a WordPiece tokenizer with ``words`` added to its vocabulary.

    The words become ordinary word-initial vocabulary entries (ids after the existing
    ones), so WordPiece's longest-match rule uses them inside longer words as well.
    Resize the model's embeddings to ``len(new_tokenizer)`` after this.

    tokenizer (PreTrainedTokenizerFast): a tokenizer whose model is WordPiece.
    words (List[str]): normalised words, as from ``find_domain_words``.
    RETURNS (PreTrainedTokenizerFast): the extended tokenizer.
    """
    import json
    import tempfile

    from transformers import AutoTokenizer

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    if state["model"]["type"] != "WordPiece":
        raise ValueError(
            f"Extending the vocabulary works for WordPiece tokenizers (BERT, DistilBERT, ELECTRA); "
            f"this one is {state['model']['type']}. Leave the vocabulary as it is for this encoder."
        )
    vocab = state["model"]["vocab"]
    if len(tokenizer) != len(vocab):
        raise ValueError(
            f"The tokenizer has {len(tokenizer) - len(vocab)} added tokens outside its WordPiece "
            "vocabulary; new words would clash with their ids. Extend a tokenizer without added tokens."
        )
    for word in words:
        if word not in vocab:
            vocab[word] = len(vocab)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tokenizer.save_pretrained(tmp_dir)
        Path(tmp_dir, "tokenizer.json").write_text(json.dumps(state, ensure_ascii=False), encoding="utf8")
        vocab_file = Path(tmp_dir, "vocab.txt")
        if vocab_file.exists():
            by_id = sorted(vocab, key=vocab.__getitem__)
            vocab_file.write_text("".join(f"{token}\n" for token in by_id), encoding="utf8")
        extended = AutoTokenizer.from_pretrained(tmp_dir)
        extended.name_or_path = tokenizer.name_or_path
    return extended


def reinit_encoder(source: Union[str, Path], output: Union[str, Path], *, seed: int = 0) -> Path:
    """Copy an encoder folder's config and tokenizer, with freshly initialised weights.

    source (Union[str, Path]): a Hugging Face encoder folder.
    output (Union[str, Path]): the folder to write (same shape, random weights).
    seed (int): the seed of the initialisation.
    """
    import torch
    from transformers import AutoConfig, AutoModel

    source, output = Path(source), Path(output)
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} is not a Hugging Face encoder folder (no config.json).")
    torch.manual_seed(seed)
    model = AutoModel.from_config(AutoConfig.from_pretrained(str(source)))
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output), safe_serialization=True)
    for path in source.iterdir():
        if path.is_file() and (path.name.startswith(("tokenizer", "vocab", "special_tokens", "merges"))):
            shutil.copy(path, output / path.name)
    return output
