"""`--storage s3://...`: a sweep kept in object storage, end to end, against a real
S3-compatible HTTP server on 127.0.0.1 (moto's `moto_server`, the `test` extra):
Ray Tune's experiment state, the driver's state file, best.cfg and the report's copy
land in the bucket; a driver killed mid-sweep is resumed from the bucket.
The endpoint reaches pyarrow (the driver's files and Ray Tune's) through
AWS_ENDPOINT_URL_S3, as it would for any S3-compatible store."""

import json
import subprocess
import time
import urllib.request
from typing import Dict

import pytest
from procs import stop_process_group
from search_testing import REPO
from sweep_fixtures import ARCHSWEEP, BIN, FAST, cli_overrides, free_port, kill_driver_when, subprocess_env

from search import storage
from search.tracking.mlflow import STATE_FILE

WAIT_S = 300
BUCKET = "sweeps"
STORAGE = f"s3://{BUCKET}/team/archsweep"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """moto_server on 127.0.0.1: an S3 API over HTTP, in memory, stopped at the end."""
    root = tmp_path_factory.mktemp("s3")
    port = free_port()
    log = root / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(endpoint, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer within 60 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield endpoint
    finally:
        stop_process_group(proc)


@pytest.fixture()
def s3(s3_endpoint, monkeypatch):
    """The endpoint and test credentials in the environment (the driver's and the
    CLI's), and an empty bucket."""
    import pyarrow.fs as pafs

    for key, value in {
        "AWS_ENDPOINT_URL_S3": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    host = s3_endpoint.removeprefix("http://")
    pafs.S3FileSystem(endpoint_override=host, scheme="http", allow_bucket_creation=True).create_dir(BUCKET)
    return s3_endpoint


def _snapshot(sweep: str) -> Dict[str, str]:
    """Trial id -> status in Tune's latest experiment snapshot in the bucket."""
    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(sweep)
    infos = [i for i in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
             if i.base_name.startswith("experiment_state-") and i.base_name.endswith(".json")]
    if not infos:
        return {}
    latest = max(infos, key=lambda i: i.mtime)
    try:
        state = json.loads(storage.read_text(f"s3://{latest.path}"))
    except (OSError, json.JSONDecodeError):
        return {}
    return {json.loads(trial)["trial_id"]: json.loads(trial)["status"] for trial, _ in state["trial_data"]}


def test_a_sweep_in_object_storage_is_killed_resumed_and_ends_there(s3, ray_cluster, mlflow_server, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for name in ("data", "spaces"):
        (work / name).symlink_to(REPO / name)
    overrides = {**FAST, "training.max_epochs": 0, "training.max_seconds": 3}  # 3-s trials, run to their end
    args = ["sweep", "spaces/tagger.cfg", "--num-samples", "3", "--max-concurrent", "1", "--address", ray_cluster.address,
            "--tracking-uri", mlflow_server.uri, "--experiment", "in-s3", "--storage", STORAGE, "--seed", "3",
            "--scheduler", "none", *cli_overrides(overrides)]
    def ended_and_running():  # the bucket's snapshot has a trial that ended and one that runs
        sweeps = storage.folders(STORAGE)
        snapshot = _snapshot(sweeps[0]) if sweeps else {}
        return "TERMINATED" in snapshot.values() and "RUNNING" in snapshot.values()

    kill_driver_when(args, work, tmp_path / "first.log", ended_and_running, wait_s=WAIT_S, poll_s=0.5)
    ray_cluster.wait_for_trials_to_end()
    (sweep,) = storage.folders(STORAGE)
    ended = {t for t, status in _snapshot(sweep).items() if status == "TERMINATED"}
    state = json.loads(storage.read_text(storage.join(sweep, STATE_FILE)))
    assert state["experiment"] == "in-s3" and state["finished"] is False

    client = mlflow_server.client()
    experiment_id = client.get_experiment_by_name("in-s3").experiment_id
    runs_before = {c.data.tags["archsweep.trial_id"]: c.info.run_id
                   for c in client.search_runs([experiment_id], filter_string="tags.`archsweep.kind` = 'trial'")}

    resumed = subprocess.run([str(ARCHSWEEP), *args, "--resume"], cwd=work, env=subprocess_env(), capture_output=True,
                             text=True, timeout=WAIT_S)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    best = resumed.stdout.split("best config: ", 1)[1].splitlines()[0]
    assert best == storage.join(sweep, "best.cfg") and best.startswith(f"{STORAGE}/in-s3-")
    assert storage.read_text(best).startswith("# Exported by archsweep from sweep in-s3-")
    assert storage.exists(storage.join(sweep, "report", "report.html"))
    state = json.loads(storage.read_text(storage.join(sweep, STATE_FILE)))
    assert state["finished"] is True and state["tracking_pending"] is False
    assert not (work / "runs").exists()  # nothing went to the default local storage
    synced = subprocess.run([str(ARCHSWEEP), "sync", sweep], cwd=work, env=subprocess_env(), capture_output=True,
                            text=True, timeout=WAIT_S)
    assert synced.returncode == 0 and "nothing to sync" in synced.stdout, synced.stderr[-3000:]

    (parent,) = client.search_runs([experiment_id], filter_string="tags.`archsweep.kind` = 'sweep'")
    assert parent.info.status == "FINISHED" and parent.data.tags["archsweep.storage"] == sweep
    children = client.search_runs([experiment_id], filter_string="tags.`archsweep.kind` = 'trial'")
    by_trial = {c.data.tags["archsweep.trial_id"]: c for c in children}
    assert len(children) == len(by_trial) == 3
    assert {c.info.status for c in children} == {"FINISHED"}
    for trial_id in ended:  # finished before the kill: kept, not run again into a new run
        assert by_trial[trial_id].info.run_id == runs_before[trial_id]


def test_locations_keep_a_uris_query_and_local_paths_stay_paths(tmp_path):
    uri = "s3://bucket/pre?endpoint_override=127.0.0.1:9000&scheme=http"
    assert storage.join(uri, "sweep-1", "best.cfg") == "s3://bucket/pre/sweep-1/best.cfg?endpoint_override=127.0.0.1:9000&scheme=http"
    assert storage.name(storage.join(uri, "sweep-1")) == "sweep-1"
    assert storage.parent(storage.join(uri, "sweep-1", "x.jsonl")) == storage.join(uri, "sweep-1")
    assert storage.is_uri("file:///tmp/x") and storage.is_uri("gs://b") and not storage.is_uri("runs/sweeps")
    assert storage.as_result(str(tmp_path)) == tmp_path and storage.as_result(uri) == uri

    # a local folder and the same as a file:// URI, through pyarrow.fs
    for root in (str(tmp_path / "local"), (tmp_path / "as-uri").as_uri()):
        state = storage.join(root, "sweep-1", STATE_FILE)
        assert not storage.exists(state) and storage.folders(root) == []
        storage.make_dirs(storage.join(root, "sweep-1"))
        storage.write_text(state, '{"finished": false}')
        assert json.loads(storage.read_text(state)) == {"finished": False}
        assert storage.folders(root) == [storage.join(root, "sweep-1")]
        with storage.local_dir(storage.join(root, "sweep-1", "report")) as report:
            (report / "report.html").write_text("<html/>")
        assert storage.read_text(storage.join(root, "sweep-1", "report", "report.html")) == "<html/>"
        storage.delete(state)
        assert not storage.exists(state)
    with pytest.raises(FileNotFoundError):
        storage.read_text((tmp_path / "nothing").as_uri())
