"""``init-encoder`` (spacy_bert_tasks/pretraining/init_encoder.py): the same folder in every process."""
import subprocess
import sys

WRITE = (
    "import sys; from spacy_bert_tasks.pretraining.init_encoder import init_encoder; "
    "init_encoder([sys.argv[1]], sys.argv[2], size='tiny', vocab_size=600, seed=0)"
)


def test_same_text_size_and_seed_give_byte_identical_folders(tmp_path, sample_text_file):
    """The vocabulary order used to change between processes (tokenizers#1794), and with it the ids."""
    from spacy_bert_tasks.pretraining.init_encoder import init_encoder

    folders = [tmp_path / "here", tmp_path / "there"]
    init_encoder([sample_text_file], folders[0], size="tiny", vocab_size=600, seed=0)
    # Another interpreter: the trainer's hash seeds differ between processes (and between runs in one).
    subprocess.run([sys.executable, "-c", WRITE, str(sample_text_file), str(folders[1])], check=True)
    names = sorted(path.name for path in folders[0].iterdir())
    assert names == sorted(path.name for path in folders[1].iterdir())
    assert {"vocab.txt", "tokenizer.json", "model.safetensors", "config.json"} <= set(names)
    for name in names:
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes(), name
    vocab = (folders[0] / "vocab.txt").read_text(encoding="utf8").split("\n")
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_word_pieces_are_not_special(tiny_encoder):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    assert sorted(tokenizer.all_special_tokens) == ["[CLS]", "[MASK]", "[PAD]", "[SEP]", "[UNK]"]
    assert tokenizer.decode(tokenizer("Alice visited Paris.")["input_ids"], skip_special_tokens=True) == "Alice visited Paris."
