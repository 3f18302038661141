"""Fixtures for distillation and quantization: a trained multi-task teacher (textcat, NER, QA on one 4-layer encoder), built once per session.

The encoder is conftest's tiny encoder (``tiny_encoder``) with four layers
instead of two; a narrower one (64 wide, same vocabulary) is a student
from another folder. The corpora are written as ``.spacy`` files.
"""
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import fix_random_seed

from tests.conftest import encoder_config

TEXTCAT = [
    ("Alice Smith praised Globex, and it was good news.", "POS"),
    ("Chen Wei joined Initech in Oslo, great news for everyone.", "POS"),
    ("Bruno Diaz left Acme Corp in Lima, and it was bad news.", "NEG"),
    ("Dana Okafor called Stark Labs, terrible news for everyone.", "NEG"),
]
NER = [
    ("Alice Smith visited Paris on a cold morning.", [(0, 11, "PER"), (20, 25, "LOC")]),
    ("Bruno Diaz joined Acme Corp in Lagos.", [(0, 10, "PER"), (18, 27, "ORG"), (31, 36, "LOC")]),
    ("Chen Wei left Globex in Kyoto.", [(0, 8, "PER"), (14, 20, "ORG"), (24, 29, "LOC")]),
]
QA = [
    ("Alice Smith visited Acme Corp in Paris on a cold morning.", "Who visited Acme Corp?", "Alice Smith"),
    ("Bruno Diaz left Globex in Lima on a bright evening.", "Where did Bruno Diaz leave Globex?", "Lima"),
]
UNLABELLED = [
    "Emil Novak visited Stark Labs in Denver on a quiet day, and it was great news.",
    "Dana Okafor left Umbrella Health in Kyoto, and it was terrible news for everyone.",
    "Chen Wei called Globex in Lagos on a bright morning.",
    "Alice Smith joined Initech in Oslo, good news for everyone.",
]


def joint_examples(nlp) -> list:
    """Gold examples of all three tasks, each doc annotated for one task."""
    examples = []
    for text, label in TEXTCAT:
        cats = {"POS": float(label == "POS"), "NEG": float(label == "NEG")}
        examples.append(Example.from_dict(nlp.make_doc(text), {"cats": cats}))
    for text, ents in NER:
        examples.append(Example.from_dict(nlp.make_doc(text), {"entities": ents}))
    for context, question, answer in QA:
        predicted = nlp.make_doc(context)
        predicted._.question = question
        start = context.index(answer)
        eg = Example.from_dict(predicted, {"spans": {"answers": [(start, start + len(answer), "ANSWER")]}})
        eg.reference._.question = question
        examples.append(eg)
    return examples


def _resized_encoder(source: Path, output: Path, **config_changes) -> Path:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(source)
    for key, value in config_changes.items():
        setattr(config, key, value)
    fix_random_seed(0)
    AutoModel.from_config(config).save_pretrained(output, safe_serialization=True)
    AutoTokenizer.from_pretrained(source).save_pretrained(output)
    return output


@pytest.fixture(scope="session")
def deep_encoder(tiny_encoder, tmp_path_factory) -> Path:
    """The tiny encoder's vocabulary in a 4-layer, 128-wide BERT."""
    return _resized_encoder(tiny_encoder, tmp_path_factory.mktemp("encoders") / "deep", num_hidden_layers=4)


@pytest.fixture(scope="session")
def narrow_encoder(tiny_encoder, tmp_path_factory) -> Path:
    """The same vocabulary in a 1-layer, 64-wide BERT: a student from another folder."""
    return _resized_encoder(
        tiny_encoder, tmp_path_factory.mktemp("encoders") / "narrow",
        num_hidden_layers=1, hidden_size=64, num_attention_heads=2, intermediate_size=128,
    )


@pytest.fixture(scope="session")
def teacher_dir(deep_encoder, tmp_path_factory) -> Path:
    """A joint teacher trained to fit its examples, on disk, with its corpus beside it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=encoder_config(deep_encoder))
    nlp.add_pipe("bert_textcat", config={"missing_pair": "skip"})
    nlp.add_pipe("bert_ner")
    nlp.add_pipe("bert_qa")
    examples = joint_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(30):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    torch.set_num_threads(threads)
    folder = tmp_path_factory.mktemp("teacher")
    nlp.to_disk(folder / "model")
    DocBin(docs=[eg.reference for eg in examples], store_user_data=True).to_disk(folder / "train.spacy")
    (folder / "text.txt").write_text("\n".join(UNLABELLED) + "\n", encoding="utf8")
    return folder


def qa_doc(nlp, context: str, question: str):
    doc = nlp.make_doc(context)
    doc._.question = question
    return doc


def probe_docs(nlp) -> list:
    """Docs every head reads: texts, and a question."""
    docs = [nlp.make_doc(text) for text in UNLABELLED + [t for t, _ in TEXTCAT]]
    return docs + [qa_doc(nlp, context, question) for context, question, _ in QA]

