"""What a sweep asks of its tracker: the seam between the sweep (search.sweep) and
a tracking backend. `search.tracking.mlflow.SweepTracking` is the MLflow one; another
backend is one adapter with these methods.

Runs are named by the ids the tracker returns, which may be references until the
backend has created the run (while its server is away): every method takes either.
"""

from typing import Any, Dict, List, Optional, Protocol


class Tracker(Protocol):
    tracking_uri: str
    experiment: str

    @property
    def pending(self) -> int:
        """Writes the backend has not received yet."""

    def start_parent(self, name: str, tags: Dict[str, str], params: Dict[str, Any], space_text: str) -> str:
        """The sweep's run; returns its id (or a reference)."""

    def reopen(self, run_id: str) -> None:
        """Mark a resumed sweep's run as running again."""

    def trial_run(self, parent_run_id: str, trial_id: str, trial_name: str) -> str:
        """The trial's child run (created on first use, found again on resume)."""

    def run_id_of(self, ref: str) -> Optional[str]:
        """The backend's id of a run reference, if known yet."""

    def log_trial_start(self, run: str, params: Dict[str, Any], config_text: str, tags: Optional[Dict[str, str]] = None) -> None:
        """The trial's searched values, its config and tags (the defaults trial's mark)."""

    def log_metrics(self, run: str, metrics: Dict[str, Any], step: int) -> None: ...

    def end_trial(self, run: str, status: str, error: Optional[str] = None, reason: Optional[str] = None) -> None:
        """status: finished, pruned or failed."""

    def end_parent(self, run_id: str, metrics: Dict[str, float], tags: Dict[str, str], status: str = "FINISHED",
                   run_id_tags: Optional[Dict[str, str]] = None) -> None: ...

    def drain(self, wait_s: float, announce: bool = True) -> int:
        """Write what is pending within wait_s seconds; returns how many writes are left."""

    def load_pending(self) -> int:
        """Queue the writes a previous driver saved; returns how many."""

    def resolve(self, ref: str) -> str:
        """The backend's id of a run id or reference."""

    def trials(self, parent_run_id: str) -> List[Any]:
        """The sweep's trial runs."""
