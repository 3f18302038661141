"""Distillation: a smaller student pipeline, same components and labels, taught by a trained teacher."""
from .run import DistillSettings, distill
from .step import StepSettings, distill_step, divergence
from .student import keep_layers, layer_indices, make_student, set_save_dtype

__all__ = ["DistillSettings", "StepSettings", "distill", "distill_step", "divergence", "keep_layers", "layer_indices", "make_student", "set_save_dtype"]
