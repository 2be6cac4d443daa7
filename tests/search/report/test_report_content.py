"""What the report shows a reader, checked on its figures (matplotlib for the
PNGs, plotly for report.html) and its page, for trial tables built from real
sampled configs of spaces/tagger.cfg: the score named with its unit, log
dimensions on real values, one colour and marker per learning curve,
parameter importance only from enough finished trials and with its spread, and
the Pareto front of score, training speed and model size."""

import csv
import math
from typing import Callable, Dict, List

import matplotlib.pyplot as plt
import pytest
from confection import Config
from matplotlib.container import BarContainer
from sweep_fixtures import FAST, SPACE

from search.report.build import (
    MIN_TRIALS_FOR_IMPORTANCE,
    SweepRecord,
    TrialRecord,
    build_report,
    log_ticks,
    param_importances,
    pareto_front,
    parse_space,
    report_figure,
    score_metric,
)
from search.space import RandomSuggester, Space, show_value

LEARN_RATE = "training.optimizer.learn_rate"  # loguniform from 0.0001 to 0.01 in spaces/tagger.cfg


def _records(space: Space, statuses: List[str], score_of: Callable[[Dict], float]) -> List[TrialRecord]:
    """Trials with real sampled values of `space`, logged as MLflow would (strings)."""
    trials = []
    for number, status in enumerate(statuses):
        _, values = space.sample(RandomSuggester(number))
        score = score_of(values)
        steps = 3 if status == "finished" else 1
        history = [(10 * (i + 1), score * (i + 1) / steps) for i in range(steps)]
        params = {k: show_value(v) for k, v in values.items()}
        trials.append(TrialRecord(f"run{number}", f"t{number:02d}", status, params, history, score, 1000.0 + number, 50000 + number, number))
    return trials


def _figure(name: str, sweep: SweepRecord):
    space = parse_space(sweep.space_text)
    fig, interactive = report_figure(name, sweep, space, param_importances(space, sweep.trials), score_metric(sweep.space_text))
    plt.close(fig)
    return fig, interactive


@pytest.fixture(scope="module")
def space() -> Space:
    return Space.from_disk(SPACE, FAST)


@pytest.fixture(scope="module")
def small_sweep(space, tmp_path_factory):
    """12 trials (9 finished, 3 pruned): too few for parameter importance."""
    statuses = ["finished", "pruned", "finished", "finished", "pruned", "finished", "finished", "finished", "pruned", "finished", "finished", "finished"]
    sweep = SweepRecord("small", "parent", "exp", space.text, _records(space, statuses, lambda v: 0.8 + 10 * v[LEARN_RATE]))
    return sweep, build_report(sweep, tmp_path_factory.mktemp("small"))


def test_score_metric_is_named_from_the_score_weights():
    text = SPACE.read_text(encoding="utf8")
    assert score_metric(text) == "pos_acc"
    config = Config().from_str(text, interpolate=False)
    config["training"]["score_weights"] = {"tag_acc": 0.5, "pos_acc": 0.5, "lemma_acc": None}
    assert score_metric(config.to_str()) == "0.5 tag_acc + 0.5 pos_acc"
    config["training"]["score_weights"] = {}
    assert score_metric(config.to_str()) == "score (mean of the dev scores)"


def test_scores_are_named_with_their_metric_in_percent(small_sweep):
    sweep, report = small_sweep
    page = report.html.read_text(encoding="utf8")
    best = max((t for t in sweep.trials if t.status == "finished"), key=lambda t: t.best_score or 0)
    assert f"Best: trial <b>{best.trial_id}</b>, pos_acc <b>{(best.best_score or 0) * 100:.2f} %</b> on the dev data." in page
    assert "<th title='best_score'>best pos_acc (%)</th>" in page
    assert f"<td>{(best.best_score or 0) * 100:.2f}</td>" in page and f"<td>{best.best_score:.6f}</td>" not in page
    assert "score (%)" not in page
    # trials.csv keeps the fraction MLflow logged
    with open(report.table, newline="", encoding="utf8") as table:
        assert float(next(csv.DictReader(table))["best_score"]) == pytest.approx(best.best_score)
    for name, label in (("history", "best pos_acc (%)"), ("learning_curves", "pos_acc (%)"), ("tradeoff", "best pos_acc (%)")):
        fig, interactive = _figure(name, sweep)
        assert fig.axes[0].get_ylabel() == label, name
        assert interactive.layout.yaxis.title.text == label, name
    fig, interactive = _figure("parallel_coordinates", sweep)
    assert fig.axes[0].get_xticklabels()[-1].get_text() == "best pos_acc (%)"
    assert interactive.data[0].dimensions[-1].label == "best pos_acc (%)"


def test_log_dimensions_are_shown_on_real_values(small_sweep):
    sweep, report = small_sweep
    assert log_ticks(math.log10(0.0003), math.log10(0.02)) == (
        pytest.approx([math.log10(0.0003), -3.0, -2.0, math.log10(0.02)]), ["0.0003", "0.001", "0.01", "0.02"]
    )
    assert log_ticks(math.log10(2000), math.log10(4000))[1] == ["2000", "4000"]  # not 2e+03
    fig, interactive = _figure("parallel_coordinates", sweep)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "learn_rate (log scale)" in labels and not [label for label in labels if "log10" in label]
    shown = {t.get_text() for t in ax.texts}
    assert {"0.0001", "0.001", "0.01"} <= shown and "-4" not in shown and "-2" not in shown
    dimension = next(d for d in interactive.data[0].dimensions if d.label == "learn_rate (log scale)")
    assert list(dimension.ticktext) == ["0.0001", "0.001", "0.01"]
    assert list(dimension.tickvals) == pytest.approx([-4.0, -3.0, -2.0])
    assert "log10" not in report.html.read_text(encoding="utf8").split("</head>", 1)[1]  # (plotly.js, in the head, has its own)


def test_each_learning_curve_has_its_own_colour_and_marker(small_sweep):
    sweep, _ = small_sweep
    fig, interactive = _figure("learning_curves", sweep)
    lines = [line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label().split()[0] for line in lines] == [t.trial_id for t in sweep.trials]
    styles = [(line.get_color(), line.get_marker()) for line in lines]
    assert len(set(styles)) == len(sweep.trials) == 12
    assert len({color for color, _ in styles[:10]}) == 10  # the first ten: ten colours
    # plotly draws the same colour and a marker per trial
    traces = [t for t in interactive.data if t.showlegend is not False]
    assert [(t.line.color, t.marker.symbol) for t in traces] == [(c, t.marker.symbol) for (c, _), t in zip(styles, traces)]
    assert len({(t.line.color, t.marker.symbol) for t in traces}) == 12


def test_importance_is_hidden_below_the_trial_count_with_the_reason(small_sweep, space):
    sweep, report = small_sweep
    assert report.importance.values == {} and report.importance.spread == {}
    assert report.importance.note.startswith(
        f"not shown: parameter importance needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials, this sweep has 9."
    )
    fig, _ = _figure("importance", sweep)
    assert not fig.axes[0].patches  # no bars
    one_short = _records(space, ["finished"] * (MIN_TRIALS_FOR_IMPORTANCE - 1) + ["pruned"] * 5, lambda v: 10 * v[LEARN_RATE])
    assert param_importances(space, one_short).values == {}


def test_importance_is_shown_with_its_spread_from_enough_trials(space):
    """The score depends on the learning rate alone: its share leads, and its
    spread over subsets of the trials stays above every other dimension's."""
    trials = _records(space, ["finished"] * MIN_TRIALS_FOR_IMPORTANCE, lambda v: 10 * v[LEARN_RATE])
    importance = param_importances(space, trials)
    assert next(iter(importance.values)) == LEARN_RATE
    assert sum(importance.values.values()) == pytest.approx(1.0)
    assert set(importance.spread) == set(importance.values)
    assert all(0.0 <= low <= high <= 1.0 for low, high in importance.spread.values())
    assert importance.spread[LEARN_RATE][0] > max(high for name, (low, high) in importance.spread.items() if name != LEARN_RATE)
    assert f"over {MIN_TRIALS_FOR_IMPORTANCE} finished trials" in importance.note and "percentile over 30 random subsets" in importance.note
    sweep = SweepRecord("enough", "parent", "exp", space.text, trials)
    fig, interactive = report_figure("importance", sweep, space, importance, "pos_acc")
    plt.close(fig)
    bars = next(c for c in fig.axes[0].containers if isinstance(c, BarContainer))
    assert len(bars.patches) == len(importance.values) and bars.errorbar is not None  # whiskers drawn
    assert interactive.data[0].error_x.array is not None


def _pareto_trials(space: Space) -> List[TrialRecord]:
    """(status, score, words/s, parameters): t00 is best, t01 fastest, t02 smallest;
    t03 is beaten by t00 on all three; t04 ties t00 on all three but score (lower);
    t05 is pruned with the top score; t06 has no speed."""
    table: List[tuple] = [
        ("finished", 0.90, 1000.0, 100_000), ("finished", 0.80, 2000.0, 100_000), ("finished", 0.70, 500.0, 50_000),
        ("finished", 0.85, 900.0, 120_000), ("finished", 0.89, 1000.0, 100_000), ("pruned", 0.95, 3000.0, 10_000),
        ("finished", 0.99, None, 10_000),
    ]
    trials = _records(space, [row[0] for row in table], lambda v: 0.5)
    for trial, (_, score, speed, size) in zip(trials, table):
        trial.best_score, trial.words_per_second, trial.model_params = score, speed, size
    return trials


def test_the_pareto_front_is_marked(space, tmp_path):
    trials = _pareto_trials(space)
    front = ["t00", "t01", "t02"]  # not t05 (pruned) nor t06 (no speed), though their scores are higher
    assert [t.trial_id for t in pareto_front(trials)] == front
    assert pareto_front([t for t in trials if t.status == "pruned"]) == []
    sweep = SweepRecord("pareto", "parent", "exp", space.text, trials)
    report = build_report(sweep, tmp_path)
    with open(report.table, newline="", encoding="utf8") as table:
        marked = {row["trial"]: row["pareto_front"] for row in csv.DictReader(table)}
    assert sorted(k for k, v in marked.items() if v == "yes") == front and set(marked.values()) == {"yes", ""}
    page = report.html.read_text(encoding="utf8")
    front_table = page.split("<th>Pareto front</th>", 1)[1].split("</table>", 1)[0]
    assert front_table.count("<tr>") == 3 and "<tr><td class='s'>t00</td><td>90.00</td><td>1000</td><td>100000</td></tr>" in front_table
    fig, interactive = _figure("tradeoff", sweep)
    speed_ax, size_ax = fig.axes[:2]
    expected_speed = [(1000.0, 90.0), (2000.0, 80.0), (500.0, 70.0)]
    expected_size = [(100_000, 90.0), (100_000, 80.0), (50_000, 70.0)]
    for ax, expected in ((speed_ax, expected_speed), (size_ax, expected_size)):
        rings = [c for c in ax.collections if c.get_gid() == "pareto"]
        assert len(rings) == 1 and [tuple(float(v) for v in p) for p in rings[0].get_offsets()] == expected
    assert "Pareto front (score, speed, size)" in [t.get_text() for t in speed_ax.get_legend().get_texts()]
    rings = [t for t in interactive.data if t.legendgroup == "pareto"]
    assert [list(t.text) for t in rings] == [front, front] and list(rings[0].x) == [1000.0, 2000.0, 500.0]
