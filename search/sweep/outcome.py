"""How a trial ended: finished (it trained all it was allowed to) or pruned (the
scheduler stopped it early). One rule, read by everything that shows or uses a
trial's status: MLflow's child run, the live table, what Optuna is told, and the
sweep's end while MLflow is away."""

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .settings import SweepSettings

# --time-attr: the result key whose value ASHA's rungs compare
ASHA_TIME_ATTRS = {"evaluations": "training_iteration", "epochs": "epochs_trained"}


@dataclass(frozen=True)
class TrialOutcome:
    """A trial finished when training ended by itself (its last report says
    `training_finished`) or when it reached ASHA's last rung: ASHA stops a trial
    at max_t before the trial sends that closing report, yet such a trial has
    trained all the sweep allows it. Any other stop is a pruning.

    max_t_key: the result key ASHA compares with max_t (None: no such rung)."""

    max_t_key: Optional[str] = None
    max_t: float = math.inf

    @classmethod
    def of(cls, settings: SweepSettings) -> "TrialOutcome":
        if settings.scheduler == "asha" and settings.time_attr in ASHA_TIME_ATTRS:
            return cls(ASHA_TIME_ATTRS[settings.time_attr], float(settings.max_t))
        return cls()

    def finished(self, result: Optional[Mapping[str, Any]]) -> bool:
        """Whether a trial whose last result is `result` finished (not pruned)."""
        if not result:
            return False
        if result.get("training_finished"):
            return True
        reached = result.get(self.max_t_key) if self.max_t_key else None
        return isinstance(reached, (int, float)) and reached >= self.max_t

    def status(self, result: Optional[Mapping[str, Any]], failed: bool = False) -> str:
        """failed, finished or pruned: a trial's status once it has ended."""
        if failed:
            return "failed"
        return "finished" if self.finished(result) else "pruned"
