"""FusedAdam: Thinc's optimizer with a compiled Adam step, the same updates."""

import numpy
import pytest
from thinc.api import Adam, Optimizer

from search.training.optimizer import FusedAdam


def _random(shape, seed, scale=1.0):
    return (numpy.random.default_rng(seed).standard_normal(shape) * scale).astype("float32")


SETTINGS = [
    dict(learn_rate=0.001),
    dict(learn_rate=0.01, L2=0.01, grad_clip=1.0, use_averages=True),
    dict(learn_rate=0.01, L2=0.1, L2_is_weight_decay=False, grad_clip=0.0),
    dict(learn_rate=0.005, grad_clip=100.0, beta1=0.8, beta2=0.99, eps=1e-6),
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("shape", [(7,), (30, 4), (3, 2, 5)])
def test_fused_adam_makes_thincs_updates(settings, shape):
    theirs = Adam(**settings)
    ours = FusedAdam.from_optimizer(Adam(**settings))
    w_ours, w_theirs = _random(shape, 0), _random(shape, 0)
    for step in range(5):
        grad = _random(shape, step + 1, scale=3.0)  # norms above and below the clip
        g_ours, g_theirs = grad.copy(), grad.copy()
        w_ours, g_ours = ours((1, "W"), w_ours, g_ours, lr_scale=0.5 if step == 3 else 1.0)
        w_theirs, g_theirs = theirs((1, "W"), w_theirs, g_theirs, lr_scale=0.5 if step == 3 else 1.0)
        numpy.testing.assert_allclose(w_ours, w_theirs, rtol=1e-5, atol=1e-6)
        assert not g_ours.any() and not g_theirs.any()
        ours.step_schedules()
        theirs.step_schedules()
    numpy.testing.assert_allclose(ours.mom1[(1, "W")], theirs.mom1[(1, "W")], rtol=1e-5, atol=1e-7)
    numpy.testing.assert_allclose(ours.mom2[(1, "W")], theirs.mom2[(1, "W")], rtol=1e-5, atol=1e-9)
    if settings.get("use_averages"):
        numpy.testing.assert_allclose(ours.averages[(1, "W")], theirs.averages[(1, "W")], rtol=1e-5, atol=1e-6)


def test_fused_adam_keeps_the_optimizers_settings_schedule_and_state():
    source = Adam(learn_rate=[0.1, 0.05, 0.02], L2=0.01, grad_clip=2.0, use_averages=False)
    source((3, "b"), _random(4, 1), _random(4, 2))
    fused = FusedAdam.from_optimizer(source)
    assert isinstance(fused, Optimizer)
    assert (fused.learn_rate, fused.L2, fused.grad_clip, fused.averages) == (0.1, 0.01, 2.0, None)
    assert fused.nr_update[(3, "b")] == 1 and (3, "b") in fused.mom1
    fused.step_schedules()
    assert fused.learn_rate == 0.05


def test_fused_adam_leaves_other_updates_to_thinc():
    for settings in (dict(use_radam=True), dict(beta1=0.0, beta2=0.0)):  # RAdam, plain SGD
        ours = FusedAdam.from_optimizer(Optimizer(0.01, **settings))
        w, _ = ours((1, "W"), _random(6, 1), _random(6, 2))
        w_ref, _ = Optimizer(0.01, **settings)((1, "W"), _random(6, 1), _random(6, 2))
        numpy.testing.assert_allclose(w, w_ref)


def test_fused_adam_refuses_moments_of_another_shape_as_thinc_does():
    ours = FusedAdam.from_optimizer(Adam(0.01))
    ours((1, "W"), _random(6, 1), _random(6, 2))
    with pytest.raises(ValueError):
        ours((1, "W"), _random(8, 1), _random(8, 2))  # a resized parameter under the same key
