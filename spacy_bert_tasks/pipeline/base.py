"""What the three heads share on the spaCy side: labels, initialisation, listeners.

A head subclasses ``BertTaskPipe`` and writes ``predict``, ``set_annotations``,
``get_loss`` and, when it has labels, ``labels_from_examples``. Everything else
(``update``, serialisation) comes from spaCy's ``TrainablePipe``.

Which doc inputs the encoder reads is decided by the heads, not by the doc: a
head names them in ``doc_inputs`` and marks its listener (and any encoder of its
own) with them; ``link_doc_inputs`` gives each shared encoder the union over its
listeners. On a shared encoder a doc is still read once, so a single-text head
next to a QA head reads a doc that has a question with that question in front
(one pass per doc feeds every head); give such a head its own encoder
(``nlp.replace_listeners``) to keep it apart.
"""
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples
from spacy.vocab import Vocab
from spacy_transformers.layers import TransformerListener
from thinc.api import Model

from ..ml.encoder import EncoderModel, listened_inputs
from ..fine_tuning import link_hidden_states

N_INIT_DOCS = 10


class BertTaskPipe(TrainablePipe):
    """A head on the shared encoder, with its labels kept in ``self.cfg``."""

    def __init__(self, vocab: Vocab, model: Model, name: str, *, scorer: Optional[Callable] = None, **cfg: Any):
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg = {"labels": [], **cfg}
        self.mark_doc_inputs()

    @property
    def doc_inputs(self) -> Tuple[str, ...]:
        """The doc inputs (``extensions.QUESTION``, ``TEXT_PAIR``) the encoder reads for this head."""
        return ()

    def mark_doc_inputs(self) -> None:
        """Mark the head's listeners and own encoders with ``doc_inputs`` (see ``link_doc_inputs``)."""
        for node in self.model.walk():
            if isinstance(node, (TransformerListener, EncoderModel)):
                node.attrs["doc_inputs"] = list(self.doc_inputs)

    @property
    def labels(self) -> tuple:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    def add_label(self, label: str) -> int:
        """Add a label before training; returns 0 if it was there already."""
        if not isinstance(label, str):
            raise ValueError(f"Labels must be strings, got {label!r} ({type(label).__name__}).")
        if label in self.labels:
            return 0
        self._allow_extra_label()
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def labels_from_examples(self, examples: Iterable[Example]) -> List[str]:
        """The labels the gold data holds; heads without labels keep the default."""
        return []

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Discover labels from the data (unless given) and initialise the model.

        get_examples (Callable[[], Iterable[Example]]): the training data.
        labels (Sequence[str]): labels to use instead of discovering them, as
            written by ``spacy init labels``.
        """
        validate_get_examples(get_examples, f"{type(self).__name__}.initialize")
        if nlp is not None:
            check_upstream(self, nlp)
        found = list(labels) if labels is not None else self.labels_from_examples(get_examples())
        for label in found:
            self.add_label(label)
        docs = [eg.predicted for eg in islice(get_examples(), N_INIT_DOCS)]
        self.init_model(docs)
        self.mark_doc_inputs()
        if nlp is not None:  # a head that reads every encoder layer turns them on
            link_hidden_states(nlp)
            link_doc_inputs(nlp)

    def init_model(self, docs: List[Doc]) -> None:
        """Initialise the model's weights; heads with an output size set it first."""
        self.model.initialize(X=docs)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "BertTaskPipe":
        super().from_bytes(bytes_data, exclude=exclude)
        self.mark_doc_inputs()
        return self

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "BertTaskPipe":
        super().from_disk(path, exclude=exclude)
        self.mark_doc_inputs()
        return self


def link_doc_inputs(nlp: Language) -> Dict[str, List[str]]:
    """Make each shared encoder read the doc inputs its listening heads read, and no others.

    The setting is the encoder model's ``doc_inputs`` attr, saved with the
    pipeline. ``BertTaskPipe.initialize`` calls this; call it after assembling
    a pipeline by hand, or on one saved before the setting existed (whose
    encoder reads whichever inputs a doc has).
    RETURNS (Dict[str, List[str]]): per encoder component, the inputs it reads.
    """
    linked = {}
    for name, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if isinstance(model, EncoderModel) and hasattr(proc, "listeners"):
            model.attrs["doc_inputs"] = listened_inputs(proc.listeners)
            linked[name] = model.attrs["doc_inputs"]
    return linked


def check_upstream(pipe: TrainablePipe, nlp: Language) -> None:
    """Fail early, naming the transformers that exist, when a head's listener names none of them.

    Without this the listener is never connected, and initialising the head fails
    deep in thinc with "Cannot get dimension 'nO' for model 'transformer-listener'".
    """
    encoders = [name for name, component in nlp.components if hasattr(component, "add_listener")]
    for node in pipe.model.walk():
        upstream = getattr(node, "upstream_name", None)
        if upstream is None or upstream in encoders or (upstream == "*" and encoders):
            continue
        raise ValueError(
            f"The listener of '{pipe.name}' has upstream = \"{upstream}\", but the pipeline has no "
            f"transformer component of that name. Transformer components: "
            f"{', '.join(encoders) if encoders else 'none (add one before the head)'}. "
            f"Set [components.{pipe.name}.model.tok2vec] upstream to one of them, or \"*\"."
        )
