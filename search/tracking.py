"""MLflow tracking of sweeps: one parent run per sweep, one child run per trial.

Thin adapter over `MlflowClient`, which gets the tracking URI explicitly (no
process-global `mlflow.set_tracking_uri`). Used by the sweep driver only:
workers never talk to MLflow, so a trial costs no MLflow start-up and a
trial that is stopped or dies still gets its final status from the driver.
"""

import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "archsweep.trial_id"
STATUS_TAG = "archsweep.status"  # running / finished / pruned / failed
KIND_TAG = "archsweep.kind"  # sweep / trial
ERROR_TAG = "archsweep.error"


def default_tracking_uri(workdir: Optional[Path] = None) -> str:
    """MLflow in a SQLite file in the working directory (`mlflow ui` opens it there)."""
    return f"sqlite:///{(workdir or Path.cwd()).resolve() / 'mlflow.db'}"


def is_local_store(uri: str) -> bool:
    return uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri


class SweepTracking:
    """Creates and closes the runs of one sweep. Picklable (Ray Tune pickles the
    driver callbacks that hold it, so a resumed sweep logs to the same runs)."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Optional[str] = None) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_root = artifact_root
        self.experiment_id: Optional[str] = None
        self._client: Optional[MlflowClient] = None

    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def ensure_experiment(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            location = None
            if is_local_store(self.tracking_uri):
                # sqlite's default artifact location is relative to the process's cwd: pin it
                root = Path(self.artifact_root or Path.cwd() / "mlartifacts").resolve()
                location = (root / self.experiment).as_uri()
            self.experiment_id = self.client.create_experiment(self.experiment, artifact_location=location)
        return self.experiment_id

    def start_parent(self, name: str, tags: Dict[str, str], params: Dict[str, Any], space_text: str) -> str:
        run = self.client.create_run(self.ensure_experiment(), run_name=name, tags={**tags, KIND_TAG: "sweep"})
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, _param(v)) for k, v in params.items()])
        self.client.log_text(run_id, space_text, "space.cfg")
        return run_id

    def reopen(self, run_id: str) -> None:
        self.ensure_experiment()
        self.client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))

    def trial_run(self, parent_run_id: str, trial_id: str, trial_name: str) -> tuple:
        """The trial's child run, created on first use; (run_id, created)."""
        experiment_id = self.experiment_id or self.ensure_experiment()
        found = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{TRIAL_TAG}` = '{trial_id}'",
            max_results=1,
        )
        if found:
            return found[0].info.run_id, False
        run = self.client.create_run(
            experiment_id,
            run_name=trial_name,
            tags={PARENT_TAG: parent_run_id, TRIAL_TAG: trial_id, KIND_TAG: "trial", STATUS_TAG: "running"},
        )
        return run.info.run_id, True

    def log_trial_start(self, run_id: str, params: Dict[str, Any], config_text: str) -> None:
        self.client.log_batch(run_id, params=[Param(k, _param(v)) for k, v in params.items()])
        self.client.log_text(run_id, config_text, "config.cfg")

    def log_metrics(self, run_id: str, metrics: Dict[str, Any], step: int) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        self.client.log_batch(run_id, metrics=batch)

    def end_trial(self, run_id: str, status: str, error: Optional[str] = None) -> None:
        """status: finished, pruned or failed."""
        tags = [RunTag(STATUS_TAG, status)]
        if error:
            tags.append(RunTag(ERROR_TAG, error[-4000:]))
            self.client.log_text(run_id, error, "error.txt")
        self.client.log_batch(run_id, tags=tags)
        mlflow_status = {"finished": RunStatus.FINISHED, "pruned": RunStatus.KILLED, "failed": RunStatus.FAILED}[status]
        self.client.set_terminated(run_id, status=RunStatus.to_string(mlflow_status))

    def end_parent(self, run_id: str, metrics: Dict[str, float], tags: Dict[str, str], status: str = "FINISHED") -> None:
        self.log_metrics(run_id, metrics, step=0)
        if tags:
            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.set_terminated(run_id, status=status)

    def trials(self, parent_run_id: str) -> List[Any]:
        return self.client.search_runs(
            [self.experiment_id or self.ensure_experiment()],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
            max_results=10000,
        )


def _param(value: Any) -> str:
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return text[:6000]


def code_version() -> str:
    """The package version and, in a git checkout, the commit."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("archsweep")
    except PackageNotFoundError:
        ver = "unknown"
    head = Path(__file__).resolve().parent.parent / ".git" / "HEAD"
    commit = ""
    if head.exists():
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_path = head.parent / ref[5:]
            commit = ref_path.read_text().strip() if ref_path.exists() else ""
        else:
            commit = ref
    return f"{ver}+{commit[:12]}" if commit else ver

