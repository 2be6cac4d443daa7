"""The Ray Tune internals archsweep relies on (search/sweep/tune_compat.py) are still where
they were: each test names the private attribute a Ray upgrade moved, so that the
upgrade fails here rather than in a user's sweep. No cluster is started."""

import inspect

import optuna
import pytest
from ray import tune
from ray.tune import RunConfig, TuneConfig, Tuner
from search_testing import REPO

from archs import registry
from search.space import Space
from search.sweep import DefineByRun, SweepSettings
from search.sweep.algorithms import scheduler, searcher
from search.sweep.tune_compat import PruningAwareOptunaSearch, fail_trials_killed_for_memory, tuner_callbacks

SPACE = REPO / "spaces" / "tagger.cfg"


def test_search_keeps_its_trials_and_study_where_the_pruning_fix_reads_them():
    optuna_search = PruningAwareOptunaSearch(
        space=DefineByRun(Space.from_disk(SPACE), 0), metric="score", mode="max", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    optuna_search.suggest("t1")
    for name, kind in (("_ot_trials", dict), ("_completed_trials", set), ("_ot_study", optuna.Study)):
        assert isinstance(getattr(optuna_search, name, None), kind), f"ray.tune.search.optuna.OptunaSearch.{name} moved"
    assert "t1" in optuna_search._ot_trials


def test_the_actor_manager_still_has_the_failure_hook_the_memory_fix_wraps():
    from ray.air.execution._internal.actor_manager import RayActorManager

    hook = getattr(RayActorManager, "_actor_task_failed", None)
    assert hook is not None, "ray.air.execution._internal.actor_manager.RayActorManager._actor_task_failed moved"
    assert list(inspect.signature(hook).parameters)[:3] == ["self", "tracked_actor_task", "exception"]
    fail_trials_killed_for_memory()
    fail_trials_killed_for_memory()  # installed once
    wrapped = RayActorManager._actor_task_failed
    assert wrapped.archsweep_oom and not getattr(wrapped.__closure__[0].cell_contents, "archsweep_oom", False)


def test_a_tuner_exposes_its_callbacks():
    class Marker(tune.Callback):
        pass

    tuner = Tuner(lambda config: None, tune_config=TuneConfig(num_samples=1), run_config=RunConfig(callbacks=[Marker()]))
    callbacks = tuner_callbacks(tuner)
    assert callbacks is not None, "ray.tune.Tuner._local_tuner._run_config.callbacks moved"
    assert any(isinstance(c, Marker) for c in callbacks)


@pytest.mark.parametrize("name, sampler", [("tpe", optuna.samplers.TPESampler), ("random", optuna.samplers.RandomSampler)])
def test_search_algorithms_come_from_the_registry(name, sampler):
    assert name in registry.samplers.get_all()
    built = searcher(Space.from_disk(SPACE), SweepSettings(space_path=str(SPACE), search=name))
    assert isinstance(built._sampler, sampler)


def test_a_newly_registered_sampler_is_usable_by_name():
    @registry.samplers("test-random")
    def seeded_random(*, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)

    built = searcher(Space.from_disk(SPACE), SweepSettings(space_path=str(SPACE), search="test-random"))
    assert isinstance(built._sampler, optuna.samplers.RandomSampler)


@pytest.mark.parametrize("field, value, message", [
    ("search", "bayes", "--search: expected one of .*random.*tpe.*, got 'bayes'"),
    ("scheduler", "hyperband", "--scheduler: expected one of asha, none, got 'hyperband'"),
])
def test_an_unknown_name_lists_the_registered_ones(field, value, message):
    settings = SweepSettings(space_path=str(SPACE), **{field: value})
    with pytest.raises(ValueError, match=message):
        searcher(Space.from_disk(SPACE), settings) if field == "search" else scheduler(settings)
