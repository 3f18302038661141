"""``spacy-bert-tasks distill`` and ``quantize`` from the command line (typer's CliRunner)."""
import spacy
import torch
from typer.testing import CliRunner

from spacy_bert_tasks.cli import app
from spacy_bert_tasks.distillation.student import encoder_models

runner = CliRunner()


def distill(teacher_dir, output, *options: str):
    """``spacy-bert-tasks distill`` of the test teacher on its training corpus, without a progress bar."""
    return runner.invoke(app, ["distill", str(teacher_dir / "model"), str(output), "--corpus",
                               str(teacher_dir / "train.spacy"), *options, "--no-progress"])


def encoder_bytes(pipeline) -> int:
    return (pipeline / "transformer" / "model").stat().st_size


def test_distill_cli_writes_a_student(teacher_dir, tmp_path):
    output = tmp_path / "student"
    result = distill(teacher_dir, output, "--text", str(teacher_dir / "text.txt"), "--layers", "3", "--steps", "2",
                     "--batch-size", "4")
    assert result.exit_code == 0, result.output
    assert "Wrote the student pipeline" in result.output
    student = spacy.load(output)
    assert [e.transformer.config.num_hidden_layers for e in encoder_models(student)] == [3]
    assert student.get_pipe("bert_ner").labels == ("LOC", "ORG", "PER")
    assert student.meta["distillation"]["steps"] == 2
    assert (tmp_path / "student.checkpoint" / "state.json").exists()


def test_distill_cli_reports_bad_settings(teacher_dir, tmp_path):
    result = distill(teacher_dir, tmp_path / "out", "--layers", "9", "--steps", "1")
    assert result.exit_code == 1
    assert "choose 1 to 4" in result.output


def test_help_explains_both_commands():
    for command, words in (("distill", ["soft", "--temperature", "--resume", "--layers"]), ("quantize", ["int8", "onnx"])):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
        assert all(word in result.output.lower() for word in words), result.output


def test_distill_cli_writes_half_precision(teacher_dir, tmp_path):
    """--save-dtype float16: the student's encoder is the checkpoint's (float32) rounded, at about half the bytes."""
    output = tmp_path / "student"
    result = distill(teacher_dir, output, "--steps", "2", "--batch-size", "4", "--save-dtype", "float16")
    assert result.exit_code == 0, result.output
    checkpoint = tmp_path / "student.checkpoint" / "model"
    assert encoder_bytes(output) < 0.6 * encoder_bytes(checkpoint)
    student, full = spacy.load(output), spacy.load(checkpoint)
    assert student.get_pipe("transformer").model.save_dtype == "float16"
    assert full.get_pipe("transformer").model.save_dtype == "float32"
    ours = student.get_pipe("transformer").model.transformer.state_dict()
    for name, weights in full.get_pipe("transformer").model.transformer.state_dict().items():
        if weights.is_floating_point():
            assert torch.equal(ours[name], weights.half().float()), name


def test_distill_cli_refuses_an_unknown_dtype(teacher_dir, tmp_path):
    result = distill(teacher_dir, tmp_path / "out", "--steps", "1", "--save-dtype", "int3")
    assert result.exit_code == 1
    assert "use one of float32, float16, bfloat16" in result.output
    assert not (tmp_path / "out").exists()
