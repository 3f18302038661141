"""The text classification head: one pooled vector per doc, then the classes.

``spacy_bert_tasks.TextCat.v1`` is ``BertForSequenceClassification`` as a thinc
model: listener >> doc pooling >> dropout >> output layer. The output layer is
a softmax over exclusive classes, or a linear layer with a sigmoid per label
for multi-label data. Both expect the gradient of a cross-entropy loss,
``scores - truth``, which is also the gradient with respect to their logits.
"""
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import TransformerData
from thinc.api import Dropout, Linear, Model, Softmax, chain, zero_init
from thinc.types import Floats2d

from .heads import bert_init

POOLER_INITS = ("random", "checkpoint")


@registry.architectures("spacy_bert_tasks.TextCat.v1")
def build_textcat_model(
    tok2vec: Model[List[Doc], List[TransformerData]],
    pooling: Model[List[TransformerData], Floats2d],
    exclusive_classes: bool = True,
    dropout: float = 0.1,
    dense_tanh: bool = False,
    nO: Optional[int] = None,
    pooler_init: str = "random",
) -> Model[List[Doc], Floats2d]:
    """Classify each doc from one pooled encoder vector.

    tok2vec (Model[List[Doc], List[TransformerData]]): the raw listener
        (``spacy_bert_tasks.Listener.v1``) or an encoder of the head's own.
    pooling (Model[List[TransformerData], Floats2d]): one vector per doc, e.g.
        ``spacy_bert_tasks.cls_pooling.v1`` (default), ``mean_pooling.v1`` or
        ``first_token_pooling.v1``.
    exclusive_classes (bool): one class per doc (softmax) or any number of
        labels per doc (a sigmoid per label).
    dropout (float): dropout on the pooled vector, as BERT's classifier has.
    dense_tanh (bool): put a dense layer with tanh (as wide as the encoder)
        between pooling and dropout, as BERT's pooler does before its
        classifier.
    nO (Optional[int]): the number of labels; the component sets it.
    pooler_init (str): how ``dense_tanh`` starts: "random" (BERT's N(0, 0.02)), or
        "checkpoint": from the encoder's pretrained pooler, as
        ``BertForSequenceClassification`` does (the component copies it in
        ``initialize``; the encoder must have one).
    """
    if pooler_init not in POOLER_INITS:
        raise ValueError(f"Unknown pooler_init {pooler_init!r}; choose one of {', '.join(POOLER_INITS)}.")
    if pooler_init == "checkpoint" and not dense_tanh:
        raise ValueError('pooler_init = "checkpoint" initialises the dense_tanh layer: set dense_tanh = true too.')
    if exclusive_classes:
        output = Softmax(nO=nO, init_W=bert_init, init_b=zero_init)
    else:
        output = chain(Linear(nO=nO, init_W=bert_init, init_b=zero_init), sigmoid_for_crossentropy())
    dense = dense_tanh_layer() if dense_tanh else None
    head = chain(dense, Dropout(dropout), output) if dense else chain(Dropout(dropout), output)
    model = chain(tok2vec, pooling, head)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("pooling", pooling)
    model.set_ref("head", head)
    model.set_ref("head_input", dense or (output if exclusive_classes else output.layers[0]))
    model.set_ref("output_layer", output if exclusive_classes else output.layers[0])
    if dense:
        model.set_ref("dense_tanh", dense)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs["pooler_init"] = pooler_init
    return model


def copy_pooler(dense: Model, transformer: Any) -> None:
    """Set a ``dense_tanh`` layer's weights to a Hugging Face encoder's pretrained pooler (dense + tanh).

    dense (Model): an initialised ``dense_tanh`` layer, (width, width).
    transformer (Any): the encoder's Hugging Face model, e.g. a ``BertModel``.
    """
    pooler = getattr(getattr(transformer, "pooler", None), "dense", None)
    if pooler is None or not _pooler_in_checkpoint(transformer):
        kind = type(transformer).__name__
        raise ValueError(
            f'pooler_init = "checkpoint", but the encoder ({kind}) has no pretrained pooler. '
            'Use pooler_init = "random" (or dense_tanh = false).'
        )
    W, b = pooler.weight.detach().cpu().numpy(), pooler.bias.detach().cpu().numpy()  # torch Linear: (out, in)
    if W.shape != (dense.get_dim("nO"), dense.get_dim("nI")):
        raise ValueError(f"The encoder's pooler is {W.shape}, the head's dense layer {(dense.get_dim('nO'), dense.get_dim('nI'))}.")
    dense.set_param("W", dense.ops.asarray2f(W.copy()))
    dense.set_param("b", dense.ops.asarray1f(b.copy()))


def sigmoid_for_crossentropy() -> Model[Floats2d, Floats2d]:
    """A sigmoid per column whose backprop takes ``scores - truth``.

    The gradient of binary cross-entropy with respect to the logits is
    ``sigmoid(x) - truth``; the layer passes it on unchanged, as thinc's
    Softmax does for categorical cross-entropy. (thinc's Logistic would
    multiply it by the sigmoid's slope, which is the squared-error gradient.)
    """
    return Model("sigmoid_for_crossentropy", _sigmoid_forward)


def _sigmoid_forward(model: Model, X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
    Y = model.ops.sigmoid(X, inplace=False)

    def backprop(dY: Floats2d) -> Floats2d:
        return dY

    return Y, backprop


def dense_tanh_layer(nO: Optional[int] = None, nI: Optional[int] = None) -> Model[Floats2d, Floats2d]:
    """``tanh(X @ W.T + b)``; without ``nO`` as wide as its input."""
    return Model("dense_tanh", _dense_tanh_forward, init=_dense_tanh_init,
                 dims={"nO": nO, "nI": nI}, params={"W": None, "b": None})


def _dense_tanh_init(model: Model, X: Optional[Floats2d] = None, Y: Optional[Floats2d] = None) -> None:
    if X is not None and not model.has_dim("nI"):
        model.set_dim("nI", X.shape[1])
    if not model.has_dim("nO"):
        model.set_dim("nO", model.get_dim("nI"))
    model.set_param("W", bert_init(model.ops, (model.get_dim("nO"), model.get_dim("nI"))))
    model.set_param("b", model.ops.alloc1f(model.get_dim("nO")))


def _dense_tanh_forward(model: Model, X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
    W = model.get_param("W")
    Y = model.ops.xp.tanh(model.ops.affine(X, W, model.get_param("b")))

    def backprop(dY: Floats2d) -> Floats2d:
        dZ = dY * (1 - Y**2)  # tanh' = 1 - tanh^2
        model.inc_grad("b", dZ.sum(axis=0))
        model.inc_grad("W", model.ops.gemm(dZ, X, trans1=True))
        return model.ops.gemm(dZ, W)

    return Y, backprop


def _pooler_in_checkpoint(transformer: Any) -> bool:
    """Whether the folder the encoder was loaded from holds pooler weights (Hugging Face
    adds a randomly initialised pooler when it does not). True where it cannot tell."""
    from safetensors import safe_open

    files = sorted(Path(getattr(transformer.config, "_name_or_path", "") or ".").glob("*.safetensors"))
    if not files:
        return True
    for file in files:
        with safe_open(str(file), "np") as weights:
            if any(key.endswith("pooler.dense.weight") for key in weights.keys()):
                return True
    return False
