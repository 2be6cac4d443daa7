"""Sweeps: Ray Tune runs trials (`trial`), Optuna proposes, ASHA stops weak trials
early (`driver`); cluster checks (`preflight`), progress, fault reasons, the GPU
probe, and everything that touches Ray Tune's internals (`tune_compat`)."""

from .algorithms import DefineByRun
from .driver import sweep
from .end import SweepResult, TrialSummary
from .settings import SweepSettings

__all__ = ["DefineByRun", "SweepResult", "SweepSettings", "TrialSummary", "sweep"]
