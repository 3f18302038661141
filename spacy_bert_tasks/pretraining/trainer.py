"""Hugging Face ``Trainer`` as the MLM run uses it: reproducible resumes, marked checkpoints.

A resumed run reaches the same weights as an unbroken one (``EpochSampler``,
``SeededCollator``), and a checkpoint counts as written only once it is whole
(``CheckpointMarker``, ``is_complete_checkpoint``).
"""
import json
import math
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

START_FILE = "pretrain_start.json"
COMPLETE_FILE = "checkpoint_complete.json"
INIT_DIR = "init-encoder"


class PretrainingTrainer(Trainer):
    """Trainer that logs perplexity, and resumes to the same weights as an unbroken run.

    In stock Trainer a resumed run draws other random numbers than an unbroken one:
    the shuffling sampler takes its seed from the global torch generator, and the
    collator masks with it too, one batch ahead of the step (the data loader
    prefetches), so the RNG state a checkpoint restores is not the one the next
    batch was masked with. Here the order is a function of the seed and the epoch
    (``EpochSampler``), and each batch is masked with a generator seeded by the seed
    and the batch's number (``SeededCollator``); the global generator is left to
    dropout, whose state Trainer saves and restores. Exact with
    ``dataloader_num_workers=0`` (the default); worker processes count their own batches.
    """

    def log(self, logs: Dict[str, float], start_time: Optional[float] = None) -> None:
        if "eval_loss" in logs:
            logs["eval_perplexity"] = perplexity(logs["eval_loss"])
        super().log(logs, start_time)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return EpochSampler(len(dataset), seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed)


class EpochSampler(torch.utils.data.Sampler):
    """A shuffled order that depends on the seed and the epoch only, not on the global RNG."""

    def __init__(self, n: int, *, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist())


class SeededCollator:
    """``collator`` run with the torch generator seeded by (seed, process, batch number).

    The masks of a batch then depend on which training batch of the run it is, not on
    what drew random numbers before; a resumed run starts counting at the batches done.
    The global generator is put back as it was after each batch.
    """

    def __init__(self, collator: Callable, *, seed: int, process_index: int = 0, start: int = 0) -> None:
        self.collator = collator
        self.seed = seed
        self.process_index = process_index
        self.n_batches = start

    def __call__(self, examples: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        if examples and "labels" in examples[0]:
            return self.collator(examples)  # the held-out set, masked once already: not counted
        key = np.random.SeedSequence([self.seed, self.process_index, self.n_batches]).generate_state(1)[0]
        self.n_batches += 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(key))
            return self.collator(examples)


class CheckpointMarker(TrainerCallback):
    """Write ``COMPLETE_FILE`` into a checkpoint once Trainer has written all of it.

    A run killed while saving leaves a checkpoint folder without it, which
    ``--resume`` then passes over for the last complete one.
    """

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if folder.is_dir():
                (folder / COMPLETE_FILE).write_text(json.dumps({"global_step": state.global_step}) + "\n")
        return control


def predicted_tokens(logits: Any, labels: torch.Tensor) -> torch.Tensor:
    """The predicted piece at every position of the batch (argmax), so evaluation keeps ids, not logits.

    A masked-positions head (model.py) returns logits for the masked positions only,
    in row-major order; they go back to their places, -100 elsewhere, so batches
    concatenate as Trainer expects.
    """
    logits = logits[0] if isinstance(logits, (tuple, list)) else logits  # MLM + NSP heads: the MLM logits
    labels = labels[0] if isinstance(labels, (tuple, list)) else labels
    if logits.dim() == 2:
        placed = torch.full_like(labels, -100)
        placed[labels != -100] = logits.argmax(dim=-1)
        return placed
    return logits.argmax(dim=-1)


def masked_accuracy(prediction: Any) -> Dict[str, float]:
    """Share of the held-out masked positions whose original piece the head predicts (as run_mlm.py reports)."""
    predicted, labels = prediction.predictions, prediction.label_ids
    labels = labels[0] if isinstance(labels, (tuple, list)) else labels  # NSP adds next_sentence_label
    scored = labels != -100
    return {"masked_accuracy": float((predicted[scored] == labels[scored]).mean()) if scored.any() else 0.0}


def perplexity(loss: float) -> float:
    """exp(loss), infinite rather than an overflow."""
    return math.exp(loss) if loss < 700 else float("inf")


def is_complete_checkpoint(path: Path) -> bool:
    """Whether Trainer finished writing the checkpoint folder ``path``.

    It is complete with our marker (``CheckpointMarker``), or, for a checkpoint
    written without it, with a readable ``trainer_state.json``: Trainer writes that
    file after the weights, optimizer and RNG states.
    """
    if (path / COMPLETE_FILE).is_file():
        return True
    try:
        json.loads((path / "trainer_state.json").read_text(encoding="utf8"))
    except (OSError, ValueError):
        return False
    return any((path / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json"))


def list_checkpoints(checkpoint_dir: Path) -> List[Path]:
    """The ``checkpoint-N`` folders, by step."""
    if not checkpoint_dir.is_dir():
        return []
    folders = [path for path in checkpoint_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if path.is_dir()]
    return sorted((path for path in folders if path.name.split("-")[-1].isdigit()), key=checkpoint_step)


def checkpoint_step(path: Path) -> int:
    """The step of a ``checkpoint-N`` folder: N."""
    return int(path.name.split("-")[-1])


def remove_run(checkpoint_dir: Path) -> None:
    """Delete an earlier run's checkpoints and fresh encoder; keep the tokenised cache."""
    for path in checkpoint_dir.glob("checkpoint-*"):
        shutil.rmtree(path)
    for name in (INIT_DIR, START_FILE):
        path = checkpoint_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
