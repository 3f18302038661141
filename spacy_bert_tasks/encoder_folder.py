"""Hugging Face encoder folders: checked before they are loaded, safetensors only.

Every place that reads an encoder folder (the ``transformer`` component, the MLM run,
the weight analysis) goes through here, so a bad folder gets one clear error that
names the folder or file, the fault and the fix, instead of whatever the libraries
underneath raise (a hub ``HFValidationError`` for a missing folder, "requires the
protobuf library" for a folder without a tokenizer, raw torch or safetensors errors
for wrong or truncated weights). Pickled weights (``pytorch_model.bin``) are never
loaded: unpickling runs code.
"""
import os
from pathlib import Path
from typing import Any, Optional, Tuple, Type, Union

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# A fast tokenizer is read from tokenizer.json, or built from one of these.
TOKENIZER_FILES = (
    "tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "spm.model",
    "tokenizer.model",
)
_MAKE_ONE = "Make one with `spacy-bert-tasks init-encoder` or `spacy-bert-tasks pretrain`"


class EncoderFolderError(ValueError):
    """An encoder folder that cannot be loaded, with what is wrong and what to do."""


def is_local(name: Optional[Union[str, Path]]) -> bool:
    """Whether ``name`` means a local folder rather than a hub id.

    A name that exists, an absolute or explicitly relative path, or one with more
    than one ``/`` is a local path; so is any name while the hub is offline, and
    no name at all (an unset ``paths.encoder``).
    """
    if name is None:
        return True
    text = str(name)
    if Path(text).expanduser().exists() or text.startswith((".", "~", os.sep)) or text.count("/") > 1:
        return True
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or os.environ.get(
        "TRANSFORMERS_OFFLINE", "0"
    ) not in ("0", "", "false")


def check_encoder_folder(name: Optional[Union[str, Path]], *, tokenizer: bool = True) -> Path:
    """Check that ``name`` is a loadable encoder folder, before any library reads it.

    name (Optional[Path]): the folder (``paths.encoder`` in the configs).
    tokenizer (bool): require tokenizer files too.
    RETURNS (Path): the folder, absolute.
    """
    if name is None or str(name).strip() in ("", "None", "null"):
        raise EncoderFolderError(
            "No encoder folder given: `paths.encoder` (the `name` of the transformer model) is not set. "
            f"Pass a local Hugging Face folder, e.g. `--paths.encoder models/encoder`. {_MAKE_ONE}."
        )
    folder = Path(name).expanduser().absolute()
    if not folder.exists():
        raise EncoderFolderError(
            f"Encoder folder not found: {folder}. Check `paths.encoder`. {_MAKE_ONE}."
        )
    if not folder.is_dir():
        raise EncoderFolderError(
            f"{folder} is a file, not an encoder folder. Pass the folder that holds config.json, "
            "the tokenizer files and model.safetensors."
        )
    if not (folder / "config.json").is_file():
        raise EncoderFolderError(
            f"{folder} holds no config.json, so it is not a Hugging Face encoder folder. "
            "Pass the folder written by `save_pretrained` (config.json, tokenizer files, model.safetensors)."
        )
    if tokenizer and not any((folder / file).is_file() for file in TOKENIZER_FILES):
        raise EncoderFolderError(
            f"{folder} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)}). Copy the tokenizer files "
            "of the model the weights came from into it, or save them with `tokenizer.save_pretrained(folder)`."
        )
    weights = [folder / file for file in WEIGHT_FILES if (folder / file).is_file()]
    if not weights:
        pickled = [file for file in PICKLED_WEIGHTS if (folder / file).is_file()]
        if pickled:
            raise EncoderFolderError(
                f"{folder} holds its weights only as {pickled[0]} (a pickle, which can run code when "
                "loaded); only safetensors are read. Convert them once, where you trust the file: "
                "`AutoModel.from_pretrained(folder).save_pretrained(folder, safe_serialization=True)`."
            )
        raise EncoderFolderError(
            f"{folder} holds no weights (model.safetensors). Pass a complete encoder folder. {_MAKE_ONE}."
        )
    for path in _weight_shards(weights[0]):
        _check_safetensors(path)
    return folder


def load_weights_checked(model_class: Type, folder: Path, **kwargs: Any) -> Any:
    """``model_class.from_pretrained(folder)`` on safetensors, with weight errors that name the file."""
    from safetensors import SafetensorError

    kwargs = {"use_safetensors": True, "trust_remote_code": False, **kwargs}
    try:
        return model_class.from_pretrained(str(folder), **kwargs)
    except RuntimeError as err:
        if "size mismatch" not in str(err):
            raise
        detail = next((line.strip() for line in str(err).splitlines() if "size mismatch" in line), str(err))
        raise EncoderFolderError(
            f"The weights in {folder / 'model.safetensors'} do not fit {folder / 'config.json'}: {detail} "
            "The config belongs to another model. Put the config.json of the model the weights came from "
            "in the folder."
        ) from None
    except SafetensorError as err:
        raise EncoderFolderError(
            f"Cannot read the weights in {folder}: {err}. The file is damaged or incomplete; "
            "copy or write it again."
        ) from None


def _weight_shards(path: Path) -> Tuple[Path, ...]:
    if path.name.endswith(".index.json"):
        import json

        try:
            index = json.loads(path.read_text(encoding="utf8"))
            files = sorted(set(index["weight_map"].values()))
        except (ValueError, KeyError, TypeError):
            raise EncoderFolderError(
                f"{path} is not a safetensors index (JSON with a 'weight_map'). Write the folder again "
                "with `save_pretrained`."
            ) from None
        missing = [file for file in files if not (path.parent / file).is_file()]
        if missing:
            raise EncoderFolderError(
                f"{path} lists weight files that are not there: {', '.join(missing)}. Copy the whole folder."
            )
        return tuple(path.parent / file for file in files)
    return (path,)


def _check_safetensors(path: Path) -> None:
    """Read the header of a safetensors file: it fails if the file is cut short."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt"):
            pass
    except (SafetensorError, OSError) as err:
        raise EncoderFolderError(
            f"{path} is damaged or incomplete ({err}); it was probably cut off while being written "
            "or copied. Copy or write it again."
        ) from None
