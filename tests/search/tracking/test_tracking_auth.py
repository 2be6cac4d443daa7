"""An authenticated tracking server: MLflow's basic-auth app on a PostgreSQL backend
(search/sweep/preflight.py's check_tracking_access, docs/tracking-server.md).

Real parts only: a throwaway PostgreSQL cluster (initdb in a temp dir, `postgres` on
127.0.0.1 and a free port, as the `postgres` system user when the tests run as root,
since PostgreSQL refuses root), the tracking and auth databases in it, `mlflow server
--app-name basic-auth` on them, a user created by the admin through the REST API, and
a 2-trial sweep of spaces/tagger.cfg (sweep_fixtures.FAST) on the session's Ray
cluster, which was started without any MLflow credentials: only the driver needs them.
Every process started here is stopped in its fixture's teardown; every wait is bounded.
"""

import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
import requests
from procs import stop_process_group
from search_testing import REPO
from sweep_fixtures import ARCHSWEEP, FAST, MLFLOW, cli_overrides, free_port, subprocess_env, wait_for_mlflow

from search.sweep.preflight import TrackingAccessError, check_tracking_access, unauthenticated_tracking_warning

ADMIN, ADMIN_PASSWORD = "admin", "admin-password-for-tests"  # MLflow asks for 12 characters at least
USER, USER_PASSWORD = "sweeper", "sweeper-password-for-tests"
CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
DB_USER = "archsweep"


def postgres_bin() -> Optional[Path]:
    """The newest installed PostgreSQL's server binaries (Debian keeps them out of PATH)."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if (p.parent / "postgres").exists()]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0) if found else None


def as_postgres_user() -> List[str]:
    """The prefix that runs a PostgreSQL binary as the `postgres` system user when we are root."""
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] if os.geteuid() == 0 else []


def without_credentials(env: Dict[str, str]) -> Dict[str, str]:
    return {k: v for k, v in env.items() if k not in CREDENTIAL_VARS}


@dataclass
class Postgres:
    port: int
    directory: Path

    def uri(self, database: str) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of its own (trust authentication on 127.0.0.1 only) with
    the databases `mlflow` (runs) and `mlflow_auth` (users and permissions)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin; Debian: apt-get install postgresql)")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no `postgres` system user to run PostgreSQL as (it refuses root)")
    directory = Path(tempfile.mkdtemp(prefix="aspg", dir="/tmp"))  # a short path: the unix socket lives here
    if os.geteuid() == 0:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    proc: Optional[subprocess.Popen] = None
    try:
        initdb = subprocess.run(
            [*as_postgres_user(), str(bin_dir / "initdb"), "-D", str(directory / "data"), "-U", DB_USER,
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            capture_output=True, text=True, timeout=120,
        )
        assert initdb.returncode == 0, f"initdb failed:\n{initdb.stdout[-2000:]}\n{initdb.stderr[-2000:]}"
        port = free_port()
        log = open(directory / "postgres.log", "wb")
        proc = subprocess.Popen(
            [*as_postgres_user(), str(bin_dir / "postgres"), "-D", str(directory / "data"), "-h", "127.0.0.1",
             "-p", str(port), "-k", str(directory), "-c", "fsync=off", "-c", "max_connections=40"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        server = Postgres(port, directory)
        _create_databases(server, proc, ["mlflow", "mlflow_auth"])
        yield server
    finally:
        if proc is not None:
            _stop_postgres(proc)
        shutil.rmtree(directory, ignore_errors=True)


def _create_databases(server: Postgres, proc: subprocess.Popen, names: List[str], wait_s: float = 60) -> None:
    import psycopg

    deadline = time.monotonic() + wait_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"postgres exited (rc {proc.returncode}):\n{(server.directory / 'postgres.log').read_text()[-3000:]}")
        try:
            with psycopg.connect(host="127.0.0.1", port=server.port, user=DB_USER, dbname="postgres",
                                 autocommit=True, connect_timeout=2) as conn:
                for name in names:
                    conn.execute(f'CREATE DATABASE "{name}"')
            return
        except psycopg.OperationalError:  # not accepting connections yet
            if time.monotonic() > deadline:
                pytest.fail(f"postgres did not accept connections within {wait_s:.0f} s:\n"
                            f"{(server.directory / 'postgres.log').read_text()[-3000:]}")
            time.sleep(0.3)


def _stop_postgres(proc: subprocess.Popen) -> None:
    """SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for every client to leave);
    its process group is killed if it is not gone in 15 s."""
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    stop_process_group(proc, grace=5)


@dataclass
class AuthServer:
    uri: str
    root: Path

    def admin_post(self, endpoint: str, body: Dict[str, str]) -> requests.Response:
        return requests.post(f"{self.uri}{endpoint}", json=body, auth=(ADMIN, ADMIN_PASSWORD), timeout=30)


@pytest.fixture(scope="module")
def auth_server(postgres, tmp_path_factory) -> Iterator[AuthServer]:
    """`mlflow server --app-name basic-auth` on the PostgreSQL databases, with proxied
    artifacts, and the user USER created by the admin."""
    root = tmp_path_factory.mktemp("auth-server")
    config = root / "basic_auth.ini"
    # auth_cache_ttl_seconds: each request's password check (PBKDF2) is cached for a while,
    # else it costs more than the request on a busy 2-core machine
    config.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {postgres.uri('mlflow_auth')}\n"
                      f"admin_username = {ADMIN}\nauth_cache_ttl_seconds = 300\n")
    port = free_port()
    log = root / "server.log"
    env = without_credentials(subprocess_env(
        MLFLOW_AUTH_CONFIG_PATH=str(config), MLFLOW_AUTH_ADMIN_PASSWORD=ADMIN_PASSWORD,
        MLFLOW_FLASK_SERVER_SECRET_KEY="a-static-key-for-the-test-server", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    ))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(MLFLOW), "server", "--app-name", "basic-auth", "--backend-store-uri", postgres.uri("mlflow"),
             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
    server = AuthServer(f"http://127.0.0.1:{port}", root)
    try:
        wait_for_mlflow(server.uri, proc, log)
        created = server.admin_post("/api/2.0/mlflow/users/create", {"username": USER, "password": USER_PASSWORD})
        assert created.status_code == 200, created.text
        yield server
    finally:
        stop_process_group(proc)


def _sweep(workdir: Path, tracking_uri: str, env: Dict[str, str], address: str, timeout: float) -> subprocess.CompletedProcess:
    """`archsweep sweep spaces/tagger.cfg` with 2 quick trials in `workdir`, bounded by `timeout`."""
    for name in ("data", "spaces"):
        (workdir / name).symlink_to(REPO / name)
    # the space's relative paths, and one epoch: what is tested is the tracking, not the training
    overrides = {**{k: v for k, v in FAST.items() if not k.startswith("paths.")}, "training.max_epochs": 1}
    args = [str(ARCHSWEEP), "sweep", "spaces/tagger.cfg", "--num-samples", "2", "--address", address, "--scheduler", "none",
            "--search", "random", "--seed", "3", "--tracking-uri", tracking_uri, "--experiment", "authenticated",
            *cli_overrides(overrides)]
    proc = subprocess.Popen(args, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"archsweep sweep did not end within {timeout:.0f} s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_a_sweep_with_credentials_records_its_runs_in_postgres(auth_server, ray_cluster, tmp_path, monkeypatch):
    env = {**without_credentials(subprocess_env()), "MLFLOW_TRACKING_USERNAME": USER, "MLFLOW_TRACKING_PASSWORD": USER_PASSWORD}
    proc = _sweep(tmp_path, auth_server.uri, env, ray_cluster.address, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning:" not in proc.stderr  # a loopback server: nothing to warn about

    from mlflow.tracking import MlflowClient

    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    client = MlflowClient(tracking_uri=auth_server.uri)
    experiment = client.get_experiment_by_name("authenticated")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("archsweep.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("archsweep.kind") == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2
    for child in children:  # the trials ran on Ray workers without credentials; the driver logged them
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.tags["archsweep.status"] == "finished" and child.info.status == "FINISHED"
        assert "best_score" in child.data.metrics
        assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["config.cfg"]


def test_an_unauthenticated_client_is_refused(auth_server):
    answer = requests.get(f"{auth_server.uri}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=30)
    assert answer.status_code == 401
    wrong = requests.get(f"{auth_server.uri}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                         auth=(USER, "not-the-password"), timeout=30)
    assert wrong.status_code == 401
    right = requests.get(f"{auth_server.uri}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                         auth=(USER, USER_PASSWORD), timeout=30)
    assert right.status_code == 200


def test_a_sweep_without_credentials_stops_with_one_line_and_writes_nothing(auth_server, ray_cluster, tmp_path):
    proc = _sweep(tmp_path, auth_server.uri, without_credentials(subprocess_env()), ray_cluster.address, timeout=120)
    assert proc.returncode == 1, proc.stderr[-3000:]
    expected = (f"error: the tracking server at {auth_server.uri} refused a request without credentials "
                f"(401: check MLFLOW_TRACKING_USERNAME/PASSWORD)")
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [expected], proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "spaces"]  # no runs/, no mlflow.db


def test_wrong_credentials_and_a_read_only_experiment_are_refused_before_anything_is_written(auth_server, monkeypatch):
    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    with pytest.raises(TrackingAccessError, match=r"refused user 'sweeper' \(401: check MLFLOW_TRACKING_USERNAME/PASSWORD\)"):
        check_tracking_access(auth_server.uri, "anything")

    # the admin's experiment: USER may read it (default_permission = READ) but not write to it
    created = auth_server.admin_post("/api/2.0/mlflow/experiments/create", {"name": "admins-only"})
    assert created.status_code == 200, created.text
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", USER_PASSWORD)
    with pytest.raises(TrackingAccessError, match=r"refuses user 'sweeper' writing to experiment 'admins-only': their permission on it is READ \(403"):
        check_tracking_access(auth_server.uri, "admins-only")
    check_tracking_access(auth_server.uri, "not-created-yet")  # the sweep would create it, and own it

    granted = auth_server.admin_post(  # what AuthServiceClient.grant_user_permission sends
        "/api/3.0/mlflow/users/permissions/grant",
        {"username": USER, "resource_type": "experiment", "resource_id": created.json()["experiment_id"], "permission": "EDIT"},
    )
    assert granted.status_code == 200, granted.text
    check_tracking_access(auth_server.uri, "admins-only")


@pytest.mark.parametrize("uri, has_credentials, warned", [
    ("http://10.1.2.3:5000", False, True),
    ("http://mlflow.internal:5000", False, True),
    ("http://10.1.2.3:5000", True, False),
    ("https://mlflow.example.org", False, False),
    ("http://127.0.0.1:5000", False, False),
    ("http://127.8.9.10:5000", False, False),
    ("http://localhost:5000", False, False),
    ("http://[::1]:5000", False, False),
    ("sqlite:///mlflow.db", False, False),
    ("postgresql://mlflow@db.internal/mlflow", False, False),
])
def test_plain_http_to_another_machine_without_credentials_is_warned_about(uri, has_credentials, warned):
    warning = unauthenticated_tracking_warning(uri, has_credentials)
    assert (warning is not None) == warned
    if warned:
        assert uri in warning and "MLFLOW_TRACKING_USERNAME" in warning


def test_the_warning_is_one_line_and_the_sweep_goes_on(monkeypatch, caplog):
    """A non-loopback address of this machine where nothing listens: one warning, and
    no error (a server that is away is the tracking queue's to wait for)."""
    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.mlflow/credentials either
    address = _non_loopback_address()
    uri = f"http://{address}:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="search.sweep.preflight"):
        check_tracking_access(uri, "anything")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith(f"warning: the sweep logs to {uri} over plain HTTP without credentials")
    assert "\n" not in lines[0]


def _non_loopback_address() -> str:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = sock.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address
