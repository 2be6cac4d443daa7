"""The sweep driver: Ray Tune runs the trials, Optuna proposes, ASHA stops early,
MLflow records (from the driver). Adapters are kept thin; the trial itself is
search.sweep.trial.run_trial, the same function `archsweep train` runs, in the
worker processes through search.sweep.worker."""

import json
import logging
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Set

import ray
from ray import tune
from ray.tune import Callback, FailureConfig, RunConfig, SyncConfig, TuneConfig, Tuner
from ray.tune.search import ConcurrencyLimiter
from ray.tune.stopper import Stopper

from .. import storage
from ..space import Space
from ..tracking.mlflow import PENDING_FILE, STATE_FILE, SYNC_PENDING_KEY, WORKDIR_TAG, SweepTracking, code_version, default_tracking_uri
from ..tracking.tracker import Tracker
from ..training.config import fill_config
from .algorithms import scheduler, searcher
from .end import SweepResult, finish
from .faults import failure_reason
from .outcome import TrialOutcome
from .preflight import check_cluster_settings, check_tracking_access, count_nodes, data_paths_of
from .progress import SweepProgressTable
from .seeding import DEFAULTS_KEY, DEFAULTS_TAG, ENQUEUED_KEY, ENQUEUED_TAG, WarmStart, warm_start
from .settings import METRIC, SweepSettings
from .trial import trial_config
from .tune_compat import fail_trials_killed_for_memory, tuner_callbacks
from .worker import trainable as worker_trainable

logger = logging.getLogger(__name__)
MODEL_SIZE_KEY = "model_params"
# With object storage (--storage s3://...) Ray Tune uploads its experiment state at most
# once per SyncConfig.sync_period (300 s by default): this often instead, so that
# --resume after a killed driver finds a recent state there.
OBJECT_STORAGE_SYNC_S = 5

class TrackingCallback(Callback):
    """Driver-side MLflow logging: a child run per trial (reused across a
    resume), stepped metrics per evaluation, and the trial's final status."""

    outcome = TrialOutcome()  # what a callback pickled before the setting existed resumes with

    def __init__(
        self, tracking: Tracker, parent_run_id: str, space: Space, progress: Optional[Callable[[str], None]] = None,
        outcome: Optional[TrialOutcome] = None,
    ) -> None:
        self.tracking = tracking
        if outcome is not None:
            self.outcome = outcome
        self.parent_run_id = parent_run_id
        self.space = space
        self.progress = progress
        self.run_ids: Dict[str, str] = {}
        self.finished_flags: Dict[str, bool] = {}
        self.sized_runs: Set[str] = set()
        self.retries: Dict[str, int] = {}

    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "progress": None}

    def _run_for(self, trial) -> str:
        """The trial's run reference (the MLflow run may be created later, when
        the server is away). Its params and config are logged once per driver:
        after a resume that repeats identical values, which MLflow accepts."""
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            run_id = self.tracking.trial_run(self.parent_run_id, trial.trial_id, trial.trial_id)
            self.run_ids[trial.trial_id] = run_id
            if trial.config:
                config, values = trial_config(self.space, trial.config)
                params = {**values, "training.seed": config["training"]["seed"]}
                tags = {DEFAULTS_TAG: "true"} if trial.config.get(DEFAULTS_KEY) else {}
                if trial.config.get(ENQUEUED_KEY):
                    tags[ENQUEUED_TAG] = trial.config[ENQUEUED_KEY]
                self.tracking.log_trial_start(run_id, params, fill_config(config).to_str(), tags)
        return run_id

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._run_for(trial)

    def on_trial_restore(self, iteration, trials, trial, **info) -> None:
        self._run_for(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.finished_flags[trial.trial_id] = self.outcome.finished(result)
        if result.get("training_finished"):
            return  # it repeats the last evaluation, already logged at its step
        metrics = {k: v for k, v in result.items() if k not in _RAY_KEYS}
        run_id = self._run_for(trial)
        # The model's size does not change during training: logged once, at step 0.
        if MODEL_SIZE_KEY in metrics:
            size = metrics.pop(MODEL_SIZE_KEY)
            if run_id not in self.sized_runs:
                self.tracking.log_metrics(run_id, {MODEL_SIZE_KEY: size}, step=0)
                self.sized_runs.add(run_id)
        self.tracking.log_metrics(run_id, metrics, step=int(result.get("step", 0)))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        status = "finished" if self.finished_flags.get(trial.trial_id) else "pruned"
        self.tracking.end_trial(self._run_for(trial), status)
        self._report(trial, status)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        """A failed attempt Tune will run again (max_failures): its child run stays
        the trial's one run; the retry count is logged as a metric, the attempt's error
        shown as progress."""
        self.retries[trial.trial_id] = self.retries.get(trial.trial_id, 0) + 1
        attempt = self.retries[trial.trial_id]
        self.tracking.log_metrics(self._run_for(trial), {"retries": attempt}, step=attempt)
        if self.progress is not None:
            self.progress(f"trial {trial.trial_id}: attempt {attempt} failed ({_error_line(_error_text(trial))}); running it again")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = _error_text(trial)
        self.tracking.end_trial(self._run_for(trial), "failed", error=error, reason=failure_reason(error))
        self._report(trial, "failed", f" ({_error_line(error)})")

    def _report(self, trial, status: str, why: str = "") -> None:
        if self.progress is not None:
            score = (trial.last_result or {}).get("best_score")
            shown = f"{score * 100:.2f}" if isinstance(score, float) else "-"
            self.progress(f"trial {trial.trial_id}: {status}, best score {shown}{why}")


def _error_line(error: str) -> str:
    """One line for the progress output: the failure's reason, else the error's last line."""
    last = error.strip().splitlines()[-1:] or [""]
    return (failure_reason(error) or last[0])[:200]


def _error_text(trial) -> str:
    """The trial's error: Tune writes error.txt to the trial's local folder
    first (storage gets it later), so read that before asking the trial."""
    path = getattr(trial, "error_file", None)
    if path and Path(path).exists():
        return Path(path).read_text(encoding="utf8", errors="replace")
    error = trial.get_error()
    return str(error) if error else "unknown error (Ray Tune recorded no message)"


# What Ray Tune adds to every result; everything else the trial reported is logged.
_RAY_KEYS = {
    "timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date", "time_this_iter_s",
    "time_total_s", "pid", "hostname", "node_ip", "config", "time_since_restore", "iterations_since_restore",
    "should_checkpoint", "experiment_tag",
}


class ComputeBudget(Stopper):
    """Stops the sweep once its trials have trained `epochs` epochs in total
    (summed over trials; fractional, from the words each trial has seen)."""

    def __init__(self, epochs: float) -> None:
        self.epochs = epochs
        self.used: Dict[str, float] = {}

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        self.used[trial_id] = float(result.get("epochs_trained", 0.0))
        return False

    def stop_all(self) -> bool:
        return sum(self.used.values()) >= self.epochs


def sweep(
    settings: SweepSettings,
    progress: Optional[Callable[[str], None]] = None,
    live_table: Optional[Callable[[str], None]] = None,
) -> SweepResult:
    """Run (or resume) a sweep and return its trials, best first. progress gets
    a line per ended trial; live_table the lines of search.progress's table."""
    space = Space.from_disk(settings.space_path, settings.overrides)
    space.validate()  # before any worker starts
    trial_scheduler = scheduler(settings)  # a bad --scheduler or --time-attr fails here too
    outcome = TrialOutcome.of(settings)
    experiment = settings.experiment or Path(settings.space_path).stem
    storage_root = storage.absolute(settings.storage or "runs/sweeps")  # a local path or a URI
    workdir = str(Path.cwd())

    if settings.resume:
        exp_dir = _latest_unfinished(storage_root, experiment)
        state = json.loads(storage.read_text(storage.join(exp_dir, STATE_FILE)))
        tracking = SweepTracking(state["tracking_uri"], experiment)
    else:
        name = f"{experiment}-{datetime.now():%Y%m%d-%H%M%S}"
        exp_dir, n = storage.join(storage_root, name), 1
        while storage.exists(exp_dir):  # two sweeps started in the same second
            n += 1
            exp_dir = storage.join(storage_root, f"{name}-{n}")
        tracking = SweepTracking(settings.tracking_uri or default_tracking_uri(), experiment)
    tracking.pending_path = storage.join(exp_dir, PENDING_FILE)
    # before Ray starts and anything is written: a server that refuses the credentials ends the sweep here
    check_tracking_access(tracking.tracking_uri, experiment)

    # Tune snapshots its experiment state at most this often; a trial that
    # ended since the last snapshot is run again by --resume ("auto" can wait
    # minutes on a small sweep).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    # Tune's newer output engine prints an experiment box and paths even at
    # verbose=0; the legacy one prints nothing then, and search.progress's table
    # is the sweep's progress display.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # before Ray starts: a --warm-start that cannot be read is refused at once
    warm = None if settings.resume else _warm_start(settings, space, tracking.tracking_uri)
    fail_trials_killed_for_memory()
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address=settings.address, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        _preflight(settings, space, tracking.tracking_uri)
        if settings.resume:
            parent_run_id = state["parent_run_id"]
            # what the killed driver could not write to MLflow goes first
            tracking.load_pending()
            tracking.reopen(parent_run_id)
        else:
            parent_run_id = _start_parent(settings, space, tracking, exp_dir, warm)
        trainable = tune.with_resources(
            tune.with_parameters(worker_trainable, space=space, workdir=workdir),
            {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
        )
        if settings.resume:
            tuner = Tuner.restore(exp_dir, trainable=trainable, resume_errored=False)
        else:
            tuner = Tuner(
                trainable,
                tune_config=TuneConfig(
                    metric=METRIC,
                    mode="max",
                    search_alg=ConcurrencyLimiter(searcher(space, settings, warm), max_concurrent=settings.max_concurrent),
                    scheduler=trial_scheduler,
                    num_samples=settings.num_samples,
                    trial_name_creator=lambda t: f"trial_{t.trial_id}",
                    trial_dirname_creator=lambda t: f"trial_{t.trial_id}",
                    # one worker process runs trial after trial: its imports, first-use costs and
                    # corpus cache serve them all (each trial still seeds and builds its own model)
                    reuse_actors=True,
                ),
                run_config=RunConfig(
                    name=storage.name(exp_dir),
                    storage_path=storage_root,
                    callbacks=[TrackingCallback(tracking, parent_run_id, space, outcome=outcome)],
                    failure_config=FailureConfig(max_failures=settings.max_failures),
                    stop=ComputeBudget(settings.budget_epochs) if settings.budget_epochs else None,
                    sync_config=SyncConfig(sync_period=OBJECT_STORAGE_SYNC_S) if storage.is_uri(storage_root) else None,
                    verbose=0,
                ),
            )
        outcome = _attach_progress(tuner, progress, live_table, outcome)
        _share_tracking(tuner, tracking)
        results = tuner.fit()
    finally:
        if started_ray:
            ray.shutdown()
    result = finish(tracking, parent_run_id, experiment, space, exp_dir, results, settings.tracking_wait, outcome)
    _write_state(exp_dir, {**json.loads(storage.read_text(storage.join(exp_dir, STATE_FILE))), "parent_run_id": result.parent_run_id,
                           "finished": True, SYNC_PENDING_KEY: bool(result.tracking_pending)})
    return result


def _preflight(settings: SweepSettings, space: Space, tracking_uri: str) -> None:
    """Refuse, before any run is created, what cannot work on this cluster."""
    n_nodes = count_nodes()
    if not ray.cluster_resources().get("CPU", 0):
        n_nodes = max(n_nodes, 2)  # a CPU-less head: every trial runs on another machine
    check_cluster_settings(n_nodes, settings.storage, tracking_uri, data_paths_of(space.template))


def _warm_start(settings: SweepSettings, space: Space, tracking_uri: str) -> Optional[WarmStart]:
    """--warm-start: the experiment's latest sweep's finished trials, within this
    space (one warning line for the values left out)."""
    if not settings.warm_start:
        return None
    from ..tracking.history import finished_trials

    try:
        past = finished_trials(tracking_uri, settings.warm_start)
    except ValueError as err:
        raise ValueError(f"--warm-start {settings.warm_start}: {err}") from None
    if not past:
        raise ValueError(f"--warm-start {settings.warm_start}: its latest sweep has no finished trial")
    warm = warm_start(space, past)
    warning = warm.warning(settings.warm_start)
    if warning:
        logger.warning(warning)
    return warm


def _start_parent(settings: SweepSettings, space: Space, tracking: Tracker, exp_dir: str, warm: Optional[WarmStart] = None) -> str:
    """The sweep's parent run, and the state file --resume finds it by."""
    tags = {
        "archsweep.space_file": str(settings.space_path),
        "archsweep.space_hash": space.digest,
        "archsweep.search": settings.search,
        "archsweep.scheduler": settings.scheduler,
        "archsweep.seed": str(settings.seed),
        "archsweep.code_version": code_version(),
        "archsweep.storage": str(exp_dir),
        WORKDIR_TAG: str(Path.cwd()),  # the trials' working directory: an export makes its relative data paths absolute
    }
    if warm is not None:
        tags["archsweep.warm_start"] = f"{settings.warm_start} ({len(warm.trials)} trials)"
    params = {k: v for k, v in asdict(settings).items() if k not in ("overrides", "resume")}
    storage.make_dirs(exp_dir)  # the pending file's folder, if MLflow is away now
    # its run id, or a reference while MLflow is away (resolved by its tags later, also on --resume)
    parent_run_id = tracking.start_parent(storage.name(exp_dir), tags, params, space.text)
    state = {"parent_run_id": parent_run_id, "tracking_uri": tracking.tracking_uri, "experiment": tracking.experiment, "finished": False}
    _write_state(exp_dir, state)
    return parent_run_id


def _write_state(exp_dir: str, state: Dict[str, Any]) -> None:
    storage.write_text(storage.join(exp_dir, STATE_FILE), json.dumps(state, indent=2))


def _latest_unfinished(storage_root: str, experiment: str) -> str:
    """The newest sweep (by its state file's time) of this experiment under
    storage_root (a local path or a URI) that did not finish."""
    candidates = []
    for folder in storage.folders(storage_root):
        state_path = storage.join(folder, STATE_FILE)
        if not storage.exists(state_path):
            continue
        state = json.loads(storage.read_text(state_path))
        if state.get("experiment") == experiment and not state.get("finished") and Tuner.can_restore(folder):
            candidates.append((storage.mtime(state_path), folder))
    if not candidates:
        raise FileNotFoundError(f"no unfinished sweep of experiment {experiment!r} to resume under {storage_root}")
    return max(candidates)[1]


def _attach_progress(
    tuner: Tuner, progress: Optional[Callable[[str], None]], live_table: Optional[Callable[[str], None]], outcome: TrialOutcome
) -> TrialOutcome:
    """Give the (possibly unpickled) tracking callback the progress printer, and
    add the live table (after tuner.pkl was written, so it is never pickled).
    Returns the rule for a trial's status the sweep started with (the tracking
    callback's: on resume the sweep's first settings, not this command's)."""
    callbacks = tuner_callbacks(tuner)
    for callback in callbacks or []:
        if isinstance(callback, TrackingCallback):
            callback.progress = progress
            outcome = callback.outcome
    if live_table is not None and callbacks is not None:
        callbacks.append(SweepProgressTable(live_table, outcome=outcome))
    return outcome


def _share_tracking(tuner: Tuner, tracking: Tracker) -> None:
    """The tracking callback (unpickled, on resume) writes through the sweep's
    own tracker, so that its queue and the sweep's end are one queue, in order."""
    for callback in tuner_callbacks(tuner) or []:
        if isinstance(callback, TrackingCallback):
            callback.tracking = tracking


