"""The student: the teacher's pipeline with a smaller encoder.

By default the teacher's own encoder keeps every other layer (DistilBERT's
initialisation: layers 0, 2, 4 of six); ``n_layers`` keeps that many, evenly
spaced from the bottom. Or the student's encoder comes from another local
Hugging Face folder (a narrower ``init-encoder``, say). Components, labels and
settings are the teacher's; where the student is narrower, the heads' layers
that touch the encoder's width are drawn anew at the new width.
"""
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import spacy
import torch
from spacy.language import Language
from thinc.api import Model

from ..ml.encoder import EncoderModel, load_hf_encoder

# Where each encoder family keeps its stack of layers, and the config key that counts them.
LAYER_STACKS: Sequence[Tuple[str, str]] = (
    ("encoder.layer", "num_hidden_layers"),  # BERT, RoBERTa, ELECTRA, XLM-R, DeBERTa
    ("transformer.layer", "n_layers"),  # DistilBERT
    ("layers", "num_hidden_layers"),  # ModernBERT
)


def make_student(
    teacher_path: Union[str, Path],
    *,
    n_layers: Optional[int] = None,
    student_encoder: Optional[Union[str, Path]] = None,
) -> Language:
    """Load the teacher pipeline again and give it the student's encoder.

    teacher_path (Union[str, Path]): a trained pipeline with our heads.
    n_layers (Optional[int]): layers to keep of the teacher's encoder (default:
        half, rounded up). Ignored with ``student_encoder``.
    student_encoder (Optional[Union[str, Path]]): a Hugging Face folder to use
        instead of the teacher's pruned encoder.
    RETURNS (Language): the student, with the teacher's weights in its heads.
    """
    nlp = spacy.load(teacher_path)
    encoders = list(encoder_models(nlp))
    if not encoders:
        raise ValueError(f"The pipeline at {teacher_path} has no spacy_bert_tasks encoder to distil.")
    for encoder in encoders:
        old_width = encoder.get_dim("nO")
        if student_encoder is not None:
            hf = load_hf_encoder(student_encoder, encoder._init_tokenizer_config, encoder._init_transformer_config)
            encoder.attrs["has_transformer"] = False
            encoder.set_dim("nO", hf.transformer.config.hidden_size, force=True)
            encoder.attrs["set_transformer"](encoder, hf)
            encoder.attrs["name"] = str(Path(student_encoder).absolute())
        else:
            keep_layers(encoder.transformer, n_layers)
        new_width = encoder.transformer.config.hidden_size
        if new_width != old_width:
            resize_heads(nlp, old_width, new_width)
    _sync_config(nlp)
    return nlp


def encoder_models(nlp: Language) -> Iterator[EncoderModel]:
    """Every encoder of the pipeline: the ``transformer`` components' and the heads' own."""
    seen = set()
    for _, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if not isinstance(model, Model):
            continue
        for node in model.walk():
            if isinstance(node, EncoderModel) and node.id not in seen:
                seen.add(node.id)
                yield node


def layer_indices(n_teacher: int, n_student: Optional[int]) -> List[int]:
    """The teacher layers a student of ``n_student`` keeps: evenly spaced from the bottom.

    6 -> 3 keeps [0, 2, 4], as DistilBERT keeps every other layer of BERT.
    """
    n_student = (n_teacher + 1) // 2 if n_student is None else n_student
    if not 1 <= n_student <= n_teacher:
        raise ValueError(f"A student of {n_student} layers cannot come from a teacher of {n_teacher}: choose 1 to {n_teacher}.")
    return [int(i * n_teacher // n_student) for i in range(n_student)]


def keep_layers(transformer: torch.nn.Module, n_layers: Optional[int]) -> List[int]:
    """Cut the network's stack of layers down to ``n_layers``, in place. RETURNS the kept indices."""
    for path, config_key in LAYER_STACKS:
        owner = transformer
        *parents, attr = path.split(".")
        for name in parents:
            owner = getattr(owner, name, None)
        stack = getattr(owner, attr, None) if owner is not None else None
        if isinstance(stack, torch.nn.ModuleList):
            kept = layer_indices(len(stack), n_layers)
            setattr(owner, attr, torch.nn.ModuleList([stack[i] for i in kept]))
            setattr(transformer.config, config_key, len(kept))
            return kept
    raise ValueError(
        f"Cannot find the layers of a '{transformer.config.model_type}' encoder to prune. "
        "Pass a smaller encoder folder as the student instead (--student)."
    )


def resize_heads(nlp: Language, old_width: int, new_width: int) -> List[str]:
    """Redraw the head layers whose input (or output) is the encoder's width.

    Their weights are BERT-initialised (N(0, 0.02), zero bias) at the new width;
    distillation trains them from there. RETURNS the layers redrawn.
    """
    redrawn = []
    for name, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if not isinstance(model, Model):
            continue
        for node in model.walk():
            if isinstance(node, EncoderModel):
                continue
            changed = False
            for dim in ("nI", "nO"):
                if node.has_dim(dim) and node.get_dim(dim) == old_width:
                    # thinc refuses to resize a layer that has weights; new weights follow below.
                    node._dims[dim] = new_width
                    changed = True
            if changed:
                for param in node.param_names:
                    if node.has_param(param):
                        shape = _param_shape(node, param)
                        values = numpy.random.normal(0.0, 0.02, shape) if param == "W" else numpy.zeros(shape)
                        node.set_param(param, node.ops.asarray(values.astype("float32")))
                redrawn.append(f"{name}:{node.name}")
    return redrawn


def _param_shape(node: Model, param: str) -> Tuple[int, ...]:
    if param == "W":
        return (node.get_dim("nO"), node.get_dim("nI"))
    return (node.get_dim("nO"),)


def _sync_config(nlp: Language) -> None:
    """Point the saved config's encoder names at what the student holds."""
    for name, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        cfg = nlp.get_pipe_config(name).get("model", {})
        if isinstance(model, EncoderModel) and "name" in cfg:
            cfg["name"] = model.attrs["name"]


def set_save_dtype(nlp: Language, dtype: str) -> None:
    """Write every encoder's weights as ``dtype`` from now on ("float16" halves the size on disk).

    The ``transformer`` components' configs say so too, so a pipeline loaded from
    the output and saved again keeps it.
    """
    for encoder in encoder_models(nlp):
        encoder.save_dtype = dtype
    for name, pipe in nlp.pipeline:
        cfg = nlp.get_pipe_config(name).get("model", {})
        if isinstance(getattr(pipe, "model", None), EncoderModel) and "@architectures" in cfg:
            cfg["save_dtype"] = dtype
