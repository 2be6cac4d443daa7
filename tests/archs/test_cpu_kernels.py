"""The compiled CPU layers and ops against Thinc's own: the same function, faster."""

import numpy
import pytest
from thinc.api import LayerNorm as ThincLayerNorm
from thinc.api import Maxout, NumpyOps, fix_random_seed

from archs.cpu_ops import CpuOps
from archs.layers import LayerNorm, NormalizedMaxout
from archs.layers import Maxout as ArchsweepMaxout


def _random(shape, seed, scale=1.0, shift=0.0):
    return (numpy.random.default_rng(seed).standard_normal(shape) * scale + shift).astype("float32")


def _assert_same_layer(ours, theirs, X, dY, params, *, outputs, inputs, grads):
    """Forward, backward and parameter gradients agree; each tolerance is (rtol, atol)."""
    Y, backprop = ours(X, is_train=True)
    Y_ref, backprop_ref = theirs(X, is_train=True)
    numpy.testing.assert_allclose(Y, Y_ref, rtol=outputs[0], atol=outputs[1])
    numpy.testing.assert_allclose(backprop(dY), backprop_ref(dY), rtol=inputs[0], atol=inputs[1])
    for name in params:
        numpy.testing.assert_allclose(ours.get_grad(name), theirs.get_grad(name), rtol=grads[0], atol=grads[1])


@pytest.mark.parametrize("shape", [(1, 4), (7, 96), (300, 64), (0, 8)])
def test_layer_norm_matches_thincs_forward_backward_and_gradients(shape):
    n, width = shape
    ours, theirs = LayerNorm(nI=width), ThincLayerNorm(nI=width)
    for model in (ours, theirs):
        model.initialize()
        model.set_param("G", _random(width, 1, shift=1.0))
        model.set_param("b", _random(width, 2))
    X, dY = _random(shape, 3, scale=3.0, shift=1.0), _random(shape, 4)
    _assert_same_layer(ours, theirs, X, dY, ("G", "b"), outputs=(1e-5, 1e-5), inputs=(1e-4, 1e-5), grads=(1e-4, 1e-4))


def test_layer_norm_keeps_thincs_name_dims_and_params():
    ours, theirs = LayerNorm(nI=16), ThincLayerNorm(nI=16)
    ours.initialize()
    theirs.initialize()
    assert ours.name == theirs.name == "layernorm"
    assert ours.param_names == theirs.param_names
    assert (ours.get_dim("nI"), ours.get_dim("nO")) == (16, 16)
    numpy.testing.assert_array_equal(ours.get_param("G"), theirs.get_param("G"))


def test_layer_norm_loads_the_weights_thincs_saved():
    theirs = ThincLayerNorm(nI=8)
    theirs.initialize()
    theirs.set_param("G", _random(8, 5))
    ours = LayerNorm(nI=8).from_bytes(theirs.to_bytes())
    numpy.testing.assert_array_equal(ours.get_param("G"), theirs.get_param("G"))


def test_normalized_maxout_is_thincs_tree_and_function():
    ours = NormalizedMaxout(8, 12, nP=2, dropout=0.0)
    theirs = Maxout(8, 12, nP=2, dropout=0.0, normalize=True)
    assert [node.name for node in ours.walk()] == [node.name for node in theirs.walk()]
    X = _random((5, 12), 6)
    ours.initialize(X=X)
    theirs.initialize(X=X)
    theirs.from_bytes(ours.to_bytes())
    numpy.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5])
def test_cpu_ops_dropout_mask_drops_at_the_rate_and_rescales(rate):
    mask = CpuOps().get_dropout_mask((400, 250), rate)
    assert mask.dtype == numpy.float32 and mask.shape == (400, 250)
    assert numpy.unique(mask).tolist() == [0.0, pytest.approx(1 / (1 - rate))]
    assert abs(float((mask == 0).mean()) - rate) < 0.01


def test_cpu_ops_dropout_mask_follows_the_seed():
    ops = CpuOps()
    fix_random_seed(3)
    first = ops.get_dropout_mask((50, 20), 0.3)
    fix_random_seed(3)
    numpy.testing.assert_array_equal(first, ops.get_dropout_mask((50, 20), 0.3))
    assert not numpy.array_equal(first, ops.get_dropout_mask((50, 20), 0.3))


@pytest.mark.parametrize("rate", [None, 0.0, 1.0])
def test_cpu_ops_dropout_mask_edge_rates_match_numpy_ops(rate):
    numpy.testing.assert_array_equal(CpuOps().get_dropout_mask((3, 4), rate), NumpyOps().get_dropout_mask((3, 4), rate))


@pytest.mark.parametrize("shape", [(5, 7, 3), (1, 1, 2), (0, 4, 3), (64, 96, 1)])
def test_cpu_ops_maxout_matches_numpy_ops(shape):
    X = _random(shape, 7)
    X[:, :, -1] = X[:, :, 0]  # ties go to the first piece
    best, which = CpuOps().maxout(X)
    best_ref, which_ref = NumpyOps().maxout(X)
    numpy.testing.assert_array_equal(best, best_ref)
    numpy.testing.assert_array_equal(which, which_ref)
    assert which.dtype == which_ref.dtype and best.dtype == best_ref.dtype


def test_layer_norm_lets_non_finite_inputs_through_as_non_finite():
    model = LayerNorm(nI=4)
    model.initialize()
    X = numpy.array([[numpy.inf, -numpy.inf, 1.0, 2.0], [numpy.nan, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype="float32")
    Y, backprop = model(X, is_train=True)
    assert not numpy.isfinite(Y[:2]).any()
    numpy.testing.assert_array_equal(Y[2], numpy.zeros(4, dtype="float32"))  # a constant row normalises to 0
    assert backprop(numpy.ones_like(X)).shape == X.shape


@pytest.mark.parametrize("size", [1, 63, 1000])
def test_cpu_ops_adam_matches_numpy_ops_and_zeroes_the_gradient(size):
    arrays = [_random(size, 10), _random(size, 11), _random(size, 12) * 0.1, numpy.abs(_random(size, 13)) * 0.01]
    ours = [a.copy() for a in arrays]
    theirs = [a.copy() for a in arrays]
    for _ in range(3):
        ours[1][:] = theirs[1][:] = arrays[1]
        CpuOps().adam(*ours, 0.9, 0.999, 1e-8, 0.01)
        NumpyOps().adam(*theirs, 0.9, 0.999, 1e-8, 0.01)
        for mine, reference in zip(ours, theirs):
            numpy.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-7)
    assert not ours[1].any()


def test_cpu_ops_gather_add_matches_numpy_ops_and_checks_indices():
    table = _random((50, 8), 14)
    indices = numpy.random.default_rng(15).integers(0, 50, (30, 4)).astype("uint32")
    numpy.testing.assert_allclose(CpuOps().gather_add(table, indices), NumpyOps().gather_add(table, indices), rtol=1e-6, atol=1e-6)
    indices[3, 2] = 50
    with pytest.raises(IndexError):
        CpuOps().gather_add(table, indices)


@pytest.mark.parametrize("n,nO,nP,nI", [(9, 5, 3, 7), (1, 1, 2, 1), (2, 4, 2, 3), (40, 16, 1, 8)])
def test_maxout_matches_thincs_forward_backward_and_gradients(n, nO, nP, nI):
    ours, theirs = ArchsweepMaxout(nO, nI, nP=nP), Maxout(nO, nI, nP=nP)
    X, dY = _random((n, nI), 20), _random((n, nO), 21)
    ours.initialize(X=X)
    theirs.initialize(X=X)
    ours.set_param("b", _random((nO, nP), 22))
    theirs.from_bytes(ours.to_bytes())
    _assert_same_layer(ours, theirs, X, dY, ("W", "b"), outputs=(1e-5, 1e-6), inputs=(1e-5, 1e-5), grads=(1e-5, 1e-5))


def test_maxout_keeps_thincs_name_dims_params_and_initialisation():
    ours, theirs = ArchsweepMaxout(6, 4, nP=2), Maxout(6, 4, nP=2)
    ours.initialize()
    theirs.initialize()
    assert ours.name == theirs.name == "maxout"
    assert ours.param_names == theirs.param_names
    assert [ours.get_dim(d) for d in ("nO", "nI", "nP")] == [6, 4, 2]
    assert ours.get_param("W").shape == theirs.get_param("W").shape == (6, 2, 4)
    assert not ours.get_param("b").any() and ours.get_param("W").std() > 0


def test_maxout_takes_an_empty_batch():
    model = ArchsweepMaxout(4, 3, nP=2)
    model.initialize()
    Y, backprop = model(numpy.zeros((0, 3), dtype="float32"), is_train=True)
    assert Y.shape == (0, 4)
    assert backprop(numpy.zeros((0, 4), dtype="float32")).shape == (0, 3)
