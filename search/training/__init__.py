"""The training core: configs, the pipeline of components, batching, the training
loop and evaluation. Pure Python and Thinc: no Ray, Optuna or MLflow."""

from . import batching  # noqa: F401  (registers the batchers)
from .loop import Evaluation, EvaluationCallback, StopTraining, TrainResult, train

__all__ = ["Evaluation", "EvaluationCallback", "StopTraining", "TrainResult", "train"]
