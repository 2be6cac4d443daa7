"""What to do after a sweep: the commands printed under its summary, with the
sweep's own paths and ids (the dashboard, training the best config, the report)."""

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import List, Optional

from ..tracking.mlflow import default_tracking_uri, is_local_store
from .end import SweepResult

DASHBOARD = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def runs_url(base_url: str, experiment_id: str) -> str:
    """The MLflow UI's table of an experiment's runs. MLflow 3's UI opens every
    experiment on its GenAI overview (traces), whatever the experiment's tags say:
    workflowType=machine_learning switches it to the runs."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def activation_command() -> Optional[str]:
    """`source .../activate` when this command runs from a virtual environment
    whose bin/ is not on PATH (the Makefile runs .venv/bin/archsweep): without
    it the printed `archsweep` and `mlflow` commands are not found."""
    if sys.prefix == sys.base_prefix:
        return None
    bin_dir = Path(sys.executable).parent
    found = shutil.which("archsweep")
    if found is not None and Path(found).parent.resolve() == bin_dir.resolve():
        return None
    return f"source {shlex.quote(_shown(bin_dir / 'activate'))}"


def next_steps(result: SweepResult, activate: Optional[str] = None) -> List[str]:
    """The lines printed after the sweep's summary: each step a comment, then its
    command; none while MLflow has not got the whole sweep (`archsweep sync`, printed above, comes first)."""
    if result.tracking_pending:
        return []
    lines: List[str] = []
    if result.experiment_id is not None:
        if is_local_store(result.tracking_uri):
            lines += [
                f"  # the dashboard: start it, then open {runs_url(DASHBOARD, result.experiment_id)}",
                f"  mlflow ui --backend-store-uri {shlex.quote(result.tracking_uri)}",
            ]
        else:
            lines.append(f"  # the dashboard: open {runs_url(result.tracking_uri, result.experiment_id)}")
    tracking = [] if result.tracking_uri == default_tracking_uri() else ["--tracking-uri", result.tracking_uri]
    if isinstance(result.best_config_path, Path):
        lines += [
            "  # train the best trial's config (its data paths are absolute: from any folder)",
            "  " + shlex.join(["archsweep", "train", _shown(result.best_config_path), "--output", f"runs/{result.experiment}-best"]),
        ]
    elif result.best_config_path is not None:  # in object storage: export it here
        lines += [
            "  # the best trial's config, here, to train it",
            "  " + shlex.join(["archsweep", "export", "--parent-run", result.parent_run_id, *tracking, "--output", "best.cfg"]),
        ]
    lines += [
        "  # the report again (report.html, plots, trials.csv), from MLflow alone",
        "  " + shlex.join(["archsweep", "report", "--parent-run", result.parent_run_id, *tracking, "--output", f"{result.experiment}-report"]),
    ]
    if activate:
        lines = ["  # archsweep and mlflow are installed in the virtual environment: activate it first", f"  {activate}", *lines]
    return ["", "next steps:", *lines]


def _shown(path: Path) -> str:
    """A path as the user would type it here: relative when it is under the working directory."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)
