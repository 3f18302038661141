"""The one test-only head: listener -> [CLS] -> Softmax, its classes in ``doc.cats``.

It stands in for the real heads where a test is about the encoder, the fine-tuning
strategies or the analyses, so those tests depend on no real head. Importing this
module registers the factory ``toy_textcat``.

decoded (bool): ``predict`` returns the best class, as ``bert_ner``'s decoded
    predictions do (so code that needs the scores must call ``model.predict``);
    otherwise the class probabilities, which ``set_annotations`` writes to ``doc.cats``.
"""
from typing import Callable, List, Optional

import numpy
from spacy.language import Language
from spacy.training import Example
from thinc.api import CategoricalCrossentropy, Model, Softmax, chain

from spacy_bert_tasks.ml.pooling import cls_pooling
from spacy_bert_tasks.pipeline.base import BertTaskPipe

FACTORY = "toy_textcat"


class ToyTextcat(BertTaskPipe):
    """Exclusive classes from the [CLS] vector, trained with categorical cross-entropy."""

    def predict(self, docs):
        scores = self.model.predict(docs)
        return scores.argmax(axis=1) if self.cfg["decoded"] else scores

    def set_annotations(self, docs, predictions):
        for doc, row in zip(docs, predictions):
            if self.cfg["decoded"]:
                doc.cats = {label: float(j == row) for j, label in enumerate(self.labels)}
            else:
                doc.cats = {label: float(value) for label, value in zip(self.labels, row)}

    def get_loss(self, examples, scores):
        truth = numpy.asarray([[eg.reference.cats.get(label, 0.0) for label in self.labels] for eg in examples], dtype="f")
        loss = CategoricalCrossentropy(normalize=True)
        return loss.get_loss(scores, truth), loss.get_grad(scores, truth)

    def labels_from_examples(self, examples):
        return sorted({label for eg in examples for label in eg.reference.cats})


@Language.factory(FACTORY, default_config={
    "tok2vec": {"@architectures": "spacy_bert_tasks.Listener.v1"}, "decoded": False, "scorer": None,
})
def make_toy_textcat(nlp: Language, name: str, tok2vec: Model, decoded: bool, scorer: Optional[Callable]) -> ToyTextcat:
    return ToyTextcat(nlp.vocab, chain(tok2vec, cls_pooling(), Softmax(nO=2)), name, decoded=decoded, scorer=scorer)


def cats_examples(nlp: Language, data) -> List[Example]:
    """(text, "POS" or "NEG") pairs as examples with exclusive ``cats``."""
    return [Example.from_dict(nlp.make_doc(text), {"cats": {"POS": float(label == "POS"), "NEG": float(label == "NEG")}})
            for text, label in data]
