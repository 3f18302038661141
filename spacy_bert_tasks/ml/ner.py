"""The token-classification head of ``bert_ner``, after ``BertForTokenClassification``.

The encoder's output is cut into each token's word pieces (``trf_pieces``) and
every piece gets tag probabilities from one dropout + softmax layer. Which
pieces count is the component's business: the first piece of each token for
prediction and, with ``alignment = "first"``, for training; all of them with
``alignment = "all"``.
"""
from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import TransformerData
from thinc.api import Dropout, Model, Softmax, chain, with_array, zero_init
from thinc.types import Ragged

from .heads import bert_init
from .pooling import trf_pieces


@registry.architectures("spacy_bert_tasks.NER.v1")
def build_ner_model(
    tok2vec: Model[List[Doc], List[TransformerData]],
    nO: Optional[int] = None,
    dropout: float = 0.1,
    grad_factor: float = 1.0,
) -> Model[List[Doc], Ragged]:
    """Tag probabilities for every word piece of every token in a batch.

    tok2vec (Model[List[Doc], List[TransformerData]]): the encoder's output per
        doc: ``spacy_bert_tasks.Listener.v1``, or the encoder itself after
        ``nlp.replace_listeners``.
    nO (Optional[int]): number of tags; set by the component from its labels.
    dropout (float): dropout on the piece vectors before the softmax, as
        ``classifier_dropout`` in Hugging Face's head.
    grad_factor (float): scales the gradient sent back to the encoder (0 keeps
        the encoder as it is with respect to this head).
    RETURNS (Model[List[Doc], Ragged]): one Ragged for the batch, docs in order:
        a group per token, a row of (nO,) probabilities per piece.
    """
    output_layer = Softmax(nO, init_W=bert_init, init_b=zero_init)
    model = chain(tok2vec, trf_pieces(grad_factor), concat_docs(), with_array(chain(Dropout(dropout), output_layer)))
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    return model


def concat_docs() -> Model[List[Ragged], Ragged]:
    """Join the per-doc token groups of a batch into one Ragged (one softmax call per batch)."""
    return Model("concat_docs", _concat_forward)


def _concat_forward(model: Model, Xs: List[Ragged], is_train: bool) -> Tuple[Ragged, Callable]:
    xp = model.ops.xp
    sizes = [X.dataXd.shape[0] for X in Xs]
    data = xp.concatenate([X.dataXd for X in Xs]) if Xs else model.ops.alloc2f(0, 0)
    lengths = xp.concatenate([X.lengths for X in Xs]) if Xs else model.ops.alloc1i(0)
    Y = Ragged(data, lengths.astype("int32"))

    def backprop(dY: Ragged) -> List[Ragged]:
        bounds = xp.cumsum(xp.asarray(sizes, dtype="i"))[:-1]
        return [Ragged(d_data, X.lengths) for d_data, X in zip(xp.split(dY.dataXd, bounds), Xs)]

    return Y, backprop
