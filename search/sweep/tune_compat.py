"""Everything archsweep does with Ray Tune's private internals, in one place.

Ray Tune 2.x moves and renames its internals between releases; each use below
is checked by tests/search/test_tune_compat.py, which fails loudly (naming the
attribute) when an upgrade breaks one, instead of a sweep failing at run time:

- `PruningAwareOptunaSearch` reads OptunaSearch's `_ot_trials`, `_ot_study` and
  `_completed_trials` to tell Optuna the right state of a trial, and adds an earlier
  sweep's trials to `_ot_study`;
- `fail_trials_killed_for_memory` wraps `RayActorManager._actor_task_failed`;
- `tuner_callbacks` reaches a Tuner's callbacks through `_local_tuner._run_config`.
"""

from typing import Any, Dict, List, Optional, Sequence

import optuna
from ray.exceptions import OutOfMemoryError, RayActorError
from ray.tune import Tuner
from ray.tune.search.optuna import OptunaSearch

from .outcome import TrialOutcome


class PruningAwareOptunaSearch(OptunaSearch):
    """Ray's OptunaSearch tells Optuna that a trial ASHA stopped early is
    COMPLETE with its truncated score, which misleads TPE. Here a trial whose
    last result is not finished (`outcome`: training ended by itself or reached
    ASHA's max_t) is told as PRUNED (Optuna then uses its reported intermediate
    values), and an errored one as FAIL."""

    outcome = TrialOutcome()  # what a searcher pickled before the setting existed resumes with

    def __init__(self, *args: Any, outcome: Optional[TrialOutcome] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if outcome is not None:
            self.outcome = outcome

    def on_trial_result(self, trial_id: str, result: Dict) -> None:
        # A resumed sweep can restart a trial that Tune's experiment snapshot holds
        # but the searcher's checkpoint (saved apart from it) predates: the driver
        # was killed between the two saves. That trial runs and is tracked; Optuna,
        # which never suggested it, is not told of it (Ray's method raises KeyError).
        if trial_id in self._ot_trials or trial_id in self._completed_trials:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: Optional[Dict] = None, error: bool = False) -> None:
        if trial_id not in self._ot_trials and trial_id not in self._completed_trials:
            return None  # a trial this searcher never suggested (see on_trial_result)
        if trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result, error)
        ot_trial = self._ot_trials[trial_id]
        study = self._study()
        if error:
            study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
        elif result is None or not self.outcome.finished(result):
            # The result that made the scheduler stop the trial reaches only this
            # method, not on_trial_result: record it before telling PRUNED.
            if result and self.metric in result and "training_iteration" in result:
                ot_trial.report(result[self.metric], result["training_iteration"])
            study.tell(ot_trial, state=optuna.trial.TrialState.PRUNED)
        else:
            # rank finished trials by their best evaluation, as export does
            study.tell(ot_trial, result.get("best_score", result[self.metric]))
        self._completed_trials.add(trial_id)

    def add_finished_trials(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        """Trials run elsewhere (an earlier sweep), told to the sampler as finished.
        Ray's add_evaluated_point refuses a define-by-run space, so they go to the
        study directly."""
        study = self._study()
        for trial in trials:
            study.add_trial(trial)

    def _study(self) -> optuna.study.Study:
        # Ray's __init__ sets `_ot_study = None` (so its inferred type is None); its
        # _setup_study creates the study before any trial is suggested
        study: Any = self._ot_study
        if study is None:
            raise RuntimeError("OptunaSearch has no Optuna study yet: a trial completed before the searcher was set up")
        return study


class TrialWorkerOutOfMemory(RayActorError):
    """Ray's OutOfMemoryError (its memory monitor killed the trial's worker), handed
    to Ray Tune as the actor death it is."""

    def __init__(self, error_msg: str = "") -> None:
        super().__init__(error_msg=error_msg)

    def __reduce__(self):  # Tune pickles a trial's error
        return (type(self), (self.error_msg,))


def fail_trials_killed_for_memory() -> None:
    """Ray Tune 2.60's actor manager accepts a failed trial task's error only if it is a
    RayActorError or RayTaskError: the OutOfMemoryError Ray raises when its memory
    monitor kills a trial's worker stops the whole sweep (`RuntimeError: Caught
    unexpected exception`). Installed once, in the driver: such an error reaches Tune
    as the trial's actor death, so the trial fails alone (and is retried up to
    --max-failures) with Ray's message as its error."""
    from ray.air.execution._internal.actor_manager import RayActorManager

    original = RayActorManager._actor_task_failed
    if getattr(original, "archsweep_oom", False):
        return

    def _actor_task_failed(self, tracked_actor_task, exception):
        if isinstance(exception, OutOfMemoryError):
            exception = TrialWorkerOutOfMemory(f"ray.exceptions.OutOfMemoryError: {exception}")
        return original(self, tracked_actor_task, exception)

    _actor_task_failed.archsweep_oom = True  # type: ignore[attr-defined]
    RayActorManager._actor_task_failed = _actor_task_failed  # type: ignore[method-assign]  # the patch this function is for


def tuner_callbacks(tuner: Tuner) -> Optional[List[Any]]:
    """The callbacks list a Tuner (new or restored from disk) will run with; None
    when this Ray version keeps it elsewhere."""
    run_config = getattr(getattr(tuner, "_local_tuner", None), "_run_config", None)
    return getattr(run_config, "callbacks", None)
