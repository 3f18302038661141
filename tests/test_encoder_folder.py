"""Encoder folders are checked before they are loaded (spacy_bert_tasks/encoder_folder.py).

Each broken folder gets an error that names the folder or file, the fault and the fix,
wherever it is loaded: the transformer component, the MLM run and the weight analysis.
"""
import glob
import json
import shutil
from pathlib import Path

import pytest
import spacy
import torch
from spacy.util import load_config, load_model_from_config

from spacy_bert_tasks.encoder_folder import EncoderFolderError
from spacy_bert_tasks.pretraining.model import load_pretraining_model

from .conftest import encoder_config

CONFIGS = sorted(glob.glob(str(Path(__file__).parent.parent / "configs" / "*.cfg")))


def _broken(tiny_encoder, tmp_path, fault):
    folder = tmp_path / fault
    if fault == "missing":
        return folder
    shutil.copytree(tiny_encoder, folder)
    if fault == "file":
        shutil.rmtree(folder)
        folder.write_text("not a folder", encoding="utf8")
    elif fault == "no-tokenizer":
        for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
            (folder / name).unlink()
    elif fault == "wrong-shapes":
        config = json.loads((folder / "config.json").read_text())
        config["intermediate_size"] = config["intermediate_size"] // 2
        (folder / "config.json").write_text(json.dumps(config))
    elif fault == "truncated":
        weights = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    elif fault == "pickle":
        from transformers import AutoModel

        state = AutoModel.from_pretrained(folder).state_dict()
        (folder / "model.safetensors").unlink()
        torch.save(state, folder / "pytorch_model.bin")
    return folder


FAULTS = {
    # fault: (what the message must say, the file it must name)
    "missing": ("Encoder folder not found", ""),
    "file": ("is a file, not an encoder folder", ""),
    "no-tokenizer": ("holds no tokenizer.*tokenizer.save_pretrained", ""),
    "wrong-shapes": ("do not fit .*config.json: size mismatch.*config.json of the model the weights came from", "model.safetensors"),
    "truncated": ("damaged or incomplete.*write it again", "model.safetensors"),
    "pickle": ("only as pytorch_model.bin.*only safetensors are read.*safe_serialization=True", ""),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_broken_encoder_folder_is_named_in_the_pipeline(tiny_encoder, tmp_path, fault):
    folder = _broken(tiny_encoder, tmp_path, fault)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=encoder_config(folder))
    message, file = FAULTS[fault]
    with pytest.raises(EncoderFolderError, match=message) as err:
        nlp.initialize()
    assert str(folder / file).rstrip("/") in str(err.value)


@pytest.mark.parametrize("fault", ["missing", "wrong-shapes", "truncated", "pickle"])
def test_broken_encoder_folder_is_named_in_pretraining(tiny_encoder, tmp_path, fault):
    folder = _broken(tiny_encoder, tmp_path, fault)
    with pytest.raises(EncoderFolderError, match=FAULTS[fault][0]):
        load_pretraining_model(folder)


def test_pickled_weights_are_never_loaded_for_the_analysis(tiny_encoder, tmp_path, monkeypatch):
    """``analyze pipeline --initial`` reads θ0 from an encoder folder: safetensors only."""
    from spacy_bert_tasks.analysis.params import load_weights

    folder = _broken(tiny_encoder, tmp_path, "pickle")

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called on a pickle")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(EncoderFolderError, match="pytorch_model.bin.*only safetensors"):
        load_weights(folder)
    assert set(load_weights(tiny_encoder)) and all(k.startswith("transformer/") for k in load_weights(tiny_encoder))


def test_unset_encoder_path_is_named(tmp_path):
    nlp = load_model_from_config(load_config(Path(CONFIGS[0]).parent / "ner.cfg"), validate=True, auto_fill=True)
    with pytest.raises(EncoderFolderError, match="paths.encoder"):
        nlp.initialize()


@pytest.mark.parametrize("auto_fill", [False, True])
@pytest.mark.parametrize("config", CONFIGS, ids=[Path(c).name for c in CONFIGS])
def test_configs_load_before_their_paths_are_set(config, auto_fill):
    """As with spaCy's own ``spacy.Corpus.v1``, null paths validate; a reader needs one when it is built."""
    nlp = load_model_from_config(load_config(config), validate=True, auto_fill=auto_fill)
    assert "transformer" in nlp.pipe_names and len(nlp.pipe_names) > 1


def test_corpus_reader_without_a_path_says_which_path_to_set():
    from spacy.util import registry

    for reader in ("spacy_bert_tasks.Corpus.v1", "spacy_bert_tasks.MergedCorpus.v1"):
        key = "paths" if "Merged" in reader else "path"
        with pytest.raises(ValueError, match="paths.train"):
            registry.resolve({"corpus": {"@readers": reader, key: None}})
