"""Fixtures for the pretraining tests: the tiny encoder's tokenizer, its text as
sequences, and a RoBERTa-style (byte-level BPE) tokenizer, all built offline."""
import pytest

from spacy_bert_tasks.pretraining.sequences import pack_documents
from spacy_bert_tasks.pretraining.text import load_tokenized


@pytest.fixture(scope="session")
def bert_tokenizer(tiny_encoder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_encoder)


@pytest.fixture(scope="session")
def sample_tokens(sample_text_file, bert_tokenizer):
    """The sample text, tokenised (no cache)."""
    return load_tokenized(sample_text_file, bert_tokenizer)


@pytest.fixture(scope="session")
def packed(sample_tokens, bert_tokenizer):
    """All sample documents packed into sequences of 128 pieces."""
    return pack_documents(
        sample_tokens, range(sample_tokens.n_docs), max_seq_length=128,
        cls_id=bert_tokenizer.cls_token_id, sep_id=bert_tokenizer.sep_token_id,
    )


@pytest.fixture(scope="session")
def roberta_tokenizer(sample_text_file):
    """A byte-level BPE tokenizer with RoBERTa's special tokens: no '##' anywhere."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train([str(sample_text_file)], vocab_size=400, min_frequency=2,
              special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    return RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                                mask_token="<mask>")
