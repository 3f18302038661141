"""Distillation: the student's shape and labels, the divergence it lowers, its round trip.

The teacher (``teacher_dir``) and the encoders come from tests/teachers.py.
"""
import subprocess
import sys

import pytest
import spacy

from spacy_bert_tasks.distillation import DistillSettings, StepSettings, distill, divergence, layer_indices, make_student
from spacy_bert_tasks.distillation.student import encoder_models

from tests.teachers import probe_docs


def _labels(nlp):
    return {name: tuple(getattr(pipe, "labels", ())) for name, pipe in nlp.pipeline}


@pytest.mark.parametrize("n_teacher,n_student,expected", [(6, 3, [0, 2, 4]), (12, 6, [0, 2, 4, 6, 8, 10]), (4, None, [0, 2]), (4, 4, [0, 1, 2, 3]), (2, 1, [0])])
def test_layer_indices(n_teacher, n_student, expected):
    assert layer_indices(n_teacher, n_student) == expected


def test_layer_indices_rejects_too_many():
    with pytest.raises(ValueError, match="choose 1 to 4"):
        layer_indices(4, 5)


@pytest.mark.parametrize("n_layers", [None, 3])
def test_student_has_requested_layers_and_teacher_labels(teacher_dir, n_layers):
    teacher = spacy.load(teacher_dir / "model")
    student = make_student(teacher_dir / "model", n_layers=n_layers)
    (encoder,) = encoder_models(student)
    assert encoder.transformer.config.num_hidden_layers == (n_layers or 2)
    assert len(encoder.transformer.encoder.layer) == (n_layers or 2)
    assert student.pipe_names == teacher.pipe_names
    assert _labels(student) == _labels(teacher)
    docs = list(student.pipe(probe_docs(student)))
    assert all(set(doc.cats) == {"POS", "NEG"} for doc in docs[:-2])


def test_student_from_another_folder_is_narrower(teacher_dir, narrow_encoder):
    student = make_student(teacher_dir / "model", student_encoder=narrow_encoder)
    (encoder,) = encoder_models(student)
    assert encoder.transformer.config.hidden_size == 64
    assert student.get_pipe("bert_ner").model.get_ref("output_layer").get_dim("nI") == 64
    doc = student(student.make_doc("Alice Smith visited Paris."))
    assert set(doc.cats) == {"POS", "NEG"}


@pytest.fixture(scope="module")
def distilled(teacher_dir, tmp_path_factory):
    """A 1-layer student distilled for two dozen steps, with the losses it reported."""
    output = tmp_path_factory.mktemp("student") / "model"
    seen = []
    settings = DistillSettings(steps=24, batch_size=8, learn_rate=1e-3, warmup=0.0, checkpoint_every=12,
                               step=StepSettings(temperature=2.0, gold_weight=0.5, hidden_weight=0.1, dropout=0.0))
    distill(teacher_dir / "model", output, corpora=[teacher_dir / "train.spacy"], texts=[teacher_dir / "text.txt"],
            n_layers=1, settings=settings, progress=False, on_step=lambda step, losses: seen.append(losses))
    return output, seen


def test_distillation_lowers_divergence(teacher_dir, distilled):
    """The 1-layer student (the teacher's layer 0) moves towards the teacher's outputs on every head."""
    output, _ = distilled
    teacher = spacy.load(teacher_dir / "model")
    before = divergence(teacher, make_student(teacher_dir / "model", n_layers=1), probe_docs(teacher))
    after = divergence(teacher, spacy.load(output), probe_docs(teacher))
    assert set(after) == {"bert_textcat", "bert_ner", "bert_qa"}
    for name in ("bert_textcat", "bert_ner", "bert_qa"):
        assert after[name] < 0.5 * before[name], (name, before, after)


def test_narrow_student_learns_ner_and_qa(teacher_dir, narrow_encoder, tmp_path):
    """A narrower student from another folder (heads drawn anew) moves towards the teacher's NER and QA.

    (Its encoder is random: in 24 steps its [CLS] vector hardly tells the four textcat docs apart.)
    """
    teacher = spacy.load(teacher_dir / "model")
    before = divergence(teacher, make_student(teacher_dir / "model", student_encoder=narrow_encoder), probe_docs(teacher))
    settings = DistillSettings(steps=24, batch_size=8, learn_rate=1e-3, warmup=0.0, checkpoint_every=0,
                               step=StepSettings(temperature=2.0, gold_weight=0.5, dropout=0.0))
    distill(teacher_dir / "model", tmp_path / "student", corpora=[teacher_dir / "train.spacy"],
            texts=[teacher_dir / "text.txt"], student_encoder=narrow_encoder, settings=settings, progress=False)
    after = divergence(teacher, spacy.load(tmp_path / "student"), probe_docs(teacher))
    for name in ("bert_ner", "bert_qa"):
        assert after[name] < 0.75 * before[name], (name, before, after)


def test_hidden_state_loss_goes_down(distilled):
    _, seen = distilled
    hidden = [losses["transformer_hidden"] for losses in seen]
    assert len(hidden) == 24
    assert sum(hidden[-4:]) < sum(hidden[:4])


def test_distilled_pipeline_round_trips_and_loads_fresh(teacher_dir, distilled, tmp_path):
    output, _ = distilled
    student = spacy.load(output)
    assert student.meta["distillation"]["layers"] == [1]
    texts = ["Alice Smith visited Paris.", "Bruno Diaz left Acme Corp in Lagos, bad news."]
    expected = [(doc.cats, [(e.text, e.label_) for e in doc.ents]) for doc in student.pipe(texts)]
    student.to_disk(tmp_path / "again")
    again = spacy.load(tmp_path / "again")
    assert [(doc.cats, [(e.text, e.label_) for e in doc.ents]) for doc in again.pipe(texts)] == expected
    in_two = [doc.cats["POS"] for doc in again.pipe(texts, n_process=2)]
    assert in_two == pytest.approx([cats["POS"] for cats, _ in expected], abs=1e-5)
    code = (
        "import spacy, sys; nlp = spacy.load(sys.argv[1]); "
        "print(len(nlp.get_pipe('transformer').model.transformer.encoder.layer), sorted(nlp('Alice left.').cats))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(output)], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[0] == "1 ['NEG', 'POS']"


def test_resume_goes_on_from_the_checkpoint(teacher_dir, distilled, tmp_path):
    output, _ = distilled
    checkpoints = output.with_name(output.name + ".checkpoint")
    assert (checkpoints / "state.json").exists()
    seen = []
    settings = DistillSettings(steps=27, batch_size=8, checkpoint_every=0)
    distill(teacher_dir / "model", tmp_path / "more", corpora=[teacher_dir / "train.spacy"], checkpoints=checkpoints,
            resume=True, settings=settings, progress=False, on_step=lambda step, losses: seen.append(step))
    assert seen == [25, 26, 27]
    assert len(encoder_models(spacy.load(tmp_path / "more")).__next__().transformer.encoder.layer) == 1


def test_no_data_is_a_clear_error(teacher_dir, tmp_path):
    with pytest.raises(ValueError, match="No data to distil on"):
        distill(teacher_dir / "model", tmp_path / "out", settings=DistillSettings(steps=1), progress=False)
