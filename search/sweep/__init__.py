"""Sweeps: Ray Tune runs trials (`trial`, in worker processes through `worker`),
Optuna proposes, ASHA stops weak trials early (`driver`); cluster checks
(`preflight`), progress, fault reasons, the GPU probe, and everything that touches
Ray Tune's internals (`tune_compat`)."""

import importlib
from typing import TYPE_CHECKING, Any

from .settings import SweepSettings

if TYPE_CHECKING:
    from .algorithms import DefineByRun
    from .driver import sweep
    from .end import SweepResult, TrialSummary

# Imported on first use: a worker process imports search.sweep.worker, and with it
# this package, without the driver's Optuna, MLflow and report plotting.
_LAZY = {"DefineByRun": ".algorithms", "sweep": ".driver", "SweepResult": ".end", "TrialSummary": ".end"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DefineByRun", "SweepResult", "SweepSettings", "TrialSummary", "sweep"]
