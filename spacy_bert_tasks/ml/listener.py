"""How a head reaches the shared encoder, and what replaces that link.

- ``spacy_bert_tasks.Listener.v1``: the raw listener. It receives, per doc,
  the ``TransformerData`` of the ``transformer`` component named ``upstream``
  ("*" for any), so a head can read the word pieces themselves.
- ``spacy_bert_tasks.StandaloneEncoder.v1``: the encoder owned by one head,
  with the same output. spaCy's ``nlp.replace_listeners`` puts it where the
  listener was (``replace_listener_cfg`` in ``encoder.py`` writes its config), so a sourced
  head keeps its own copy of the encoder it was trained with.
- ``spacy_bert_tasks.EncoderTok2Vec.v1``: the same for spacy-transformers'
  pooled ``TransformerListener.v1`` (one vector per token).
"""
from typing import Any, Dict, List

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import TransformerData
from spacy_transformers.layers import TransformerListener
from spacy_transformers.layers.split_trf import split_trf_batch
from spacy_transformers.layers.trfs2arrays import trfs2arrays
from thinc.api import Model, chain
from thinc.types import Floats2d, Ragged

from .encoder import build_encoder_model


@registry.architectures("spacy_bert_tasks.Listener.v1")
def build_listener(upstream: str = "*") -> Model[List[Doc], List[TransformerData]]:
    """Listen to a ``transformer`` component: one ``TransformerData`` per doc.

    upstream (str): the name of the ``transformer`` component to listen to,
        or "*" for whichever one the pipeline has. Name it when a pipeline
        holds more than one.
    """
    return TransformerListener(upstream_name=upstream)


@registry.architectures("spacy_bert_tasks.StandaloneEncoder.v1")
def build_standalone_encoder(
    name: str,
    max_length: int = 512,
    stride: int = 128,
    max_question_length: int = 64,
    max_pair_length: int = 256,
    max_batch_tokens: int = 4096,
    frozen: bool = False,
    tokenizer_config: Dict[str, Any] = {"use_fast": True},
    transformer_config: Dict[str, Any] = {},
) -> Model[List[Doc], List[TransformerData]]:
    """The encoder inside a head, where a listener was: one ``TransformerData`` per doc.

    The settings are those of ``spacy_bert_tasks.Encoder.v1``.
    """
    encoder = build_encoder_model(
        name, max_length=max_length, stride=stride, max_question_length=max_question_length,
        max_pair_length=max_pair_length, max_batch_tokens=max_batch_tokens, frozen=frozen,
        tokenizer_config=tokenizer_config, transformer_config=transformer_config,
    )
    return chain(encoder, split_trf_batch())


@registry.architectures("spacy_bert_tasks.EncoderTok2Vec.v1")
def build_encoder_tok2vec(
    name: str,
    pooling: Model[Ragged, Floats2d],
    grad_factor: float = 1.0,
    max_length: int = 512,
    stride: int = 128,
    max_question_length: int = 64,
    max_pair_length: int = 256,
    max_batch_tokens: int = 4096,
    frozen: bool = False,
    tokenizer_config: Dict[str, Any] = {"use_fast": True},
    transformer_config: Dict[str, Any] = {},
) -> Model[List[Doc], List[Floats2d]]:
    """The encoder inside a head, where spacy-transformers' pooled listener was.

    The settings are those of ``spacy_bert_tasks.Encoder.v1`` plus the
    listener's ``pooling`` and ``grad_factor``; the nesting matches the model
    that ``replace_listeners`` leaves behind.
    """
    encoder = build_standalone_encoder(
        name, max_length=max_length, stride=stride, max_question_length=max_question_length,
        max_pair_length=max_pair_length, max_batch_tokens=max_batch_tokens, frozen=frozen,
        tokenizer_config=tokenizer_config, transformer_config=transformer_config,
    )
    return chain(encoder, trfs2arrays(pooling, grad_factor))
