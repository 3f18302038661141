"""Reading, tokenising (cached) and cutting raw text into sequences."""
import numpy as np
import pytest

from spacy_bert_tasks.pretraining import text as text_module
from spacy_bert_tasks.pretraining.sequences import SentenceChunkDataset, pack_documents, split_lines
from spacy_bert_tasks.pretraining.text import load_tokenized, read_documents, split_documents


def test_layouts(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("First doc.\n\nSecond doc.\nThird doc.\n", encoding="utf8")
    paragraphs = tmp_path / "paragraphs.txt"
    paragraphs.write_text("Title\nPara one. Two.\n\n\nOther title\nOther para.\n", encoding="utf8")
    single = tmp_path / "single.txt"
    single.write_text("Only.\nLines.\n\n", encoding="utf8")
    assert read_documents(lines, "lines") == [["First doc."], ["Second doc."], ["Third doc."]]
    assert read_documents(paragraphs) == [["Title", "Para one. Two."], ["Other title", "Other para."]]
    assert read_documents(single) == [["Only."], ["Lines."]]  # a trailing blank line is no separator
    assert read_documents(lines, "paragraphs") == [["First doc."], ["Second doc.", "Third doc."]]


@pytest.mark.parametrize(
    "content,message",
    [(b"", "holds no text"), (b"\n  \n\t\n", "holds no text"), (b"caf\xe9 au lait\n", "not UTF-8")],
)
def test_bad_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as err:
        read_documents(path)
    assert str(path) in str(err.value)


def test_missing_file_and_folder_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_documents(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="is not a file"):
        read_documents(tmp_path)


def test_tokenised_once_then_cached(tmp_path, sample_text_file, bert_tokenizer, monkeypatch):
    cache = tmp_path / "cache"
    first = load_tokenized(sample_text_file, bert_tokenizer, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("tokenised again")

    monkeypatch.setattr(text_module, "tokenize_documents", fail)
    second = load_tokenized(sample_text_file, bert_tokenizer, cache_dir=cache)
    for name in ("input_ids", "word_start", "sent_bounds", "line_bounds", "doc_bounds"):
        assert np.array_equal(getattr(first, name), getattr(second, name))
    # Another layout is another key.
    with pytest.raises(AssertionError, match="tokenised again"):
        load_tokenized(sample_text_file, bert_tokenizer, cache_dir=cache, layout="paragraphs")


def test_cache_key_follows_contents_and_tokenizer(tmp_path, bert_tokenizer, roberta_tokenizer):
    path = tmp_path / "a.txt"
    path.write_text("Some text.\n", encoding="utf8")
    key = text_module.cache_key(path, bert_tokenizer, "auto")
    assert text_module.cache_key(path, roberta_tokenizer, "auto") != key
    path.write_text("Other text.\n", encoding="utf8")
    assert text_module.cache_key(path, bert_tokenizer, "auto") != key


def test_documents_sentences_and_lines(tmp_path, bert_tokenizer):
    path = tmp_path / "doc.txt"
    path.write_text("A title\nOne sentence here. Another one follows.\n\nSecond document.\n", encoding="utf8")
    text = load_tokenized(path, bert_tokenizer)
    assert text.n_docs == 2
    assert len(text.line_bounds) - 1 == 3
    assert len(text.sent_bounds) - 1 == 4
    start, end = text.sent_bounds[2], text.sent_bounds[3]
    assert bert_tokenizer.decode(text.input_ids[start:end]).startswith("Another")


def test_packing_keeps_every_piece(sample_tokens, bert_tokenizer):
    ids = {"cls_id": bert_tokenizer.cls_token_id, "sep_id": bert_tokenizer.sep_token_id}
    docs = range(sample_tokens.n_docs)
    packed = pack_documents(sample_tokens, docs, max_seq_length=64, **ids)
    assert all(len(packed[i]["input_ids"]) <= 64 for i in range(len(packed)))
    inner = np.concatenate([packed[i]["input_ids"][1:-1] for i in range(len(packed))])
    # All pieces, in order, with one [SEP] between documents.
    assert len(inner) == sample_tokens.n_tokens + sample_tokens.n_docs - 1
    assert np.array_equal(inner[inner != ids["sep_id"]], sample_tokens.input_ids)
    assert packed[0]["input_ids"][0] == ids["cls_id"] and packed[0]["input_ids"][-1] == ids["sep_id"]


def test_line_by_line_cuts_long_lines(tmp_path, bert_tokenizer):
    path = tmp_path / "long.txt"
    path.write_text("short line\n" + " ".join(["word"] * 50) + "\n", encoding="utf8")
    text = load_tokenized(path, bert_tokenizer)
    lines = split_lines(text, range(text.n_docs), max_seq_length=12,
                        cls_id=bert_tokenizer.cls_token_id, sep_id=bert_tokenizer.sep_token_id)
    lengths = [len(lines[i]["input_ids"]) - 2 for i in range(len(lines))]
    first_line = len(bert_tokenizer.tokenize("short line"))
    assert lengths[0] == min(first_line, 10)
    assert sum(lengths) == text.n_tokens and max(lengths) == 10 and len(lengths) > 3


def test_held_out_split():
    train, held_out = split_documents(100, 0.1, seed=0)
    assert len(held_out) == 10 and not set(train) & set(held_out) and len(train) + len(held_out) == 100
    assert np.array_equal(split_documents(100, 0.1, seed=0)[1], held_out)
    assert len(split_documents(3, 0.01, seed=0)[1]) == 1  # at least one document
    assert len(split_documents(1, 0.5, seed=0)[1]) == 0  # never all of them


def test_sentence_chunks_fit(sample_tokens):
    chunks = SentenceChunkDataset(sample_tokens, range(sample_tokens.n_docs), max_seq_length=32)
    for i in range(len(chunks)):
        segments = chunks.chunk_segments(i)
        assert sum(end - start for start, end in segments) <= 29
    covered = sum(end - start for i in range(len(chunks)) for start, end in chunks.chunk_segments(i))
    assert covered == sample_tokens.n_tokens
