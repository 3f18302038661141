"""What the student learns from the teacher: each head's soft outputs at a temperature.

One function per kind of head, in a table (``SIGNALS``), each taking the
student's and the teacher's raw model outputs for a batch and returning the
loss and its gradient in the form the head's model expects (with respect to
its logits, as thinc's Softmax and our sigmoid layer take it):

- ``bert_textcat``: class probabilities (a sigmoid per label for multi-label);
- ``bert_ner``: tag distributions at each token's first word piece;
- ``bert_qa``: start and end distributions over each window's pieces.

The loss is Hinton et al.'s ``T² · KL(teacher_T || student_T)``; its gradient
with respect to the student's logits is ``T · (student_T - teacher_T)``. The
heads' outputs are probabilities, so their logits are read back as
``log p`` (softmax, up to a constant) or ``log(p / (1 - p))`` (sigmoid).
"""
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from thinc.types import Floats2d, Ragged

from ..ml.qa import WindowLogits
from ..pipeline.ner import BertNER
from ..pipeline.qa import BertQA
from ..pipeline.textcat import BertTextCategorizer

EPS = 1e-7
Signal = Callable[[Any, List[Doc], Any, Any, float], Tuple[float, Any]]


def softmax_at(logits: numpy.ndarray, temperature: float, axis: int = -1) -> numpy.ndarray:
    """``softmax(logits / T)`` along ``axis``, stable for masked (very negative) logits."""
    z = logits / temperature
    z = z - z.max(axis=axis, keepdims=True)
    e = numpy.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def kl_at(teacher_logits: numpy.ndarray, student_logits: numpy.ndarray, temperature: float, axis: int = -1) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Per row ``T² · KL(p_T || q_T)``, and the gradient ``T · (q_T - p_T)`` with respect to the student's logits."""
    p = softmax_at(teacher_logits, temperature, axis)
    q = softmax_at(student_logits, temperature, axis)
    kl = (p * (numpy.log(p + EPS) - numpy.log(q + EPS))).sum(axis=axis)
    return kl * temperature**2, (q - p) * temperature


def textcat_signal(head: BertTextCategorizer, docs: List[Doc], student: Floats2d, teacher: Floats2d, temperature: float) -> Tuple[float, Floats2d]:
    """Distil the class probabilities of the docs the head reads (pair models: docs with a pair)."""
    ops = head.model.ops
    s, t = ops.to_numpy(student).astype("float64"), ops.to_numpy(teacher).astype("float64")
    rows = numpy.asarray([len(doc) > 0 and not head.lacks_pair(doc, always=True) for doc in docs], dtype=bool)
    d = numpy.zeros_like(s)
    if not rows.any():
        return 0.0, ops.asarray2f(d.astype("float32"))
    if head.cfg["multi_label"]:
        # Each label is a two-class softmax over the logits (0, log(p / (1 - p))).
        def logits(x: numpy.ndarray) -> numpy.ndarray:
            x = numpy.clip(x[rows], EPS, 1 - EPS)
            return numpy.stack([numpy.zeros_like(x), numpy.log(x / (1 - x))], axis=-1)

        kl, grad = kl_at(logits(t), logits(s), temperature)
        loss, d[rows] = float(kl.mean()), grad[..., 1] / kl.size
    else:
        kl, grad = kl_at(numpy.log(t[rows] + EPS), numpy.log(s[rows] + EPS), temperature)
        loss, d[rows] = float(kl.mean()), grad / len(kl)
    return loss, ops.asarray2f(d.astype("float32"))


def ner_signal(head: BertNER, docs: List[Doc], student: Ragged, teacher: Ragged, temperature: float) -> Tuple[float, Ragged]:
    """Distil the tag distribution at each token's first piece (tokens with a piece in both models)."""
    ops = head.model.ops
    s_len, t_len = ops.to_numpy(student.lengths), ops.to_numpy(teacher.lengths)
    s_data, t_data = ops.to_numpy(student.dataXd), ops.to_numpy(teacher.dataXd)
    known = (s_len > 0) & (t_len > 0)
    s_rows, t_rows = (numpy.cumsum(s_len) - s_len)[known], (numpy.cumsum(t_len) - t_len)[known]
    d = numpy.zeros(s_data.shape, dtype="float32")
    if len(s_rows) == 0:
        return 0.0, Ragged(ops.asarray2f(d), student.lengths)
    kl, grad = kl_at(numpy.log(t_data[t_rows] + EPS), numpy.log(s_data[s_rows] + EPS), temperature)
    d[s_rows] = grad / len(kl)
    return float(kl.mean()), Ragged(ops.asarray2f(d), student.lengths)


def qa_signal(
    head: BertQA, docs: List[Doc], student: List[Optional[WindowLogits]], teacher: List[Optional[WindowLogits]], temperature: float
) -> Tuple[float, List[Optional[numpy.ndarray]]]:
    """Distil the start and end distributions over each window (masked pieces have no mass)."""
    ops = head.model.ops
    pairs = [(i, s, t) for i, (s, t) in enumerate(zip(student, teacher)) if s is not None and t is not None]
    for i, s, t in pairs:
        if s.logits.shape != t.logits.shape:
            raise ValueError(
                f"QA doc {i}: the student cuts it into windows {s.logits.shape[:2]}, the teacher into "
                f"{t.logits.shape[:2]}. QA distillation needs the teacher's tokenizer and encoder settings."
            )
    n_windows = sum(s.logits.shape[0] for _, s, _ in pairs)
    d_scores: List[Optional[numpy.ndarray]] = [None] * len(student)
    loss = 0.0
    for i, s, t in pairs:
        kl, grad = kl_at(ops.to_numpy(t.logits).astype("float64"), ops.to_numpy(s.logits).astype("float64"), temperature, axis=1)
        loss += float(kl.sum()) / (2 * n_windows)  # kl: (n_windows, 2), start and end
        d_scores[i] = ops.asarray3f((grad / (2 * n_windows)).astype("float32"))
    return loss, d_scores


SIGNALS: Dict[type, Signal] = {BertTextCategorizer: textcat_signal, BertNER: ner_signal, BertQA: qa_signal}


def signal_for(head: Any) -> Optional[Signal]:
    """The distillation signal of a head, or None for components without one."""
    for kind, signal in SIGNALS.items():
        if isinstance(head, kind):
            return signal
    return None


def mix_gradients(soft: Any, gold: Any, gold_weight: float) -> Any:
    """``soft + gold_weight · gold``, for the output types of the three heads."""
    if gold_weight == 0 or gold is None:
        return soft
    if isinstance(soft, Ragged):
        return Ragged(soft.dataXd + gold_weight * gold.dataXd, soft.lengths)
    if isinstance(soft, list):
        mixed = []
        for s, g in zip(soft, gold):
            if s is None or g is None:
                mixed.append(s if g is None else g * gold_weight)
            else:
                mixed.append(s + gold_weight * g)
        return mixed
    return soft + gold_weight * gold
