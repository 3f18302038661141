"""Loading the Hugging Face objects of an encoder: tokenizer, config and weights.

Saving needs nothing of ours: spacy-transformers' HF wrapper writes what
``load_hf_encoder`` returns, given the ``vocab_file`` bytes prepared here.
"""
from pathlib import Path
from typing import Any, Dict, Optional, Union

from spacy_transformers.data_classes import HFObjects
from thinc.api import get_torch_default_device
from transformers import AutoConfig, AutoModel, AutoTokenizer

from ...encoder_folder import EncoderFolderError, check_encoder_folder, is_local, load_weights_checked


def load_hf_encoder(name: Union[str, Path], tokenizer_config: Dict, transformer_config: Dict) -> HFObjects:
    """Load tokenizer and weights: safetensors only, never remote code.

    A local folder is checked first (``check_encoder_folder``), so a bad one gets an
    error that names the folder or file, the fault and the fix. A name that is not a
    local path goes to the Hugging Face hub, where a network allows it.
    """
    source = str(check_encoder_folder(name)) if is_local(name) else str(name)
    tok_cfg = {"use_fast": True, **tokenizer_config}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **tok_cfg)
        config = AutoConfig.from_pretrained(source, trust_remote_code=False, **{**transformer_config, "return_dict": True})
        transformer = load_weights_checked(AutoModel, Path(source), config=config)
    except OSError as err:
        raise OSError(
            f"Could not load the encoder '{name}': {err}\nPass a local folder with config.json, "
            "tokenizer files and model.safetensors (make one with `spacy-bert-tasks init-encoder` "
            "or `spacy-bert-tasks pretrain`), or check the path in `paths.encoder`."
        ) from None
    except ImportError as err:  # a slow tokenizer that needs sentencepiece/protobuf to become fast
        raise EncoderFolderError(
            f"Could not build a fast tokenizer from the files in {source}: {str(err).strip()} "
            "Add the tokenizer.json of the model the weights came from to the folder."
        ) from None
    if not tokenizer.is_fast:
        raise ValueError(f"The encoder '{name}' has no fast tokenizer; the encoder needs character offsets.")
    transformer.to(get_torch_default_device())
    return HFObjects(tokenizer, transformer, vocab_file_contents(tokenizer))


def vocab_file_contents(tokenizer: Any) -> Optional[bytes]:
    """The bytes spacy-transformers saves as the tokenizer's ``vocab_file``.

    Its serialiser writes these bytes wherever the tokenizer has a ``vocab_file``
    attribute, and its loader reads that file back. SentencePiece-based fast
    tokenizers (ALBERT, XLM-R, DeBERTa-v2/v3) keep the attribute even when the
    folder has only ``tokenizer.json`` (``vocab_file`` is None); those get an empty
    placeholder, so saving and loading work. The fast tokenizer reads only
    ``tokenizer.json``, and never saves the empty file as a SentencePiece model.
    """
    vocab_file = getattr(tokenizer, "vocab_file", None)
    if vocab_file and Path(vocab_file).exists():
        return Path(vocab_file).read_bytes()
    return b"" if hasattr(tokenizer, "vocab_file") else None

