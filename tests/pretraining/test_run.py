"""The pretrain command end to end: CLI, from scratch, resume after a kill, bad input, torchrun."""
import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys

import numpy
import pytest
import torch
from transformers import TrainerCallback
from typer.testing import CliRunner

from spacy_bert_tasks.cli import app
from spacy_bert_tasks.pretraining import text as text_module
from spacy_bert_tasks.pretraining.run import COMPLETE_FILE, pretrain

runner = CliRunner()
FAST = ["--batch-size", "8", "--max-seq-length", "64", "--save-steps", "2", "--eval-steps", "100", "--no-progress"]


def flat(output: str) -> str:
    """CLI output with wasabi's line wrapping undone."""
    return " ".join(output.split())


def test_cli_adapts_an_encoder(tmp_path, tiny_encoder, sample_text_file):
    from transformers import AutoModel, AutoTokenizer

    domain = tmp_path / "domain.txt"
    domain_lines = ["Phosphorylation of Stnn19a in olfactory neurons was measured."] * 40
    domain.write_text(sample_text_file.read_text() + "\n".join(domain_lines) + "\n", encoding="utf8")
    out = tmp_path / "adapted"
    result = runner.invoke(app, [
        "pretrain", str(domain), "--encoder", str(tiny_encoder), "--output", str(out),
        "--max-steps", "3", "--objective", "wwm", "--extend-vocab", "5", "--extend-vocab-min-count", "5",
        "--lr", "1e-3", *FAST,
    ])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "pretrain_metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["objective"] == "wwm"
    assert metrics["perplexity_before"] > 1 and metrics["perplexity_after"] > 1
    assert 0.0 <= metrics["masked_accuracy_before"] <= 1.0 and 0.0 <= metrics["masked_accuracy_after"] <= 1.0
    assert "masked-token accuracy" in " ".join(result.output.split())  # msg wraps long lines
    assert metrics["loading"]["n_loaded"] > 0 and "cls.predictions.bias" in metrics["loading"]["newly_initialised"]
    assert 0 < len(metrics["vocab_added"]) <= 5
    # A plain Hugging Face folder for paths.encoder.
    assert (out / "model.safetensors").exists()
    model, info = AutoModel.from_pretrained(out, output_loading_info=True)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert info["missing_keys"] == [] and len(tokenizer) == model.config.vocab_size
    assert tokenizer.tokenize(metrics["vocab_added"][0]) == [metrics["vocab_added"][0]]


def test_cli_from_scratch_with_nsp_and_spans(tmp_path, sample_text_file):
    from transformers import AutoModel

    held_out = tmp_path / "held-out.txt"
    held_out.write_text("\n".join(sample_text_file.read_text().splitlines()[:40]) + "\n", encoding="utf8")
    out = tmp_path / "scratch"
    result = runner.invoke(app, [
        "pretrain", str(sample_text_file), "--size", "tiny", "--vocab-size", "300", "--output", str(out),
        "--max-steps", "2", "--nsp", "--objective", "span", "--with-head", "--eval-file", str(held_out), *FAST,
    ])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "pretrain_metrics.json").read_text())
    assert metrics["from_scratch"] and metrics["nsp"] and metrics["steps"] == 2
    assert metrics["eval_sequences"] > 0 and metrics["perplexity_after"] is not None  # on --eval-file
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForPreTraining"]
    assert AutoModel.from_pretrained(out).config.vocab_size <= 300


class KillAtStep5(TrainerCallback):
    """SIGKILL the process mid-way: after step 5, with checkpoints at steps 2 and 4."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 5:
            os.kill(os.getpid(), signal.SIGKILL)


RESUMABLE = {
    "max_steps": 8, "save_steps": 2, "eval_steps": 100, "batch_size": 8, "max_seq_length": 64, "show_progress": False,
    "with_head": True,
}


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _run_and_get_killed(text, out, encoder):
    pretrain([text], out, encoder=encoder, callbacks=[KillAtStep5()], **RESUMABLE)


def test_resume_after_a_kill(tmp_path, tiny_encoder, sample_text_file, monkeypatch, caplog):
    out = tmp_path / "killed"
    # A forked child shares the imports, so the test does not pay for them twice.
    child = multiprocessing.get_context("fork").Process(
        target=_run_and_get_killed, args=(sample_text_file, out, tiny_encoder)
    )
    child.start()
    child.join(timeout=600)
    assert child.exitcode == -signal.SIGKILL
    checkpoints = sorted(path.name for path in (out / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-2", "checkpoint-4"]
    assert all((out / "checkpoints" / name / COMPLETE_FILE).is_file() for name in checkpoints)
    assert not (out / "pretrain_metrics.json").exists()
    # Killed while writing checkpoint-6: the folder holds only the config.
    (out / "checkpoints" / "checkpoint-6").mkdir()
    shutil.copy(out / "checkpoints" / "checkpoint-4" / "config.json", out / "checkpoints" / "checkpoint-6")
    # Without --resume the old run is not silently mixed with a new one.
    result = runner.invoke(app, ["pretrain", str(sample_text_file), "--encoder", str(tiny_encoder),
                                 "--output", str(out), "--max-steps", "8"])
    assert result.exit_code == 1 and "--resume" in flat(result.output)
    # The resumed run reads the tokenised text from the cache and ends at the same step.
    monkeypatch.setattr(text_module, "tokenize_documents", lambda *a, **k: pytest.fail("tokenised again"))
    with caplog.at_level(logging.INFO, logger="spacy_bert_tasks.pretraining.run"):
        metrics = pretrain([sample_text_file], out, encoder=tiny_encoder, resume=True, **RESUMABLE)
    assert metrics["resumed_from"] == "checkpoint-4"
    assert "Passing over checkpoint-6" in caplog.text and "Resuming from" in caplog.text
    assert metrics["steps"] == 8
    state = json.loads((out / "checkpoints" / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8
    assert metrics["perplexity_before"] is not None  # measured before the kill, kept
    # The same weights as a run that was never stopped: same order, same masks, same dropout.
    monkeypatch.undo()
    unbroken = pretrain([sample_text_file], tmp_path / "unbroken", encoder=tiny_encoder, **RESUMABLE)
    assert unbroken["perplexity_before"] == metrics["perplexity_before"]
    resumed, expected = _weights(out), _weights(tmp_path / "unbroken")
    assert resumed.keys() == expected.keys()
    assert max(float((resumed[k] - expected[k]).abs().max()) for k in expected) <= 1e-6


def test_same_seed_gives_identical_weights(tmp_path, tiny_encoder, sample_text_file):
    """From an init-encoder folder (no MLM head): the head is initialised from the seed too."""
    settings = {**RESUMABLE, "max_steps": 2, "save_steps": 100}
    first = pretrain([sample_text_file], tmp_path / "a", encoder=tiny_encoder, **settings)
    second = pretrain([sample_text_file], tmp_path / "b", encoder=tiny_encoder, **settings)
    assert first["perplexity_before"] == second["perplexity_before"]
    assert "cls.predictions.bias" in first["loading"]["newly_initialised"] and first["loading"]["seed"] == 0
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_one_long_line_is_held_out_by_sequences(tmp_path, tiny_encoder, sample_text_file, caplog):
    one_line = tmp_path / "one-line.txt"
    one_line.write_text(" ".join(sample_text_file.read_text().split()) + "\n", encoding="utf8")
    settings = {**RESUMABLE, "max_steps": 1, "save_steps": 100, "with_head": False}
    metrics = pretrain([one_line], tmp_path / "a", encoder=tiny_encoder, eval_fraction=0.1, **settings)
    assert metrics["eval_sequences"] >= 1 and metrics["perplexity_before"] is not None
    assert metrics["train_sequences"] > metrics["eval_sequences"]
    with caplog.at_level(logging.WARNING, logger="spacy_bert_tasks.pretraining.run"):
        metrics = pretrain([one_line], tmp_path / "b", encoder=tiny_encoder, eval_fraction=0.0, **settings)
    assert metrics["perplexity_before"] is None and "No held-out text" in caplog.text


@pytest.mark.parametrize("content,message", [(b"", "holds no text"), (b"\xff\xfe bad bytes\n", "not UTF-8")])
def test_bad_input_is_named(tmp_path, tiny_encoder, content, message):
    path = tmp_path / "domain.txt"
    path.write_bytes(content)
    result = runner.invoke(app, ["pretrain", str(path), "--encoder", str(tiny_encoder), "--output", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert message in flat(result.output) and str(path) in flat(result.output)


def test_bad_options(tmp_path, tiny_encoder, sample_text_file):
    base = ["pretrain", str(sample_text_file), "--output", str(tmp_path / "o")]
    result = runner.invoke(app, [*base, "--encoder", str(tiny_encoder), "--size", "tiny"])
    assert result.exit_code == 1 and "either" in flat(result.output)
    result = runner.invoke(app, [*base, "--encoder", str(tiny_encoder), "--objective", "bogus"])
    assert result.exit_code == 1 and "mlm, wwm, span" in flat(result.output)
    result = runner.invoke(app, [*base, "--encoder", str(tiny_encoder), "--max-seq-length", "4096"])
    assert result.exit_code == 1 and "--max-seq-length 512 or less" in flat(result.output)


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, tiny_encoder, sample_text_file):
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "spacy_bert_tasks",
        "pretrain", str(sample_text_file), "--encoder", str(tiny_encoder), "--output", str(out),
        "--max-steps", "4", "--batch-size", "4", "--max-seq-length", "64", "--save-steps", "2", "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((out / "pretrain_metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["steps"] == 4
    assert metrics["perplexity_after"] is not None


def test_masked_accuracy_counts_masked_positions_only():
    from transformers import EvalPrediction

    from spacy_bert_tasks.pretraining.trainer import masked_accuracy, predicted_tokens

    logits = torch.tensor([[[0.1, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 5.0, 0.0]]])
    labels = torch.tensor([[1, -100, 0, -100]])  # two masked positions: one right, one wrong
    predicted = predicted_tokens(logits, labels)
    assert predicted.tolist() == [[1, 0, 2, 1]]
    assert masked_accuracy(EvalPrediction(predicted.numpy(), labels.numpy())) == {"masked_accuracy": 0.5}
    # With NSP the model returns (MLM logits, NSP logits) and the labels come as a pair too.
    assert predicted_tokens((logits, torch.zeros(1, 2)), labels).tolist() == [[1, 0, 2, 1]]
    nsp = EvalPrediction(predicted.numpy(), (labels.numpy(), numpy.array([0])))
    assert masked_accuracy(nsp) == {"masked_accuracy": 0.5}
    # The masked-positions head returns logits for the masked positions only: put back in place.
    placed = predicted_tokens(logits[0, [0, 2]], labels)
    assert placed.tolist() == [[1, -100, 2, -100]]
    assert masked_accuracy(EvalPrediction(placed.numpy(), labels.numpy())) == {"masked_accuracy": 0.5}
