"""Tiny random encoders of every family users bring, each with its own tokenizer.

Each tokenizer is trained here with the ``tokenizers`` library in its family's
conventions (WordPiece, byte-level BPE, or SentencePiece-style Unigram with a
Metaspace pre-tokenizer whose offsets include the space before a word), given
the family's special-token template, and saved as that family's fast tokenizer
class would be: ``tokenizer.json`` only, no SentencePiece ``.model`` file.
Nothing is downloaded. ``family_encoder(name)`` builds a folder once per session.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest

from tests.conftest import make_sample_text

SQUAD_SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "squad_v1.1" / "dev-v1.1.articles00-42.json"
WIDTH = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
VOCAB_SIZE = 500


@dataclass(frozen=True)
class Family:
    """How one encoder family is built: its tokenizer's conventions and its network."""

    tokenizer: str  # "wordpiece", "bpe" (byte-level) or "unigram" (SentencePiece-style)
    fast_class: str  # the transformers class a checkpoint of this family ships
    specials: Tuple[str, ...]  # in id order: pad, unk/cls/sep/mask as the family numbers them
    single: str  # the post-processor template for one segment
    pair: str  # and for two
    config_class: str
    config: Dict[str, Any] = field(default_factory=dict)
    tokens: Dict[str, str] = field(default_factory=dict)  # the fast class's special-token arguments
    model_input_names: Tuple[str, ...] = ()  # set in tokenizer_config.json where the family does
    segment_ids: bool = False  # the tokenizer gives token_type_ids, so the windows carry them
    sentencepiece: bool = False

    @property
    def cls(self) -> str:
        return self.single.split()[0]


_BERT_TOKENS = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}
_BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_BERT_SINGLE, _BERT_PAIR = "[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1"
_ROBERTA_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                   "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"}
_ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_ROBERTA_SINGLE, _ROBERTA_PAIR = "<s> $A </s>", "<s> $A </s> </s> $B </s>"

FAMILIES: Dict[str, Family] = {
    "bert": Family("wordpiece", "BertTokenizerFast", _BERT_SPECIALS, _BERT_SINGLE, _BERT_PAIR, "BertConfig",
                   {"max_position_embeddings": 512}, _BERT_TOKENS, segment_ids=True),
    "distilbert": Family("wordpiece", "DistilBertTokenizerFast", _BERT_SPECIALS, _BERT_SINGLE, _BERT_PAIR,
                         "DistilBertConfig", {"max_position_embeddings": 512}, _BERT_TOKENS),
    "electra": Family("wordpiece", "ElectraTokenizerFast", _BERT_SPECIALS, _BERT_SINGLE, _BERT_PAIR, "ElectraConfig",
                      {"max_position_embeddings": 512, "embedding_size": 16}, _BERT_TOKENS, segment_ids=True),
    "roberta": Family("bpe", "RobertaTokenizerFast", _ROBERTA_SPECIALS, _ROBERTA_SINGLE, _ROBERTA_PAIR,
                      "RobertaConfig", {"max_position_embeddings": 514, "pad_token_id": 1, "bos_token_id": 0,
                                        "eos_token_id": 2, "type_vocab_size": 1}, _ROBERTA_TOKENS),
    # Positions count from pad_token_id + 1 = 2, so 512 of them hold 510 pieces.
    "roberta-512": Family("bpe", "RobertaTokenizerFast", _ROBERTA_SPECIALS, _ROBERTA_SINGLE, _ROBERTA_PAIR,
                          "RobertaConfig", {"max_position_embeddings": 512, "pad_token_id": 1, "bos_token_id": 0,
                                            "eos_token_id": 2, "type_vocab_size": 1}, _ROBERTA_TOKENS),
    "albert": Family("unigram", "AlbertTokenizerFast", ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"),
                     _BERT_SINGLE, _BERT_PAIR, "AlbertConfig",
                     {"max_position_embeddings": 512, "embedding_size": 16, "pad_token_id": 0},
                     {"unk_token": "<unk>", "pad_token": "<pad>", "cls_token": "[CLS]", "sep_token": "[SEP]",
                      "mask_token": "[MASK]", "bos_token": "[CLS]", "eos_token": "[SEP]"},
                     segment_ids=True, sentencepiece=True),
    "xlm-roberta": Family("unigram", "XLMRobertaTokenizerFast", _ROBERTA_SPECIALS, _ROBERTA_SINGLE, _ROBERTA_PAIR,
                          "XLMRobertaConfig", {"max_position_embeddings": 514, "pad_token_id": 1, "bos_token_id": 0,
                                               "eos_token_id": 2, "type_vocab_size": 1},
                          _ROBERTA_TOKENS, sentencepiece=True),
    # DeBERTa-v3's layout: relative positions only. Its tokenizer gives segment ids, which
    # a type_vocab_size of 0 ignores (as in Hugging Face's own forward).
    "deberta-v2": Family("unigram", "DebertaV2TokenizerFast", ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"),
                         _BERT_SINGLE, _BERT_PAIR, "DebertaV2Config",
                         {"max_position_embeddings": 512, "relative_attention": True, "position_buckets": 64,
                          "pos_att_type": ["p2c", "c2p"], "position_biased_input": False, "type_vocab_size": 0,
                          "pad_token_id": 0},
                         {**_BERT_TOKENS, "bos_token": "[CLS]", "eos_token": "[SEP]"}, segment_ids=True,
                         sentencepiece=True),
    # ModernBERT ships a generic PreTrainedTokenizerFast: its specials live only in the post-processor.
    "modernbert": Family("bpe", "PreTrainedTokenizerFast", _BERT_SPECIALS, _BERT_SINGLE,
                         "[CLS] $A [SEP] $B [SEP]", "ModernBertConfig",
                         {"max_position_embeddings": 8192, "pad_token_id": 0, "cls_token_id": 2, "sep_token_id": 3,
                          "bos_token_id": 2, "eos_token_id": 3, "global_attn_every_n_layers": 2,
                          "local_attention": 16},
                         _BERT_TOKENS, model_input_names=("input_ids", "attention_mask")),
}
# The families the default run builds (the 510-piece positions, a SentencePiece tokenizer
# with the new MLM head, a generic tokenizer); the rest run with --slow.
DEFAULT_FAMILIES = ("roberta-512", "deberta-v2", "modernbert")


def squad_questions(n: int = 16) -> List[Tuple[str, str, str, int]]:
    """(context, question, answer text, answer start) of the first ``n`` sample SQuAD questions."""
    rows = []
    for article in json.loads(SQUAD_SAMPLE.read_text(encoding="utf8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]
                rows.append((paragraph["context"], qa["question"], answer["text"], answer["answer_start"]))
    return rows[:n]


def training_lines() -> List[str]:
    lines = make_sample_text(n_lines=200).splitlines()
    for context, question, _, _ in squad_questions(200):
        lines.extend([context, question])
    return lines


def _train_tokenizer(family: Family, lines: List[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = list(family.specials)
    if family.tokenizer == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials, show_progress=False)
    elif family.tokenizer == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        unk = next(s for s in specials if "unk" in s.lower())
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.Sequence([normalizers.Replace("``", '"'), normalizers.Replace("''", '"')])
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials, unk_token=unk,
                                          show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    template_tokens = sorted({t.split(":")[0] for t in (family.single + " " + family.pair).split() if "$" not in t})
    post = processors.TemplateProcessing(
        single=family.single, pair=family.pair, special_tokens=[(t, tok.token_to_id(t)) for t in template_tokens]
    )
    if family.tokenizer == "bpe" and family.fast_class.startswith("Roberta"):
        # RoBERTa's own processor: it also trims the space from the byte-level offsets.
        post = processors.RobertaProcessing(sep=("</s>", tok.token_to_id("</s>")), cls=("<s>", tok.token_to_id("<s>")),
                                            trim_offsets=True, add_prefix_space=False)
    tok.post_processor = post
    return tok


def build_family_encoder(name: str, output: Path) -> Path:
    """Write a tiny random encoder of family ``name`` to ``output`` (config, safetensors, tokenizer)."""
    import torch
    import transformers
    from transformers import AutoModel

    family = FAMILIES[name]
    backend = _train_tokenizer(family, training_lines())
    tokenizer = getattr(transformers, family.fast_class)(tokenizer_object=backend, **family.tokens)
    if family.model_input_names:
        tokenizer.model_input_names = list(family.model_input_names)
        tokenizer.init_kwargs["model_input_names"] = list(family.model_input_names)
    tokenizer.save_pretrained(output)
    assert not list(output.glob("*.model")), "the folder must hold tokenizer.json only"
    config = getattr(transformers, family.config_class)(vocab_size=len(tokenizer), **WIDTH, **family.config)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(output, safe_serialization=True)
    return output


@pytest.fixture(scope="session")
def family_encoder(tmp_path_factory) -> Callable[[str], Path]:
    """``family_encoder(name)``: the folder of family ``name``'s tiny encoder, built once per session."""
    built: Dict[str, Path] = {}
    root = tmp_path_factory.mktemp("families")

    def _get(name: str) -> Path:
        if name not in built:
            built[name] = build_family_encoder(name, root / name)
        return built[name]

    return _get
