"""What fine-tuning did to the weights: drift per layer, loss landscapes, trajectories.

After Hao et al. (2019), "Visualizing and Understanding the Effectiveness of BERT"
(arXiv 1908.05620), and Li et al. (2018), "Visualizing the Loss Landscape of Neural
Nets". ``params`` reads and writes a pipeline's weights as one flat dict; ``losses``
measures a pipeline's loss without training; ``drift`` and ``landscape`` compute the
numbers; ``plots`` draws them; ``recording`` records checkpoints and logs during
``spacy train``; ``analyze`` runs it all and writes ``analysis.json`` beside the PNGs.
"""
from .drift import weight_drift
from .landscape import interpolate, landscape_2d, random_direction, sharpness, trajectory_directions
from .losses import pipeline_loss
from .params import get_weights, load_weights, save_weights, set_weights
from .analyze import ANALYSES, analyze_pipeline, compare_runs
from .recording import instrument_config

__all__ = [
    "ANALYSES", "analyze_pipeline", "compare_runs", "get_weights", "instrument_config", "interpolate",
    "landscape_2d", "load_weights", "pipeline_loss", "random_direction", "save_weights",
    "set_weights", "sharpness", "trajectory_directions", "weight_drift",
]
