"""A tiny fine-tuned pipeline for the analysis tests.

The head is the test-only text classifier (``tests/toy_head.py``: listener ->
[CLS] -> Softmax) with decoded predictions, so these tests depend on no real head. The session-scoped
``trained`` fixture trains it for a few steps from the tiny encoder, saving its
weights at step 0 and every 4 steps with the ``save_weights.v1`` callback.
"""
from pathlib import Path
from typing import Dict

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.util import fix_random_seed

from spacy_bert_tasks.analysis.recording import configure_save_weights

from ..conftest import encoder_config
from ..toy_head import FACTORY as TOY_FACTORY
from ..toy_head import cats_examples

TRAIN = [
    ("Alice Smith praised Globex, great news.", "POS"),
    ("Chen Wei called it terrible news.", "NEG"),
    ("A bright morning in Paris, good news.", "POS"),
    ("Bad news for everyone in Lima.", "NEG"),
] * 2
DEV = [("Great news in Oslo.", "POS"), ("Terrible news in Kyoto.", "NEG")] * 2
N_STEPS = 12
EVERY = 4


def make_examples(nlp: Language, data) -> list:
    return cats_examples(nlp, data)


def write_corpus(nlp: Language, data, path: Path) -> Path:
    DocBin(docs=[eg.reference for eg in make_examples(nlp, data)]).to_disk(path)
    return path


@pytest.fixture(scope="session")
def trained(tiny_encoder, tmp_path_factory) -> Dict[str, object]:
    """A pipeline trained N_STEPS steps, its corpora, checkpoints and step-0 weights."""
    root = tmp_path_factory.mktemp("analysis")
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=encoder_config(tiny_encoder))
    nlp.add_pipe(TOY_FACTORY, name="textcat", config={"decoded": True})
    train = make_examples(nlp, TRAIN)
    optimizer = nlp.initialize(lambda: train)
    save = configure_save_weights(str(root / "checkpoints"), every=EVERY)
    for step in range(N_STEPS):
        save(nlp, {"step": step, "epoch": 0})
        nlp.update(train, sgd=optimizer, drop=0.0)
    nlp.to_disk(root / "model")
    return {
        "nlp": nlp,
        "model": root / "model",
        "encoder": tiny_encoder,
        "checkpoints": root / "checkpoints",
        "initial": root / "checkpoints" / "step-000000.safetensors",
        "train": write_corpus(nlp, TRAIN, root / "train.spacy"),
        "dev": write_corpus(nlp, DEV, root / "dev.spacy"),
        "root": root,
    }
