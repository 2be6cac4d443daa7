"""A trial's status once it has ended (search/sweep/outcome.py): finished when
training ended by itself or at ASHA's last rung, pruned otherwise."""

import pytest

from search.sweep import SweepSettings
from search.sweep.outcome import TrialOutcome

BY_EVALUATIONS = TrialOutcome("training_iteration", 3.0)
BY_EPOCHS = TrialOutcome("epochs_trained", 1.0)


@pytest.mark.parametrize(
    "outcome, result, failed, status",
    [
        (TrialOutcome(), {"training_finished": True}, False, "finished"),
        (TrialOutcome(), {"training_finished": False, "training_iteration": 99}, False, "pruned"),
        (TrialOutcome(), None, False, "pruned"),
        (TrialOutcome(), {"training_finished": True}, True, "failed"),
        # ASHA stopped it at max_t, before its closing report: it trained all it was allowed
        (BY_EVALUATIONS, {"training_finished": False, "training_iteration": 3}, False, "finished"),
        (BY_EVALUATIONS, {"training_finished": False, "training_iteration": 2}, False, "pruned"),
        (BY_EPOCHS, {"training_finished": False, "epochs_trained": 1.0}, False, "finished"),
        (BY_EPOCHS, {"training_finished": False, "epochs_trained": 0.5}, False, "pruned"),
        (BY_EPOCHS, {"training_finished": False}, False, "pruned"),
        (BY_EPOCHS, {"training_finished": False, "epochs_trained": 1.0}, True, "failed"),
    ],
)
def test_status_of_an_ended_trial(outcome, result, failed, status):
    assert outcome.status(result, failed=failed) == status


@pytest.mark.parametrize(
    "scheduler, time_attr, expected",
    [
        ("asha", "evaluations", TrialOutcome("training_iteration", 4.0)),
        ("asha", "epochs", TrialOutcome("epochs_trained", 4.0)),
        ("none", "epochs", TrialOutcome()),  # no last rung: only the closing report says finished
    ],
)
def test_the_rule_follows_the_scheduler(scheduler, time_attr, expected):
    settings = SweepSettings(space_path="space.cfg", scheduler=scheduler, time_attr=time_attr, max_t=4)
    assert TrialOutcome.of(settings) == expected
