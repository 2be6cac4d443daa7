"""What `archsweep sweep` prints after its summary (search/sweep/next_steps.py):
the commands with the sweep's own paths and ids, which work as printed. The
session's CLI sweep (default SQLite store in its folder) is read back with a
real MlflowClient; the printed report command is run there."""

import os
import re
import shlex
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient
from sweep_fixtures import BIN
from typer.testing import CliRunner

from search.cli import app
from search.sweep.end import SweepResult
from search.sweep.next_steps import activation_command, next_steps, runs_url


def _steps(stdout: str):
    lines = stdout.splitlines()
    start = lines.index("next steps:")
    return lines[start + 1:]


def test_a_sweep_ends_with_its_next_steps(cli_sweep, tmp_path):
    client = MlflowClient(tracking_uri=cli_sweep.tracking_uri)
    experiment = client.get_experiment_by_name("tagger")
    parent = client.search_runs([experiment.experiment_id], filter_string="tags.`archsweep.kind` = 'sweep'")[0]
    best_path = Path(next(line for line in cli_sweep.stdout.splitlines() if line.startswith("best config: "))[len("best config: "):])
    best_cfg = str(best_path.relative_to(cli_sweep.workdir.resolve()))
    steps = _steps(cli_sweep.stdout)
    commands = [line.strip() for line in steps if not line.strip().startswith("#")]
    comments = [line.strip() for line in steps if line.strip().startswith("#")]

    url = f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    assert f"# the dashboard: start it, then open {url}" in comments
    assert f"mlflow ui --backend-store-uri {cli_sweep.tracking_uri}" in commands
    # paths relative to the sweep's folder, where they are typed
    assert re.fullmatch(r"runs/sweeps/tagger-\d{8}-\d{6}(-\d+)?/best\.cfg", best_cfg), best_cfg
    assert f"archsweep train {best_cfg} --output runs/tagger-best" in commands
    report = f"archsweep report --parent-run {parent.info.run_id} --output tagger-report"
    assert report in commands
    # the activation line, when the test's PATH does not lead to this environment's archsweep
    activate = [c for c in commands if c.startswith("source ")]
    assert activate in ([], [f"source {BIN / 'activate'}"]), activate

    # The report command works as printed, in the sweep's folder.
    previous = Path.cwd()
    os.chdir(cli_sweep.workdir)
    try:
        result = CliRunner().invoke(app, shlex.split(report)[1:], catch_exceptions=False)
    finally:
        os.chdir(previous)
    assert result.exit_code == 0, result.stderr
    assert (cli_sweep.workdir / "tagger-report" / "report.html").is_file()


def _result(**changes) -> SweepResult:
    fields = dict(experiment="tagger", parent_run_id="a" * 32, tracking_uri="http://mlflow.internal:5000", trials=[],
                  best_config_path=Path.cwd() / "runs" / "sweeps" / "tagger-1" / "best.cfg", storage_path="runs/sweeps/tagger-1",
                  report_path=None, tracking_pending=0, experiment_id="7")
    fields.update(changes)
    return SweepResult(**fields)


def test_a_tracking_server_is_opened_where_it_serves():
    steps = next_steps(_result())
    assert "  # the dashboard: open http://mlflow.internal:5000/#/experiments/7/runs?workflowType=machine_learning" in steps
    assert not [line for line in steps if "mlflow ui" in line]
    assert "  archsweep train runs/sweeps/tagger-1/best.cfg --output runs/tagger-best" in steps
    assert (f"  archsweep report --parent-run {'a' * 32} --tracking-uri http://mlflow.internal:5000 --output tagger-report"
            in steps)


def test_with_mlflow_away_the_steps_wait_for_sync():
    """Operations MLflow has not received: the sweep's lines above say `archsweep sync`, which comes first."""
    assert next_steps(_result(experiment_id=None, best_config_path=None, tracking_pending=3)) == []
    assert next_steps(_result(best_config_path=None, tracking_pending=1)) == []
    steps = next_steps(_result(best_config_path="s3://bucket/sweeps/tagger-1/best.cfg"), activate="source .venv/bin/activate")
    assert steps[2:4] == ["  # archsweep and mlflow are installed in the virtual environment: activate it first",
                          "  source .venv/bin/activate"]
    assert f"  archsweep export --parent-run {'a' * 32} --tracking-uri http://mlflow.internal:5000 --output best.cfg" in steps


def test_runs_url():
    assert runs_url("http://127.0.0.1:5000/", "12") == "http://127.0.0.1:5000/#/experiments/12/runs?workflowType=machine_learning"


def test_activation_is_asked_for_when_the_environment_is_not_on_path(monkeypatch, tmp_path):
    assert sys.prefix != sys.base_prefix, "the tests run in the project's virtual environment"
    monkeypatch.chdir(tmp_path)  # elsewhere than the checkout: the venv's path is shown absolute
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert activation_command() == f"source {Path(sys.executable).parent / 'activate'}"
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    assert activation_command() is None
