"""Export within a budget (search/tracking/export.py's pick_best): the best trial at
least this fast in training and at most this large, or an error naming the closest."""

import pytest
from search_testing import run_cli

from search.tracking.export import Budget, TrialFigures, pick_best

# trial id, score, training words/s, parameters
TRIALS = [
    TrialFigures("r1", "big", 0.95, 2_000.0, 900_000),
    TrialFigures("r2", "mid", 0.90, 6_000.0, 300_000),
    TrialFigures("r3", "small", 0.80, 12_000.0, 50_000),
    TrialFigures("r4", "unscored", None, 20_000.0, 10_000),
]


@pytest.mark.parametrize("budget, picked", [
    (Budget(), "big"),
    (Budget(min_words_per_second=5_000), "mid"),
    (Budget(min_words_per_second=6_000), "mid"),  # the bound is inclusive
    (Budget(min_words_per_second=6_001), "small"),
    (Budget(max_params=300_000), "mid"),
    (Budget(max_params=299_999), "small"),
    (Budget(min_words_per_second=1_000, max_params=1_000_000), "big"),
    (Budget(min_words_per_second=5_000, max_params=100_000), "small"),
])
def test_pick_best_within_the_budget(budget, picked):
    assert pick_best(TRIALS, "best_score", budget).trial_id == picked


@pytest.mark.parametrize("budget, named", [
    (Budget(min_words_per_second=50_000), ["small", "big"]),
    (Budget(max_params=1_000), ["small", "big"]),
    (Budget(min_words_per_second=10_000, max_params=40_000), ["small", "big"]),
])
def test_no_trial_within_the_budget_names_the_closest(budget, named):
    with pytest.raises(ValueError) as err:
        pick_best(TRIALS, "best_score", budget)
    message = str(err.value)
    assert message.startswith(f"none of the 3 finished trials has {budget.describe()}; the closest: ")
    assert [part.split(" (")[0].removeprefix("trial ") for part in message.split("the closest: ")[1].split("; ")] == named
    assert "trial small (best_score 0.8000, 12,000 words/s, 50,000 parameters)" in message
    assert "\n" not in message


def test_a_trial_without_the_figure_does_not_fit():
    unlogged = [TrialFigures("r1", "old", 0.9, None, None), TrialFigures("r2", "new", 0.5, 3_000.0, 1_000)]
    assert pick_best(unlogged, "best_score", Budget(min_words_per_second=1)).trial_id == "new"
    assert pick_best(unlogged, "best_score", Budget(max_params=10**9)).trial_id == "new"
    with pytest.raises(ValueError, match="words/s not logged, parameters not logged"):
        pick_best(unlogged[:1], "best_score", Budget(max_params=1))


def test_figures_from_logged_metrics():
    figures = TrialFigures.of("r1", "t", {"best_score": 0.9, "words": 30_000, "train_seconds": 6.0, "model_params": 1234}, "best_score")
    assert (figures.score, figures.words_per_second, figures.params) == (0.9, 5_000.0, 1234)
    assert TrialFigures.of("r1", "t", {"best_score": 0.9, "words": 0, "train_seconds": 0.0}, "best_score").words_per_second is None


def test_no_scored_trial():
    with pytest.raises(ValueError, match="no finished trial with metric 'best_score'"):
        pick_best(TRIALS[3:], "best_score")


@pytest.mark.parametrize("option, value, expected", [
    ("--max-params", "0", "error: --max-params: expected a positive number of parameters, got 0"),
    ("--min-words-per-second", "-5", "error: --min-words-per-second: expected a positive number of words per second, got -5"),
])
def test_cli_refuses_a_budget_that_is_not_positive(option, value, expected, tmp_path):
    proc = run_cli("export", "--experiment", "any", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", option, value)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "mlflow.db").exists()  # refused before any store is opened
