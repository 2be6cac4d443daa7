"""MLflow tracking of sweeps: one parent run per sweep, one child run per trial.

Thin adapter over `MlflowClient`, which gets the tracking URI explicitly (no
process-global `mlflow.set_tracking_uri`). Used by the sweep driver only:
workers never talk to MLflow, so a trial costs no MLflow start-up and a
trial that is stopped or dies still gets its final status from the driver.

Every write goes through a durable queue (search.tracking.queue), so that a
tracking server that goes away does not stall or break the sweep: writes are
short requests with no retry loop; while the server cannot be reached they wait
in order (mirrored to a file in the sweep's folder) and whatever is still
pending when the sweep ends, after a bounded wait, stays in that file for
`archsweep sync` (or `--resume`).
"""

import logging
import os
import time
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import requests
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.file_utils import local_file_uri_to_path

from .. import storage
from .queue import Operation, OperationQueue

logger = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "archsweep.trial_id"
STATUS_TAG = "archsweep.status"  # running / finished / pruned / failed
KIND_TAG = "archsweep.kind"  # sweep / trial
ERROR_TAG = "archsweep.error"
SWEEP_KEY_TAG = "archsweep.sweep_key"  # on the parent run: finds it again (its creation is queued like the rest)
WORKDIR_TAG = "archsweep.workdir"  # on the parent run: the folder the sweep ran in (relative data paths mean it)

STATE_FILE = "archsweep.json"  # in the sweep's folder: parent run id, tracking URI, experiment, finished
PENDING_FILE = "tracking-pending.jsonl"  # in the sweep's folder: operations MLflow has not received yet
SYNC_PENDING_KEY = "tracking_pending"  # in STATE_FILE: the sweep ended before MLflow had everything

# One request may take this long (MLflow's default is 120 s, with 7 retries
# backing off over about 4 minutes), so an unreachable server costs the sweep
# driver at most a few seconds per retry interval.
REQUEST_TIMEOUT_S = 5
TRIAL_REF_PREFIX = "trial:"
SWEEP_REF_PREFIX = "sweep:"
LISTED_SWEEPS = 5  # an error about a sweep that is not there lists this many of the newest
SEARCH_EXPERIMENTS_MAX = 1000  # experiments searched for the newest sweeps
# the parent run's metrics at the sweep's end (search.sweep.end.parent_metrics): its trials per status
TRIAL_COUNT_METRICS = ("trials_finished", "trials_pruned", "trials_failed")


def default_tracking_uri(workdir: Optional[Path] = None) -> str:
    """MLflow in a SQLite file in the working directory (`mlflow ui` opens it there)."""
    return f"sqlite:///{(workdir or Path.cwd()).resolve() / 'mlflow.db'}"


def is_local_store(uri: str) -> bool:
    return uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri


def is_unreachable(err: BaseException) -> bool:
    """Whether an MLflow call failed because the server could not be reached or
    answered 5xx (worth trying again later), rather than because it refused the
    request. MLflow wraps the requests error in an MlflowException, so the
    cause chain is searched."""
    seen = set()
    current: Optional[BaseException] = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # RetryError: a 5xx (or 429) answer, which MLflow's request session
        # turns into an error once its retries (none here) are used up.
        if isinstance(current, (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError,
                                ConnectionError, TimeoutError)):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def _short_requests() -> Iterator[None]:
    """MLflow reads its HTTP retry and timeout settings from the environment at
    every request: set them for the queue's requests only (the sweep driver
    calls the callbacks from one thread), and restore them after."""
    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT_S)}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class TrackingStoreError(ValueError):
    """A read-only command's tracking store is missing or cannot be reached;
    the message names its path or URI."""


def local_store_path(uri: str) -> Optional[Path]:
    """The file (sqlite) or folder (file store, plain path) in which a local
    tracking URI keeps its runs; None for a server or an in-memory database."""
    if uri.startswith("sqlite:"):
        # SQLAlchemy's spelling: sqlite:///relative.db, sqlite:////absolute.db, sqlite:// in memory.
        rest = uri[len("sqlite:"):].split("?", 1)[0]
        path = rest[3:] if rest.startswith("///") else ""
        return Path(path) if path not in ("", ":memory:") else None
    if uri.startswith("file:") or "://" not in uri:
        return Path(local_file_uri_to_path(uri))
    return None


@contextmanager
def reading_store(tracking_uri: str) -> Iterator[None]:
    """The frame of a read-only command (export, report): its store must exist
    already (MLflow would create an empty one), its requests are short (an
    unreachable server fails in seconds, not after MLflow's minutes of
    retries), and an unreachable server is a TrackingStoreError naming the URI."""
    path = local_store_path(tracking_uri)
    if path is not None and not path.exists():
        raise TrackingStoreError(f"no MLflow store at {path} (run a sweep first, or pass --tracking-uri)")
    try:
        with _short_requests():
            yield
    except Exception as err:
        if is_unreachable(err):
            raise TrackingStoreError(
                f"cannot reach the MLflow tracking server at {tracking_uri} ({_root_cause(err)}); "
                "start it, or pass another --tracking-uri"
            ) from err
        raise


def _root_cause(err: BaseException) -> str:
    """Why a request failed, in one line: no answer in time, or the innermost
    error under MLflow's and requests' wrappers (e.g. "[Errno 111] Connection refused")."""
    seen = {id(err)}
    while True:
        if isinstance(err, (requests.Timeout, TimeoutError)):
            return f"no answer within {REQUEST_TIMEOUT_S} s"
        inner = err.__cause__ or err.__context__
        if inner is None or id(inner) in seen:
            return _short(err)
        seen.add(id(inner))
        err = inner


def trial_ref(parent_run_id: str, trial_id: str) -> str:
    """Names a trial's child run before MLflow has given it an id: the
    operations queued for it hold this, resolved when they are written.
    parent_run_id: the parent's run id or its own reference."""
    return f"{TRIAL_REF_PREFIX}{parent_run_id}:{trial_id}"


def _split_trial_ref(ref: str) -> Tuple[str, str]:
    """(parent run id or reference, trial id): a trial id has no ':', a parent reference has."""
    parent, trial_id = ref[len(TRIAL_REF_PREFIX):].rsplit(":", 1)
    return parent, trial_id


class SweepTracking:
    """Creates, logs to and closes the runs of one sweep. Picklable (Ray Tune
    pickles the driver callbacks that hold it, so a resumed sweep logs to the
    same runs); what is queued is not pickled but mirrored to `pending_path`."""

    def __init__(
        self, tracking_uri: str, experiment: str, artifact_root: Optional[str] = None, pending_path: Optional[str] = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_root = artifact_root
        self.experiment_id: Optional[str] = None
        self.pending_path = pending_path  # taken by the queue
        self._init_unpickled_state()

    def _init_unpickled_state(self) -> None:
        self._client: Optional[MlflowClient] = None
        self._queue = OperationQueue(self.tracking_uri, self.__dict__.pop("pending_path", None))
        self._run_ids: Dict[str, str] = {}  # trial ref -> run id, once created or found

    def __getstate__(self) -> Dict[str, Any]:
        keep = ("tracking_uri", "experiment", "artifact_root", "experiment_id")
        return {**{key: self.__dict__[key] for key in keep}, "pending_path": self.pending_path}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_unpickled_state()

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def pending_path(self) -> Optional[str]:
        """Where the queue is mirrored while the server is away (the sweep's folder)."""
        return self._queue.pending_path

    @pending_path.setter
    def pending_path(self, path: Optional[str]) -> None:
        if "_queue" in self.__dict__:
            self._queue.pending_path = path
        else:  # set before the queue exists (construction, unpickling)
            self.__dict__["pending_path"] = path

    @property
    def dropped(self) -> List[Tuple[Operation, str]]:
        """Operations MLflow refused, with its error."""
        return self._queue.dropped

    # ------------------------------------------------------------ direct calls (the sweep's end)

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

    def trials(self, parent_run_id: str) -> List[Any]:
        return self.client.search_runs(
            [self.experiment_id or self.ensure_experiment()],
            filter_string=f"tags.`{PARENT_TAG}` = '{self.resolve(parent_run_id)}'",
            max_results=10000,
        )

    # ------------------------------------------------------------ queued operations

    def start_parent(self, name: str, tags: Dict[str, str], params: Dict[str, Any], space_text: str) -> str:
        """The sweep's parent run, queued like everything else (a sweep starts while
        the server is away): its MLflow run id when the server took it at once, else
        a reference that the other methods accept, resolved by the run's
        SWEEP_KEY_TAG once it exists (so a replayed creation makes no second run)."""
        ref = f"{SWEEP_REF_PREFIX}{uuid.uuid4().hex}"
        self._submit({"op": "create_parent_run", "run": ref, "name": name, "tags": {**tags, KIND_TAG: "sweep"}})
        self._submit({"op": "log_batch", "run": ref, "params": {k: _param(v) for k, v in params.items()}})
        self._submit({"op": "log_text", "run": ref, "text": space_text, "path": "space.cfg"})
        return self.run_id_of(ref) or ref

    def reopen(self, run_id: str) -> None:
        self._submit({"op": "update_run", "run": run_id, "status": RunStatus.to_string(RunStatus.RUNNING)})

    def trial_run(self, parent_run_id: str, trial_id: str, trial_name: str) -> str:
        """The trial's child run (created on first use, found again by its tags
        on resume), as a reference the other methods accept."""
        ref = trial_ref(parent_run_id, trial_id)
        self._submit({"op": "create_trial_run", "run": ref, "name": trial_name})
        return ref

    def run_id_of(self, ref: str) -> Optional[str]:
        """The MLflow run id of a run reference, if this driver knows it already."""
        return self._run_ids.get(ref) if _is_ref(ref) else ref

    def log_trial_start(self, run: str, params: Dict[str, Any], config_text: str, tags: Optional[Dict[str, str]] = None) -> None:
        self._submit({"op": "log_batch", "run": run, "params": {k: _param(v) for k, v in params.items()}, "tags": dict(tags or {})})
        self._submit({"op": "log_text", "run": run, "text": config_text, "path": "config.cfg"})

    def log_metrics(self, run: str, metrics: Dict[str, Any], step: int) -> None:
        # the time of the evaluation, not of the write: a buffered metric keeps it
        now = int(time.time() * 1000)
        batch = [[k, float(v), now, step] for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        self._submit({"op": "log_batch", "run": run, "metrics": batch})

    def end_trial(self, run: str, status: str, error: Optional[str] = None, reason: Optional[str] = None) -> None:
        """status: finished, pruned or failed. reason: a line that says what the
        error means (out of memory), first in the error tag and error.txt."""
        tags = {STATUS_TAG: status}
        if error:
            head = f"{reason}\n\n" if reason else ""
            tags[ERROR_TAG] = head + error[-(4000 - len(head)):]
            self._submit({"op": "log_text", "run": run, "text": head + error, "path": "error.txt"})
        self._submit({"op": "log_batch", "run": run, "tags": tags})
        mlflow_status = {"finished": RunStatus.FINISHED, "pruned": RunStatus.KILLED, "failed": RunStatus.FAILED}[status]
        self._submit({"op": "set_terminated", "run": run, "status": RunStatus.to_string(mlflow_status)})

    def end_parent(
        self, run_id: str, metrics: Dict[str, float], tags: Dict[str, str], status: str = "FINISHED",
        run_id_tags: Optional[Dict[str, str]] = None,
    ) -> None:
        """run_id_tags: tags whose value is the MLflow id of a run reference
        (the best trial's run, which may not exist in MLflow yet)."""
        self.log_metrics(run_id, metrics, step=0)
        if tags:
            self._submit({"op": "log_batch", "run": run_id, "tags": dict(tags)})
        for key, ref in (run_id_tags or {}).items():
            self._submit({"op": "tag_run_id", "run": run_id, "key": key, "target": ref})
        self._submit({"op": "set_terminated", "run": run_id, "status": status})

    def _submit(self, op: Operation) -> None:
        self._queue.append(op)
        self.flush()

    # ------------------------------------------------------------ writing the queue

    def flush(self) -> bool:
        """Write the queued operations in order; True when nothing is pending."""
        with _short_requests():
            return self._queue.flush(self._apply, is_unreachable)

    def drain(self, wait_s: float, announce: bool = True) -> int:
        """At the sweep's end: keep trying for up to wait_s seconds, then leave
        what is still pending in pending_path (announce: with a warning that
        says how to sync it). Returns how many operations are pending."""
        deadline = time.monotonic() + wait_s
        while True:
            self._queue.retry_now()
            if self.flush():
                return 0
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(2.0, remaining))
        self._queue.save()
        if not announce:
            return len(self._queue)
        logger.warning(
            "the MLflow tracking server %s is still unreachable: %d tracking operations are saved in %s; "
            "when it is back, run `archsweep sync %s`",
            self.tracking_uri, len(self._queue), self.pending_path, storage.parent(self.pending_path or "."),
        )
        return len(self._queue)

    def load_pending(self) -> int:
        """Queue the operations a previous driver saved in pending_path (before
        anything queued since); returns how many."""
        return self._queue.load()

    # ------------------------------------------------------------ one operation

    def _apply(self, op: Operation) -> None:
        kind = op["op"]
        if kind == "create_trial_run":
            self._create_trial_run(op["run"], op["name"])
            return
        if kind == "create_parent_run":
            self._create_parent_run(op["run"], op["name"], op["tags"])
            return
        run_id = self.resolve(op["run"])
        if kind == "log_batch":
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, v, ts, step) for k, v, ts, step in op.get("metrics", [])],
                params=[Param(k, v) for k, v in op.get("params", {}).items()],
                tags=[RunTag(k, v) for k, v in op.get("tags", {}).items()],
            )
        elif kind == "log_text":
            self.client.log_text(run_id, op["text"], op["path"])
        elif kind == "set_terminated":
            self.client.set_terminated(run_id, status=op["status"])
        elif kind == "update_run":
            self.client.update_run(run_id, status=op["status"])
        elif kind == "tag_run_id":
            self.client.set_tag(run_id, op["key"], self.resolve(op["target"]))
        else:
            raise ValueError(f"unknown tracking operation {kind!r}")

    def _create_parent_run(self, ref: str, name: str, tags: Dict[str, str]) -> None:
        """Finds the run first, by its key: a creation replayed from the pending
        file, or whose answer was lost, makes no second parent."""
        if self._find_run(ref) is not None:
            return
        key = ref[len(SWEEP_REF_PREFIX):]
        run = self.client.create_run(self.experiment_id or self.ensure_experiment(), run_name=name, tags={**tags, SWEEP_KEY_TAG: key})
        self._run_ids[ref] = run.info.run_id

    def _create_trial_run(self, ref: str, name: str) -> None:
        """Finds the run first: on resume it exists, and a create whose answer
        was lost may have created it, so searching keeps one run per trial."""
        if self._find_run(ref) is not None:
            return
        parent, trial_id = _split_trial_ref(ref)
        run = self.client.create_run(
            self.experiment_id or self.ensure_experiment(),
            run_name=name,
            tags={PARENT_TAG: self.resolve(parent), TRIAL_TAG: trial_id, KIND_TAG: "trial", STATUS_TAG: "running"},
        )
        self._run_ids[ref] = run.info.run_id

    def _find_run(self, ref: str) -> Optional[str]:
        """The run of a reference, by its tags: a trial's by its parent and trial
        id, a sweep's by its key."""
        if ref in self._run_ids:
            return self._run_ids[ref]
        if ref.startswith(SWEEP_REF_PREFIX):
            filter_string = f"tags.`{SWEEP_KEY_TAG}` = '{ref[len(SWEEP_REF_PREFIX):]}'"
        else:
            parent, trial_id = _split_trial_ref(ref)
            parent_run_id = self._find_run(parent) if _is_ref(parent) else parent
            if parent_run_id is None:
                return None
            filter_string = f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{TRIAL_TAG}` = '{trial_id}'"
        found = self.client.search_runs([self.experiment_id or self.ensure_experiment()], filter_string=filter_string, max_results=1)
        if found:
            self._run_ids[ref] = found[0].info.run_id
            return self._run_ids[ref]
        return None

    def resolve(self, ref: str) -> str:
        """The MLflow run id of a run id or reference (asking MLflow if need be)."""
        if not _is_ref(ref):
            return ref
        run_id = self._find_run(ref)
        if run_id is None:
            # its create operation was refused (it comes first in the queue)
            raise LookupError(f"the run of {ref} was never created")
        return run_id



def find_sweep(client: MlflowClient, *, experiment: Optional[str] = None, parent_run_id: Optional[str] = None) -> Run:
    """The parent run: the given one, the experiment's latest sweep, or (with
    neither) the newest sweep in the store."""
    if parent_run_id is not None:
        return client.get_run(parent_run_id)
    if not experiment:
        return newest_sweep(client)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ValueError(f"no MLflow experiment named {experiment!r} at {client.tracking_uri}; {sweeps_there(client)}")
    parents = client.search_runs(
        [found.experiment_id], filter_string=f"tags.`{KIND_TAG}` = 'sweep'", order_by=["attributes.start_time DESC"], max_results=1
    )
    if not parents:
        raise ValueError(f"experiment {experiment!r} has no sweep; {sweeps_there(client)}")
    return parents[0]


def newest_sweep(client: MlflowClient) -> Run:
    """The parent run of the sweep that started last, in any experiment of the store."""
    found = _newest_sweeps(client, 1)
    if not found:
        raise ValueError(f"no sweep at {client.tracking_uri} (run `archsweep sweep` first, or pass --tracking-uri)")
    return found[0]


def sweeps_there(client: MlflowClient, limit: int = LISTED_SWEEPS) -> str:
    """The store's newest sweeps (at most `limit`), in words, for an error
    about a sweep that is not there."""
    found = _newest_sweeps(client, limit + 1)
    if not found:
        return f"{client.tracking_uri} holds no sweep"
    listed = ", ".join(describe_sweep(client, run) for run in found[:limit])
    return f"the sweeps there, newest first: {listed}" + (", and older ones" if len(found) > limit else "")


def describe_sweep(client: MlflowClient, parent: Run) -> str:
    """A sweep in a few words: its name, experiment, start and trial count."""
    experiment = client.get_experiment(parent.info.experiment_id).name
    started = datetime.fromtimestamp(parent.info.start_time / 1000).strftime("%Y-%m-%d %H:%M")
    counts = [parent.data.metrics[key] for key in TRIAL_COUNT_METRICS if key in parent.data.metrics]
    if counts:  # the sweep ended: its parent run holds the counts
        trials = int(sum(counts))
    else:
        trials = len(client.search_runs(
            [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'", max_results=10000,
        ))
    return f"{parent.info.run_name} (experiment {experiment}, started {started}, {trials} trial{'s' if trials != 1 else ''})"


def _newest_sweeps(client: MlflowClient, limit: int) -> List[Run]:
    experiment_ids = [e.experiment_id for e in client.search_experiments(max_results=SEARCH_EXPERIMENTS_MAX)]
    if not experiment_ids:
        return []
    return list(client.search_runs(
        experiment_ids, filter_string=f"tags.`{KIND_TAG}` = 'sweep'", order_by=["attributes.start_time DESC"], max_results=limit,
    ))


def _is_ref(run: str) -> bool:
    return run.startswith(TRIAL_REF_PREFIX) or run.startswith(SWEEP_REF_PREFIX)


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:300]


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
    head = Path(__file__).resolve().parents[2] / ".git" / "HEAD"  # the checkout: search/tracking/ is two below
    commit = ""
    if head.exists():
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_path = head.parent / ref[5:]
            commit = ref_path.read_text().strip() if ref_path.exists() else ""
        else:
            commit = ref
    return f"{ver}+{commit[:12]}" if commit else ver
