"""How a head reaches the shared encoder, and what replaces that link.

- ``spacy_bert_tasks.Listener.v1``: the raw listener. It receives, per doc,
  the ``TransformerData`` of the ``transformer`` component named ``upstream``
  ("*" for any), so a head can read the word pieces themselves.
- ``spacy_bert_tasks.StandaloneEncoder.v1``: the encoder owned by one head,
  with the same output. spaCy's ``nlp.replace_listeners`` puts it where the
  listener was (``replace_listener_cfg`` in ``encoder/model.py`` writes its config), so a sourced
  head keeps its own copy of the encoder it was trained with.
- ``spacy_bert_tasks.EncoderTok2Vec.v1``: the same for spacy-transformers'
  pooled ``TransformerListener.v1`` (one vector per token).
"""
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import TransformerData
from spacy_transformers.layers import TransformerListener
from spacy_transformers.layers.split_trf import split_trf_batch
from spacy_transformers.layers.trfs2arrays import trfs2arrays
from thinc.api import Model, chain
from thinc.types import Floats2d, Ragged

from .encoder import EncoderModel, EncoderSettings, takes_encoder_settings


@registry.architectures("spacy_bert_tasks.Listener.v1")
def build_listener(upstream: str = "*") -> Model[List[Doc], List[TransformerData]]:
    """Listen to a ``transformer`` component: one ``TransformerData`` per doc.

    upstream (str): the name of the ``transformer`` component to listen to,
        or "*" for whichever one the pipeline has. Name it when a pipeline
        holds more than one.
    """
    return TransformerListener(upstream_name=upstream)


@registry.architectures("spacy_bert_tasks.StandaloneEncoder.v1")
@takes_encoder_settings()
def build_standalone_encoder(name: str, *, settings: EncoderSettings) -> Model[List[Doc], List[TransformerData]]:
    """The encoder inside a head, where a listener was: one ``TransformerData`` per doc.

    The settings are those of ``spacy_bert_tasks.Encoder.v1``.
    """
    return chain(EncoderModel(name, settings), split_trf_batch())


@registry.architectures("spacy_bert_tasks.EncoderTok2Vec.v1")
@takes_encoder_settings()
def build_encoder_tok2vec(
    name: str, pooling: Model[Ragged, Floats2d], grad_factor: float = 1.0, *, settings: EncoderSettings
) -> Model[List[Doc], List[Floats2d]]:
    """The encoder inside a head, where spacy-transformers' pooled listener was.

    The settings are those of ``spacy_bert_tasks.Encoder.v1`` plus the
    listener's ``pooling`` and ``grad_factor``; the nesting matches the model
    that ``replace_listeners`` leaves behind.
    """
    encoder = chain(EncoderModel(name, settings), split_trf_batch())
    return chain(encoder, trfs2arrays(pooling, grad_factor))
