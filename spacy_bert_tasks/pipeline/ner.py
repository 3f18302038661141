"""``bert_ner``: named entities as token classification on the shared encoder.

Each token's tag (IOB2: ``O``, ``B-X``, ``I-X``) is predicted from the vector
of its first word piece, as in ``BertForTokenClassification``. Decoding keeps
the tag sequence valid, so ``doc.ents`` always holds well-formed entities, and
each entity's confidence goes to ``doc.spans["ents_scored"]``.
"""
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import CategoricalCrossentropy, Config, Model
from thinc.types import Ragged

from ..ml.encoder import ranges
from ..scoring import score_ner
from ..tagging import OUTSIDE, argmax_repair, transition_masks, viterbi_decode_batch
from .base import BertTaskPipe

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_bert_tasks.NER.v1"
dropout = 0.1
grad_factor = 1.0

[model.tok2vec]
@architectures = "spacy_bert_tasks.Listener.v1"
upstream = "*"
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]

ALIGNMENTS = ("first", "all")
DECODINGS = ("viterbi", "argmax")
# BILUO prefixes of spaCy's aligned gold tags, read as IOB2.
_BILUO_TO_BIO = {"B": "B", "I": "I", "L": "I", "U": "B"}


@Language.factory(
    "bert_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "alignment": "first",
        "decoding": "viterbi",
        "scores_key": "ents_scored",
        "scorer": {"@scorers": "spacy_bert_tasks.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_bert_ner(
    nlp: Language,
    name: str,
    model: Model[List[Doc], Ragged],
    *,
    alignment: str,
    decoding: str,
    scores_key: str,
    scorer: Optional[Callable],
) -> "BertNER":
    """Named entities from the first word piece of each token.

    alignment (str): "first" trains on each token's first piece; "all" on all
        its pieces (``B-X`` becomes ``I-X`` on continuation pieces). Prediction
        always reads the first piece.
    decoding (str): "viterbi" (best valid tag sequence) or "argmax" (per-token
        argmax, then ``I-X`` without an open ``X`` becomes ``B-X``).
    scores_key (str): the ``doc.spans`` key for the entities with their scores.
    """
    return BertNER(nlp.vocab, model, name, alignment=alignment, decoding=decoding, scores_key=scores_key, scorer=scorer)


class BertNER(BertTaskPipe):
    """Token classification with constrained decoding; ``self.labels`` are entity types."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], Ragged],
        name: str = "bert_ner",
        *,
        alignment: str = "first",
        decoding: str = "viterbi",
        scores_key: str = "ents_scored",
        scorer: Optional[Callable] = score_ner,
    ):
        if alignment not in ALIGNMENTS:
            raise ValueError(f"bert_ner '{name}': unknown alignment '{alignment}'. Choose one of: {', '.join(ALIGNMENTS)}.")
        if decoding not in DECODINGS:
            raise ValueError(f"bert_ner '{name}': unknown decoding '{decoding}'. Choose one of: {', '.join(DECODINGS)}.")
        super().__init__(vocab, model, name, scorer=scorer, alignment=alignment, decoding=decoding, scores_key=scores_key)
        self._masks: Dict[Tuple[str, ...], Tuple[numpy.ndarray, ...]] = {}
        self._warned_labels: set = set()

    @property
    def tags(self) -> Tuple[str, ...]:
        """The IOB2 tags the model scores: ``O``, then ``B-X``, ``I-X`` for each label."""
        return (OUTSIDE,) + tuple(f"{prefix}-{label}" for label in self.labels for prefix in ("B", "I"))

    def predict(self, docs: Iterable[Doc]) -> List[Tuple[numpy.ndarray, numpy.ndarray]]:
        """Decode each doc's tags.

        RETURNS (List[Tuple[ndarray, ndarray]]): per doc, the tag index of each
            token (n_tokens,) and the probability of that tag (n_tokens,).
        """
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [(numpy.zeros((len(doc),), dtype="i"), numpy.ones((len(doc),), dtype="f")) for doc in docs]
        scores = self.model.predict(docs)
        probs = self._first_piece_probs(scores)  # (n_tokens_in_batch, n_tags)
        with numpy.errstate(divide="ignore"):
            log_probs = numpy.log(probs)
        bounds = numpy.cumsum([len(doc) for doc in docs])[:-1]
        doc_probs = numpy.split(probs, bounds)
        if self.cfg["decoding"] == "viterbi":
            paths = viterbi_decode_batch(numpy.split(log_probs, bounds), *self._transition_masks())
        else:
            paths = [argmax_repair(p, self.tags) for p in doc_probs]
        return [(path, p[numpy.arange(len(path)), path]) for path, p in zip(paths, doc_probs)]

    def set_annotations(self, docs: Iterable[Doc], predictions: List[Tuple[numpy.ndarray, numpy.ndarray]]) -> None:
        """Write ``doc.ents`` and ``doc.spans[scores_key]`` (scores: the mean probability of the entity's tags)."""
        key = self.cfg["scores_key"]
        labels = self.labels
        for doc, (path, tag_probs) in zip(docs, predictions):
            spans, scores = [], []
            # Tag i > 0 is B-X (odd) or I-X (even) of label (i - 1) // 2; the path is valid IOB2.
            begins = numpy.flatnonzero(path % 2 == 1)
            for start in begins:
                end = start + 1
                while end < len(path) and path[end] == path[start] + 1:
                    end += 1
                spans.append(Span(doc, int(start), int(end), label=labels[(path[start] - 1) // 2]))
                scores.append(float(tag_probs[start:end].mean()))
            doc.ents = spans
            doc.spans[key] = SpanGroup(doc, name=key, spans=spans, attrs={"scores": scores})

    def get_loss(self, examples: Iterable[Example], scores: Ragged) -> Tuple[float, Ragged]:
        """Cross-entropy of the gold tags at the trained pieces; tokens with no gold tag count for nothing."""
        validate_examples(examples, "BertNER.get_loss")
        xp = self.model.ops.xp
        gold = numpy.concatenate([self._gold_tags(eg) for eg in examples])  # (n_tokens,), -1 = missing
        lengths = self.model.ops.to_numpy(scores.lengths)
        starts = numpy.cumsum(lengths) - lengths
        known = (gold >= 0) & (lengths > 0)
        if self.cfg["alignment"] == "first":
            rows, targets = starts[known], gold[known]
        else:
            counts = lengths[known]
            rows = numpy.repeat(starts[known], counts) + ranges(counts)
            targets = numpy.repeat(gold[known], counts)
            # Continuation pieces of B-X (odd index) are trained as I-X (the next index).
            later = numpy.ones((len(rows),), dtype=bool)
            later[numpy.cumsum(counts) - counts] = False
            targets[later & (targets % 2 == 1)] += 1
        probs = scores.dataXd
        d_scores = self.model.ops.alloc2f(*probs.shape)
        if len(rows) == 0:
            return 0.0, Ragged(d_scores, scores.lengths)
        rows_xp, targets_xp = xp.asarray(rows), xp.asarray(targets)
        # thinc's cross-entropy gradient at the trained pieces: (probs - one-hot) / n.
        d_scores[rows_xp] = CategoricalCrossentropy(normalize=True).get_grad(probs[rows_xp], targets_xp)
        picked = self.model.ops.to_numpy(probs[rows_xp, targets_xp])
        loss = float(-numpy.log(numpy.maximum(picked, 1e-12)).mean())
        return loss, Ragged(d_scores, scores.lengths)

    def labels_from_examples(self, examples: Iterable[Example]) -> List[str]:
        """The entity labels of the gold ``doc.ents``, sorted."""
        return sorted({ent.label_ for eg in examples for ent in eg.reference.ents})

    def init_model(self, docs: List[Doc]) -> None:
        if not self.labels:
            raise ValueError(
                f"bert_ner '{self.name}' has no labels: the initialisation data holds no entities. "
                "Check that the training corpus has doc.ents, or pass labels to initialize."
            )
        self.model.get_ref("output_layer").set_dim("nO", len(self.tags))
        self.model.initialize(X=docs)

    def _allow_extra_label(self) -> None:
        output_layer = self.model.get_ref("output_layer")
        if output_layer.has_dim("nO"):
            raise ValueError(
                f"bert_ner '{self.name}' is already initialised with {len(self.labels)} labels; its output "
                "layer cannot grow. Add labels before nlp.initialize(), or retrain from an uninitialised component."
            )

    def _transition_masks(self) -> Tuple[numpy.ndarray, ...]:
        tags = self.tags
        if tags not in self._masks:
            self._masks = {tags: transition_masks(tags)}
        return self._masks[tags]

    def _first_piece_probs(self, scores: Ragged) -> numpy.ndarray:
        """Each token's probabilities at its first piece; a token with no piece is ``O``."""
        lengths = self.model.ops.to_numpy(scores.lengths)
        data = self.model.ops.to_numpy(scores.dataXd)
        starts = numpy.cumsum(lengths) - lengths
        has = lengths > 0
        probs = numpy.zeros((len(lengths), len(self.tags)), dtype="f")
        probs[has] = data[starts[has]]
        probs[~has, 0] = 1.0
        return probs

    def _gold_tags(self, eg: Example) -> numpy.ndarray:
        """Gold tag indices aligned to the predicted tokens; -1 where unknown or unannotated."""
        index = {tag: i for i, tag in enumerate(self.tags)}
        tags = numpy.full((len(eg.predicted),), -1, dtype="i")
        for i, biluo in enumerate(eg.get_aligned_ner()):
            if biluo is None or biluo == "-":
                continue
            if biluo == OUTSIDE:
                tags[i] = 0
                continue
            prefix, label = biluo.split("-", 1)
            tag = f"{_BILUO_TO_BIO[prefix]}-{label}"
            if tag in index:
                tags[i] = index[tag]
            elif label not in self._warned_labels:
                self._warned_labels.add(label)
                warnings.warn(
                    f"bert_ner '{self.name}': the gold data has the label '{label}', which the component "
                    f"does not know ({', '.join(self.labels)}). Its tokens count for nothing in training. "
                    "Include it in the initialisation data or the labels file to learn it."
                )
        return tags

