"""A compact live table of a running sweep, in place of Ray Tune's wide
per-trial table: trial counts by state, the best score so far and the pace.

It is a driver-side Tune callback that writes through a plain function (the
CLI passes typer.echo), attached to the tuner after it is built or restored,
so it is never pickled with the sweep's state.
"""

import time
from typing import Any, Callable, List, Optional, Tuple

from ray.tune import Callback

from .outcome import TrialOutcome

COLUMNS = ("elapsed", "running", "finished", "pruned", "failed", "best", "trials/h")
WIDTHS = (8, 7, 8, 6, 6, 7, 8)


def trial_state(trial, outcome: TrialOutcome) -> str:
    """running / pending / finished / pruned / failed (an ended trial's as `outcome` says)."""
    status = trial.status
    if status in ("ERROR", "TERMINATED"):
        return outcome.status(trial.last_result, failed=status == "ERROR")
    return "running" if status == "RUNNING" else "pending"


def format_row(cells: Tuple) -> str:
    return "  ".join(f"{cell:>{width}}" for cell, width in zip(cells, WIDTHS))


class SweepProgressTable(Callback):
    """Writes the header once, then a row whenever a count or the best score
    changes, and at least every `interval` seconds while trials run.

    best: the best `best_score` of the finished trials (what export would
    pick now). trials/h: trials ended since this driver started, per hour of
    its wall time (a resumed sweep counts from the resume)."""

    def __init__(
        self, write: Callable[[str], None], interval: float = 30.0, clock: Callable[[], float] = time.monotonic,
        outcome: TrialOutcome = TrialOutcome(),
    ) -> None:
        self.write = write
        self.outcome = outcome
        self.interval = interval
        self.clock = clock
        self.start: Optional[float] = None
        self.ended = 0
        self.last_state: Optional[Tuple] = None
        self.last_written = 0.0

    def setup(
        self, stop: Optional[Any] = None, num_samples: Optional[int] = None, total_num_samples: Optional[int] = None, **info: Any
    ) -> None:
        self.start = self.clock()
        self.write(format_row(COLUMNS))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.ended += 1

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.ended += 1

    def on_step_end(self, iteration, trials, **info) -> None:
        self._write(trials, force=False)

    def on_experiment_end(self, trials, **info) -> None:
        self._write(trials, force=True)

    def _write(self, trials: List, force: bool) -> None:
        now = self.clock()
        if self.start is None:
            self.start = now
        states = [trial_state(t, self.outcome) for t in trials]
        counts = tuple(states.count(s) for s in ("running", "finished", "pruned", "failed"))
        finished = [
            (t.last_result or {}).get("best_score") for t, s in zip(trials, states) if s == "finished"
        ]
        scores: List[float] = [s for s in finished if isinstance(s, (int, float))]
        best = max(scores) if scores else None
        state = (counts, best)
        if not force and state == self.last_state and now - self.last_written < self.interval:
            return
        self.last_state, self.last_written = state, now
        elapsed = now - self.start
        pace = self.ended / (elapsed / 3600) if elapsed > 0 else 0.0
        minutes, seconds = divmod(int(elapsed), 60)
        cells = (
            f"{minutes}:{seconds:02d}", *counts, f"{best * 100:.2f}" if best is not None else "-", f"{pace:.0f}",
        )
        self.write(format_row(cells))
