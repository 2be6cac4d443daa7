"""The end of a sweep, written once: the trials ranked, best.cfg exported, the report
logged and the parent run ended with the sweep's figures.

The driver ends a sweep here when its trials are done (`finish`); while MLflow is
away it ends it from what Ray Tune recorded and queues the parent run's end behind
the other pending writes (`finish_offline`), and `archsweep sync` completes it
later (`sync_sweep`, which writes best.cfg and the report in the same way).
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .. import storage
from ..report.mlflow import REPORT_DIR, log_report
from ..space import Space
from ..tracking.export import export_best
from ..tracking.mlflow import PENDING_FILE, STATE_FILE, SYNC_PENDING_KEY, SweepTracking, trial_ref
from .faults import failure_reason
from .outcome import TrialOutcome
from .seeding import DEFAULTS_KEY, DEFAULTS_TAG, ENQUEUED_KEY, ENQUEUED_TAG
from .trial import trial_config

logger = logging.getLogger(__name__)
STATUSES = ("finished", "pruned", "failed")


@dataclass
class TrialSummary:
    trial_id: str
    status: str
    best_score: Optional[float]
    values: Dict[str, Any]
    run_id: str
    error: str = ""
    defaults: bool = False  # the space's defaults (the sweep's first trial)
    enqueued: str = ""  # for one of the space's enqueued trials: "DIMENSION = VALUE"


@dataclass
class SweepResult:
    experiment: str
    parent_run_id: str
    tracking_uri: str
    trials: List[TrialSummary]
    # local storage: Paths; object storage (--storage s3://...): URIs
    best_config_path: Optional[Union[Path, str]]
    storage_path: Union[Path, str]
    report_path: Optional[Union[Path, str]] = None  # report.html, also logged to the parent run under report/
    tracking_pending: int = 0  # operations MLflow has not received (the server was away at the end): `archsweep sync`
    experiment_id: Optional[str] = None  # the MLflow experiment's id (None when MLflow was away all along)


def ranked(trials: List[TrialSummary]) -> List[TrialSummary]:
    """Finished trials first, best score first."""
    return sorted(trials, key=lambda t: (t.status != "finished", -(t.best_score if t.best_score is not None else float("-inf"))))


def best_finished(trials: Sequence[TrialSummary]) -> Optional[TrialSummary]:
    return next((t for t in ranked(list(trials)) if t.status == "finished" and t.best_score is not None), None)


def parent_metrics(trials: Sequence[TrialSummary]) -> Dict[str, float]:
    """What the parent run records at the end: the best score and the trials per status."""
    best = best_finished(trials)
    counts = {f"trials_{s}": sum(t.status == s for t in trials) for s in STATUSES}
    return {"best_score": best.best_score if best is not None and best.best_score is not None else float("nan"), **counts}


def write_best_and_report(
    tracking: SweepTracking, parent_run_id: str, exp_dir: storage.Location
) -> Tuple[Optional[Union[Path, str]], Optional[Union[Path, str]]]:
    """best.cfg (when a trial finished) and the report, in the sweep's folder; the report
    is also logged to the parent run. Returns their paths (None when not written)."""
    try:
        best_path: Optional[Union[Path, str]] = export_best(
            tracking.tracking_uri, parent_run_id=parent_run_id, output=storage.join(exp_dir, "best.cfg")
        )
    except ValueError as err:  # no finished trial: nothing to export
        logger.warning("no best config: %s", err)
        best_path = None
    with storage.local_dir(storage.join(exp_dir, REPORT_DIR)) as report_dir:  # its copy in the sweep's folder
        report = log_report(tracking.client, parent_run_id, report_dir)
    report_path = storage.as_result(storage.join(exp_dir, REPORT_DIR, report.html.name)) if report is not None else None
    return best_path, report_path


def finish(
    tracking: SweepTracking, parent_run_id: str, name: str, space: Space, exp_dir: str, results: Any, tracking_wait: float,
    outcome: TrialOutcome,
) -> SweepResult:
    """End the sweep from what MLflow recorded (or, with MLflow away, from Ray Tune's results)."""
    if tracking.drain(tracking_wait, announce=False):
        return finish_offline(tracking, parent_run_id, name, space, exp_dir, results, outcome)
    parent_run_id = tracking.resolve(parent_run_id)  # a reference if the sweep started while MLflow was away
    dimensions = {d.name for d in space.dimensions}
    trials = ranked([
        TrialSummary(
            trial_id=run.data.tags.get("archsweep.trial_id", ""),
            status=run.data.tags.get("archsweep.status", "running"),
            best_score=run.data.metrics.get("best_score"),
            values={k: v for k, v in run.data.params.items() if k in dimensions},
            run_id=run.info.run_id,
            error=run.data.tags.get("archsweep.error", ""),
            defaults=run.data.tags.get(DEFAULTS_TAG) == "true",
            enqueued=run.data.tags.get(ENQUEUED_TAG, ""),
        )
        for run in tracking.trials(parent_run_id)
    ])
    best = best_finished(trials)
    best_path, report_path = write_best_and_report(tracking, parent_run_id, exp_dir)
    tracking.end_parent(parent_run_id, parent_metrics(trials), {"archsweep.best_run": best.run_id} if best else {})
    pending = tracking.drain(tracking_wait)
    return SweepResult(name, parent_run_id, tracking.tracking_uri, trials, best_path, storage.as_result(exp_dir), report_path, pending,
                       tracking.experiment_id)


def finish_offline(
    tracking: SweepTracking, parent_run_id: str, name: str, space: Space, exp_dir: str, results: Any, outcome: TrialOutcome
) -> SweepResult:
    """The sweep's end while MLflow is still away: the trials as Ray Tune
    recorded them, and the parent run's end queued behind the rest; `archsweep
    sync` writes it all and then best.cfg and the report."""
    trials = []
    for result in results:
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id") or Path(result.path).name.removeprefix("trial_")
        ref = trial_ref(parent_run_id, trial_id)
        trials.append(
            TrialSummary(
                trial_id=trial_id,
                status=outcome.status(metrics, failed=bool(result.error)),
                best_score=metrics.get("best_score"),
                values=trial_config(space, result.config)[1] if result.config else {},
                run_id=tracking.run_id_of(ref) or ref,
                error=with_reason(str(result.error or "")),
                defaults=bool((result.config or {}).get(DEFAULTS_KEY)),
                enqueued=str((result.config or {}).get(ENQUEUED_KEY, "")),
            )
        )
    trials = ranked(trials)
    best = best_finished(trials)
    tracking.end_parent(
        parent_run_id, parent_metrics(trials), {},
        run_id_tags={"archsweep.best_run": trial_ref(parent_run_id, best.trial_id)} if best else None,
    )
    pending = tracking.drain(0)
    return SweepResult(name, tracking.run_id_of(parent_run_id) or parent_run_id, tracking.tracking_uri, trials, None,
                       storage.as_result(exp_dir), None, pending, tracking.experiment_id)


def with_reason(error: str) -> str:
    """A trial's error with its known reason (out of memory, a lost node, ...) first."""
    reason = failure_reason(error) if error else None
    return f"{reason}\n\n{error}" if reason else error


@dataclass
class SyncOutcome:
    replayed: int  # operations found in the sweep's folder
    remaining: int  # still pending (the server is still away)
    dropped: int  # refused by MLflow (logged as warnings)
    finished: bool  # the sweep's end (best.cfg, the report) was completed now


def sync_sweep(sweep_dir: storage.Location, wait_s: float = 60.0) -> SyncOutcome:
    """`archsweep sync`: write the operations a sweep saved while its tracking
    server was away; if the sweep ended meanwhile, then also write best.cfg
    and log the report, as the sweep's end would have. A second sync finds
    nothing to do. sweep_dir: a local folder or an object-storage URI."""
    state_path = storage.join(sweep_dir, STATE_FILE)
    if not storage.exists(state_path):
        raise FileNotFoundError(f"{sweep_dir} is not a sweep's folder (no {STATE_FILE})")
    state = json.loads(storage.read_text(state_path))
    tracking = SweepTracking(state["tracking_uri"], state["experiment"], pending_path=storage.join(sweep_dir, PENDING_FILE))
    replayed = tracking.load_pending()
    if replayed == 0 and not state.get(SYNC_PENDING_KEY):
        return SyncOutcome(0, 0, 0, False)
    remaining = tracking.drain(wait_s) if replayed else 0
    finished = False
    if remaining == 0 and state.get(SYNC_PENDING_KEY):
        parent_run_id = tracking.resolve(state["parent_run_id"])  # a reference when the sweep started offline
        write_best_and_report(tracking, parent_run_id, sweep_dir)
        storage.write_text(state_path, json.dumps({**state, "parent_run_id": parent_run_id, SYNC_PENDING_KEY: False}, indent=2))
        finished = True
    return SyncOutcome(replayed, remaining, len(tracking.dropped), finished)
