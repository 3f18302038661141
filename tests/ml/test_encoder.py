"""The shared encoder: windows, pairs, alignment, chunking, frozen mode."""
import logging
import warnings

import numpy
import pytest
import spacy
import torch
from spacy.training import Example

from spacy_bert_tasks.ml.encoder import encode_windows, ranges


@pytest.fixture
def nlp(make_nlp):
    nlp = make_nlp()
    nlp.initialize()
    return nlp


def _encoder(nlp):
    return nlp.get_pipe("transformer").model


def _pieces_of(trf_data, i):
    """(window, piece string) pairs aligned to token i."""
    seq_len = trf_data.wordpieces.input_ids.shape[1]
    flat = trf_data.align[i].dataXd.ravel()
    return [(int(f) // seq_len, trf_data.wordpieces.strings[int(f) // seq_len][int(f) % seq_len]) for f in flat]


def test_ranges():
    assert ranges(numpy.asarray([2, 0, 3])).tolist() == [0, 1, 0, 1, 2]


def test_single_doc_layout(nlp):
    doc = nlp("Alice visited Paris.")
    data = doc._.trf_data
    strings = data.wordpieces.strings[0]
    assert strings[0] == "[CLS]" and strings[-1] == "[SEP]"
    assert len(data.align.lengths) == len(doc)
    assert all(length > 0 for length in data.align.lengths)
    # Each token's pieces spell the token.
    for i, token in enumerate(doc):
        assert "".join(p.replace("##", "") for _, p in _pieces_of(data, i)) == token.text


def test_question_goes_first_with_segment_ids(nlp):
    doc = nlp.make_doc("Paris is the capital of France.")
    doc._.question = "What is the capital?"
    doc = nlp(doc)
    data = doc._.trf_data
    strings = data.wordpieces.strings[0]
    types = data.wordpieces.token_type_ids[0]
    first_sep = strings.index("[SEP]")
    assert "".join(s.replace("##", "") for s in strings[1:first_sep]) == "Whatisthecapital?"
    assert set(types[: first_sep + 1].tolist()) == {0}
    assert set(types[first_sep + 1 : len(strings)].tolist()) == {1}
    # Doc tokens align to pieces after the question only.
    seq_len = data.wordpieces.input_ids.shape[1]
    assert (data.align.dataXd.ravel() % seq_len > first_sep).all()


def test_text_pair_goes_after(nlp):
    doc = nlp.make_doc("A man plays guitar.")
    doc._.text_pair = "Someone makes music."
    doc = nlp(doc)
    data = doc._.trf_data
    strings = data.wordpieces.strings[0]
    first_sep = strings.index("[SEP]")
    assert "".join(s.replace("##", "") for s in strings[first_sep + 1 : -1]) == "Someonemakesmusic."
    assert data.wordpieces.token_type_ids[0][first_sep + 1] == 1
    seq_len = data.wordpieces.input_ids.shape[1]
    assert (data.align.dataXd.ravel() % seq_len < first_sep).all()


def test_question_and_pair_together_is_an_error(nlp):
    doc = nlp.make_doc("Text.")
    doc._.question = "Q?"
    doc._.text_pair = "P."
    with pytest.raises(ValueError, match="both `doc._.question` and `doc._.text_pair`"):
        nlp(doc)


def test_long_question_is_cut_with_one_warning_per_batch(nlp):
    docs = []
    for _ in range(3):
        doc = nlp.make_doc("Paris is the capital of France.")
        doc._.question = "What is " + "the very big " * 20 + "capital?"
        docs.append(doc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(nlp.pipe(docs))
    messages = [str(w.message) for w in caught if "max_question_length" in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith("3 question(s)")
    assert all(len(seq) <= 64 for seq in docs[0]._.trf_data.wordpieces.strings)


def test_long_doc_gives_no_tokenizer_length_warning(nlp):
    """Docs are tokenised whole and then windowed: HF's "longer than the maximum" warning is noise."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers")  # HF's loggers stop here (propagate=False)
    logger.addHandler(handler)
    try:
        doc = nlp(" ".join(["Alice visited Paris."] * 300))
    finally:
        logger.removeHandler(handler)
    assert doc._.trf_data.wordpieces.input_ids.shape[0] > 1
    assert not [r for r in records if "sequence length is longer" in r.getMessage()]


@pytest.mark.parametrize("n_words", [200, 5000])
def test_long_doc_is_read_in_full(nlp, n_words):
    words = [f"word{i % 97}" for i in range(n_words)]
    doc = nlp(" ".join(words) + " Paris")
    data = doc._.trf_data
    n_windows, seq_len = data.wordpieces.input_ids.shape
    assert n_windows > 1 and seq_len <= 64
    assert len(data.align.lengths) == len(doc)
    assert (data.align.lengths > 0).all(), "every token keeps at least one piece"
    assert _pieces_of(data, len(doc) - 1)[0][0] == n_windows - 1
    # Consecutive windows overlap by `stride` pieces.
    windows_of_token = [{w for w, _ in _pieces_of(data, i)} for i in range(len(doc))]
    assert any(len(ws) == 2 for ws in windows_of_token)


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_empty_and_whitespace_docs(nlp, text):
    docs = list(nlp.pipe([text, "Alice visited Paris.", text]))
    assert len(docs[1]._.trf_data.align.lengths) == len(docs[1])
    for doc in (docs[0], docs[2]):
        assert len(doc._.trf_data.align.lengths) == len(doc)
        assert int(doc._.trf_data.align.lengths.sum()) == 0


def test_piece_straddling_tokens_aligns_to_both(nlp):
    tokenizer = _encoder(nlp).tokenizer
    doc = nlp.make_doc("don't")
    assert [t.text for t in doc] == ["do", "n't"]
    batch = encode_windows(tokenizer, [doc], _encoder(nlp).attrs)
    assert (batch.align.lengths > 0).all()


def test_chunking_does_not_change_outputs(make_nlp):
    texts = ["short", "a somewhat longer text with more words in it", "mid length text here", "x " * 40]
    outputs = []
    for max_batch_tokens in (8, 100000):
        nlp = make_nlp(max_batch_tokens=max_batch_tokens)
        nlp.initialize()
        outputs.append([doc._.trf_data for doc in nlp.pipe(texts)])
    for small, big in zip(*outputs):
        # Padding positions differ (zeros vs. computed on [PAD]); real pieces must not.
        mask = big.wordpieces.attention_mask.astype(bool)
        numpy.testing.assert_allclose(small.model_output.last_hidden_state[mask],
                                      big.model_output.last_hidden_state[mask], atol=1e-4)


def test_packed_windows_match_separate_windows(nlp, monkeypatch):
    """Packing short windows into one row (with questions and pairs) changes no real piece's output."""
    from spacy_bert_tasks.ml.encoder import runner

    model = _encoder(nlp)
    docs = [nlp.make_doc(text) for text in ["short", "a somewhat longer text with more words", "x " * 50, "mid text"]]
    docs[1]._.question = "Which text?"
    docs[3]._.text_pair = "a pair"
    wordpieces = encode_windows(model.tokenizer, docs, model.attrs).wordpieces
    outputs = []
    for packing in (True, False):
        if not packing:
            monkeypatch.setattr(runner, "packing_position_offset", lambda transformer: None)
        outputs.append(runner.run_transformer(model.transformer, wordpieces, max_batch_tokens=4096, is_train=False,
                                               frozen=False, output_hidden_states=True))
    (packed, packed_layers), (separate, separate_layers) = outputs
    mask = torch.as_tensor(wordpieces.attention_mask).bool()
    assert packed.shape == separate.shape and packed_layers.shape == separate_layers.shape
    torch.testing.assert_close(packed[mask], separate[mask], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed_layers.transpose(1, 2)[mask], separate_layers.transpose(1, 2)[mask],
                               atol=1e-5, rtol=1e-4)


def test_pack_windows_first_fit_decreasing():
    from spacy_bert_tasks.ml.encoder.runner import pack_windows

    row_of, offset_of, n_rows = pack_windows(numpy.asarray([3, 10, 6, 4, 7]))
    assert n_rows == 3  # rows of 10: [10], [7, 3], [6, 4]
    assert row_of.tolist() == [1, 0, 2, 2, 1] and offset_of.tolist() == [7, 0, 0, 6, 0]


def test_length_chunks_cut_where_padding_costs_more_than_a_call():
    from spacy_bert_tasks.ml.encoder.runner import length_chunks

    lengths = numpy.asarray([60, 58, 12, 10, 8])
    assert length_chunks(lengths, 4096, overhead=16) == [slice(0, 2), slice(2, 5)]
    assert length_chunks(lengths, 4096, overhead=1000) == [slice(0, 5)]
    assert length_chunks(numpy.asarray([512, 512, 100]), 600, overhead=16) == [slice(0, 1), slice(1, 2), slice(2, 3)]


def test_settings_leaving_no_room_are_an_error(make_nlp):
    nlp = make_nlp(max_length=32, stride=16, max_question_length=16)
    with pytest.raises(ValueError, match="leave no room"):
        nlp.initialize()


def test_serialization_and_copy(nlp, tmp_path):
    doc = nlp("Alice visited Paris.")
    nlp.to_disk(tmp_path)
    nlp2 = spacy.load(tmp_path)
    doc2 = nlp2("Alice visited Paris.")
    numpy.testing.assert_allclose(doc._.trf_data.model_output.last_hidden_state,
                                  doc2._.trf_data.model_output.last_hidden_state, atol=1e-6)
    assert _encoder(nlp2).attrs["max_length"] == 64
    copied = _encoder(nlp).copy()
    assert type(copied) is type(_encoder(nlp)) and copied.attrs["stride"] == 16


def _train_toy(nlp, frozen_check):
    """Backprop a fixed gradient into the encoder and return its weights before and after."""
    trf = nlp.get_pipe("transformer")
    weights = trf.model.transformer.embeddings.word_embeddings.weight
    before = weights.detach().clone()
    docs = [nlp.make_doc("Alice visited Paris."), nlp.make_doc("Bruno left Lima.")]
    output, backprop = trf.model.begin_update(docs)
    d_output = output.unsplit_by_doc([[numpy.ones_like(d.model_output.last_hidden_state)] for d in output.doc_data])
    backprop(d_output)
    trf.model.finish_update(nlp.create_optimizer())
    return before, weights.detach().clone()


def test_full_fine_tuning_updates_the_encoder(nlp):
    before, after = _train_toy(nlp, frozen_check=False)
    assert not torch.equal(before, after)


def test_frozen_encoder_is_bit_identical(make_nlp):
    nlp = make_nlp(frozen=True)
    nlp.initialize()
    before, after = _train_toy(nlp, frozen_check=True)
    assert torch.equal(before, after)
    params = nlp.get_pipe("transformer").model.transformer.parameters()
    assert all(p.grad is None for p in params)
