"""The converters on the real datasets in ../shared/data, read in place (run with --slow)."""
import pytest
import spacy
from spacy.tokens import DocBin

from spacy_bert_tasks.corpus import convert_file, docs_to_conll, write_docbin

pytestmark = pytest.mark.slow

# From ../shared/data/conll2003/README.md.
CONLL_ENTITIES = {
    "train.txt": {"PER": 6600, "ORG": 6321, "LOC": 7140, "MISC": 3438},
    "valid.txt": {"PER": 1842, "ORG": 1341, "LOC": 1837, "MISC": 922},
}


@pytest.mark.parametrize(
    "name,n_sentences,n_documents,n_tokens",
    [("train.txt", 14041, 946, 203621), ("valid.txt", 3250, 216, 51362)],
)
def test_conll2003(shared_data, name, n_sentences, n_documents, n_tokens):
    docs, report = convert_file(shared_data / "conll2003" / name)
    assert report.format == "conll"
    assert (report.n_read, report.n_written, report.n_skipped) == (n_sentences, n_sentences, 0)
    assert report.stats["documents (-DOCSTART-)"] == n_documents
    assert report.stats["tokens"] == n_tokens
    assert dict(report.labels) == CONLL_ENTITIES[name]
    doc_docs, doc_report = convert_file(shared_data / "conll2003" / name, doc_level=True)
    assert (doc_report.n_written, doc_report.n_skipped) == (n_documents, 0)
    assert sum(len(list(doc.sents)) for doc in doc_docs) == n_sentences


def test_conll2003_round_trip_through_docbin(shared_data, tmp_path):
    path = shared_data / "conll2003" / "train.txt"
    docs, _ = convert_file(path)
    write_docbin(docs, tmp_path / "train.spacy")
    loaded = DocBin().from_disk(tmp_path / "train.spacy").get_docs(spacy.blank("en").vocab)
    # The file has no final newline; every line, tokens and all tags, comes back.
    assert docs_to_conll(loaded).rstrip("\n") == path.read_text(encoding="utf8").rstrip("\n")


def test_squad_v11_dev_slice(shared_data):
    docs, report = convert_file(shared_data / "squad_v1.1" / "dev-v1.1.articles00-42.json")
    assert report.format == "squad"
    assert (report.n_read, report.n_written, report.n_skipped) == (9614, 9614, 0)
    assert report.stats["articles"] == 43 and report.stats["paragraphs"] == 1847
    assert report.stats["answers"] == 30883 and report.stats["unanswerable"] == 0
    assert docs[0].spans["answers"].attrs["id"] == "56be4db0acb8001400a502ec"
    assert all(doc._.question for doc in docs)


@pytest.mark.parametrize(
    "folder,name,n,labels,unit",
    [
        ("sst2", "train.tsv", 67349, {"0": 29780, "1": 37569}, "texts"),
        ("sst2", "dev.tsv", 872, {"0": 428, "1": 444}, "texts"),
        ("mrpc", "train.tsv", 3668, {"1": 2474, "0": 1194}, "pairs"),
        ("mrpc", "dev.tsv", 408, {"1": 279, "0": 129}, "pairs"),
        ("rte", "train.tsv", 2490, {"entailment": 1249, "not_entailment": 1241}, "pairs"),
    ],
)
def test_glue(shared_data, folder, name, n, labels, unit):
    docs, report = convert_file(shared_data / folder / name)
    assert (report.n_read, report.n_written, report.n_skipped) == (n, n, 0)
    assert dict(report.labels) == labels and report.unit == unit and report.multilabel is False
    assert all(sum(doc.cats.values()) == 1.0 for doc in docs)
    assert all(doc.text == doc.text.strip() for doc in docs)
    if unit == "pairs":
        assert all(doc._.text_pair for doc in docs)
