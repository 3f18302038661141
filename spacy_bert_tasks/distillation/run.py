"""``spacy-bert-tasks distill``: the run, with progress, checkpoints and resume.

The student trains for ``steps`` batches over shuffled epochs of the data
(each epoch's order comes from ``seed`` and the epoch, so a resumed run reads
what the first would have). Every ``checkpoint_every`` steps the student and
the run's state go to the checkpoint folder; ``resume`` starts from there.
The Adam moments start afresh on resume; the learning-rate schedule goes on.
"""
import logging
import random
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import spacy
import srsly
from spacy.language import Language
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch
from thinc.api import warmup_linear
from tqdm import tqdm

from ..fine_tuning import configure_global_clip_adam
from ..ml.encoder.shim import check_save_dtype
from .data import read_examples, teacher_corpora
from .step import StepSettings, distill_step
from .student import encoder_models, make_student, set_save_dtype

logger = logging.getLogger(__name__)
STATE_FILE = "state.json"


@dataclass(frozen=True)
class DistillSettings:
    """The run. steps: batches to train on; batch_size: docs a batch; learn_rate:
    peak Adam rate after ``warmup`` (a fraction of the steps), then linear decay;
    checkpoint_every: steps between checkpoints (0: only at the end); limit: docs
    read from each file (0: all); save_dtype: what the output's encoder weights
    are written as ("float16" halves its size; checkpoints stay float32)."""

    steps: int = 1000
    batch_size: int = 32
    learn_rate: float = 1e-4
    warmup: float = 0.1
    checkpoint_every: int = 200
    seed: int = 0
    limit: int = 0
    save_dtype: str = "float32"
    step: StepSettings = field(default_factory=StepSettings)


def distill(
    teacher_path: Union[str, Path],
    output: Union[str, Path],
    *,
    corpora: Sequence[Union[str, Path]] = (),
    texts: Sequence[Union[str, Path]] = (),
    n_layers: Optional[int] = None,
    student_encoder: Optional[Union[str, Path]] = None,
    settings: DistillSettings = DistillSettings(),
    checkpoints: Optional[Union[str, Path]] = None,
    resume: bool = False,
    progress: bool = True,
    on_step: Optional[Callable[[int, Dict[str, float]], None]] = None,
) -> Path:
    """Distil the pipeline at ``teacher_path`` into a smaller student written to ``output``.

    corpora: ``.spacy`` files (default: the teacher's ``paths.train``, where it exists).
    texts: plain-text files, one unlabelled doc a line.
    n_layers, student_encoder: the student (see ``make_student``).
    checkpoints: the checkpoint folder (default: ``OUTPUT.checkpoint`` beside OUTPUT).
    resume: start from the checkpoint's student and step, when there is one.
    RETURNS (Path): ``output``.
    """
    check_save_dtype(settings.save_dtype)  # before hours of training, not after
    output = Path(output)
    checkpoints = Path(checkpoints) if checkpoints else output.with_name(output.name + ".checkpoint")
    fix_random_seed(settings.seed)
    teacher = spacy.load(teacher_path)
    state = srsly.read_json(checkpoints / STATE_FILE) if resume and (checkpoints / STATE_FILE).exists() else None
    if state is not None:
        student, start = spacy.load(checkpoints / "model"), int(state["step"])
        logger.info("Resuming from %s at step %d", checkpoints, start)
    else:
        student, start = make_student(teacher_path, n_layers=n_layers, student_encoder=student_encoder), 0
    _check_pair(teacher, student, settings.step)
    corpora = list(corpora) or teacher_corpora(teacher)
    examples = read_examples(student, corpora, texts, limit=settings.limit)
    optimizer = _optimizer(settings, start)
    batches = islice(_batches(examples, settings), start, settings.steps)
    bar = tqdm(batches, total=max(settings.steps - start, 0), initial=0, desc="distil", disable=not progress)
    for step, batch in enumerate(bar, start=start + 1):
        losses = distill_step(teacher, student, batch, settings.step, optimizer)
        optimizer.step_schedules()
        bar.set_postfix({name: f"{loss:.3f}" for name, loss in losses.items()})
        if on_step is not None:
            on_step(step, losses)
        if settings.checkpoint_every and step % settings.checkpoint_every == 0 and step < settings.steps:
            save_checkpoint(student, checkpoints, step, settings)
    _finish(student, teacher, teacher_path, settings)
    set_save_dtype(student, settings.save_dtype)
    student.to_disk(output)
    set_save_dtype(student, "float32")  # the checkpoint keeps every bit, so a resume is exact
    save_checkpoint(student, checkpoints, max(settings.steps, start), settings)
    return output


def save_checkpoint(student: Language, folder: Path, step: int, settings: DistillSettings) -> None:
    """Write the student and the step it reached."""
    folder.mkdir(parents=True, exist_ok=True)
    student.to_disk(folder / "model")
    srsly.write_json(folder / STATE_FILE, {"step": step, "settings": asdict(settings)})


def _batches(examples: List[Example], settings: DistillSettings) -> Iterator[List[Example]]:
    epoch = 0
    while True:
        order = list(examples)
        random.Random(settings.seed * 100_003 + epoch).shuffle(order)
        yield from minibatch(order, size=settings.batch_size)
        epoch += 1


def _optimizer(settings: DistillSettings, start: int):
    warm = int(settings.warmup * settings.steps)
    rates = list(islice(warmup_linear(settings.learn_rate, warm, settings.steps), settings.steps + 1))
    return configure_global_clip_adam(rates[start:] or rates[-1:], max_grad_norm=1.0, use_averages=False)


def _check_pair(teacher: Language, student: Language, step: StepSettings) -> None:
    """QA and the hidden-state loss compare word pieces: they need the teacher's tokenizer."""
    has_qa = any(pipe.__class__.__name__ == "BertQA" for _, pipe in teacher.pipeline)
    if not (has_qa or step.hidden_weight):
        return
    for t_enc, s_enc in zip(encoder_models(teacher), encoder_models(student)):
        if t_enc.tokenizer.get_vocab() != s_enc.tokenizer.get_vocab():
            raise ValueError(
                "The student's tokenizer differs from the teacher's: QA and the hidden-state loss compare "
                "word pieces, so they need the same vocabulary. Use a student made with the teacher's vocabulary."
            )


def _finish(student: Language, teacher: Language, teacher_path: Union[str, Path], settings: DistillSettings) -> None:
    layers = [enc.transformer.config.num_hidden_layers for enc in encoder_models(student)]
    student.meta["name"] = f"{teacher.meta.get('name', 'pipeline')}_distilled"
    student.meta["distillation"] = {
        "teacher": str(teacher_path), "layers": layers, "steps": settings.steps,
        "temperature": settings.step.temperature, "gold_weight": settings.step.gold_weight,
        "hidden_weight": settings.step.hidden_weight,
    }
