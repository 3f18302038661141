"""What every head shares: BERT's initialiser.

Hugging Face heads all start from one ``init_weights``: weights from
N(0, ``initializer_range`` = 0.02), zero bias. Every output layer here (NER's
softmax, textcat's softmax or sigmoid and its dense + tanh, QA's start/end
layer) takes ``bert_init`` for its weights and thinc's ``zero_init`` for its bias.
"""
from typing import Tuple

import numpy
from thinc.api import Ops
from thinc.types import FloatsXd

INIT_RANGE = 0.02


def bert_init(ops: Ops, shape: Tuple[int, ...]) -> FloatsXd:
    """Weights from N(0, 0.02), drawn from numpy's seeded generator (``spacy.util.fix_random_seed``).

    A zero-initialised classifier sends the encoder no gradient at first and,
    from a freshly initialised encoder, can settle on the majority class.
    """
    return ops.asarray(numpy.random.normal(0.0, INIT_RANGE, shape).astype("float32"))
