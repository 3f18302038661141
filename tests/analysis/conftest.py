"""A tiny fine-tuned pipeline for the analysis tests.

The head is a test-only text classifier (``analysis_test_textcat``: listener ->
[CLS] -> Softmax), so these tests depend on no real head. The session-scoped
``trained`` fixture trains it for a few steps from the tiny encoder, saving its
weights at step 0 and every 4 steps with the ``save_weights.v1`` callback.
"""
from pathlib import Path
from typing import Dict

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import fix_random_seed
from spacy_transformers.layers import TransformerListener
from thinc.api import CategoricalCrossentropy, Softmax, chain

from spacy_bert_tasks.analysis.training import make_save_weights
from spacy_bert_tasks.ml.pooling import cls_pooling
from spacy_bert_tasks.pipeline.base import BertTaskPipe

from ..conftest import encoder_config

TRAIN = [
    ("Alice Smith praised Globex, great news.", "POS"),
    ("Chen Wei called it terrible news.", "NEG"),
    ("A bright morning in Paris, good news.", "POS"),
    ("Bad news for everyone in Lima.", "NEG"),
] * 2
DEV = [("Great news in Oslo.", "POS"), ("Terrible news in Kyoto.", "NEG")] * 2
N_STEPS = 12
EVERY = 4


class _TestTextcat(BertTaskPipe):
    def predict(self, docs):
        # decoded, like bert_ner's: the loss must be taken on model.predict instead
        return self.model.predict(docs).argmax(axis=1)

    def set_annotations(self, docs, best):
        for doc, i in zip(docs, best):
            doc.cats = {label: float(j == i) for j, label in enumerate(self.labels)}

    def get_loss(self, examples, scores):
        truth = numpy.asarray(
            [[eg.reference.cats.get(label, 0.0) for label in self.labels] for eg in examples], dtype="f"
        )
        loss_fn = CategoricalCrossentropy(normalize=True)
        return loss_fn.get_loss(scores, truth), loss_fn.get_grad(scores, truth)

    def labels_from_examples(self, examples):
        return sorted({label for eg in examples for label in eg.reference.cats})


@Language.factory("analysis_test_textcat")
def make_test_textcat(nlp: Language, name: str):
    model = chain(TransformerListener("*"), cls_pooling(), Softmax(2, 128))
    return _TestTextcat(nlp.vocab, model, name)


def make_examples(nlp: Language, data) -> list:
    return [
        Example.from_dict(nlp.make_doc(text), {"cats": {"POS": float(label == "POS"), "NEG": float(label == "NEG")}})
        for text, label in data
    ]


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
    nlp.add_pipe("analysis_test_textcat", name="textcat")
    train = make_examples(nlp, TRAIN)
    optimizer = nlp.initialize(lambda: train)
    save = make_save_weights(str(root / "checkpoints"), every=EVERY)
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
