"""What the NER benchmarks share: CoNLL-2003 loading, encoders, the baselines' models.

Not part of the package; imported by ``bench/ner_parity.py`` and ``bench/ner_speed.py``.
"""
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from common import encoder_from_lines, subsample  # noqa: F401  (subsample: the benches import it from here)

CONLL = Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003"


def read_conll(path: Path) -> List[Doc]:
    """One doc per sentence, ``doc.ents`` from the IOB2 tags (the package's converter)."""
    from spacy_bert_tasks.corpus.conll import convert_conll

    docs, _ = convert_conll(Path(path), spacy.blank("en"))
    return docs


def make_encoder(train: Sequence[Doc], workdir: Path, size: str, vocab_size: int = 8000) -> Path:
    """An encoder made by ``spacy-bert-tasks init-encoder`` on the training sentences (random weights)."""
    return encoder_from_lines((doc.text for doc in train), workdir / "conll_train.txt", workdir / f"encoder-{size}",
                              size, vocab_size)


def encoder_command(workdir: Path, size: str, vocab_size: int = 8000) -> str:
    return (f"spacy-bert-tasks init-encoder {workdir / 'conll_train.txt'} --output {workdir / f'encoder-{size}'} "
            f"--size {size} --vocab-size {vocab_size}")


def entity_labels(docs: Sequence[Doc]) -> List[str]:
    return sorted({ent.label_ for doc in docs for ent in doc.ents})


def iob2_tags(labels: Sequence[str]) -> List[str]:
    """The tag list in bert_ner's order: O, then B-X, I-X per label."""
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in ("B", "I")]


def make_ner_pipeline(encoder: Path, labels: Sequence[str], **encoder_settings) -> Language:
    """A blank pipeline with ``transformer`` + ``bert_ner``, initialised (head weights fresh)."""
    nlp = spacy.blank("en")
    model = {"@architectures": "spacy_bert_tasks.Encoder.v1", "name": str(encoder), **encoder_settings}
    nlp.add_pipe("transformer", config={"model": model})
    ner = nlp.add_pipe("bert_ner")
    for label in labels:
        ner.add_label(label)
    nlp.initialize()
    return nlp


def save_token_classifier(encoder: Path, tags: Sequence[str], output: Path, seed: int = 0) -> Path:
    """A ``BertForTokenClassification`` folder from the encoder's weights (classifier fresh)."""
    import torch
    from transformers import AutoTokenizer, BertForTokenClassification

    if (output / "config.json").exists():
        return output
    torch.manual_seed(seed)
    model = BertForTokenClassification.from_pretrained(
        encoder, num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)},
        use_safetensors=True,
    )
    model.save_pretrained(output, safe_serialization=True)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(output)
    return output


def copy_tokens(doc: Doc, vocab) -> Doc:
    """A doc with the same tokens (and whitespace), no annotation."""
    return Doc(vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


def to_example(doc: Doc, nlp: Language) -> Example:
    """A training example: CoNLL's tokens, the gold entities."""
    entities = [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
    return Example.from_dict(copy_tokens(doc, nlp.vocab), {"entities": entities})


def train_ner(nlp: Language, plan: List[List[Doc]], lr: float, per_parameter_clipping: bool = False) -> Language:
    """``nlp.update`` on each batch of ``plan``: warm-up over 10% of the steps, then linear decay.

    The optimizer is configs/ner.cfg's (GlobalClipAdam.v1, weight decay 0.01,
    global norm 1.0), or thinc's Adam.v1 clipping each parameter at 1.0.
    """
    from thinc.api import Adam, warmup_linear

    from spacy_bert_tasks.fine_tuning import configure_global_clip_adam

    schedule = warmup_linear(lr, warmup_steps=len(plan) // 10, total_steps=len(plan))
    if per_parameter_clipping:
        optimizer = Adam(schedule, L2=0.01, L2_is_weight_decay=True, grad_clip=1.0, use_averages=False)
    else:
        optimizer = configure_global_clip_adam(schedule, max_grad_norm=1.0, L2=0.01, use_averages=False)
    for batch in plan:
        nlp.update([to_example(doc, nlp) for doc in batch], sgd=optimizer, drop=0.1)
        optimizer.step_schedules()
    return nlp


def first_piece_rows(encoded, docs: Sequence[Doc], tag_index: Dict[str, int]) -> List[List[int]]:
    """Per doc, a label per piece for ``BertForTokenClassification``: the word's gold tag on
    its first piece, -100 elsewhere (the Hugging Face recipe). ``encoded``: the tokenizer's
    output for the docs' words (``is_split_into_words=True``), padded or not."""
    labels = []
    for i, doc in enumerate(docs):
        gold = [tag_index[f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ != "O" else "O"] for t in doc]
        previous, row = None, []
        for word in encoded.word_ids(i):
            row.append(-100 if word is None or word == previous else gold[word])
            previous = word
        labels.append(row)
    return labels


def first_piece_labels(encoded, docs: Sequence[Doc], tag_index: Dict[str, int]):
    """``first_piece_rows`` of a padded batch, as a (batch, pieces) tensor."""
    import torch

    return torch.tensor(first_piece_rows(encoded, docs, tag_index), dtype=torch.long)


def token_classification_features(tokenizer, docs: Sequence[Doc], tag_index: Dict[str, int]) -> Tuple[list, list, list]:
    """Piece ids, segment ids and first-piece labels of a batch for ``BertForTokenClassification``."""
    encoded = tokenizer([[t.text for t in doc] for doc in docs], is_split_into_words=True)
    return encoded["input_ids"], encoded["token_type_ids"], first_piece_rows(encoded, docs, tag_index)


def torch_ner_step(model, optimizer, features: Tuple[list, list, list]) -> None:
    """One plain PyTorch update: padded batch, loss, backward, global-norm clipping at 1.0, AdamW."""
    import torch

    ids, types, gold = features
    width = max(len(row) for row in ids)
    input_ids = torch.zeros((len(ids), width), dtype=torch.long)
    token_types, mask = torch.zeros_like(input_ids), torch.zeros_like(input_ids)
    label_ids = torch.full_like(input_ids, -100)
    for r in range(len(ids)):
        n = len(ids[r])
        input_ids[r, :n], token_types[r, :n], mask[r, :n] = torch.tensor(ids[r]), torch.tensor(types[r]), 1
        label_ids[r, :n] = torch.tensor(gold[r])
    model.train()
    loss = model(input_ids=input_ids, attention_mask=mask, token_type_ids=token_types, labels=label_ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()


def training_plan(train: List[Doc], steps: int, batch_size: int, seed: int) -> List[List[Doc]]:
    """``steps`` batches of ``batch_size`` sentences: seeded passes over ``train``."""
    plan: List[List[Doc]] = []
    epoch = 0
    while len(plan) < steps:
        order = subsample(train, 0, seed=seed + epoch)
        plan.extend(order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size))
        epoch += 1
    return plan[:steps]
