"""bert_ner from the real pretrained encoder on real CoNLL-2003 sentences (run with --slow).

A few hundred training sentences and a short budget: what pretraining buys is
visible at once, since the same budget leaves a randomly initialised encoder of
the same shape and tokenizer far behind.
"""
import random

import pytest
import spacy
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import warmup_linear

from spacy_bert_tasks.pretraining.init_encoder import reinit_encoder
from spacy_bert_tasks.corpus.conll import convert_conll
from spacy_bert_tasks.fine_tuning import configure_global_clip_adam

pytestmark = pytest.mark.slow

N_TRAIN, N_DEV, STEPS, BATCH, LEARN_RATE = 400, 300, 60, 16, 1e-4


def _train_and_score(encoder, train, dev) -> float:
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"@architectures": "spacy_bert_tasks.Encoder.v1", "name": str(encoder),
                                                  "max_length": 128, "stride": 32}})
    nlp.add_pipe("bert_ner")
    examples = [Example(_tokens(nlp, doc), doc) for doc in train]
    nlp.initialize(lambda: examples)
    optimizer = configure_global_clip_adam(warmup_linear(LEARN_RATE, STEPS // 10, STEPS), max_grad_norm=1.0, L2=0.01,
                                           use_averages=False)
    rng = random.Random(0)
    for _ in range(STEPS):
        nlp.update(rng.sample(examples, BATCH), sgd=optimizer, drop=0.1)
        optimizer.step_schedules()
    return nlp.evaluate([Example(_tokens(nlp, doc), doc) for doc in dev])["ents_f"]


def _tokens(nlp, doc):
    from spacy.tokens import Doc

    return Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


def test_bert_ner_from_the_pretrained_encoder_beats_a_random_one(shared_data, pretrained_encoder, tmp_path):
    import torch

    torch.set_num_threads(2)
    nlp = spacy.blank("en")
    train = random.Random(0).sample(convert_conll(shared_data / "conll2003" / "train.txt", nlp)[0], N_TRAIN)
    dev = convert_conll(shared_data / "conll2003" / "valid.txt", nlp)[0][:N_DEV]
    scratch = reinit_encoder(pretrained_encoder, tmp_path / "random", seed=0)
    pretrained_f = _train_and_score(pretrained_encoder, train, dev)
    scratch_f = _train_and_score(scratch, train, dev)
    print(f"dev F1 after {STEPS} updates of {BATCH}: pretrained {pretrained_f:.3f}, random {scratch_f:.3f}")
    # Measured here: 0.308 from the pretrained encoder, 0.062 from random weights.
    assert pretrained_f >= 0.2, pretrained_f
    assert scratch_f < 0.1, scratch_f
