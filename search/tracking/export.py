"""Export of a sweep's best trial as a plain training config."""

from pathlib import Path
from typing import Optional, Union

from confection import Config

from .. import storage
from .mlflow import PARENT_TAG, STATUS_TAG, TRIAL_TAG, SweepTracking, find_sweep
from .spacy_export import SpacyExportOptions, to_spacy_config


def export_best(
    tracking_uri: str,
    *,
    experiment: Optional[str] = None,
    parent_run_id: Optional[str] = None,
    metric: str = "best_score",
    output: Union[str, Path] = "best.cfg",
    spacy: Optional[SpacyExportOptions] = None,
) -> Union[Path, str]:
    """Write the filled config of the best finished trial (by `metric`, higher is
    better) of a sweep: the given parent run, or the experiment's latest sweep.
    output: a local path (returned as a Path) or an object-storage URI.
    spacy: write it as a spaCy training config instead (search.tracking.spacy_export;
    raises SpacyExportError for a setting spaCy has no counterpart for)."""
    tracking = SweepTracking(tracking_uri, experiment or "")
    client = tracking.client
    parent = find_sweep(client, experiment=experiment, parent_run_id=parent_run_id)
    parent_run_id = parent.info.run_id
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{STATUS_TAG}` = 'finished'",
        max_results=10000,
    )
    scored = [r for r in children if metric in r.data.metrics]
    if not scored:
        raise ValueError(f"sweep {parent_run_id} has no finished trial with metric {metric!r}")
    best = max(scored, key=lambda r: r.data.metrics[metric])
    config_text = client.download_artifacts(best.info.run_id, "config.cfg")
    config = Config().from_disk(config_text, interpolate=False)
    header = (
        f"# Exported by archsweep from sweep {parent.info.run_name} (MLflow run {parent_run_id}),\n"
        f"# trial {best.data.tags.get(TRIAL_TAG, '')} (run {best.info.run_id}): {metric} = {best.data.metrics[metric]:.6f}.\n"
        f"# Tracking URI: {tracking_uri}\n"
    )
    text = to_spacy_config(config, spacy).to_str(header) if spacy else header + config.to_str() + "\n"
    storage.write_text(output, text)
    return storage.as_result(storage.absolute(output)) if storage.is_uri(output) else Path(output)
