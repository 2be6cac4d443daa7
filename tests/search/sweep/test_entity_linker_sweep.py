"""spaces/entity_linker.cfg swept end to end on real parts: the session's local Ray cluster,
the real `mlflow server`, Optuna TPE and ASHA, real training on the bundled Wiki-Fair/OKE
sample with the committed sample KB. Small: two trials of two short epochs, narrow encoders
(every dimension still searched)."""

from pathlib import Path

import pytest
from confection import Config
from search_testing import REPO

from search.space import Space
from search.sweep import SweepSettings, sweep
from search.training.config import load_config

EL = REPO / "data" / "entity_linking"
SPACE = REPO / "spaces" / "entity_linker.cfg"


def overrides():
    out = {
        "paths.train": str(EL / "wiki-fair-v2-train.sample.jsonl"),
        "paths.train_oke": str(EL / "oke-2016-train.sample.jsonl"),
        "paths.dev": str(EL / "wiki-fair-v2-test.sample.jsonl"),
        "paths.dev_oke": str(EL / "oke-2016-eval.sample.jsonl"),
        "paths.kb": str(EL / "kb.sample"),
        "training.max_epochs": 2,
        "training.eval_frequency": 10,
    }
    for option in ("combined", "context"):
        t2v = f"components.entity_linker.{option}.model.tok2vec"
        out.update({
            f"{t2v}.width.values": [32, 64], f"{t2v}.width.default": 32,
            f"{t2v}.depth.high": 2, f"{t2v}.depth.default": 1,
            f"{t2v}.embed_size.high": 1000, f"{t2v}.embed_size.default": 500,
        })
    return out


@pytest.fixture(scope="module")
def el_sweep(ray_cluster, mlflow_server, tmp_path_factory):
    settings = SweepSettings(
        space_path=str(SPACE), num_samples=2, max_concurrent=2, address=ray_cluster.address,
        tracking_uri=mlflow_server.uri, experiment="e2e-entity-linker", storage=str(tmp_path_factory.mktemp("sweeps-el")),
        seed=0, search="tpe", scheduler="asha", grace_period=1, overrides=overrides(),
    )
    return settings, sweep(settings), mlflow_server.client()


def test_every_trial_finishes_and_is_tracked(el_sweep):
    settings, result, client = el_sweep
    assert len(result.trials) == 2
    assert {t.status for t in result.trials} <= {"finished", "pruned"}, [(t.status, t.error) for t in result.trials]
    assert len(Space.from_disk(settings.space_path).dimensions) == 12
    for trial in result.trials:
        run = client.get_run(trial.run_id)
        assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
        for key in ("nel_micro_f", "nel_acc", "nel_candidate_recall"):
            assert 0.0 <= run.data.metrics[key] <= 1.0
        assert run.data.metrics["nel_acc"] <= run.data.metrics["nel_candidate_recall"]
        assert run.data.params["components.entity_linker"] in ("combined", "context", "prior")
        assert "training.optimizer.learn_rate" in run.data.params
    # the linker is far above zero on the sample (the prior alone links most mentions)
    assert max(t.best_score for t in result.trials if t.best_score is not None) > 0.3


def test_the_best_config_is_an_ordinary_training_config(el_sweep):
    settings, result, client = el_sweep
    assert result.best_config_path is not None and result.best_config_path.is_file()
    text = Path(result.best_config_path).read_text()
    assert "@distributions" not in text
    config = load_config(result.best_config_path)
    block = config["components"]["entity_linker"]
    assert block["factory"] == "entity_linker" and block["model"]["@architectures"] == "spacy.EntityLinker.v1"
    assert block["incl_prior"] or block["incl_context"]
    Config().from_str(text)
