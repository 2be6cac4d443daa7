"""Read-only access to earlier sweeps' trials: what `archsweep sweep --warm-start`
gives the sampler before the first proposal."""

from dataclasses import dataclass
from typing import Dict, List

from mlflow.tracking import MlflowClient

from .mlflow import PARENT_TAG, STATUS_TAG, find_sweep

# a trial's param that is not a searched value
SEED_PARAM = "training.seed"


@dataclass
class PastTrial:
    """A finished trial of an earlier sweep: its searched values as MLflow params
    (strings, as the config shows them) and its best score."""

    run_id: str
    params: Dict[str, str]
    score: float


def finished_trials(tracking_uri: str, experiment: str, metric: str = "best_score") -> List[PastTrial]:
    """The finished trials (with `metric`) of the experiment's latest sweep, oldest first."""
    client = MlflowClient(tracking_uri=tracking_uri)
    parent = find_sweep(client, experiment=experiment)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}' and tags.`{STATUS_TAG}` = 'finished'",
        order_by=["attributes.start_time ASC"],
        max_results=10000,
    )
    return [
        PastTrial(run.info.run_id, {k: v for k, v in run.data.params.items() if k != SEED_PARAM}, run.data.metrics[metric])
        for run in children
        if metric in run.data.metrics
    ]
