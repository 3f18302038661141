"""``spacy-bert-tasks distill`` and ``quantize`` from the command line (typer's CliRunner)."""
import spacy
from typer.testing import CliRunner

from spacy_bert_tasks.cli import app
from spacy_bert_tasks.distillation.student import encoder_models

runner = CliRunner()


def test_distill_cli_writes_a_student(teacher_dir, tmp_path):
    output = tmp_path / "student"
    result = runner.invoke(app, [
        "distill", str(teacher_dir / "model"), str(output), "--corpus", str(teacher_dir / "train.spacy"),
        "--text", str(teacher_dir / "text.txt"), "--layers", "3", "--steps", "2", "--batch-size", "4", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert "Wrote the student pipeline" in result.output
    student = spacy.load(output)
    assert [e.transformer.config.num_hidden_layers for e in encoder_models(student)] == [3]
    assert student.get_pipe("bert_ner").labels == ("LOC", "ORG", "PER")
    assert student.meta["distillation"]["steps"] == 2
    assert (tmp_path / "student.checkpoint" / "state.json").exists()


def test_distill_cli_reports_bad_settings(teacher_dir, tmp_path):
    result = runner.invoke(app, [
        "distill", str(teacher_dir / "model"), str(tmp_path / "out"), "--corpus", str(teacher_dir / "train.spacy"),
        "--layers", "9", "--steps", "1", "--no-progress",
    ])
    assert result.exit_code == 1
    assert "choose 1 to 4" in result.output


def test_help_explains_both_commands():
    for command, words in (("distill", ["soft", "--temperature", "--resume", "--layers"]), ("quantize", ["int8", "onnx"])):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
        assert all(word in result.output.lower() for word in words), result.output
