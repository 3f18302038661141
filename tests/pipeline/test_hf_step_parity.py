"""bert_textcat and BertForSequenceClassification take the same steps.

With dropout off and the classifier started from the same weights, the two
are the same function of the same weights: ``nlp.update`` with the configs'
optimizer (GlobalClipAdam: AdamW, weight decay 0.01, global-norm clipping)
and thinc's ``warmup_linear`` must give the losses and weights that a plain
PyTorch loop (``torch.optim.AdamW``, ``clip_grad_norm_``,
``get_linear_schedule_with_warmup``) gives, update after update. A gradient
applied late, a loss averaged differently or a schedule one step off shows
here long before it costs accuracy (``bench/textcat_parity.py``).
"""
import json
import shutil

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import warmup_linear

from spacy_bert_tasks.fine_tuning import configure_global_clip_adam
from tests.conftest import encoder_config

LR, STEPS, WARMUP = 5e-3, 8, 2
# thinc's Adam adds eps before the bias correction, torch after it: with BERT's 1e-8
# the two differ for gradients near 1e-7 in the first updates. A smaller eps
# leaves the steps the same function.
EPS = 1e-12
LABELS = ["NEG", "POS"]
DATA = [
    ("Alice Smith praised Globex, and it was good news.", "POS", None),
    ("Bruno Diaz left Acme Corp in Lima, and it was bad news.", "NEG", None),
    ("Chen Wei joined Initech in Oslo, great news for everyone.", "POS", None),
    ("Dana Okafor called Stark Labs, terrible news for everyone.", "NEG", None),
]
PAIRS = [
    ("Alice Smith visited Paris.", "POS", "It was good news."),
    ("Alice Smith visited Paris.", "NEG", "It was bad news."),
    ("Bruno Diaz left Lagos.", "POS", "It was good news."),
    ("Bruno Diaz left Lagos.", "NEG", "It was bad news."),
]


@pytest.fixture(scope="module")
def no_dropout_encoder(tiny_encoder, tmp_path_factory):
    """The tiny encoder with its dropout off, so both systems are deterministic."""
    folder = tmp_path_factory.mktemp("encoders") / "tiny-no-dropout"
    shutil.copytree(tiny_encoder, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def train_hf(encoder, data):
    from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(encoder))
    model = BertForSequenceClassification.from_pretrained(str(encoder), num_labels=len(LABELS))
    head = (model.classifier.weight.detach().numpy().copy(), model.classifier.bias.detach().numpy().copy())
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, eps=EPS, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, WARMUP, STEPS)
    pairs = [pair for _, _, pair in data] if data[0][2] is not None else None
    inputs = tokenizer([text for text, _, _ in data], pairs, padding=True, return_tensors="pt")
    labels = torch.tensor([LABELS.index(label) for _, label, _ in data])
    start = {name: param.detach().clone() for name, param in model.bert.named_parameters()}
    model.train()
    losses = []
    for _ in range(STEPS):
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return head, losses, start, {name: param.detach() for name, param in model.bert.named_parameters()}


def train_ours(encoder, data, head):
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=encoder_config(encoder, max_length=64, max_pair_length=32))
    nlp.add_pipe("bert_textcat", config={"model": {"dropout": 0.0, "dense_tanh": True, "pooler_init": "checkpoint"}})
    examples = []
    for text, label, pair in data:
        doc = nlp.make_doc(text)
        doc._.text_pair = pair
        example = Example.from_dict(doc, {"cats": {name: float(name == label) for name in LABELS}})
        example.reference._.text_pair = pair
        examples.append(example)
    nlp.config["initialize"]["components"] = {"bert_textcat": {"labels": LABELS}}
    nlp.initialize(lambda: examples)
    output = nlp.get_pipe("bert_textcat").model.get_ref("output_layer")
    output.set_param("W", head[0].copy())
    output.set_param("b", head[1].copy())
    optimizer = configure_global_clip_adam(warmup_linear(LR, WARMUP, STEPS), max_grad_norm=1.0, L2=0.01, eps=EPS,
                                           use_averages=False)
    losses = []
    for _ in range(STEPS):
        losses.append(nlp.update(examples, sgd=optimizer, drop=0.0)["bert_textcat"])
        optimizer.step_schedules()
    network = nlp.get_pipe("transformer").model.transformer
    return losses, {name: param.detach() for name, param in network.named_parameters()}


@pytest.mark.parametrize("data", [DATA, PAIRS], ids=["single", "pair"])
def test_bert_textcat_steps_as_bert_for_sequence_classification(no_dropout_encoder, data):
    head, hf_losses, start, hf_weights = train_hf(no_dropout_encoder, data)
    losses, weights = train_ours(no_dropout_encoder, data, head)
    assert hf_losses[-1] < 0.9 * hf_losses[0], "the baseline did not learn: nothing is compared"
    numpy.testing.assert_allclose(losses, hf_losses, rtol=2e-3)
    # Each tensor moved the same way. (Element by element, Adam's first steps are
    # sign(gradient) * lr, so a gradient of 1e-12 either side of 0 flips one.)
    for name, param in hf_weights.items():
        if name.startswith("pooler."):  # ours trains a copy of the pooler in the head
            continue
        if name.endswith("attention.self.key.bias"):  # its gradient is 0 (softmax ignores a shift): rounding noise
            continue
        ours, theirs = weights[name] - start[name], param - start[name]
        assert torch.linalg.norm(ours - theirs) <= 0.05 * torch.linalg.norm(theirs), name
