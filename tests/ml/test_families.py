"""Every encoder family users bring: alignment, specials, segment ids, QA decoding, long docs, saving, MLM.

The encoders are tiny random ones built offline by ``family_encoder`` (tests/ml/conftest.py),
each with a tokenizer trained in its family's conventions. The families outside
``DEFAULT_FAMILIES`` run with --slow.
"""
import logging
import shutil

import numpy
import pytest
import spacy
import torch
from spacy.training import Example

from spacy_bert_tasks.ml.encoder import encode_windows
from spacy_bert_tasks.ml.qa import NEG_INF, candidate_mask, decode_spans, window_targets
from tests.ml.conftest import DEFAULT_FAMILIES, FAMILIES, WIDTH, squad_questions

FAMILY_PARAMS = [
    pytest.param(name, id=name, marks=() if name in DEFAULT_FAMILIES else pytest.mark.slow(
        reason=f"slow: the default run checks {', '.join(DEFAULT_FAMILIES)}; pass --slow for {name}"))
    for name in FAMILIES
]
# Punctuation, a contraction, double spaces, a newline, a hyphenated abbreviation.
ALIGN_TEXT = 'EU rejects German call to boycott British lamb.  It\'s the U.S.-based firm\'s "best" (so far)\nOk.'


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_nlp(folder, **settings):
    from tests.conftest import encoder_config

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=encoder_config(folder, **{"max_length": 512, "stride": 128,
                                                                 "max_question_length": 64, **settings}))
    return nlp


@pytest.fixture(scope="module")
def pipelines(family_encoder):
    """``pipelines(name)``: the family's initialised encoder pipeline (max_length 512), built once per module."""
    made = {}

    def _get(name):
        if name not in made:
            nlp = make_nlp(family_encoder(name))
            nlp.initialize()
            made[name] = nlp
        return made[name]

    return _get


def _encoder(nlp):
    return nlp.get_pipe("transformer").model


def _batch(nlp, doc):
    model = _encoder(nlp)
    return encode_windows(model.tokenizer, [doc], model.attrs)


@pytest.mark.parametrize("name", FAMILY_PARAMS)
def test_each_token_gets_its_own_pieces_and_no_neighbours(pipelines, name):
    """A token's pieces are exactly the pieces whose characters overlap the token's (none for whitespace).

    SentencePiece/Metaspace offsets include the space before a word; that space is no token's,
    so the piece is not also its left neighbour's (which gave spacy-transformers' duplicated
    DeBERTa alignment, explosion/spaCy#13730).
    """
    nlp = pipelines(name)
    tokenizer = _encoder(nlp).tokenizer
    doc = nlp.make_doc(ALIGN_TEXT)
    assert any(t.is_space for t in doc)
    batch = _batch(nlp, doc)
    encoded = tokenizer(doc.text, return_offsets_mapping=True, return_special_tokens_mask=True)
    assert batch.wordpieces.input_ids.shape[0] == 1
    assert batch.wordpieces.input_ids[0, : batch.wordpieces.lengths[0]].tolist() == encoded["input_ids"]
    offsets = numpy.asarray(encoded["offset_mapping"])
    special = numpy.asarray(encoded["special_tokens_mask"], dtype=bool)
    if FAMILIES[name].sentencepiece:  # the case that matters is there: offsets starting on a space
        assert any(doc.text[s].isspace() for s, e in offsets[~special] if e > s)
    lengths = batch.align.lengths
    rows = numpy.split(batch.align.dataXd.ravel(), numpy.cumsum(lengths)[:-1])
    for token, positions in zip(doc, rows):
        assert len(set(positions.tolist())) == len(positions), f"duplicated pieces for {token.text!r}"
        start, end = token.idx, token.idx + len(token)
        expected = [] if token.is_space else [
            p for p in range(len(offsets)) if not special[p] and offsets[p, 0] < end and offsets[p, 1] > start
        ]
        assert sorted(positions.tolist()) == expected, token.text
        assert token.is_space or len(positions) > 0, f"{token.text!r} has no piece"


@pytest.mark.parametrize("name", FAMILY_PARAMS)
def test_specials_and_segment_ids_are_the_tokenizers_own(pipelines, name):
    """A question goes first and a text pair after, laid out as the tokenizer's own pair call lays them out."""
    nlp = pipelines(name)
    family = FAMILIES[name]
    tokenizer = _encoder(nlp).tokenizer
    cls, sep = family.cls, family.single.split()[-1]
    context, question = "EU rejects German call.", "Who rejects?"
    for doc_is_first in (False, True):
        doc = nlp.make_doc(context)
        if doc_is_first:
            doc._.text_pair = question
        else:
            doc._.question = question
        first, second = (context, question) if doc_is_first else (question, context)
        expected = tokenizer(first, second)
        wordpieces = _batch(nlp, doc).wordpieces
        n = wordpieces.lengths[0]
        assert wordpieces.input_ids[0, :n].tolist() == expected["input_ids"]
        strings = wordpieces.strings[0]
        n_first = len(tokenizer(first, add_special_tokens=False)["input_ids"])
        between = [sep, sep] if cls == "<s>" else [sep]  # <s> a </s></s> b </s> or [CLS] a [SEP] b [SEP]
        assert [strings[0], *strings[1 + n_first : 1 + n_first + len(between)], strings[-1]] == [cls, *between, sep]
        assert wordpieces.input_ids[0, 0] == tokenizer.cls_token_id
        if family.segment_ids:
            assert wordpieces.token_type_ids[0, :n].tolist() == expected["token_type_ids"]
            second_start = 1 + n_first + len(between)
            assert set(wordpieces.token_type_ids[0, second_start:n].tolist()) == {1}
        else:
            assert wordpieces.token_type_ids is None


def _whole_pieces(doc, tokenizer, start_char, end_char):
    """The text of the tokens covered by every piece that holds a character of [start_char, end_char).

    A gold answer is decodable only in whole pieces: where a SentencePiece merge such
    as "96." also holds the next token (spaCy's sentence-final "."), the answer that a
    piece can express is one token wider. For WordPiece and byte-level BPE it is the gold.
    """
    offsets = tokenizer(doc.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    inside = [(s, e) for s, e in offsets if s < end_char and e > start_char and doc.text[s:e].strip()]
    first = min(s for s, _ in inside)
    first += len(doc.text[first:]) - len(doc.text[first:].lstrip())  # Metaspace offsets start on the space
    return doc.char_span(first, max(e for _, e in inside), alignment_mode="expand").text


@pytest.mark.parametrize("name", FAMILY_PARAMS)
@pytest.mark.parametrize("max_length", [512, 96])
def test_qa_gold_spans_decode_back_from_perfect_logits(pipelines, family_encoder, name, max_length):
    """16 SQuAD answers: logits peaked at the training targets decode back to the gold text.

    At 96 pieces a context is read in several windows, so answers also straddle them.
    Decoding reads whole pieces, so the gold comes back exactly wherever its first and
    last piece hold none of a neighbour token's characters; elsewhere it comes back as
    whole pieces (see ``_whole_pieces``), never wider.
    """
    if max_length == 512:
        nlp = pipelines(name)
    else:
        nlp = make_nlp(family_encoder(name), max_length=max_length, stride=32, max_question_length=32)
        nlp.initialize()
    tokenizer = _encoder(nlp).tokenizer
    decoded, expected, gold = [], [], []
    for context, question, answer, start in squad_questions(16):
        doc = nlp.make_doc(context)
        doc._.question = question
        doc = nlp(doc)
        span = doc.char_span(start, start + len(answer), alignment_mode="expand")
        assert span is not None and span.text == answer
        align = doc._.trf_data.align
        n_windows, seq_len = doc._.trf_data.wordpieces.input_ids.shape
        targets = window_targets(align, n_windows, seq_len, (span.start, span.end - 1))
        assert (targets[:, 0] > 0).any(), "some window holds the whole answer"
        mask = candidate_mask(align, n_windows, seq_len)
        logits = numpy.where(numpy.stack([mask, mask], axis=-1), 0.0, NEG_INF)  # (n_windows, seq_len, 2)
        for w, (s, e) in enumerate(targets):
            if s > 0:
                logits[w, s, 0] = logits[w, e, 1] = 10.0
        candidates, _ = decode_spans(logits.astype("f"), align, n_best_size=20, max_answer_length=30)
        decoded.append(doc[candidates[0].start : candidates[0].end + 1].text)
        expected.append(_whole_pieces(doc, tokenizer, start, start + len(answer)))
        gold.append(answer)
    assert decoded == expected
    exact = sum(d == g for d, g in zip(decoded, gold))
    assert exact >= 14, (exact, decoded)  # here only "70,196" and "55,140" end in a merged "6." / "40."
    if FAMILIES[name].tokenizer != "unigram":
        assert decoded == gold


@pytest.mark.parametrize("name", FAMILY_PARAMS)
def test_full_window_and_a_3000_token_document(pipelines, family_encoder, name):
    """A window of max_length pieces runs (RoBERTa's 512 positions hold 510), and so does a long doc."""
    from spacy_bert_tasks.ml.encoder import max_positions

    nlp = pipelines(name)
    model = _encoder(nlp)
    assert model.attrs["max_length"] == min(512, max_positions(model.transformer.config))
    doc = nlp(" ".join(["Alice visited Paris."] * 200))
    assert doc._.trf_data.wordpieces.input_ids.shape[0] > 1
    assert doc._.trf_data.wordpieces.input_ids.shape[1] == model.attrs["max_length"]
    assert numpy.isfinite(doc._.trf_data.model_output.last_hidden_state).all()
    long_nlp = make_nlp(family_encoder(name), max_length=128, stride=32)
    long_nlp.initialize()
    words = [f"word{i % 89}" if i % 7 else "Paris," for i in range(3000)]
    doc = long_nlp(" ".join(words))
    assert len(doc) >= 3000
    data = doc._.trf_data
    assert len(data.align.lengths) == len(doc) and (data.align.lengths > 0).all()
    seq_len = data.wordpieces.input_ids.shape[1]
    assert seq_len <= 128 and int(data.align[len(doc) - 1].dataXd.max()) // seq_len == data.wordpieces.input_ids.shape[0] - 1


@pytest.mark.parametrize("name", FAMILY_PARAMS)
def test_to_disk_and_load_give_identical_predictions(family_encoder, name, tmp_path):
    """A QA pipeline saves (no SentencePiece .model file needed) and loads with the same answers and scores."""
    spacy.util.fix_random_seed(0)
    nlp = make_nlp(family_encoder(name), max_length=128, stride=32, max_question_length=32)
    nlp.add_pipe("bert_qa")
    rows = squad_questions(4)
    examples = []
    for context, question, answer, start in rows:
        predicted = nlp.make_doc(context)
        predicted._.question = question
        eg = Example.from_dict(predicted, {"spans": {"answers": [(start, start + len(answer), "ANSWER")]}})
        eg.reference._.question = question
        examples.append(eg)
    nlp.initialize(lambda: examples)

    def predict(pipeline):
        docs = []
        for context, question, _, _ in rows:
            doc = pipeline.make_doc(context)
            doc._.question = question
            docs.append(doc)
        return list(pipeline.pipe(docs))

    before = predict(nlp)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    after = predict(loaded)
    for a, b in zip(before, after):
        assert [(s.start, s.end) for s in a.spans["answers"]] == [(s.start, s.end) for s in b.spans["answers"]]
        numpy.testing.assert_allclose(a.spans["answers"].attrs["scores"], b.spans["answers"].attrs["scores"],
                                      rtol=1e-5, atol=1e-7)
        numpy.testing.assert_allclose(a._.trf_data.model_output.last_hidden_state,
                                      b._.trf_data.model_output.last_hidden_state, atol=1e-6)
    loaded.to_disk(tmp_path / "again")  # a loaded pipeline saves too (spacy train's next checkpoint)
    again = predict(spacy.load(tmp_path / "again"))
    assert [a._.answer.text for a in again] == [b._.answer.text for b in before]


@pytest.mark.parametrize("name", FAMILY_PARAMS)
def test_pretraining_runs_with_the_masked_positions_head(family_encoder, sample_text_file, tmp_path, caplog, name):
    from spacy_bert_tasks.pretraining.run import pretrain

    with caplog.at_level(logging.INFO, logger="spacy_bert_tasks"):
        metrics = pretrain([sample_text_file], tmp_path / "out", encoder=family_encoder(name), max_steps=3,
                           batch_size=8, max_seq_length=64, save_steps=100, eval_steps=100, show_progress=False)
    assert metrics["steps"] == 3 and numpy.isfinite(metrics["perplexity_after"])
    assert "no masked-positions head" not in caplog.text
    assert (tmp_path / "out" / "model.safetensors").exists()


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in ("deberta-v2", "modernbert")])
def test_masked_positions_loss_equals_the_stock_head(family_encoder, name):
    from spacy_bert_tasks.pretraining.model import load_pretraining_model

    ours, _ = load_pretraining_model(family_encoder(name))
    stock = type(ours).__bases__[1](ours.config)
    stock.load_state_dict(ours.state_dict())
    ours.eval(), stock.eval()
    torch.manual_seed(0)
    input_ids = torch.randint(5, ours.config.vocab_size, (4, 24))
    labels = torch.where(torch.rand(4, 24) < 0.2, input_ids, torch.full_like(input_ids, -100))
    mask = torch.ones_like(input_ids)
    our_loss = ours(input_ids=input_ids, attention_mask=mask, labels=labels).loss
    stock_loss = stock(input_ids=input_ids, attention_mask=mask, labels=labels).loss
    assert abs(our_loss.item() - stock_loss.item()) <= 1e-5
    assert ours(input_ids=input_ids, attention_mask=mask, labels=labels).logits.shape[0] == int((labels != -100).sum())


def test_a_family_without_a_masked_positions_head_uses_the_stock_one_and_says_so(family_encoder, tmp_path, caplog):
    """MPNet's MLM class is not in ``MLM_HEADS``: pretraining falls back to the stock head and logs it."""
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    from spacy_bert_tasks.pretraining.model import load_pretraining_model

    folder = tmp_path / "mpnet"
    tokenizer = AutoTokenizer.from_pretrained(family_encoder("bert"))
    tokenizer.save_pretrained(folder)
    config = MPNetConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **WIDTH)
    MPNetModel(config).save_pretrained(folder, safe_serialization=True)
    with caplog.at_level(logging.WARNING, logger="spacy_bert_tasks"):
        model, _ = load_pretraining_model(folder)
    assert "MPNetForMaskedLM has no masked-positions head" in caplog.text and "stock head" in caplog.text
    input_ids = torch.randint(5, model.config.vocab_size, (2, 16))
    labels = torch.where(torch.rand(2, 16) < 0.3, input_ids, torch.full_like(input_ids, -100))
    out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels)
    assert out.logits.shape == (2, 16, model.config.vocab_size) and torch.isfinite(out.loss)


def test_a_tokenizer_without_specials_is_refused(family_encoder, tmp_path):
    """A tokenizer.json without a post-processor adds no [CLS]/[SEP]: the encoder says so instead of running."""
    import json

    folder = tmp_path / "no-template"
    shutil.copytree(family_encoder("modernbert"), folder)
    data = json.loads((folder / "tokenizer.json").read_text())
    data["post_processor"] = None
    (folder / "tokenizer.json").write_text(json.dumps(data))
    nlp = make_nlp(folder)
    with pytest.raises(ValueError, match="adds no special token before the text.*post-processor"):
        nlp.initialize()


def test_piece_tokens_count_only_a_tokens_own_characters():
    """Offsets that start on the space before a word, lone "▁" pieces, whitespace tokens, straddles."""
    from spacy_bert_tasks.ml.encoder.windows import piece_tokens

    doc = spacy.blank("en")("EU rejects  don't")  # EU, rejects, " ", do, n't
    assert [t.text for t in doc] == ["EU", "rejects", " ", "do", "n't"]
    offsets = [(0, 2), (2, 9), (9, 10), (10, 11), (11, 12), (12, 15), (15, 17), (0, 0)]
    # "▁EU", "▁reject", "s", "▁" (space), "▁" (the whitespace token), "▁don", "'t", a special
    first, last = piece_tokens(doc, offsets)
    assert first.tolist() == [0, 1, 1, 0, 0, 3, 4, 0]
    assert last.tolist() == [0, 1, 1, -1, -1, 4, 4, -1]


def test_max_positions_counts_robertas_padding_offset():
    from transformers import BertConfig, RobertaConfig

    from spacy_bert_tasks.ml.encoder import max_positions

    assert max_positions(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert max_positions(RobertaConfig(max_position_embeddings=512, pad_token_id=1)) == 510
    assert max_positions(BertConfig(max_position_embeddings=512)) == 512
