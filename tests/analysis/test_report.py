"""`analyze` end to end: JSON numbers, figures, the CLI, the training hooks."""
import json

import numpy
import pytest
import spacy
import srsly
from spacy.util import load_config
from typer.testing import CliRunner

from spacy_bert_tasks.analysis.losses import TOTAL, pipeline_loss, read_examples
from spacy_bert_tasks.analysis.params import get_weights, load_weights, set_weights
from spacy_bert_tasks.analysis.analyze import analyze_pipeline, compare_runs
from spacy_bert_tasks.analysis.recording import configure_training_log, instrument_config
from spacy_bert_tasks.pretraining.init_encoder import reinit_encoder
from spacy_bert_tasks.cli import app

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    data = open(path, "rb").read()
    return data.startswith(PNG_MAGIC) and len(data) > 10_000


def _write_log(path, scores):
    rows = [{"step": i * 4, "epoch": 0, "losses": {"textcat": 1.0 / (i + 1)}, "score": s, "scores": {}} for i, s in enumerate(scores)]
    srsly.write_jsonl(path, rows)
    return path


@pytest.fixture(scope="module")
def analysed(trained):
    out = trained["root"] / "analysis"
    log = _write_log(trained["root"] / "log.jsonl", [0.5, 0.75, 1.0])
    result = analyze_pipeline(
        trained["nlp"], out, train_path=trained["train"], dev_path=trained["dev"],
        checkpoints_dir=trained["checkpoints"], training_log=log, n_batches=1, batch_size=8,
        alpha_steps=5, grid_size=3, sharpness_directions=1, progress=False,
    )
    return out, result


def test_analysis_numbers_match_direct_measurements(trained, analysed):
    out, result = analysed
    nlp = trained["nlp"]
    saved = json.loads((out / "analysis.json").read_text())
    assert saved["interpolation"] == result["interpolation"]
    # θ0 defaulted to the step-0 checkpoint
    assert saved["settings"]["initial"].endswith("step-000000.safetensors")
    assert result["interpolation"]["alpha"] == [-0.5, 0.0, 0.5, 1.0, 1.5]
    train = read_examples(nlp, trained["train"], split="train", limit=8, seed=0)
    assert result["settings"]["examples_per_split"] == {"train": 8, "dev": 4}
    theta1 = get_weights(nlp)
    at1 = pipeline_loss(nlp, train, batch_size=8)[TOTAL]
    assert result["interpolation"]["train"][3] == pytest.approx(at1, rel=1e-5)
    assert result["landscape"]["loss"][1][1] == pytest.approx(at1, rel=1e-5)
    assert result["sharpness"]["base_loss"] == pytest.approx(at1, rel=1e-5)
    set_weights(nlp, load_weights(trained["initial"]))
    assert result["interpolation"]["train"][1] == pytest.approx(pipeline_loss(nlp, train, batch_size=8)[TOTAL], rel=1e-5)
    set_weights(nlp, theta1)
    traj = result["trajectory"]
    assert traj["steps"] == [0, 4, 8, "final"] and traj["points"][-1] == (0.0, 0.0)
    assert numpy.asarray(traj["loss"]).shape == (3, 3)
    assert saved["log"][-1]["score"] == 1.0


def test_figures_are_pngs(analysed):
    out, result = analysed
    assert set(result["figures"]) == {"drift", "interpolation", "landscape", "trajectory"}
    for path in result["figures"].values():
        assert _is_png(path), path


def test_compare_runs(trained, analysed, tmp_path):
    out, result = analysed
    summary = compare_runs({"pre-trained": out, "again": out / "analysis.json"}, tmp_path)
    assert _is_png(tmp_path / "compare.png")
    run = summary["runs"]["pre-trained"]
    assert run["best_dev_score"] == 1.0
    assert run["drift_total"] == pytest.approx(result["drift"]["total"])
    assert run["most_drifted_layers"][0] == max(result["drift"]["layers"], key=result["drift"]["layers"].get)
    assert json.loads((tmp_path / "compare.json").read_text())["runs"]["again"] == json.loads(json.dumps(run))
    with pytest.raises(FileNotFoundError, match="analyze pipeline"):
        compare_runs({"missing": tmp_path / "nothing"}, tmp_path)


def test_analyze_rejects_bad_settings(trained, tmp_path):
    with pytest.raises(ValueError, match="Unknown analyses"):
        analyze_pipeline(trained["nlp"], tmp_path, analyses=["drift", "hessian"])
    with pytest.raises(ValueError, match="corpus"):
        analyze_pipeline(trained["nlp"], tmp_path, analyses=["interpolation"])


def test_cli_pipeline_and_compare(trained, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(app, [
        "analyze", "pipeline", str(trained["model"]), "-o", str(out), "--initial", str(trained["encoder"]),
        "--dev", str(trained["dev"]), "--only", "drift,interpolation", "--n-batches", "1", "--batch-size", "4",
        "--alpha-steps", "3", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "analysis.json").read_text())
    # an encoder folder as θ0: the heads start from a fresh initialisation
    assert "fresh initialisation" in saved["settings"]["initial"]
    assert saved["interpolation"]["alpha"] == [-0.5, 0.5, 1.5]
    assert saved["drift"]["layers"]["textcat"] > 0
    assert _is_png(out / "drift.png") and _is_png(out / "interpolation.png")
    result = runner.invoke(app, ["analyze", "compare", f"a={out}", f"b={out}", "-o", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert _is_png(tmp_path / "cmp" / "compare.png")
    assert "drift lower / upper half" in result.output and "sharpness" in result.output
    result = runner.invoke(app, ["analyze", "compare", "no-label", "-o", str(tmp_path)])
    assert result.exit_code == 1 and "LABEL=FOLDER" in result.output


def test_instrumented_config_and_logger(trained, tmp_path):
    nlp = trained["nlp"]
    nlp.config.to_disk(tmp_path / "base.cfg")
    runner = CliRunner()
    result = runner.invoke(app, [
        "analyze", "config", str(tmp_path / "base.cfg"), "-o", str(tmp_path / "out.cfg"),
        "--weights-dir", "ckpt", "--log", "log.jsonl", "--every", "50",
    ])
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "out.cfg", interpolate=False)
    assert config["training"]["before_update"] == {"@callbacks": "spacy_bert_tasks.save_weights.v1", "output_dir": "ckpt", "every": 50}
    assert config["training"]["logger"]["@loggers"] == "spacy_bert_tasks.TrainingLog.v1"
    log_step, finalize = configure_training_log(str(tmp_path / "log.jsonl"), console=False)(nlp)
    log_step(None)
    log_step({"step": 10, "epoch": 1, "losses": {"transformer": 0.25, "textcat": 2.5}, "score": 0.5, "other_scores": {"cats_score": 0.5, "per": {}}, "seconds": 3, "words": 9})
    finalize()
    rows = list(srsly.read_jsonl(tmp_path / "log.jsonl"))
    assert rows == [{"step": 10, "epoch": 1, "seconds": 3, "losses": {"transformer": 0.25, "textcat": 2.5}, "score": 0.5, "scores": {"cats_score": 0.5}}]
    with pytest.raises(ValueError, match="training"):
        (tmp_path / "bad.cfg").write_text("[nlp]\nlang = \"en\"\n")
        instrument_config(tmp_path / "bad.cfg", tmp_path / "x.cfg", weights_dir="w", log_path="l")


def test_random_encoder_has_same_shape_and_new_weights(trained, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", "random-encoder", str(trained["encoder"]), str(tmp_path / "rand"), "--seed", "1"])
    assert result.exit_code == 0, result.output
    before, after = load_weights(trained["encoder"]), load_weights(tmp_path / "rand")
    assert {k: v.shape for k, v in before.items()} == {k: v.shape for k, v in after.items()}
    key = "transformer/encoder.layer.0.attention.self.query.weight"
    assert not numpy.allclose(before[key], after[key])
    assert numpy.array_equal(load_weights(reinit_encoder(trained["encoder"], tmp_path / "again", seed=1))[key], after[key])
    # usable as the pipeline's encoder
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"@architectures": "spacy_bert_tasks.Encoder.v1", "name": str(tmp_path / "rand")}})
    nlp.initialize()
    assert nlp("Alice visited Paris.")._.trf_data.model_output.last_hidden_state.shape[-1] == 128


def test_run_findings_summarise_the_three_questions(tmp_path):
    from spacy_bert_tasks.analysis.analyze import run_findings

    log = [
        {"step": 10, "losses": {"bert_textcat": 20.0}, "score": 0.5},
        {"step": 20, "losses": {"bert_textcat": 5.0}, "score": 0.9},
        {"step": 40, "losses": {"bert_textcat": 2.0}, "score": 0.8},
    ]
    drift = {"total": 0.2, "layers": {"embeddings": 0.05, "layer 0": 0.1, "layer 1": 0.3, "layer 2": 0.2, "layer 3": 0.4, "bert_textcat": 1.0}}
    found = run_findings({"log": log, "drift": drift, "sharpness": {"mean": 0.25, "max": 0.5}})
    assert found["best_dev_score"] == 0.9 and found["best_dev_step"] == 20 and found["final_dev_score"] == 0.8
    assert found["dev_drop_from_best"] == pytest.approx(0.1)
    # spaCy sums the losses since the last evaluation: per step, 20/10 first and 2/20 last
    assert found["first_train_loss"] == pytest.approx(2.0) and found["final_train_loss"] == pytest.approx(0.1)
    assert found["sharpness_mean"] == 0.25
    assert found["drift_lower_half"] == pytest.approx(0.2) and found["drift_upper_half"] == pytest.approx(0.3)
    assert found["drift_depth_correlation"] == pytest.approx(0.8)
    assert found["most_drifted_layers"] == ["bert_textcat", "layer 3", "layer 1"]
    empty = run_findings({})
    assert empty["best_dev_score"] is None and empty["drift_depth_correlation"] is None
