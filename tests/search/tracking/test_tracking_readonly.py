"""The read-only tracking commands (`archsweep export`, `archsweep report`)
never create an MLflow store, and an unreachable tracking server is one error
line naming its URI within seconds (search/tracking/mlflow.py `reading_store`). Real
MLflow (SQLite stores in temporary folders) and real CLI subprocesses, run in a
temporary working directory (where the default store, ./mlflow.db, would be)."""

import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Optional, Set

import pytest
from mlflow.tracking import MlflowClient
from sweep_fixtures import ARCHSWEEP, subprocess_env

from search.tracking.mlflow import REQUEST_TIMEOUT_S, TrackingStoreError, local_store_path, reading_store

COMMANDS = {"export": ["export", "--experiment", "does-not-exist"], "report": ["report", "--experiment", "does-not-exist"]}


def _archsweep(args: List[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(ARCHSWEEP), *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)


def _files(directory: Path) -> Set[Path]:
    return {p.relative_to(directory) for p in directory.rglob("*")}


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "uri,expected",
    [
        ("sqlite:////srv/mlflow/mlflow.db", Path("/srv/mlflow/mlflow.db")),
        ("sqlite:///mlflow.db", Path("mlflow.db")),
        ("sqlite:///mlflow.db?timeout=20", Path("mlflow.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("file:///srv/mlruns", Path("/srv/mlruns")),
        ("mlruns", Path("mlruns")),
        ("http://127.0.0.1:5000", None),
    ],
)
def test_local_store_path(uri: str, expected: Optional[Path]):
    assert local_store_path(uri) == expected


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("store", ["default", "sqlite", "file"])
def test_a_missing_store_is_an_error_and_is_not_created(command: str, store: str, tmp_path: Path):
    workdir = tmp_path.resolve()
    given = {
        "default": ([], workdir / "mlflow.db"),
        "sqlite": (["--tracking-uri", "sqlite:///elsewhere.db"], Path("elsewhere.db")),
        "file": (["--tracking-uri", f"file://{workdir / 'mlruns'}"], workdir / "mlruns"),
    }
    args, path = given[store]
    line = _one_error_line(_archsweep([*COMMANDS[command], *args], cwd=workdir))
    assert line == f"error: no MLflow store at {path} (run a sweep first, or pass --tracking-uri)"
    assert _files(workdir) == set()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_existing_store_is_read_and_left_as_it_was(command: str, tmp_path: Path):
    workdir = tmp_path.resolve()
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    client.create_experiment("another", artifact_location=(workdir / "artifacts").as_uri())
    before = _files(workdir)
    line = _one_error_line(_archsweep(COMMANDS[command], cwd=workdir))
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    assert line == f"error: no MLflow experiment named 'does-not-exist' at {uri}; {uri} holds no sweep"
    assert _files(workdir) == before


def test_reading_a_missing_store_raises_before_mlflow_is_asked(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(TrackingStoreError, match="no MLflow store at .*mlflow.db"), reading_store(uri):
        MlflowClient(tracking_uri=uri).search_experiments()
    assert _files(tmp_path) == set()


@pytest.fixture()
def refusing_server() -> Iterator[str]:
    """A local port with nothing listening on it (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


# server fixture: (why the request fails, the most the command may take: its
# start-up, about 5 s on a loaded machine, and for a silent server one request
# timeout more)
SERVERS = {
    "refusing_server": ("Connection refused", 15),
    "silent_server": (f"no answer within {REQUEST_TIMEOUT_S} s", 15 + REQUEST_TIMEOUT_S),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_an_unreachable_server_fails_within_seconds_naming_its_uri(command: str, server: str, request, tmp_path: Path):
    uri = request.getfixturevalue(server)
    why, limit_s = SERVERS[server]
    started = time.monotonic()
    proc = _archsweep([*COMMANDS[command], "--tracking-uri", uri], cwd=tmp_path, timeout=30)
    elapsed = time.monotonic() - started
    line = _one_error_line(proc)
    assert line.startswith(f"error: cannot reach the MLflow tracking server at {uri} ("), line
    assert why in line and line.endswith("; start it, or pass another --tracking-uri"), line
    assert elapsed < limit_s, f"took {elapsed:.1f} s"
    assert _files(tmp_path) == set()
