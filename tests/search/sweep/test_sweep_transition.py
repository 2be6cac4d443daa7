"""The parser and NER spaces swept end to end (spaces/parser.cfg, spaces/ner.cfg) on
real parts: the session's local Ray cluster, the real `mlflow server`, Optuna TPE and
ASHA, real training on the bundled samples. Small: two trials of one short epoch each,
narrow models (ranges narrowed, every dimension still searched)."""

from pathlib import Path
from typing import Any, Dict

import pytest
from confection import Config
from search_testing import PATHS, REPO

from search.space import Space
from search.sweep import SweepSettings, sweep
from search.training.config import load_config

UNER = REPO / "data" / "uner_english_ewt"

COMMON: Dict[str, Any] = {
    "training.max_epochs": 1,
    "training.eval_frequency": 5,
    "corpora.train.limit": 120,
    "corpora.dev.limit": 60,
}


def narrow(component: str) -> Dict[str, Any]:
    model = f"components.{component}.model"
    return {
        f"{model}.hidden_width.values": [16, 32],
        f"{model}.hidden_width.default": 16,
        f"{model}.tok2vec.width.values": [32, 64],
        f"{model}.tok2vec.width.default": 32,
        f"{model}.tok2vec.depth.high": 3,
        f"{model}.tok2vec.depth.default": 2,
        f"{model}.tok2vec.embed_size.high": 3000,
    }


CASES = {
    # evaluations every 2 steps: a trial of large batches has few steps in its one epoch
    "parser": (REPO / "spaces" / "parser.cfg", {**PATHS, **COMMON, **narrow("parser"), "components.parser.min_action_freq": 1,
                                                 "training.eval_frequency": 2}, "dep_las"),
    "ner": (
        REPO / "spaces" / "ner.cfg",
        {
            "paths.train": str(UNER / "en_ewt-ud-train.approx.sample.iob2"),
            "paths.dev": str(UNER / "en_ewt-ud-dev.sample.iob2"),
            **COMMON,
            **narrow("ner"),
            # entities are sparse: the recogniser needs more sentences and steps than the parser to find any
            "corpora.train.limit": 300,
            "training.max_epochs": 2,
            "training.eval_frequency": 20,
            "training.optimizer.learn_rate.constant.rate.low": 0.002,
            "training.optimizer.learn_rate.constant.rate.default": 0.003,
        },
        "ents_f",
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def transition_sweep(request, ray_cluster, mlflow_server, tmp_path_factory):
    kind = request.param
    space_path, overrides, metric = CASES[kind]
    settings = SweepSettings(
        space_path=str(space_path), num_samples=2, max_concurrent=2, address=ray_cluster.address,
        tracking_uri=mlflow_server.uri, experiment=f"e2e-{kind}", storage=str(tmp_path_factory.mktemp(f"sweeps-{kind}")),
        seed=0, search="tpe", scheduler="asha", grace_period=1, overrides=overrides,
    )
    result = sweep(settings)
    return kind, settings, result, metric, mlflow_server.client()


def test_every_trial_finishes_and_is_tracked(transition_sweep):
    kind, settings, result, metric, client = transition_sweep
    assert len(result.trials) == 2
    assert {t.status for t in result.trials} <= {"finished", "pruned"}, [(t.status, t.error) for t in result.trials]
    dimensions = [d.name for d in Space.from_disk(settings.space_path).dimensions]
    assert len(dimensions) >= 10
    for trial in result.trials:
        run = client.get_run(trial.run_id)
        assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
        assert metric in run.data.metrics  # the component's own score, per evaluation
        assert 0.0 <= run.data.metrics[metric] <= 1.0
        history = client.get_metric_history(trial.run_id, "score")
        assert [m.step for m in history] == sorted(m.step for m in history)
        # ASHA (grace period 1) may stop a trial after its first evaluation; a finished one ran them all
        assert len(history) >= (2 if trial.status == "finished" else 1)
        for name in dimensions:
            if name in trial.values:
                assert name in run.data.params


def test_the_parser_learns_something(transition_sweep):
    """Scores are real: after one epoch on 120 sentences the best trial beats the
    trivial parser/recogniser (score 0) on dev."""
    kind, settings, result, metric, client = transition_sweep
    best = max(t.best_score for t in result.trials if t.best_score is not None)
    assert best > 0.05


def test_the_best_config_is_an_ordinary_training_config(transition_sweep, tmp_path):
    kind, settings, result, metric, client = transition_sweep
    assert result.best_config_path is not None and result.best_config_path.is_file()
    config = load_config(result.best_config_path)
    text = Path(result.best_config_path).read_text()
    assert "@distributions" not in text
    assert config["components"][kind]["factory"] == kind
    assert config["components"][kind]["model"]["@architectures"] == "spacy.TransitionBasedParser.v1"
    finished = [t for t in result.trials if t.status == "finished"]
    best = max(finished, key=lambda t: t.best_score)  # export considers finished trials only
    model = config["components"][kind]["model"]
    # MLflow keeps params as strings
    assert str(model["hidden_width"]) == best.values[f"components.{kind}.model.hidden_width"]
    assert str(model["tok2vec"]["width"]) == best.values[f"components.{kind}.model.tok2vec.width"]
    Config().from_str(text)  # and it round-trips as plain confection
