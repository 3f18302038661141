"""Quantization: the int8 pipeline round-trips, loads in a fresh process and predicts close to fp32.

The teacher comes from tests/teachers.py (``teacher_dir``): textcat,
NER and QA on one 4-layer tiny encoder. Tolerance: textcat probabilities within
0.05 of fp32, NER tags of at least 90% of tokens the same, the last hidden
states at a mean cosine similarity of at least 0.95.
"""
import subprocess
import sys

import numpy
import pytest
import spacy

from typer.testing import CliRunner

from spacy_bert_tasks.cli import app
from spacy_bert_tasks.quantization import ARCHITECTURE, OnnxNetwork, quantize

from tests.teachers import probe_docs

pytest.importorskip("onnxruntime", reason="quantize needs onnxruntime (a dependency of the package)")


@pytest.fixture(scope="module")
def quantized(teacher_dir, tmp_path_factory):
    """The teacher quantized from the command line, and what its meta says was done."""
    output = tmp_path_factory.mktemp("int8") / "model"
    result = CliRunner().invoke(app, ["quantize", str(teacher_dir / "model"), str(output)])
    assert result.exit_code == 0, result.output
    assert "Wrote the int8 pipeline" in result.output
    return output, spacy.load(output).meta["quantization"]


def _outputs(nlp, docs):
    docs = list(nlp.pipe(docs))
    cats = numpy.asarray([[doc.cats.get("POS", numpy.nan)] for doc in docs[:-2]])
    tags = [token.ent_iob_ + token.ent_type_ for doc in docs for token in doc]
    # The real pieces only: padding holds zeros in fp32's packed rows and the network's output in int8's.
    hidden = [
        doc._.trf_data.model_output.last_hidden_state[doc._.trf_data.wordpieces.attention_mask.astype(bool)]
        for doc in docs
    ]
    return cats, tags, hidden, [doc._.answer is None for doc in docs[-2:]]


def test_quantized_pipeline_predicts_close_to_fp32(teacher_dir, quantized):
    output, done = quantized
    assert set(done) == {"transformer"}
    fp32, int8 = spacy.load(teacher_dir / "model"), spacy.load(output)
    assert isinstance(int8.get_pipe("transformer").model.transformer, OnnxNetwork)
    assert int8.config["components"]["transformer"]["model"]["@architectures"] == ARCHITECTURE
    cats32, tags32, hidden32, _ = _outputs(fp32, probe_docs(fp32))
    cats8, tags8, hidden8, answered = _outputs(int8, probe_docs(int8))
    assert numpy.abs(cats32 - cats8).max() < 0.05
    assert numpy.mean([a == b for a, b in zip(tags32, tags8)]) >= 0.9
    cosines = [
        (a * b).sum(-1) / (numpy.linalg.norm(a, axis=-1) * numpy.linalg.norm(b, axis=-1) + 1e-9)
        for a, b in zip(hidden32, hidden8)
    ]
    assert float(numpy.mean([c.mean() for c in cosines])) >= 0.95
    assert len(answered) == 2


def test_quantized_pipeline_round_trips(quantized, tmp_path):
    output, _ = quantized
    nlp = spacy.load(output)
    texts = ["Alice Smith visited Paris.", "Bruno Diaz left Acme Corp in Lagos, bad news."]
    expected = [doc.cats["POS"] for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "again")
    again = spacy.load(tmp_path / "again")
    assert [doc.cats["POS"] for doc in again.pipe(texts)] == pytest.approx(expected, abs=1e-6)
    assert [doc.cats["POS"] for doc in again.pipe(texts, n_process=2)] == pytest.approx(expected, abs=1e-6)


def test_quantized_pipeline_loads_in_a_fresh_process(quantized):
    output, _ = quantized
    code = (
        "import spacy, sys; nlp = spacy.load(sys.argv[1]); doc = nlp('Alice Smith visited Paris.'); "
        "print(type(nlp.get_pipe('transformer').model.transformer).__name__, sorted(doc.cats))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(output)], capture_output=True, text=True, check=True)
    assert result.stdout.strip().split("\n")[-1] == "OnnxNetwork ['NEG', 'POS']"


def test_quantized_encoder_is_smaller_on_disk(teacher_dir, quantized):
    output, _ = quantized
    before = (teacher_dir / "model" / "transformer" / "model").stat().st_size
    after = (output / "transformer" / "model").stat().st_size
    assert after < 0.6 * before


def test_quantizing_twice_is_an_error(quantized, tmp_path):
    output, _ = quantized
    with pytest.raises(ValueError, match="quantized already"):
        quantize(output, tmp_path / "twice")
