"""The sweep driver: Ray Tune runs the trials, Optuna proposes, ASHA stops early,
MLflow records (from the driver). Adapters are kept thin; the trial itself is
search.trial.run_trial, the same function `archsweep train` runs."""

import json
import logging
import os
from datetime import datetime
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Union

import optuna
import ray
from ray import tune
from ray.tune import Callback, FailureConfig, RunConfig, SyncConfig, TuneConfig, Tuner
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch
from ray.tune.stopper import Stopper

from archs import registry

from . import storage
from .config import fill_config
from .faults import failure_reason
from .preflight import check_cluster_settings, count_nodes, data_paths_of
from .progress import SweepProgressTable
from .space import Space
from .trial import SEED_KEY, derive_seed, run_trial, trial_config
from .tracking import PENDING_FILE, STATE_FILE, SYNC_PENDING_KEY, SweepTracking, code_version, default_tracking_uri, trial_ref
from .tune_compat import PruningAwareOptunaSearch, fail_trials_killed_for_memory, tuner_callbacks

logger = logging.getLogger(__name__)
METRIC = "score"
MODEL_SIZE_KEY = "model_params"
# With object storage (--storage s3://...) Ray Tune uploads its experiment state at most
# once per SyncConfig.sync_period (300 s by default): this often instead, so that
# --resume after a killed driver finds a recent state there.
OBJECT_STORAGE_SYNC_S = 5

# --time-attr: the result key whose value ASHA's rungs compare
ASHA_TIME_ATTRS = {"evaluations": "training_iteration", "epochs": "epochs_trained"}


@dataclass
class SweepSettings:
    space_path: str
    num_samples: int = 8
    max_concurrent: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: Optional[str] = None
    tracking_uri: Optional[str] = None
    experiment: Optional[str] = None
    storage: Optional[str] = None
    seed: int = 0
    search: str = "tpe"  # tpe | random
    scheduler: str = "asha"  # asha | none
    # what ASHA's rungs count: a trial's evaluations (Tune's training_iteration) or the epochs
    # it has trained (fractional). Epochs compare trials fairly when a trial's batch size or
    # evaluation frequency is searched: the same number of evaluations is then unequal training.
    time_attr: str = "evaluations"  # evaluations | epochs
    grace_period: float = 1
    reduction_factor: int = 2
    max_t: float = 100  # ASHA's last rung, in time_attr's unit
    budget_epochs: float = 0.0  # stop the sweep after this many trial-epochs in all (0: num_samples decides)
    max_failures: int = 2  # times a failed trial is run again (a lost node, a killed worker) before it counts as failed
    # seconds the sweep's end keeps trying an unreachable MLflow server before it saves
    # the pending tracking operations for `archsweep sync`
    tracking_wait: float = 120.0
    resume: bool = False
    overrides: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TrialSummary:
    trial_id: str
    status: str
    best_score: Optional[float]
    values: Dict[str, Any]
    run_id: str
    error: str = ""


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


class DefineByRun:
    """Optuna define-by-run space: samples the archsweep space through the
    trial and adds the trial's seed (derived from the sweep seed)."""

    def __init__(self, space: Space, sweep_seed: int) -> None:
        self.space = space
        self.sweep_seed = sweep_seed

    def __call__(self, trial: optuna.Trial) -> Dict[str, Any]:
        self.space.sample(trial)
        return {SEED_KEY: derive_seed(self.sweep_seed, trial.number)}


class TrackingCallback(Callback):
    """Driver-side MLflow logging: a child run per trial (reused across a
    resume), stepped metrics per evaluation, and the trial's final status."""

    def __init__(self, tracking: SweepTracking, parent_run_id: str, space: Space, progress: Optional[Callable[[str], None]] = None) -> None:
        self.tracking = tracking
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
                self.tracking.log_trial_start(run_id, params, fill_config(config).to_str())
        return run_id

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._run_for(trial)

    def on_trial_restore(self, iteration, trials, trial, **info) -> None:
        self._run_for(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.finished_flags[trial.trial_id] = bool(result.get("training_finished"))
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


def _with_reason(error: str) -> str:
    reason = failure_reason(error) if error else None
    return f"{reason}\n\n{error}" if reason else error


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


def _trainable(config: Dict[str, Any], *, space: Space, workdir: str) -> None:
    """Ray Tune's function trainable: the plain trial with tune.report as its reporter."""
    os.chdir(workdir)  # relative paths in the space mean the driver's working directory
    gpu_id = 0 if ray.get_gpu_ids() else -1
    run_trial(space, config, lambda metrics: tune.report(metrics), gpu_id=gpu_id)


def sweep(
    settings: SweepSettings,
    progress: Optional[Callable[[str], None]] = None,
    live_table: Optional[Callable[[str], None]] = None,
) -> SweepResult:
    """Run (or resume) a sweep and return its trials, best first. progress gets
    a line per ended trial; live_table the lines of search.progress's table."""
    space = Space.from_disk(settings.space_path, settings.overrides)
    space.validate()  # before any worker starts
    scheduler = _scheduler(settings)  # a bad --scheduler or --time-attr fails here too
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

    # Tune snapshots its experiment state at most this often; a trial that
    # ended since the last snapshot is run again by --resume ("auto" can wait
    # minutes on a small sweep).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    # Tune's newer output engine prints an experiment box and paths even at
    # verbose=0; the legacy one prints nothing then, and search.progress's table
    # is the sweep's progress display.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
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
            parent_run_id = _start_parent(settings, space, tracking, exp_dir)
        trainable = tune.with_resources(
            tune.with_parameters(_trainable, space=space, workdir=workdir),
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
                    search_alg=ConcurrencyLimiter(_searcher(space, settings), max_concurrent=settings.max_concurrent),
                    scheduler=scheduler,
                    num_samples=settings.num_samples,
                    trial_name_creator=lambda t: f"trial_{t.trial_id}",
                    trial_dirname_creator=lambda t: f"trial_{t.trial_id}",
                ),
                run_config=RunConfig(
                    name=storage.name(exp_dir),
                    storage_path=storage_root,
                    callbacks=[TrackingCallback(tracking, parent_run_id, space)],
                    failure_config=FailureConfig(max_failures=settings.max_failures),
                    stop=ComputeBudget(settings.budget_epochs) if settings.budget_epochs else None,
                    sync_config=SyncConfig(sync_period=OBJECT_STORAGE_SYNC_S) if storage.is_uri(storage_root) else None,
                    verbose=0,
                ),
            )
        _attach_progress(tuner, progress, live_table)
        _share_tracking(tuner, tracking)
        results = tuner.fit()
    finally:
        if started_ray:
            ray.shutdown()
    result = _finish(tracking, parent_run_id, experiment, space, exp_dir, results, settings.tracking_wait)
    _write_state(exp_dir, {**json.loads(storage.read_text(storage.join(exp_dir, STATE_FILE))), "parent_run_id": result.parent_run_id,
                           "finished": True, SYNC_PENDING_KEY: bool(result.tracking_pending)})
    return result


def _preflight(settings: SweepSettings, space: Space, tracking_uri: str) -> None:
    """Refuse, before any run is created, what cannot work on this cluster."""
    n_nodes = count_nodes()
    if not ray.cluster_resources().get("CPU", 0):
        n_nodes = max(n_nodes, 2)  # a CPU-less head: every trial runs on another machine
    check_cluster_settings(n_nodes, settings.storage, tracking_uri, data_paths_of(space.template))


def _start_parent(settings: SweepSettings, space: Space, tracking: SweepTracking, exp_dir: str) -> str:
    """The sweep's parent run, and the state file --resume finds it by."""
    tags = {
        "archsweep.space_file": str(settings.space_path),
        "archsweep.space_hash": space.digest,
        "archsweep.search": settings.search,
        "archsweep.scheduler": settings.scheduler,
        "archsweep.seed": str(settings.seed),
        "archsweep.code_version": code_version(),
        "archsweep.storage": str(exp_dir),
    }
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


def _attach_progress(tuner: Tuner, progress: Optional[Callable[[str], None]], live_table: Optional[Callable[[str], None]]) -> None:
    """Give the (possibly unpickled) tracking callback the progress printer, and
    add the live table (after tuner.pkl was written, so it is never pickled)."""
    callbacks = tuner_callbacks(tuner)
    for callback in callbacks or []:
        if isinstance(callback, TrackingCallback):
            callback.progress = progress
    if live_table is not None and callbacks is not None:
        callbacks.append(SweepProgressTable(live_table))


def _share_tracking(tuner: Tuner, tracking: SweepTracking) -> None:
    """The tracking callback (unpickled, on resume) writes through the sweep's
    own SweepTracking, so that its queue and the sweep's end are one queue, in order."""
    for callback in tuner_callbacks(tuner) or []:
        if isinstance(callback, TrackingCallback):
            callback.tracking = tracking


def _searcher(space: Space, settings: SweepSettings) -> OptunaSearch:
    samplers = registry.samplers.get_all()
    if settings.search not in samplers:
        raise ValueError(f"--search: expected one of {', '.join(sorted(samplers))}, got {settings.search!r}")
    sampler = samplers[settings.search](seed=settings.seed)
    return PruningAwareOptunaSearch(space=DefineByRun(space, settings.seed), metric=METRIC, mode="max", sampler=sampler)


def _scheduler(settings: SweepSettings) -> TrialScheduler:
    schedulers = registry.schedulers.get_all()
    if settings.scheduler not in schedulers:
        raise ValueError(f"--scheduler: expected one of {', '.join(sorted(schedulers))}, got {settings.scheduler!r}")
    return schedulers[settings.scheduler](settings)


@registry.samplers("tpe")
def tpe_sampler(*, seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's TPE; constant_liar, so that concurrent trials don't all get the same proposal."""
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


@registry.samplers("random")
def random_sampler(*, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@registry.schedulers("asha")
def asha_scheduler(settings: SweepSettings) -> TrialScheduler:
    """ASHA: rungs at grace_period * reduction_factor^k up to max_t, in time_attr's unit."""
    if settings.time_attr not in ASHA_TIME_ATTRS:
        raise ValueError(f"--time-attr: expected evaluations or epochs, got {settings.time_attr!r}")
    return ASHAScheduler(
        time_attr=ASHA_TIME_ATTRS[settings.time_attr],
        max_t=settings.max_t,
        grace_period=settings.grace_period,
        reduction_factor=settings.reduction_factor,
    )


@registry.schedulers("none")
def no_scheduler(settings: SweepSettings) -> TrialScheduler:
    """Every trial trains to its own end."""
    return FIFOScheduler()


def _finish(
    tracking: SweepTracking, parent_run_id: str, name: str, space: Space, exp_dir: str, results, tracking_wait: float
) -> SweepResult:
    from .export import export_best
    from .report_mlflow import REPORT_DIR, log_report

    if tracking.drain(tracking_wait, announce=False):
        return _finish_offline(tracking, parent_run_id, name, space, exp_dir, results)
    parent_run_id = tracking.resolve(parent_run_id)  # a reference if the sweep started while MLflow was away
    runs = tracking.trials(parent_run_id)
    trials = []
    for run in runs:
        tags = run.data.tags
        trials.append(
            TrialSummary(
                trial_id=tags.get("archsweep.trial_id", ""),
                status=tags.get("archsweep.status", "running"),
                best_score=run.data.metrics.get("best_score"),
                values={k: v for k, v in run.data.params.items() if k in {d.name for d in space.dimensions}},
                run_id=run.info.run_id,
                error=tags.get("archsweep.error", ""),
            )
        )
    trials.sort(key=lambda t: (t.status != "finished", -(t.best_score if t.best_score is not None else float("-inf"))))
    finished = [t for t in trials if t.status == "finished" and t.best_score is not None]
    best_path = None
    if finished:
        best_path = export_best(tracking.tracking_uri, parent_run_id=parent_run_id, output=storage.join(exp_dir, "best.cfg"))
    counts = {s: sum(t.status == s for t in trials) for s in ("finished", "pruned", "failed")}
    with storage.local_dir(storage.join(exp_dir, REPORT_DIR)) as report_dir:  # its copy in the sweep's folder
        report = log_report(tracking.client, parent_run_id, report_dir)
    report_path = None
    if report is not None:
        report_path = storage.as_result(storage.join(exp_dir, REPORT_DIR, report.html.name))
    tracking.end_parent(
        parent_run_id,
        {"best_score": finished[0].best_score if finished else float("nan"), **{f"trials_{k}": v for k, v in counts.items()}},
        {"archsweep.best_run": finished[0].run_id} if finished else {},
    )
    pending = tracking.drain(tracking_wait)
    return SweepResult(name, parent_run_id, tracking.tracking_uri, trials, best_path, storage.as_result(exp_dir), report_path, pending)


def _finish_offline(tracking: SweepTracking, parent_run_id: str, name: str, space: Space, exp_dir: str, results) -> SweepResult:
    """The sweep's end while MLflow is still away: the trials as Ray Tune
    recorded them, and the parent run's end queued behind the rest; `archsweep
    sync` writes it all and then best.cfg and the report."""
    trials = []
    for result in results:
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id") or Path(result.path).name.removeprefix("trial_")
        status = "failed" if result.error else "finished" if metrics.get("training_finished") else "pruned"
        ref = trial_ref(parent_run_id, trial_id)
        trials.append(
            TrialSummary(
                trial_id=trial_id,
                status=status,
                best_score=metrics.get("best_score"),
                values=trial_config(space, result.config)[1] if result.config else {},
                run_id=tracking.run_id_of(ref) or ref,
                error=_with_reason(str(result.error or "")),
            )
        )
    trials.sort(key=lambda t: (t.status != "finished", -(t.best_score if t.best_score is not None else float("-inf"))))
    finished = [t for t in trials if t.status == "finished" and t.best_score is not None]
    counts = {s: sum(t.status == s for t in trials) for s in ("finished", "pruned", "failed")}
    tracking.end_parent(
        parent_run_id,
        {"best_score": finished[0].best_score if finished else float("nan"), **{f"trials_{k}": v for k, v in counts.items()}},
        {},
        run_id_tags={"archsweep.best_run": trial_ref(parent_run_id, finished[0].trial_id)} if finished else None,
    )
    pending = tracking.drain(0)
    return SweepResult(name, tracking.run_id_of(parent_run_id) or parent_run_id, tracking.tracking_uri, trials, None,
                       storage.as_result(exp_dir), None, pending)
