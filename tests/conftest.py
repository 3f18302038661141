"""Fixtures everyone uses: a tiny encoder built offline, blank pipelines, samples.

The encoder is trained from ``SAMPLE_TEXT`` (written for these tests) by
``init-encoder``'s own functions, once per session, into a temp folder.
"""
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

_NAMES = ["Alice Smith", "Bruno Diaz", "Chen Wei", "Dana Okafor", "Emil Novak"]
_PLACES = ["Paris", "Lagos", "Kyoto", "Lima", "Oslo", "Denver"]
_ORGS = ["Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Labs"]
_VERBS = ["visited", "left", "praised", "joined", "called", "described"]


def make_sample_text(n_lines: int = 400, seed: int = 0) -> str:
    """Plain English-ish sentences with names, places and organisations."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        lines.append(
            f"{rng.choice(_NAMES)} {rng.choice(_VERBS)} {rng.choice(_ORGS)} in "
            f"{rng.choice(_PLACES)} on a {rng.choice(['cold', 'bright', 'quiet'])} "
            f"{rng.choice(['morning', 'evening', 'day'])}, and it was "
            f"{rng.choice(['good', 'bad', 'great', 'terrible'])} news for everyone."
        )
        lines.append(
            f"Who {rng.choice(_VERBS)} {rng.choice(_ORGS)}? What happened in {rng.choice(_PLACES)} "
            f"in {rng.randint(1900, 2030)}; why (and how) did it cost ${rng.randint(1, 999)}.{rng.randint(0, 99)}?"
        )
    return "\n".join(lines) + "\n"


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    default = "slow: reads ../shared/data, runs a workflow or hundreds of updates; pass --slow"
    for item in items:
        marker = item.get_closest_marker("slow")
        if marker is not None:
            item.add_marker(pytest.mark.skip(reason=marker.kwargs.get("reason", default)))


@pytest.fixture(scope="session")
def sample_text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "sample.txt"
    path.write_text(make_sample_text(), encoding="utf8")
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory, sample_text_file) -> Path:
    """A 2-layer, 128-wide BERT with a WordPiece vocabulary trained offline."""
    from spacy_bert_tasks.pretraining.init_encoder import init_encoder

    output = tmp_path_factory.mktemp("encoders") / "tiny"
    return init_encoder([sample_text_file], output, size="tiny", vocab_size=600, max_positions=512)


@pytest.fixture(scope="session")
def pretrained_encoder(tmp_path_factory) -> Path:
    """The real pretrained all-MiniLM-L6-v2, copied and checked by ``get-encoder``'s function."""
    from spacy_bert_tasks.pretraining.checkpoints import get_encoder

    try:
        path, _ = get_encoder("all-MiniLM-L6-v2", tmp_path_factory.mktemp("encoders") / "minilm")
    except ModuleNotFoundError as err:
        pytest.skip(reason=f"the pretrained checkpoint is not installed: {err}")
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(reason=f"{SHARED_DATA} is not there; the real datasets are optional")
    return SHARED_DATA


def encoder_config(encoder_path: Path, **settings) -> dict:
    """The ``transformer`` component config for the tests' tiny encoder."""
    model = {
        "@architectures": "spacy_bert_tasks.Encoder.v1",
        "name": str(encoder_path),
        "max_length": 64,
        "stride": 16,
        "max_question_length": 16,
        "max_pair_length": 16,
    }
    model.update(settings)
    return {"model": model}


@pytest.fixture
def make_nlp(tiny_encoder):
    """``make_nlp(**encoder_settings)``: a blank English pipeline with the shared encoder."""
    import spacy

    def _make(**settings):
        nlp = spacy.blank("en")
        nlp.add_pipe("transformer", config=encoder_config(tiny_encoder, **settings))
        return nlp

    return _make


# The trained multi-task teacher and its encoders (distillation and quantization tests).
from tests.teachers import deep_encoder, narrow_encoder, teacher_dir  # noqa: E402,F401
