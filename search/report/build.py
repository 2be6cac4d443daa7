"""Reviewing a sweep: parameter importance, plots, a trial table and one HTML
report, built from a plain table of trials (`SweepRecord`).

This module knows nothing of MLflow: search/report/mlflow.py reads the table
from a tracking server. The sweep's end and `archsweep report` both call
`build_report` on that table, so they write the same files.

Every plot is written twice: a PNG (matplotlib, Agg; no browser needed) and an
interactive plotly figure in report.html (plotly.js inlined once, so the report
opens offline).
"""

import csv
import html
import json
import math
import random
import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")  # files only, never a window (set before pyplot is imported)
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
from confection import Config  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from plotly.offline import get_plotlyjs  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402

from ..space import Categorical, Distribution, IntUniform, Options, Ordinal, Space, Uniform, show_value  # noqa: E402

PLOTS = ("importance", "history", "parallel_coordinates", "learning_curves", "tradeoff")
STATUS_COLORS = {"finished": "#1f77b4", "pruned": "#ff7f0e", "failed": "#d62728", "running": "#7f7f7f"}
MISSING = "n/a"  # a conditional dimension the trial's option did not have
TRIAL_COLUMNS = ("trial", "status", "best_score", "evaluations", "last_step", "words_per_second", "model_params", "seed", "pareto_front")
# Parameter importance: PED-ANOVA compares the values of the best trials with all
# of them, and Optuna advises at least 5 trials in that top group. Below this many
# finished trials, which few trials happen to be on top decides the ranking.
MIN_TRIALS_FOR_IMPORTANCE = 20
TOP_TRIALS = 5  # the least number of trials in PED-ANOVA's top group
# The importance's spread: PED-ANOVA over random subsets of the finished trials
# (drawn without replacement: a bootstrap's repeated trials sharpen PED-ANOVA's
# density estimates and shift every share away from the one over all the trials).
SUBSAMPLES = 30
SUBSAMPLE_FRACTION = 0.8
SUBSAMPLE_SEED = 0
SPREAD_PERCENTILES = (10, 90)
# One colour per trial: tab10's ten distinct colours, then the same colours with the
# next marker, so no two lines share both (tab20 pairs a dark and a light shade of a hue).
CURVE_COLORS = tuple(matplotlib.colors.to_hex(plt.get_cmap("tab10")(i)) for i in range(10))
CURVE_MARKERS = (("o", "circle"), ("s", "square"), ("^", "triangle-up"), ("D", "diamond"), ("v", "triangle-down"), ("P", "cross"),
                 ("*", "star"), ("h", "hexagon"))
PARETO_COLOR = "#d62728"


@dataclass
class TrialRecord:
    """One trial as the report needs it. `params` are the searched values as
    logged (MLflow params are strings, e.g. "64", "true", "null")."""

    run_id: str
    trial_id: str
    status: str  # finished / pruned / failed / running
    params: Dict[str, str]
    scores: List[Tuple[int, float]]  # (training step, score) per evaluation
    best_score: Optional[float] = None
    words_per_second: Optional[float] = None  # median over the trial's evaluations
    model_params: Optional[int] = None
    seed: Optional[int] = None


@dataclass
class SweepRecord:
    name: str  # the parent run's name
    parent_run_id: str
    experiment: str
    space_text: str  # the space as the sweep ran it (with its overrides)
    trials: List[TrialRecord]  # in the order they started


@dataclass
class Importance:
    values: Dict[str, float]  # dimension -> share of the total, largest first; {} when not computed
    note: str  # why it was not computed, or what it rests on
    # dimension -> (low, high) share: the SPREAD_PERCENTILES over random subsets of the finished trials
    spread: Dict[str, Tuple[float, float]] = field(default_factory=dict)


@dataclass
class Report:
    directory: Path
    html: Path
    table: Path
    importance: Importance
    images: Dict[str, Path] = field(default_factory=dict)


def words_per_second(history: Sequence[float]) -> Optional[float]:
    """A trial's training speed: the median over its evaluation intervals
    (the first interval includes warm-up)."""
    return statistics.median(history) if history else None


def score_metric(space_text: str) -> str:
    """What a trial's score is, named from the sweep's [training.score_weights]:
    the metric itself when one has weight 1 ("pos_acc"), otherwise the weighted
    sum ("0.5 tag_acc + 0.5 pos_acc"). Scores are fractions; the report shows them in %."""
    try:
        weights = Config().from_str(space_text, interpolate=False).get("training", {}).get("score_weights") or {}
        used = {str(k): float(v) for k, v in weights.items() if v is not None and float(v) != 0.0}
    except Exception:  # a space this code can no longer read
        return "score"
    if not used:
        return "score (mean of the dev scores)"
    if len(used) == 1 and next(iter(used.values())) == 1.0:
        return next(iter(used))
    return " + ".join(f"{w:g} {k}" for k, w in used.items())


def score_label(metric: str, best: bool = False) -> str:
    """An axis or column title for scores in %: "pos_acc (%)", "best pos_acc (%)"."""
    return f"{'best ' if best else ''}{metric} (%)"


def short_names(keys: Sequence[str]) -> Dict[str, str]:
    """The shortest dotted suffix of each key that no other key shares."""
    keys = sorted(set(keys))
    short = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
                break
        short[key] = suffix
    return short


def parse_space(space_text: str) -> Optional[Space]:
    try:
        return Space(Config().from_str(space_text, interpolate=False))
    except Exception:  # a space this code can no longer read: plots fall back to the logged values
        return None


# ---------------------------------------------------------------- parameter importance


class _Replay:
    """A suggester that answers with a trial's logged values and records each
    answer as Optuna stores it (an ordinal as its index), with its distribution."""

    def __init__(self, space: Space, logged: Dict[str, str]) -> None:
        self.kinds = {d.name: d.distribution for d in space.dimensions}
        self.logged = logged
        self.params: Dict[str, Any] = {}
        self.distributions: Dict[str, optuna.distributions.BaseDistribution] = {}

    def _logged(self, name: str) -> str:
        if name not in self.logged:
            raise ValueError(f"no logged value for {name}")
        return self.logged[name]

    def _record(self, name: str, distribution, value: Any) -> None:
        self.distributions[name] = distribution
        self.params[name] = value

    def suggest_float(self, name: str, low: float, high: float, *, step: Optional[float] = None, log: bool = False) -> float:
        value = float(self._logged(name))
        self._record(name, optuna.distributions.FloatDistribution(low, high, log=log, step=step), value)
        return value

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        kind = self.kinds[name]
        if isinstance(kind, Ordinal):
            value = [show_value(v) for v in kind.values].index(self._logged(name))
        else:
            value = int(self._logged(name))
        self._record(name, optuna.distributions.IntDistribution(low, high, log=log, step=step), value)
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = list(choices)[[show_value(c) for c in choices].index(self._logged(name))]
        self._record(name, optuna.distributions.CategoricalDistribution(list(choices)), value)
        return value


def _ped_anova(frozen: Sequence[optuna.trial.FrozenTrial], quantile: float) -> Tuple[Dict[str, float], List[str]]:
    """Unnormalised PED-ANOVA importances of a study holding `frozen`, and
    Optuna's warnings (why they may all be 0)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per rebuilt study
    try:
        study = optuna.create_study(direction="maximize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    study.add_trials(frozen)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile), normalize=False
        )
    return dict(raw), [str(w.message) for w in caught]


def param_importances(space: Optional[Space], trials: Sequence[TrialRecord]) -> Importance:
    """Optuna's PED-ANOVA importances over the finished trials (their best
    score), in a study rebuilt from the logged values, with their spread over
    random subsets of those trials. PED-ANOVA is Optuna 5's default
    evaluator: it assesses conditional dimensions too, needs no scikit-learn and
    is deterministic (the resamples are seeded). Pruned trials are left out
    (their scores stopped early); fewer than MIN_TRIALS_FOR_IMPORTANCE finished
    trials give a note instead."""
    finished = [t for t in trials if t.status == "finished" and t.best_score is not None]
    if len(finished) < MIN_TRIALS_FOR_IMPORTANCE:
        return Importance({}, (
            f"not shown: parameter importance needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials, this sweep has {len(finished)}. "
            f"It compares the values of the best trials with all of them; with fewer, which few trials happen to be on top "
            f"decides the ranking."
        ))
    if space is None:
        return Importance({}, "not computed: the sweep's space.cfg could not be read")
    frozen = []
    for trial in finished:
        replay = _Replay(space, trial.params)
        try:
            space.sample(replay)
        except ValueError as err:
            return Importance({}, f"not computed: trial {trial.trial_id} does not fit the space ({err})")
        frozen.append(optuna.trial.create_trial(params=replay.params, distributions=replay.distributions, value=trial.best_score))
    # the top 10 %, or the best TOP_TRIALS when 10 % is fewer
    quantile = max(0.1, TOP_TRIALS / len(finished))
    raw, caught = _ped_anova(frozen, quantile)
    total = sum(raw.values())
    if total <= 0:
        reasons = "; ".join(sorted(set(caught)))
        return Importance({}, f"not computed: PED-ANOVA found no difference between the trials ({len(finished)} finished). {reasons}".strip())
    values = {name: raw[name] / total for name in sorted(raw, key=lambda n: (-raw[n], n))}
    rng = random.Random(SUBSAMPLE_SEED)
    size = round(SUBSAMPLE_FRACTION * len(frozen))
    shares: Dict[str, List[float]] = {name: [] for name in values}
    for _ in range(SUBSAMPLES):
        subset = rng.sample(frozen, size)
        sub, _ = _ped_anova(subset, quantile)
        sub_total = sum(sub.values())
        for name in values:  # a subset with no difference at all: every share 0
            shares[name].append(sub.get(name, 0.0) / sub_total if sub_total > 0 else 0.0)
    low, high = SPREAD_PERCENTILES
    spread = {name: (_percentile(shares[name], low), _percentile(shares[name], high)) for name in values}
    note = (
        f"PED-ANOVA (Optuna) over {len(finished)} finished trials: which values the top {quantile:.0%} of them share. "
        f"Bars: share of the importance; whiskers: {low}th to {high}th percentile over {SUBSAMPLES} random subsets of "
        f"{SUBSAMPLE_FRACTION:.0%} of the finished trials (wide whiskers: the ranking is not settled)."
    )
    return Importance(values, note, spread)


def _percentile(values: Sequence[float], percent: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * percent / 100
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


# ---------------------------------------------------------------- the Pareto front


def pareto_front(trials: Sequence[TrialRecord]) -> List[TrialRecord]:
    """The finished trials that no other finished trial beats on score, training
    speed and model size at once: none is at least as good on all three
    (higher score, more words/s, fewer parameters) and better on one. Trials
    without a score, a speed or a size are left out, and so are pruned trials
    (their scores come from a shortened training). In start order."""
    candidates = [
        t for t in trials
        if t.status == "finished" and t.best_score is not None and t.words_per_second is not None and t.model_params is not None
    ]

    def objectives(t: TrialRecord) -> Tuple[float, float, float]:
        return (_score(t), float(t.words_per_second or 0.0), -float(t.model_params or 0))

    def dominates(a: Tuple[float, ...], b: Tuple[float, ...]) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return [t for t in candidates if not any(dominates(objectives(other), objectives(t)) for other in candidates if other is not t)]


# ---------------------------------------------------------------- the trial table


def _number(text: Optional[str]) -> Optional[float]:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def table_rows(sweep: SweepRecord) -> Tuple[List[str], List[List[str]]]:
    """The summary table: one row per trial, best finished first, then pruned
    (by their best score so far), failed and running. Scores as logged (fractions);
    pareto_front is "yes" for the trials on `pareto_front`."""
    front = {id(t) for t in pareto_front(sweep.trials)}
    dims = sorted({k for t in sweep.trials for k in t.params})
    header = [*TRIAL_COLUMNS, *dims]
    order = {"finished": 0, "pruned": 1, "failed": 2, "running": 3}
    ranked = sorted(
        sweep.trials,
        key=lambda t: (order.get(t.status, 4), -(t.best_score if t.best_score is not None else -math.inf)),
    )
    rows = []
    for t in ranked:
        rows.append([
            t.trial_id, t.status,
            f"{t.best_score:.6f}" if t.best_score is not None else "",
            str(len(t.scores)), str(t.scores[-1][0]) if t.scores else "",
            f"{t.words_per_second:.0f}" if t.words_per_second is not None else "",
            str(t.model_params) if t.model_params is not None else "",
            str(t.seed) if t.seed is not None else "",
            "yes" if id(t) in front else "",
            *[t.params.get(d, MISSING) for d in dims],
        ])
    return header, rows


# ---------------------------------------------------------------- plots


@dataclass
class _Axis:
    name: str  # full dotted name
    label: str
    positions: List[float]  # per trial, on the axis's own scale
    ticks: Optional[Tuple[List[float], List[str]]]  # categorical axes: positions and labels
    bounds: Optional[Tuple[float, float]] = None  # numeric axes: the searched range, on the axis's scale
    # log axes: positions (log10) and the real values they stand for, as labels
    log_ticks: Optional[Tuple[List[float], List[str]]] = None


def log_ticks(low: float, high: float) -> Tuple[List[float], List[str]]:
    """Ticks for a log10 axis from `low` to `high` (log10 values): both ends and
    the powers of ten between them, labelled with the real values ("0.0001")."""
    positions = [low, high]
    positions += [float(p) for p in range(math.ceil(low), math.floor(high) + 1) if min(abs(p - low), abs(p - high)) > 0.2]
    positions.sort()
    return positions, [f"{10 ** p:.6g}" for p in positions]  # 6 digits: 4000, not 4e+03


def _axes(space: Optional[Space], trials: Sequence[TrialRecord]) -> List[_Axis]:
    """One axis per searched dimension: numeric (log10 for log ranges, labelled
    with real values) when every trial has a number for it, otherwise
    categorical in the space's order."""
    kinds: Dict[str, Distribution] = {d.name: d.distribution for d in space.dimensions} if space else {}
    names = sorted({k for t in trials for k in t.params})
    short = short_names(names)
    axes = []
    for name in names:
        kind = kinds.get(name)
        logged = [t.params.get(name) for t in trials]
        numbers = [_number(v) for v in logged]
        present = [n for n in numbers if n is not None]
        numeric = isinstance(kind, (Uniform, IntUniform)) or (kind is None and len(present) == len(numbers))
        if numeric and len(present) == len(numbers):
            log = bool(getattr(kind, "log", False))
            scale = math.log10 if log else float
            positions = [scale(n) for n in present]
            # numeric: a range dimension, or one not in the space (kind None: no bounds)
            bounds = (scale(kind.low), scale(kind.high)) if isinstance(kind, (Uniform, IntUniform)) else None
            if log:
                low, high = bounds or (min(positions), max(positions))
                axes.append(_Axis(name, f"{short[name]} (log scale)", positions, None, bounds, log_ticks(low, high)))
            else:
                axes.append(_Axis(name, short[name], positions, None, bounds))
            continue
        if isinstance(kind, Options):
            categories = list(kind.blocks)
        elif isinstance(kind, Categorical):
            categories = [show_value(v) for v in kind.values]
        else:
            categories = sorted({v for v in logged if v is not None}, key=lambda v: (_number(v) is None, _number(v) or 0, v))
        categories = [c for c in categories if c in logged]
        if None in logged:
            categories = [MISSING, *categories]
        shown = [MISSING if v is None else v for v in logged]
        extra = sorted(set(shown) - set(categories))  # values outside the space as it is read now
        categories += extra
        index = {c: float(i) for i, c in enumerate(categories)}
        axes.append(_Axis(name, short[name], [index[v] for v in shown], ([index[c] for c in categories], categories)))
    return axes


def _score(trial: TrialRecord) -> float:
    """The best score of a trial that has one (callers keep to such trials)."""
    if trial.best_score is None:
        raise ValueError(f"trial {trial.trial_id} has no score")
    return trial.best_score


def _scored(trials: Sequence[TrialRecord]) -> List[TrialRecord]:
    """Trials with a score: finished (best score) and pruned (best before the stop)."""
    return [t for t in trials if t.best_score is not None and t.status in ("finished", "pruned")]


def _title(sweep: SweepRecord, what: str) -> str:
    return f"{sweep.name}: {what}"


def _importance_figures(sweep: SweepRecord, importance: Importance):
    names = list(importance.values)[::-1]
    short = short_names(names) if names else {}
    values = [importance.values[n] for n in names]
    # whiskers from the bar's end to the spread's ends (a share may fall outside its spread)
    below = [max(importance.values[n] - importance.spread[n][0], 0.0) for n in names]
    above = [max(importance.spread[n][1] - importance.values[n], 0.0) for n in names]
    low, high = SPREAD_PERCENTILES
    fig, ax = plt.subplots(figsize=(8, 0.4 * max(len(names), 3) + 1.5))
    if names:
        ax.barh([short[n] for n in names], values, xerr=[below, above], color="#1f77b4", ecolor="#333333", capsize=3)
        ax.set_xlabel(f"share of importance (whiskers: {low}th-{high}th percentile over {SUBSAMPLES} subsets of the trials)")
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, importance.note, ha="center", va="center", wrap=True)
    ax.set_title(_title(sweep, "parameter importance"))
    interactive = go.Figure(go.Bar(x=values, y=[short[n] for n in names], orientation="h", hovertext=names,
                                   error_x=dict(type="data", symmetric=False, array=above, arrayminus=below)))
    interactive.update_layout(title=_title(sweep, "parameter importance"), xaxis_title="share of importance")
    return fig, interactive


def _history_figures(sweep: SweepRecord, metric: str):
    """Score of each trial in start order, and the best finished score so far."""
    fig, ax = plt.subplots(figsize=(8, 5))
    interactive = go.Figure()
    for status, marker, symbol in (("finished", "o", "circle"), ("pruned", "x", "x")):
        points = [(i, t) for i, t in enumerate(sweep.trials) if t.status == status and t.best_score is not None]
        if not points:
            continue
        xs, ys = [i for i, _ in points], [_score(t) * 100 for _, t in points]
        label = "finished (best score)" if status == "finished" else "pruned (best before the stop)"
        ax.scatter(xs, ys, marker=marker, color=STATUS_COLORS[status], label=label, zorder=3)
        interactive.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=label, marker=dict(symbol=symbol, color=STATUS_COLORS[status]),
                                         text=[t.trial_id for _, t in points]))
    best, xs, ys = None, [], []
    for i, t in enumerate(sweep.trials):
        if t.status == "finished" and t.best_score is not None:
            best = t.best_score if best is None else max(best, t.best_score)
        if best is not None:
            xs.append(i)
            ys.append(best * 100)
    if xs:
        ax.step(xs, ys, where="post", color="#2ca02c", label="best finished so far")
        interactive.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(shape="hv", color="#2ca02c"), name="best finished so far"))
    failed = sum(t.status == "failed" for t in sweep.trials)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial (in start order)" + (f"; {failed} failed, not shown" if failed else ""))
    ax.set_ylabel(score_label(metric, best=True))
    ax.set_title(_title(sweep, "optimization history"))
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    interactive.update_layout(title=_title(sweep, "optimization history"), xaxis_title="trial (in start order)",
                              yaxis_title=score_label(metric, best=True))
    return fig, interactive


def _parallel_figures(sweep: SweepRecord, space: Optional[Space], metric: str):
    """Each scored trial as a line through its searched values and its score;
    pruned trials dashed (their score is from a shortened training)."""
    trials = _scored(sweep.trials)
    axes = _axes(space, trials)
    scores = [_score(t) * 100 for t in trials]
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * (len(axes) + 1)), 5.5))
    interactive = go.Figure()
    if trials:
        status_axis = _Axis("status", "status", [0.0 if t.status == "finished" else 1.0 for t in trials], ([0.0, 1.0], ["finished", "pruned"]))
        score_axis = _Axis("score", score_label(metric, best=True), scores, None)
        columns = [*axes, status_axis, score_axis]
        low, high = min(scores), max(scores)
        cmap = plt.get_cmap("viridis")
        spans = []
        for column in columns:
            values = [p for p in column.positions if p is not None]
            lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
            if column.ticks:
                lo, hi = min(column.ticks[0]), max(column.ticks[0])
            elif column.bounds:
                lo, hi = column.bounds
            spans.append((lo, hi if hi > lo else lo + 1.0))
        for i, trial in enumerate(trials):
            ys = [(c.positions[i] - lo) / (hi - lo) for c, (lo, hi) in zip(columns, spans)]
            shade = (_score(trial) * 100 - low) / (high - low) if high > low else 1.0
            ax.plot(range(len(columns)), ys, color=cmap(shade), linestyle="-" if trial.status == "finished" else "--", alpha=0.85)
        for x, (column, (lo, hi)) in enumerate(zip(columns, spans)):
            ax.axvline(x, color="#444444", linewidth=0.8)
            if column.ticks or column.log_ticks:
                for position, label in zip(*(column.ticks or column.log_ticks or ([], []))):
                    ax.text(x + 0.03, (position - lo) / (hi - lo), label, fontsize=7, va="center")
            else:
                ax.text(x + 0.03, 0, f"{lo:.3g}", fontsize=7, va="center")
                ax.text(x + 0.03, 1, f"{hi:.3g}", fontsize=7, va="center")
        ax.set_xticks(range(len(columns)), [c.label for c in columns], rotation=30, ha="right", fontsize=8)
        ax.set_yticks([])
        ax.set_xlim(-0.2, len(columns) - 0.5)
        dimensions = []
        for column, (lo, hi) in zip(columns, spans):
            spec = dict(label=column.label, values=column.positions, range=[lo, hi])
            shown_ticks = column.ticks or column.log_ticks
            if shown_ticks:
                spec.update(tickvals=shown_ticks[0], ticktext=shown_ticks[1])
            dimensions.append(spec)
        interactive.add_trace(go.Parcoords(line=dict(color=scores, colorscale="Viridis", showscale=True), dimensions=dimensions))
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no trial has a score yet", ha="center", va="center")
    ax.set_title(_title(sweep, "searched values against the score (pruned: dashed)"))
    fig.tight_layout()
    interactive.update_layout(title=_title(sweep, "searched values against the score"))
    return fig, interactive


def _curve_style(status: str) -> Tuple[str, str]:
    return {"finished": ("-", "solid"), "pruned": ("--", "dash")}.get(status, (":", "dot"))


def curve_style(number: int) -> Tuple[str, str, str]:
    """The colour and marker (matplotlib's, plotly's) of the trial started
    `number`-th: no two trials share both."""
    mpl_marker, plotly_symbol = CURVE_MARKERS[(number // len(CURVE_COLORS)) % len(CURVE_MARKERS)]
    return CURVE_COLORS[number % len(CURVE_COLORS)], mpl_marker, plotly_symbol


def _learning_curve_figures(sweep: SweepRecord, metric: str):
    """Score per evaluation step, one line per trial in its own colour and
    marker; a pruned trial's line is dashed and ends in a cross where the
    scheduler stopped it."""
    fig, ax = plt.subplots(figsize=(9, 5.5))
    interactive = go.Figure()
    for number, trial in enumerate(sweep.trials):
        if not trial.scores:
            continue
        steps = [s for s, _ in trial.scores]
        values = [v * 100 for _, v in trial.scores]
        mpl_style, plotly_dash = _curve_style(trial.status)
        color, marker, symbol = curve_style(number)
        label = f"{trial.trial_id} ({trial.status})"
        ax.plot(steps, values, linestyle=mpl_style, color=color, marker=marker, markersize=4, alpha=0.8, label=label)
        interactive.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name=label, line=dict(dash=plotly_dash, color=color),
                                         marker=dict(symbol=symbol, color=color)))
        if trial.status == "pruned":
            ax.plot(steps[-1], values[-1], marker="X", markersize=9, color=color)
            interactive.add_trace(go.Scatter(x=[steps[-1]], y=[values[-1]], mode="markers", showlegend=False, hoverinfo="skip",
                                             marker=dict(symbol="x", size=11, color=color)))
    ax.set_xlabel("training step")
    ax.set_ylabel(score_label(metric))
    ax.set_title(_title(sweep, "learning curves (pruned: dashed, cut at the cross)"))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right", ncol=2 if len(sweep.trials) > 12 else 1)
    interactive.update_layout(title=_title(sweep, "learning curves"), xaxis_title="training step", yaxis_title=score_label(metric))
    return fig, interactive


def _tradeoff_figures(sweep: SweepRecord, metric: str):
    """Score against training speed and against model size: the trade-off to
    choose from, with the trials on the Pareto front of all three ringed."""
    fig, (speed_ax, size_ax) = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    interactive = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("training words/s", "model size (parameters)"))
    for status, marker, symbol in (("finished", "o", "circle"), ("pruned", "x", "x")):
        points = [t for t in _scored(sweep.trials) if t.status == status]
        label = status if status == "finished" else "pruned (score before the stop)"
        for ax, col, attribute in ((speed_ax, 1, "words_per_second"), (size_ax, 2, "model_params")):
            shown = [t for t in points if getattr(t, attribute) is not None]
            if not shown:
                continue
            xs = [getattr(t, attribute) for t in shown]
            ys = [_score(t) * 100 for t in shown]
            ax.scatter(xs, ys, marker=marker, color=STATUS_COLORS[status], label=label if col == 1 else None)
            for x, y, t in zip(xs, ys, shown):
                ax.annotate(t.trial_id.rsplit("_", 1)[-1], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
            interactive.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=label, showlegend=col == 1, text=[t.trial_id for t in shown],
                                             marker=dict(symbol=symbol, color=STATUS_COLORS[status])), row=1, col=col)
    front = pareto_front(sweep.trials)
    if front:
        label = "Pareto front (score, speed, size)"
        ys = [_score(t) * 100 for t in front]
        for ax, col, xs in ((speed_ax, 1, [t.words_per_second for t in front]), (size_ax, 2, [t.model_params for t in front])):
            ax.scatter(xs, ys, s=160, facecolors="none", edgecolors=PARETO_COLOR, linewidths=1.5, zorder=4, gid="pareto",
                       label=label if col == 1 else None)
            interactive.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=label, showlegend=col == 1, legendgroup="pareto",
                                             text=[t.trial_id for t in front],
                                             marker=dict(symbol="circle-open", size=16, color=PARETO_COLOR, line=dict(width=2))), row=1, col=col)
    speed_ax.set_xlabel("training words/s (median over evaluations)")
    speed_ax.set_ylabel(score_label(metric, best=True))
    size_ax.set_xlabel("model size (parameters)")
    if speed_ax.get_legend_handles_labels()[0]:
        speed_ax.legend()
    fig.suptitle(_title(sweep, "score against speed and size"))
    fig.tight_layout()
    interactive.update_layout(title=_title(sweep, "score against speed and size"), yaxis_title=score_label(metric, best=True))
    interactive.update_xaxes(title_text="words/s", row=1, col=1)
    interactive.update_xaxes(title_text="parameters", row=1, col=2)
    return fig, interactive


# ---------------------------------------------------------------- the report


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}td.s{text-align:left}
.note{color:#555}img{max-width:100%}"""


def report_figure(name: str, sweep: SweepRecord, space: Optional[Space], importance: Importance, metric: str):
    """One of the PLOTS: a matplotlib figure (for its PNG) and a plotly figure (for report.html)."""
    builders = {
        "importance": lambda: _importance_figures(sweep, importance),
        "history": lambda: _history_figures(sweep, metric),
        "parallel_coordinates": lambda: _parallel_figures(sweep, space, metric),
        "learning_curves": lambda: _learning_curve_figures(sweep, metric),
        "tradeoff": lambda: _tradeoff_figures(sweep, metric),
    }
    return builders[name]()


def build_report(sweep: SweepRecord, directory: Path) -> Report:
    """Write the plots (PNG), trials.csv, importance.json and report.html
    (interactive plots, the table, the notes) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    space = parse_space(sweep.space_text)
    importance = param_importances(space, sweep.trials)
    shown = {"importance": importance.values, "spread": {k: list(v) for k, v in importance.spread.items()}, "note": importance.note}
    (directory / "importance.json").write_text(json.dumps(shown, indent=2) + "\n")

    header, rows = table_rows(sweep)
    table = directory / "trials.csv"
    with open(table, "w", newline="", encoding="utf8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)

    metric = score_metric(sweep.space_text)
    images, divs = {}, {}
    for name in PLOTS:
        fig, interactive = report_figure(name, sweep, space, importance, metric)
        images[name] = directory / f"{name}.png"
        fig.savefig(images[name], dpi=110, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        divs[name] = interactive.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{name}")

    page = directory / "report.html"
    page.write_text(_page(sweep, importance, metric, header, rows, divs), encoding="utf8")
    return Report(directory, page, table, importance, images)


_COLUMN_TITLES = {"words_per_second": "words/s", "model_params": "parameters", "pareto_front": "Pareto front"}


def _page(sweep: SweepRecord, importance: Importance, metric: str, header: List[str], rows: List[List[str]], divs: Dict[str, str]) -> str:
    e = html.escape
    counts = {s: sum(t.status == s for t in sweep.trials) for s in ("finished", "pruned", "failed", "running")}
    finished = [t for t in sweep.trials if t.status == "finished" and t.best_score is not None]
    best = max(finished, key=_score) if finished else None
    short = short_names(header[len(TRIAL_COLUMNS):])
    titles = {**_COLUMN_TITLES, "best_score": score_label(metric, best=True), **short}
    head = "".join(f"<th title='{e(h)}'>{e(titles.get(h, h))}</th>" for h in header)
    score_column = header.index("best_score")

    def cell(i: int, value: str) -> str:
        if i == score_column and value:  # trials.csv keeps the logged fraction; the page shows %
            value = f"{float(value) * 100:.2f}"
        return f"<td class='s'>{e(value)}</td>" if i < 2 else f"<td>{e(value)}</td>"

    body = "".join("<tr>" + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    low, high = SPREAD_PERCENTILES
    importance_rows = "".join(
        f"<tr><td class='s'>{e(k)}</td><td>{v:.3f}</td><td>{importance.spread[k][0]:.3f} to {importance.spread[k][1]:.3f}</td></tr>"
        for k, v in importance.values.items()
    )
    front = pareto_front(sweep.trials)
    front_rows = "".join(
        f"<tr><td class='s'>{e(t.trial_id)}</td><td>{_score(t) * 100:.2f}</td><td>{t.words_per_second:.0f}</td><td>{t.model_params}</td></tr>"
        for t in sorted(front, key=lambda t: -_score(t))
    )
    sections = {
        "importance": "Parameter importance",
        "history": "Optimization history",
        "parallel_coordinates": "Searched values against the score",
        "learning_curves": "Learning curves",
        "tradeoff": "Score against training speed and model size",
    }
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Sweep {e(sweep.name)}</title><style>{_CSS}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>Sweep {e(sweep.name)}</h1>",
        f"<p>Experiment <b>{e(sweep.experiment)}</b>, MLflow parent run <code>{e(sweep.parent_run_id)}</code>. ",
        f"{len(sweep.trials)} trials: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ".",
        (f" Best: trial <b>{e(best.trial_id)}</b>, {e(metric)} <b>{_score(best) * 100:.2f} %</b> on the dev data.</p>"
         if best else " No trial finished.</p>"),
        f"<p class='note'>Scores are {e(metric)} on the dev data, in %, as set by [training.score_weights].</p>",
        "<h2>Trials</h2><p class='note'>Best finished first; pruned trials by their best score before the stop. "
        "words/s: the median training speed over the trial's evaluations.</p>",
        f"<table><tr>{head}</tr>{body}</table>",
    ]
    for name, title in sections.items():
        parts.append(f"<h2>{e(title)}</h2>")
        if name == "importance":
            parts.append(f"<p class='note'>{e(importance.note)}</p>")
            if importance_rows:
                parts.append(f"<table><tr><th>dimension</th><th>share</th><th>spread ({low}th to {high}th percentile)</th></tr>"
                             f"{importance_rows}</table>")
        if name == "tradeoff":
            parts.append(
                "<p class='note'>Ringed: the Pareto front, the finished trials that no other finished trial beats on "
                f"{e(metric)}, training words/s and parameters at once (at least as good on all three, better on one). "
                "A ringed trial may look beaten in one panel: it is then faster or smaller in the other. "
                "Pruned trials are not on it (their scores come from a shortened training).</p>"
            )
            if front_rows:
                parts.append(f"<table><tr><th>Pareto front</th><th>{e(score_label(metric, best=True))}</th><th>words/s</th>"
                             f"<th>parameters</th></tr>{front_rows}</table>")
        parts.append(divs[name])
    parts.append("</body></html>\n")
    return "\n".join(parts)
