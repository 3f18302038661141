"""The masking collators: statistics over 10,000 sequences, words, spans, NSP pairs."""
import numpy as np
import pytest
import torch

from spacy_bert_tasks.pretraining.collators import (
    MaskingCollator,
    SpanMaskingCollator,
    WholeWordMaskingCollator,
    mask_once,
)
from spacy_bert_tasks.pretraining.nsp import NextSentenceCollator
from spacy_bert_tasks.pretraining.sequences import SentenceChunkDataset, pack_documents
from spacy_bert_tasks.pretraining.text import load_tokenized

N_SEQUENCES = 10_000
COLLATORS = [MaskingCollator, WholeWordMaskingCollator, SpanMaskingCollator]


def collate_many(collator, dataset, n=N_SEQUENCES, batch_size=1000, seed=0):
    """Mask n sequences (the dataset repeated); return the padded fields, originals included."""
    torch.manual_seed(seed)
    outputs = []
    for start in range(0, n, batch_size):
        examples = [dataset[i % len(dataset)] for i in range(start, min(start + batch_size, n))]
        batch = collator(examples)
        batch["original"] = torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])
        # Word starts as the collator sees them (a piece after a special token starts a word).
        batch["word_start"] = collator.pad(examples)["word_start"]
        outputs.append(batch)
    length = max(b["input_ids"].shape[1] for b in outputs)
    fills = {"original": collator.pad_id, "word_start": True, "input_ids": collator.pad_id,
             "labels": -100, "attention_mask": 0}
    return {
        key: torch.cat([torch.nn.functional.pad(b[key], (0, length - b[key].shape[1]), value=fill) for b in outputs])
        for key, fill in fills.items()
    }


def is_special(collator, ids):
    return torch.isin(ids, collator.special_ids)


@pytest.mark.parametrize("collator_class", COLLATORS)
def test_masking_statistics(collator_class, bert_tokenizer, packed):
    collator = collator_class(bert_tokenizer)
    out = collate_many(collator, packed)
    selected = out["labels"] != -100
    candidates = out["attention_mask"].bool() & ~is_special(collator, out["original"])
    assert torch.equal(out["labels"][selected], out["original"][selected])
    assert abs(selected.sum().item() / candidates.sum().item() - 0.15) <= 0.005
    n_selected = selected.sum().item()
    to_mask = (out["input_ids"] == collator.mask_id) & selected
    kept = (out["input_ids"] == out["original"]) & selected
    to_random = selected & ~to_mask & ~kept
    assert abs(to_mask.sum().item() / n_selected - 0.8) <= 0.01
    assert abs(kept.sum().item() / n_selected - 0.1) <= 0.01
    assert abs(to_random.sum().item() / n_selected - 0.1) <= 0.01
    # Special tokens and padding are never selected, changed or drawn as replacements.
    assert not (selected & ~candidates).any()
    assert torch.equal(out["input_ids"][~selected], out["original"][~selected])
    assert not is_special(collator, out["input_ids"][to_random]).any()


def test_span_lengths_follow_the_geometric_distribution(bert_tokenizer, packed):
    collator = SpanMaskingCollator(bert_tokenizer)
    assert collator.mean_span_length == pytest.approx(3.797, abs=1e-3)  # SpanBERT's 3.8
    out = collate_many(collator, packed)
    # Spans never touch, so each run of selected pieces is one span; count its words.
    selected = (out["labels"] != -100).numpy()
    padded = np.pad(selected, ((0, 0), (1, 1)))
    run_starts = np.flatnonzero((padded[:, 1:] & ~padded[:, :-1]).ravel())
    run_ends = np.flatnonzero((~padded[:, 1:] & padded[:, :-1]).ravel())
    word_starts = np.pad(selected & out["word_start"].numpy(), ((0, 0), (0, 1))).ravel()
    counts = np.concatenate([[0], np.cumsum(word_starts)])
    lengths = counts[run_ends] - counts[run_starts]
    assert len(lengths) > 30_000
    assert abs(np.mean(lengths) - collator.mean_span_length) <= 0.2
    assert max(lengths) <= 10


def _words_selection(labels, word_start):
    """For each word (run of pieces from a word start), the set of its pieces' selection states."""
    states = []
    for sel_row, start_row in zip((labels != -100).tolist(), word_start.tolist()):
        for selected, starts in zip(sel_row, start_row):
            if starts:
                states.append(set())
            states[-1].add(selected)
    return states


@pytest.mark.parametrize("tokenizer_name", ["bert_tokenizer", "roberta_tokenizer"])
@pytest.mark.parametrize("collator_class", [WholeWordMaskingCollator, SpanMaskingCollator])
def test_whole_words_are_masked_together(request, tokenizer_name, collator_class, sample_text_file):
    tokenizer = request.getfixturevalue(tokenizer_name)
    text = load_tokenized(sample_text_file, tokenizer)
    dataset = pack_documents(text, range(text.n_docs), max_seq_length=64,
                             cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id)
    if tokenizer_name == "roberta_tokenizer":
        # Words come from word ids, not from a "##" prefix: byte-level BPE has none.
        assert not any(tok.startswith("##") for tok in tokenizer.get_vocab())
        assert (~text.word_start).sum() > 0
    collator = collator_class(tokenizer)
    out = collate_many(collator, dataset, n=500)
    states = _words_selection(out["labels"], out["word_start"])
    multi_piece = [s for s in states if s]
    assert all(len(s) == 1 for s in multi_piece)
    assert (out["labels"] != -100).any()


def test_word_starts_come_from_the_tokenizer(bert_tokenizer, sample_tokens):
    pieces = bert_tokenizer.convert_ids_to_tokens(sample_tokens.input_ids[:2000].tolist())
    for piece, starts in zip(pieces, sample_tokens.word_start[:2000]):
        assert starts == (not piece.startswith("##"))


def test_masking_is_dynamic(bert_tokenizer, packed):
    collator = MaskingCollator(bert_tokenizer)
    examples = [packed[i] for i in range(8)]
    first, second = collator(examples)["labels"], collator(examples)["labels"]
    assert not torch.equal(first != -100, second != -100)


def test_rates_are_configurable(bert_tokenizer, packed):
    collator = MaskingCollator(bert_tokenizer, mlm_probability=0.4, mask_replace_prob=1.0, random_replace_prob=0.0)
    out = collate_many(collator, packed, n=1000)
    selected = out["labels"] != -100
    candidates = out["attention_mask"].bool() & ~is_special(collator, out["original"])
    assert abs(selected.sum().item() / candidates.sum().item() - 0.4) <= 0.01
    assert (out["input_ids"][selected] == collator.mask_id).all()
    with pytest.raises(ValueError, match="add up to at most 1"):
        MaskingCollator(bert_tokenizer, mask_replace_prob=0.8, random_replace_prob=0.3)


@pytest.mark.parametrize("collator_class", COLLATORS)
def test_max_predictions_per_seq(collator_class, bert_tokenizer, packed):
    collator = collator_class(bert_tokenizer, max_predictions_per_seq=5)
    out = collate_many(collator, packed, n=200)
    assert (out["labels"] != -100).sum(1).max() <= 5


def test_short_sequences_get_a_prediction(bert_tokenizer):
    collator = MaskingCollator(bert_tokenizer)
    ids = bert_tokenizer("Chen Wei", add_special_tokens=True)["input_ids"]
    batch = collator([{"input_ids": np.array(ids), "word_start": np.ones(len(ids), bool)}] * 50)
    assert ((batch["labels"] != -100).sum(1) >= 1).all()
    assert (batch["labels"][:, 0] == -100).all() and (batch["labels"][:, -1] == -100).all()


def test_next_sentence_pairs(bert_tokenizer, sample_tokens):
    chunks = SentenceChunkDataset(sample_tokens, range(sample_tokens.n_docs), max_seq_length=64)
    collator = NextSentenceCollator(MaskingCollator(bert_tokenizer), chunks)
    torch.manual_seed(0)
    batch = collator([chunks[i % len(chunks)] for i in range(2000)])
    labels = batch["next_sentence_label"]
    assert abs(labels.float().mean().item() - 0.5) < 0.04
    sep, cls = bert_tokenizer.sep_token_id, bert_tokenizer.cls_token_id
    for row in range(50):
        ids = batch["input_ids"][row]
        n = int(batch["attention_mask"][row].sum())
        seps = torch.nonzero(ids[:n] == sep).squeeze(1).tolist()
        assert ids[0] == cls and len(seps) == 2 and seps[1] == n - 1 and n <= 64
        types = batch["token_type_ids"][row][:n].tolist()
        assert types == [0] * (seps[0] + 1) + [1] * (n - seps[0] - 1)
        assert (batch["labels"][row][[0, seps[0], seps[1]]] == -100).all()
    # A real pair is the chunk's text, continued.
    torch.manual_seed(1)
    for i in range(20):
        chunk_ids = np.concatenate([sample_tokens.input_ids[s:e] for s, e in chunks.chunk_segments(i)])
        batch = collator([chunks[i]])
        if batch["next_sentence_label"][0] == 0:
            original = torch.where(batch["labels"][0] != -100, batch["labels"][0], batch["input_ids"][0])
            text = [t for t in original.tolist() if t not in (sep, cls)]
            assert text == chunk_ids.tolist()


def test_fixed_evaluation_masks(bert_tokenizer, packed):
    collator = SpanMaskingCollator(bert_tokenizer)
    first = mask_once(packed, collator, seed=3)
    second = mask_once(packed, collator, seed=3)
    assert all(np.array_equal(a["labels"], b["labels"]) for a, b in zip(first, second))
    # Collators pad such examples and leave their masks alone.
    batch = collator(first[:4])
    assert np.array_equal(batch["labels"][0][: len(first[0]["labels"])].numpy(), first[0]["labels"])
