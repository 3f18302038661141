"""``bert_textcat``: single-label, multi-label and sentence-pair classification.

The ``BertForSequenceClassification`` recipe on the shared encoder: one pooled
vector per doc ([CLS] by default) >> dropout >> softmax (exclusive classes) or
a sigmoid per label (multi-label). Scores go to ``doc.cats``.

Sentence pairs need nothing here: a component trained on pairs records
``cfg["pairs"]`` and asks the encoder for them (``doc_inputs``), which then reads
``[CLS] doc.text [SEP] text_pair [SEP]`` in the same single pass that feeds
every head. A component trained on single texts asks for no pair: a
``doc._.text_pair`` given to it is not read. Given a doc without a pair (or with
an empty or whitespace-only one), a pair component raises (``missing_pair =
"error"``, the default) or leaves that doc's cats unset (``missing_pair =
"skip"``, for pipelines whose other docs have no pair, such as a joint
pipeline's NER docs).

Missing labels: a label absent from a gold doc's ``cats`` adds no loss. With
exclusive classes, a doc whose ``cats`` hold no known label at 1.0 adds none.
Labels the component does not know are ignored in training and scoring.
"""
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import CategoricalCrossentropy, Config, Model
from thinc.types import Floats2d

from ..extensions import TEXT_PAIR, doc_input
from ..ml.textcat import copy_pooler  # (importing it registers TextCat.v1, the listener, pooling)
from ..scoring import annotated_for, score_cats
from ..fine_tuning import listened_encoder
from .base import BertTaskPipe

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_bert_tasks.TextCat.v1"
exclusive_classes = true
dropout = 0.1
dense_tanh = false
nO = null

[model.tok2vec]
@architectures = "spacy_bert_tasks.Listener.v1"
upstream = "*"

[model.pooling]
@layers = "spacy_bert_tasks.cls_pooling.v1"
grad_factor = 1.0
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]

MISSING_PAIR_OPTIONS = ("error", "skip")
_MISSING = "\0missing"  # the truth of a doc whose exclusive class is unknown


@Language.factory(
    "bert_textcat",
    assigns=["doc.cats"],
    default_config={
        "model": DEFAULT_MODEL,
        "threshold": 0.5,
        "missing_pair": "error",
        "scorer": {"@scorers": "spacy_bert_tasks.textcat_scorer.v1"},
    },
    default_score_weights={
        "cats_score": 1.0,
        "cats_score_desc": None,
        "cats_micro_p": None,
        "cats_micro_r": None,
        "cats_micro_f": None,
        "cats_macro_p": None,
        "cats_macro_r": None,
        "cats_macro_f": None,
        "cats_macro_auc": None,
        "cats_f_per_type": None,
    },
)
def make_bert_textcat(
    nlp: Language,
    name: str,
    model: Model[List[Doc], Floats2d],
    *,
    threshold: float,
    missing_pair: str,
    scorer: Optional[Callable],
) -> "BertTextCategorizer":
    """Create a ``bert_textcat`` component.

    model (Model[List[Doc], Floats2d]): ``spacy_bert_tasks.TextCat.v1``; its
        ``exclusive_classes`` chooses single-label or multi-label.
    threshold (float): multi-label only: a label is predicted when its score
        is at least this (used by the scorer).
    missing_pair (str): what a model trained on pairs does with a doc that
        has no ``doc._.text_pair``: "error" or "skip" (no cats for that doc).
    scorer (Optional[Callable]): spaCy's ``cats_*`` scores by default.
    """
    return BertTextCategorizer(nlp.vocab, model, name, threshold=threshold, missing_pair=missing_pair, scorer=scorer)


class BertTextCategorizer(BertTaskPipe):
    """Classify docs (or sentence pairs) from the shared encoder into ``doc.cats``."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], Floats2d],
        name: str = "bert_textcat",
        *,
        threshold: float = 0.5,
        missing_pair: str = "error",
        scorer: Optional[Callable] = score_cats,
    ) -> None:
        if missing_pair not in MISSING_PAIR_OPTIONS:
            raise ValueError(
                f"Unknown missing_pair = {missing_pair!r} for component '{name}'. "
                f"Choose one of: {', '.join(MISSING_PAIR_OPTIONS)}."
            )
        super().__init__(
            vocab, model, name, scorer=scorer,
            threshold=threshold,
            multi_label=bool(model.attrs.get("multi_label", False)),
            positive_label=None,
            pairs=False,
            missing_pair=missing_pair,
        )

    @property
    def doc_inputs(self) -> Tuple[str, ...]:
        return (TEXT_PAIR,) if self.cfg.get("pairs") else ()

    def predict(self, docs: Iterable[Doc]) -> Floats2d:
        """Scores per doc and label, (n_docs, n_labels)."""
        docs = list(docs)
        self._check_pairs(docs)
        if not any(len(doc) for doc in docs):
            # No encoder output at all: every doc gets the head's output for a zero
            # vector, as an empty doc in a mixed batch does.
            width = self.model.get_ref("head_input").get_dim("nI")
            return self.model.get_ref("head").predict(self.model.ops.alloc2f(len(docs), width))
        return self.model.predict(docs)

    def set_annotations(self, docs: Iterable[Doc], scores: Floats2d) -> None:
        """Write each label's score to ``doc.cats``."""
        scores = self.model.ops.to_numpy(scores)
        for doc, row in zip(docs, scores):
            if self.lacks_pair(doc):  # missing_pair = "skip"
                continue
            for label, score in zip(self.labels, row):
                doc.cats[label] = float(score)

    def get_loss(self, examples: Iterable[Example], scores: Floats2d) -> Tuple[float, Floats2d]:
        """Cross-entropy (softmax or per-label sigmoid) and its gradient; missing labels add nothing.

        RETURNS (Tuple[float, Floats2d]): the mean loss over the annotated
            docs (exclusive) or labels (multi-label), and d_scores.
        """
        examples = list(examples)
        validate_examples(examples, "BertTextCategorizer.get_loss")
        truths_np, mask_np = self._examples_to_truth(examples)
        xp = self.model.ops.xp
        truths, mask = xp.asarray(truths_np), xp.asarray(mask_np)
        probs = xp.clip(scores, 1e-7, 1 - 1e-7)
        if self.cfg["multi_label"]:
            n_known = max(float(mask.sum()), 1.0)
            d_scores = CategoricalCrossentropy(normalize=False).get_grad(scores, truths) * mask / n_known
            bce = -(truths * xp.log(probs) + (1 - truths) * xp.log(1 - probs))
            loss = float((bce * mask).sum() / n_known)
        else:
            gold = truths_np.argmax(axis=1)
            names = [self.labels[i] if known else _MISSING for i, known in zip(gold, mask_np[:, 0])]
            # The mean over the annotated docs, as bert_ner and bert_qa take theirs: in a joint
            # batch, the docs of other tasks must not shrink this head's gradient.
            n_known = max(float(mask_np[:, 0].sum()), 1.0)
            loss_func = CategoricalCrossentropy(names=self.labels, missing_value=_MISSING, normalize=False)
            d_scores = loss_func.get_grad(scores, names) / n_known
            picked = probs[xp.arange(len(examples)), xp.asarray(gold)]  # (n_examples,)
            loss = float(-(xp.log(picked) * mask[:, 0]).sum() / n_known)
        return loss, d_scores

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
        positive_label: Optional[str] = None,
    ) -> None:
        """Find the labels and whether the data are sentence pairs, then initialise the model.

        get_examples (Callable[[], Iterable[Example]]): the training data.
        labels (Optional[Sequence[str]]): labels to use instead of discovering them.
        positive_label (Optional[str]): for two exclusive classes, the label
            whose F-score is ``cats_score`` (e.g. the paraphrase class of MRPC).
        """
        validate_get_examples(get_examples, "BertTextCategorizer.initialize")
        self.cfg["pairs"] = self._pairs_in(get_examples(), labels)
        super().initialize(get_examples, nlp=nlp, labels=labels)
        if self.model.attrs.get("pooler_init") == "checkpoint":
            self._copy_pretrained_pooler(nlp)
        if positive_label is not None:
            if positive_label not in self.labels:
                raise ValueError(
                    f"positive_label {positive_label!r} of '{self.name}' is not one of its labels: {list(self.labels)}."
                )
            if len(self.labels) != 2 or self.cfg["multi_label"]:
                raise ValueError(
                    f"positive_label is for two exclusive classes; '{self.name}' has {len(self.labels)} "
                    f"labels{' and is multi-label' if self.cfg['multi_label'] else ''}. Remove positive_label."
                )
        self.cfg["positive_label"] = positive_label

    def _copy_pretrained_pooler(self, nlp: Optional[Language]) -> None:
        encoder = listened_encoder(nlp, self.name) if nlp is not None else None
        if encoder is None or not encoder.attrs.get("has_transformer"):
            raise ValueError(
                f'\'{self.name}\' has pooler_init = "checkpoint" but no initialised encoder to copy the pooler from. '
                "Initialise it in a pipeline with its transformer (nlp.initialize), or use pooler_init = \"random\"."
            )
        copy_pooler(self.model.get_ref("dense_tanh"), encoder.transformer)

    def labels_from_examples(self, examples: Iterable[Example]) -> List[str]:
        """Every label named in the gold ``cats``, in order of first appearance."""
        return list(dict.fromkeys(label for eg in examples for label in eg.reference.cats))

    def init_model(self, docs: List[Doc]) -> None:
        """Set the output size from the labels, then initialise the weights."""
        if len(self.labels) < (1 if self.cfg["multi_label"] else 2):
            raise ValueError(
                f"'{self.name}' has {len(self.labels)} label(s) {list(self.labels)}; exclusive classes need "
                "at least 2 (multi-label at least 1). Check that the training docs have doc.cats, or pass "
                "labels in [initialize.components]."
            )
        self.model.get_ref("output_layer").set_dim("nO", len(self.labels))
        head_input, tok2vec = self.model.get_ref("head_input"), self.model.get_ref("tok2vec")
        if not head_input.has_dim("nI") and tok2vec.has_dim("nO"):
            head_input.set_dim("nI", tok2vec.get_dim("nO"))
        self.model.initialize(X=docs)

    def _examples_to_truth(self, examples: List[Example]) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """Gold scores and a mask of the known ones, both (n_examples, n_labels).

        For exclusive classes a row is known (all ones in the mask) when it
        holds exactly one known label at 1.0, and unknown (zeros) otherwise.
        """
        index = {label: i for i, label in enumerate(self.labels)}
        truths = numpy.zeros((len(examples), len(index)), dtype="f")
        mask = numpy.zeros((len(examples), len(index)), dtype="f")
        for i, eg in enumerate(examples):
            cats = eg.reference.cats
            if self.cfg["pairs"] and annotated_for(cats, self.labels) and self.lacks_pair(eg.predicted, always=True):
                self._raise_missing_pair(eg.predicted, "training")
            for label, value in cats.items():
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"doc.cats[{label!r}] = {value} in {_describe(eg.reference)}; use values from 0 to 1.")
                if label in index:
                    truths[i, index[label]] = value
                    mask[i, index[label]] = 1.0
            if not self.cfg["multi_label"]:
                positives = [label for label, value in cats.items() if value == 1.0]
                if len(positives) > 1 or any(0.0 < value < 1.0 for value in cats.values()):
                    raise ValueError(
                        f"{_describe(eg.reference)} has cats {dict(cats)}, but '{self.name}' has exclusive classes: "
                        "one label at 1.0 and the rest 0.0. For several labels per doc use "
                        "exclusive_classes = false in the model."
                    )
                mask[i] = 1.0 if truths[i].sum() == 1.0 else 0.0
        return truths, mask

    def _pairs_in(self, examples: Iterable[Example], labels: Optional[Sequence[str]] = None) -> bool:
        """Whether the annotated training docs are sentence pairs (all of them) or single texts (none).

        With ``labels`` given, only the docs annotated with one of them count (in a
        joint corpus, the docs of another classifier are not this head's).
        """
        n_docs = n_pairs = n_gold_only = 0
        for eg in examples:
            if not annotated_for(eg.reference.cats, labels):
                continue
            n_docs += 1
            n_pairs += doc_input(eg.predicted, TEXT_PAIR) is not None
            n_gold_only += eg.predicted._.text_pair is None and eg.reference._.text_pair is not None
        if n_gold_only:
            raise ValueError(
                f"{n_gold_only} training doc(s) have doc._.text_pair on the gold doc but not on the doc the "
                "model reads. Read the corpus with spacy_bert_tasks.Corpus.v1 (it copies the pair across), "
                "or call spacy_bert_tasks.extensions.copy_inputs(eg.reference, eg.predicted)."
            )
        if 0 < n_pairs < n_docs:
            raise ValueError(
                f"{n_pairs} of {n_docs} annotated training docs have doc._.text_pair and the others have none "
                "(or an empty one). "
                f"'{self.name}' classifies either single texts or sentence pairs; split the data or give "
                "every doc a pair."
            )
        return n_pairs > 0

    def lacks_pair(self, doc: Doc, always: bool = False) -> bool:
        """A pair model's doc with text but no (or a blank) text pair (only in "skip" mode unless ``always``)."""
        if not self.cfg["pairs"] or not doc.text.strip() or doc_input(doc, TEXT_PAIR) is not None:
            return False
        return always or self.cfg["missing_pair"] == "skip"

    def _check_pairs(self, docs: List[Doc]) -> None:
        if self.cfg["pairs"] and self.cfg["missing_pair"] == "error":
            for doc in docs:
                if self.lacks_pair(doc, always=True):
                    self._raise_missing_pair(doc, "prediction")

    def _raise_missing_pair(self, doc: Doc, stage: str) -> None:
        raise ValueError(
            f"'{self.name}' was trained on sentence pairs, but {_describe(doc)} has "
            f"{'no doc._.text_pair' if doc._.text_pair is None else f'an empty doc._.text_pair ({doc._.text_pair!r})'} "
            f"({stage}). Set it before the pipeline runs (doc = nlp.make_doc(text); doc._.text_pair = "
            "pair; nlp(doc)), read corpora with spacy_bert_tasks.Corpus.v1 (`spacy evaluate` reads with "
            "spaCy's own Corpus, which drops the pair: use nlp.evaluate over Corpus.v1 instead), or set "
            f'missing_pair = "skip" on [components.{self.name}] to leave such docs without cats.'
        )


def _describe(doc: Doc) -> str:
    text = doc.text if len(doc.text) <= 40 else doc.text[:40] + "..."
    return f"the doc {text!r}"
