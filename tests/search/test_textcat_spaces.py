"""The three text-classification spaces (spaces/textcat.cfg on TREC, textcat_sst2.cfg,
textcat_goemotions.cfg): the same architecture, optimizer and batching dimensions, each
passing the space checks with dotted overrides, and a GoEmotions (multi-label) trial
sampled the way a sweep samples it (Optuna TPE, define-by-run) and trained end to end on
the bundled sample."""

import optuna
import pytest
from search_testing import REPO, run_cli

from search.space import DefaultSuggester, Space
from search.sweep import DefineByRun
from search.sweep.trial import run_trial, trial_config
from search.training.evaluate import evaluate
from search.training.loop import train

SPACES = {name: REPO / "spaces" / f"textcat{suffix}.cfg" for name, suffix in
          (("trec", ""), ("sst2", "_sst2"), ("goemotions", "_goemotions"))}
DATA = REPO / "data" / "textcat"
GLOVE = REPO / "data" / "vectors" / "glove.6B.50d.sample.txt"
# absolute paths: the tests do not depend on the working directory
PATHS = {
    "trec": {"paths.train": str(DATA / "trec" / "TREC.train.sample"), "paths.dev": str(DATA / "trec" / "TREC.test.sample")},
    "sst2": {"paths.train": str(DATA / "sst2" / "stsa.binary.train.sample"), "paths.dev": str(DATA / "sst2" / "stsa.binary.dev.sample")},
    "goemotions": {"paths.train": str(DATA / "goemotions" / "train.sample.tsv"), "paths.dev": str(DATA / "goemotions" / "dev.sample.tsv"),
                   "paths.labels": str(DATA / "goemotions" / "emotions.txt")},
}
ARCH = "components.textcat.model"
OPTIONS = ("bow", "cnn", "ensemble", "lowdata")


def _space(name, **overrides):
    return Space.from_disk(SPACES[name], {**PATHS[name], "paths.vectors": str(GLOVE), **overrides})


def _shape(space):
    return [(d.name, d.describe(), repr(d.distribution.default), d.condition) for d in space.dimensions]


def test_the_three_spaces_search_the_same_dimensions():
    spaces = {name: _space(name) for name in SPACES}
    for space in spaces.values():
        space.validate()
    assert _shape(spaces["sst2"]) == _shape(spaces["trec"]) == _shape(spaces["goemotions"])
    assert len(spaces["trec"].dimensions) == 18
    # what is not searched is the same too, except what the dataset decides
    fixed = {}
    for name, space in spaces.items():
        template = space.template
        training = {k: v for k, v in template["training"].items() if k != "score_weights"}
        models = {o: {k: v for k, v in template["components"]["textcat"]["model"][o].items() if k != "exclusive_classes"}
                  for o in OPTIONS}
        fixed[name] = (training, models, template["nlp"], template["system"])
    assert fixed["sst2"] == fixed["trec"] == fixed["goemotions"]
    for name, exclusive, factory, score in (("trec", True, "textcat", "cats_acc"), ("sst2", True, "textcat", "cats_acc"),
                                            ("goemotions", False, "textcat_multilabel", "cats_macro_f")):
        template = spaces[name].template
        assert template["components"]["textcat"]["factory"] == factory
        assert dict(template["training"]["score_weights"]) == {score: 1.0}
        for option in ("bow", "cnn", "ensemble"):  # LowData always has sigmoid outputs
            assert template["components"]["textcat"]["model"][option]["exclusive_classes"] is exclusive, (name, option)


@pytest.mark.parametrize("name", ["sst2", "goemotions"])
def test_space_cli_checks_each_space_with_dotted_overrides(name):
    proc = run_cli("space", str(SPACES[name]), "--paths.vectors", str(GLOVE),
                   "--components.textcat.model.bow.ngram_size.high", "2", "--training.max_epochs", "2")
    assert proc.returncode == 0, proc.stderr
    assert "18 dimensions" in proc.stdout
    assert "int uniform [1, 2]" in proc.stdout  # the overridden range
    bad = run_cli("space", str(SPACES[name]), "--components.textcat.model.ensemble.width.default", "48")
    assert bad.returncode == 1
    assert "components.textcat.model.ensemble.width" in bad.stderr


def test_goemotions_trial_sampled_like_a_sweep_trains_multilabel_end_to_end(tmp_path):
    space = _space("goemotions", **{"training.max_epochs": 2, "training.eval_frequency": 10})
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    # the Ensemble with the (sample) GloVe vectors; every other dimension is sampled
    study.enqueue_trial({ARCH: "ensemble", f"{ARCH}.ensemble.pretrained_vectors": "${paths.vectors}"})
    trial = study.ask()
    sampled = {**DefineByRun(space, sweep_seed=0)(trial), **trial.params}
    config, values = trial_config(space, sampled)
    assert values[ARCH] == "ensemble" and len(values) == 11  # 6 ensemble + 4 training dimensions + the choice
    block = config["components"]["textcat"]
    assert block["factory"] == "textcat_multilabel" and block["model"]["exclusive_classes"] is False
    assert "@distributions" not in config.to_str()
    assert config.interpolate()["components"]["textcat"]["model"]["pretrained_vectors"] == str(GLOVE)

    reports = []
    result = run_trial(space, sampled, reports.append, output_dir=str(tmp_path / "trial"))
    assert reports[-1]["training_finished"] is True and not reports[0]["training_finished"]
    assert reports[-1]["epochs_trained"] == pytest.approx(2.0)
    for key in ("cats_macro_f", "cats_micro_f", "cats_macro_auc"):
        assert 0.0 <= reports[-1][key] <= 1.0, key
    assert "cats_acc" not in reports[-1]  # multi-label scores only
    assert result.best_score == max(r["cats_macro_f"] for r in reports)  # the space's primary score
    # the saved best model scores the dev sample the same way again
    again = evaluate(tmp_path / "trial" / "model-best", DATA / "goemotions" / "dev.sample.tsv")
    assert again["cats_macro_f"] == pytest.approx(result.best_score)


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_of_the_goemotions_space_trains(option):
    space = _space("goemotions")
    config, _ = space.sample(DefaultSuggester(space, {ARCH: option}))
    result = train(config, overrides={"training.max_epochs": 0, "training.max_steps": 3, "training.eval_frequency": 3})
    assert result.stop_reason == "max_steps 3 reached"
    assert {"cats_macro_f", "cats_micro_f", "cats_macro_auc"} <= set(result.final_scores)
