"""What a sweep gives its sampler before the first proposal: the space's defaults as
the first trial (so a sweep is never worse than the config it started from), and the
finished trials of an earlier sweep (`--warm-start EXPERIMENT`) as trials Optuna has
already seen.

Values are the sampler's raw values, as `Space.sample` asks for them: an ordinal is
its index, an options dimension the option's name.
"""

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from ..space import DefaultSuggester, Distribution, Ordinal, Primitive, Space, on_grid, show_value
from ..tracking.history import PastTrial

# In a trial's Ray Tune config (and so its sampled values): true for the defaults trial.
DEFAULTS_KEY = "archsweep.defaults"
# The MLflow tag on the defaults trial's child run.
DEFAULTS_TAG = "archsweep.defaults"
# In an enqueued trial's Ray Tune config, and as the tag on its child run: the value it tries,
# "DIMENSION = VALUE".
ENQUEUED_KEY = "archsweep.enqueued"
ENQUEUED_TAG = "archsweep.enqueued"


class _Recorder:
    """Wraps a suggester and records what it returns, by dimension name."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.values: Dict[str, Any] = {}

    def suggest_float(self, name: str, low: float, high: float, **kwargs: Any) -> float:
        self.values[name] = self.inner.suggest_float(name, low, high, **kwargs)
        return self.values[name]

    def suggest_int(self, name: str, low: int, high: int, **kwargs: Any) -> int:
        self.values[name] = self.inner.suggest_int(name, low, high, **kwargs)
        return self.values[name]

    def suggest_categorical(self, name: str, choices: Sequence[Primitive]) -> Primitive:
        self.values[name] = self.inner.suggest_categorical(name, choices)
        return self.values[name]


def default_point(space: Space, picks: Dict[str, Any] = {}) -> Dict[str, Any]:
    """The sampler's raw values of the space's defaults (the point Optuna enqueues
    first), or of the defaults with `picks` (dimension -> value) instead."""
    recorder = _Recorder(DefaultSuggester(space, picks))
    space.sample(recorder)
    return recorder.values


def start_points(space: Space) -> List[Dict[str, Any]]:
    """The points Optuna is given before it proposes: the defaults, then each of
    the space's enqueued values (`Space.enqueued`), in that order."""
    return [default_point(space)] + [default_point(space, picks) for picks in space.enqueued()]


@dataclass
class WarmStart:
    """Trials for Optuna (values within this space), and the values left out."""

    trials: List[optuna.trial.FrozenTrial] = field(default_factory=list)
    dropped: Dict[str, int] = field(default_factory=dict)  # dimension -> values outside its range here
    skipped: int = 0  # past trials with no value in this space at all

    def warning(self, experiment: str) -> Optional[str]:
        """One line about what was left out, or None."""
        parts = [f"values outside this space's ranges dropped: {', '.join(f'{name} ({n})' for name, n in sorted(self.dropped.items()))}"] \
            if self.dropped else []
        if self.skipped:
            parts.append(f"{self.skipped} trials with no value in this space left out")
        return f"warning: --warm-start {experiment}: {'; '.join(parts)}" if parts else None


class _Replay:
    """A suggester that gives each dimension the past trial's value when this space
    can take it (recording the raw value and its Optuna distribution), else the
    dimension's default (so conditional dimensions below it are still reached),
    counting the value as dropped."""

    def __init__(self, space: Space, params: Dict[str, str], dropped: Dict[str, int]) -> None:
        self.dims: Dict[str, Distribution] = {d.name: d.distribution for d in space.dimensions}
        self.params = params
        self.dropped = dropped
        self.values: Dict[str, Any] = {}
        self.distributions: Dict[str, BaseDistribution] = {}

    def _take(self, name: str, value: Any, distribution: BaseDistribution) -> Any:
        self.values[name] = value
        self.distributions[name] = distribution
        return value

    def _drop(self, name: str, default: Any) -> Any:
        if name in self.params:
            self.dropped[name] = self.dropped.get(name, 0) + 1
        return default

    def suggest_float(self, name: str, low: float, high: float, *, step: Optional[float] = None, log: bool = False) -> float:
        dist = self.dims[name]
        value = _number(self.params.get(name))
        if value is None or not low <= value <= high or (step and not on_grid(value, low, step)):
            return self._drop(name, dist.default)
        return self._take(name, value, FloatDistribution(low, high, log=log, step=step))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        dist = self.dims[name]
        if isinstance(dist, Ordinal):  # asked as an index into its values
            shown = [show_value(v) for v in dist.values]
            given = self.params.get(name)
            if given not in shown:
                return self._drop(name, dist.values.index(dist.default))
            return self._take(name, shown.index(given), IntDistribution(low, high))
        value = _number(self.params.get(name))
        if value is None or value != int(value) or not low <= value <= high or (value - low) % step:
            return self._drop(name, dist.default)
        return self._take(name, int(value), IntDistribution(low, high, log=log, step=step))

    def suggest_categorical(self, name: str, choices: Sequence[Primitive]) -> Primitive:
        dist = self.dims[name]
        shown = [show_value(v) for v in choices]
        given = self.params.get(name)
        if given not in shown:
            return self._drop(name, dist.default)
        return self._take(name, choices[shown.index(given)], CategoricalDistribution(list(choices)))


def _number(text: Optional[str]) -> Optional[float]:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def warm_start(space: Space, past: Sequence[PastTrial]) -> WarmStart:
    """The past trials as finished Optuna trials of this space: each keeps the
    values this space can take (the others are counted as dropped); a trial left
    with no value at all is skipped."""
    out = WarmStart()
    for trial in past:
        replay = _Replay(space, trial.params, out.dropped)
        space.sample(replay)
        if not replay.values:
            out.skipped += 1
            continue
        out.trials.append(optuna.trial.create_trial(
            params=replay.values, distributions=replay.distributions, value=trial.score,
            user_attrs={"archsweep.warm_start_run": trial.run_id},
        ))
    return out


def is_defaults_trial(trial: Any, defaults_first: bool) -> bool:
    """The enqueued defaults are the study's first trial (number 0): enqueued
    when the searcher is built, before any past trial is added."""
    return defaults_first and trial.number == 0


def enqueued_label(trial: Any, defaults_first: bool, labels: Sequence[str]) -> Optional[str]:
    """What the trial tries when it is one of the space's enqueued trials (numbers
    1 to len(labels), enqueued right after the defaults), else None."""
    return labels[trial.number - 1] if defaults_first and 1 <= trial.number <= len(labels) else None

