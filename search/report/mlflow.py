"""Reads a sweep from MLflow into search.report's plain table, and logs the
report to the sweep's parent run. The only part of the review that knows MLflow."""

import logging
import tempfile
from pathlib import Path
from typing import List, Optional

from mlflow.tracking import MlflowClient

from ..tracking.mlflow import PARENT_TAG, STATUS_TAG, TRIAL_TAG, find_sweep
from .build import Report, SweepRecord, TrialRecord, build_report, words_per_second

logger = logging.getLogger(__name__)

REPORT_DIR = "report"  # artifact folder of the parent run
SCORE = "score"
SPEED = "words_per_second"
SIZE = "model_params"


def load_sweep(client: MlflowClient, parent) -> SweepRecord:
    """The parent run's trials (its child runs), in the order they started,
    with their score history, speed and size."""
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'", max_results=10000,
    )
    children.sort(key=lambda r: (r.info.start_time, r.data.tags.get(TRIAL_TAG, "")))
    trials: List[TrialRecord] = []
    for run in children:
        params = dict(run.data.params)
        seed = params.pop("training.seed", None)
        scores = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, SCORE))
        speeds = [m.value for m in client.get_metric_history(run.info.run_id, SPEED)] if SPEED in run.data.metrics else []
        size = run.data.metrics.get(SIZE)
        trials.append(
            TrialRecord(
                run_id=run.info.run_id,
                trial_id=run.data.tags.get(TRIAL_TAG, run.info.run_name),
                status=run.data.tags.get(STATUS_TAG, "running"),
                params=params,
                scores=scores,
                best_score=run.data.metrics.get("best_score"),
                words_per_second=words_per_second(speeds),
                model_params=int(size) if size is not None else None,
                seed=int(seed) if seed is not None else None,
            )
        )
    with tempfile.TemporaryDirectory(prefix="archsweep-space-") as tmp:
        space_text = Path(client.download_artifacts(parent.info.run_id, "space.cfg", tmp)).read_text(encoding="utf8")
    experiment = client.get_experiment(parent.info.experiment_id).name
    return SweepRecord(parent.info.run_name, parent.info.run_id, experiment, space_text, trials)


def write_report(
    tracking_uri: str, output: Path, *, experiment: Optional[str] = None, parent_run_id: Optional[str] = None
) -> Report:
    """`archsweep report`: the report of any past sweep, from MLflow alone."""
    client = MlflowClient(tracking_uri=tracking_uri)
    parent = find_sweep(client, experiment=experiment, parent_run_id=parent_run_id)
    return build_report(load_sweep(client, parent), Path(output))


def log_report(client: MlflowClient, parent_run_id: str, directory: Path) -> Optional[Report]:
    """The sweep's end: build the report from what MLflow holds into `directory`
    and log it to the parent run under report/. A failure is a warning (the
    sweep's results are already in MLflow), never the sweep's error."""
    try:
        report = build_report(load_sweep(client, client.get_run(parent_run_id)), Path(directory))
        client.log_artifacts(parent_run_id, str(report.directory), REPORT_DIR)
        return report
    except Exception as err:
        logger.warning("the sweep's report could not be built or logged (`archsweep report` can retry): %r", err, exc_info=True)
        return None
