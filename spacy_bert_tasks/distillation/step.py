"""One distillation step, and the divergence it lowers.

The teacher annotates a copy of the batch with its encoder and its heads' raw
outputs; the student runs its ``transformer`` components as spacy-transformers'
``Transformer.update`` does (broadcast to the listeners, the last one
backpropagates and updates the encoder), then each head's model, whose loss is
the teacher's soft outputs plus, where gold exists, the head's own gold loss.
An optional hidden-state loss pulls the student's last hidden states towards
the teacher's (same tokenizer and width only).
"""
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy
import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy_transformers import Transformer
from spacy_transformers.layers import TransformerListener
from thinc.api import Optimizer, set_dropout_rate

from .signals import mix_gradients, signal_for


@dataclass(frozen=True)
class StepSettings:
    """How the student learns. temperature: of the soft targets; gold_weight: of the
    heads' gold losses (0: soft targets only); hidden_weight: of the mean squared
    error between last hidden states (0: off); dropout: in the student."""

    temperature: float = 2.0
    gold_weight: float = 0.5
    hidden_weight: float = 0.0
    dropout: float = 0.1


def heads(nlp: Language) -> List[Tuple[str, Any]]:
    """The pipeline's components that have a distillation signal, in pipeline order."""
    return [(name, pipe) for name, pipe in nlp.pipeline if signal_for(pipe) is not None]


def teacher_outputs(teacher: Language, docs: List[Doc]) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """The raw outputs of the teacher's heads, and its encoders' last hidden states, for ``docs``."""
    hidden: Dict[str, torch.Tensor] = {}
    outputs: Dict[str, Any] = {}
    for name, pipe in teacher.pipeline:
        if isinstance(pipe, Transformer):
            batch = pipe.predict(docs)
            pipe.set_annotations(docs, batch)
            if "last_hidden_state" in batch.model_output:
                hidden[name] = batch.model_output.last_hidden_state
        elif signal_for(pipe) is not None:
            outputs[name] = pipe.model.predict(docs)
    return outputs, hidden


def distill_step(
    teacher: Language, student: Language, examples: List[Example], settings: StepSettings, sgd: Optional[Optimizer]
) -> Dict[str, float]:
    """Update the student on one batch; RETURNS the loss of each head (and of the hidden states)."""
    docs = [eg.predicted for eg in examples]
    losses: Dict[str, float] = {}
    if not any(len(doc) for doc in docs):
        return losses
    targets, teacher_hidden = teacher_outputs(teacher, [doc.copy() for doc in docs])
    for name, pipe in student.pipeline:
        if isinstance(pipe, Transformer) and pipe.listeners:
            _broadcast(pipe, docs, teacher_hidden.get(name), settings, sgd, losses)
    for name, head in _in_listener_order(student):
        set_dropout_rate(head.model, settings.dropout)
        scores, backprop = head.model.begin_update(docs)
        loss, d_scores = signal_for(head)(head, docs, scores, targets[name], settings.temperature)
        if settings.gold_weight:
            gold_loss, d_gold = head.get_loss(examples, scores)
            d_scores = mix_gradients(d_scores, d_gold, settings.gold_weight)
            loss += settings.gold_weight * gold_loss
        backprop(d_scores)
        if sgd is not None:
            head.finish_update(sgd)
        losses[name] = loss
    return losses


def _broadcast(
    trf: Transformer, docs: List[Doc], teacher_hidden: Optional[torch.Tensor], settings: StepSettings,
    sgd: Optional[Optimizer], losses: Dict[str, float],
) -> None:
    """``Transformer.update``, with the hidden-state loss added to the encoder's gradient."""
    set_dropout_rate(trf.model, settings.dropout)
    batch, bp_batch = trf.model.begin_update(docs)
    d_hidden = None
    if settings.hidden_weight and teacher_hidden is not None:
        loss, d_hidden = hidden_state_loss(batch.model_output.last_hidden_state, teacher_hidden, batch.wordpieces.attention_mask)
        losses[f"{trf.name}_hidden"] = settings.hidden_weight * loss
        d_hidden = d_hidden * settings.hidden_weight
    d_tensors: List[List[Any]] = []

    def accumulate(d_datas: List[Any]) -> None:
        for i, d_data in enumerate(d_datas):
            if i >= len(d_tensors):
                d_tensors.append(list(d_data.tensors))
            else:
                for j, d_tensor in enumerate(d_data.tensors):
                    d_tensors[i][j] += d_tensor

    def backprop(d_datas: List[Any]) -> List[Doc]:
        accumulate(d_datas)
        d_batch = batch.unsplit_by_doc(d_tensors)
        if d_hidden is not None:
            key = next(iter(d_batch.model_output))
            d_batch.model_output[key] = d_batch.model_output[key] + d_hidden
        d_docs = bp_batch(d_batch)
        if sgd is not None:
            trf.model.finish_update(sgd)
        return d_docs

    batch_id = TransformerListener.get_batch_id(docs)
    for listener in trf.listeners[:-1]:
        listener.receive(batch_id, batch.doc_data, accumulate)
    trf.listeners[-1].receive(batch_id, batch.doc_data, backprop)


def hidden_state_loss(student: torch.Tensor, teacher: torch.Tensor, mask: Any) -> Tuple[float, torch.Tensor]:
    """Mean squared error over the real pieces, (n_windows, seq_len, width); and its gradient."""
    if student.shape != teacher.shape:
        raise ValueError(
            f"The hidden-state loss needs the teacher's windows and width: student {tuple(student.shape)}, "
            f"teacher {tuple(teacher.shape)}. Use the same tokenizer and width, or set hidden_weight = 0."
        )
    keep = torch.as_tensor(numpy.asarray(mask), dtype=student.dtype, device=student.device)[..., None]
    n = max(float(keep.sum()) * student.shape[-1], 1.0)
    diff = (student.detach() - teacher.to(student.dtype)) * keep
    return float((diff**2).sum() / n), 2 * diff / n


def _in_listener_order(nlp: Language) -> List[Tuple[str, Any]]:
    """The heads, those listening to an encoder ordered as its listeners (the last one updates it)."""
    order: Dict[int, int] = {}
    for _, pipe in nlp.pipeline:
        for i, listener in enumerate(getattr(pipe, "listeners", []) or []):
            order[id(listener)] = i
    def position(item: Tuple[str, Any]) -> int:
        listeners = [node for node in item[1].model.walk() if isinstance(node, TransformerListener)]
        return order.get(id(listeners[0]), -1) if listeners else -1
    return sorted(heads(nlp), key=position)


def divergence(teacher: Language, student: Language, docs: Iterable[Doc], temperature: float = 1.0) -> Dict[str, float]:
    """The mean KL of each head's student outputs from the teacher's (no update)."""
    docs = list(docs)
    targets, _ = teacher_outputs(teacher, [doc.copy() for doc in docs])
    student_docs = [doc.copy() for doc in docs]
    for name, pipe in student.pipeline:
        if isinstance(pipe, Transformer):
            pipe.set_annotations(student_docs, pipe.predict(student_docs))
    result = {}
    for name, head in heads(student):
        scores = head.model.predict(student_docs)
        result[name] = signal_for(head)(head, student_docs, scores, targets[name], temperature)[0] / temperature**2
    return result
