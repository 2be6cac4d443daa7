"""Tests for the CharacterEmbed and BiLSTM layers (NumpyOps; CupyOps if a GPU is present)."""

import numpy
import pytest
from thinc.api import set_dropout_rate, use_ops
from thinc.util import has_cupy_gpu

from archs.features import Doc
from archs.layers.bilstm import BiLSTM
from archs.layers.character_embed import CharacterEmbed
from archs.registry import registry

WORDS = [["Héllo", "a", "world", "!"], [], ["naïve", "x", "longerword", "ok", "日本"]]


def _docs():
    return [Doc(words) for words in WORDS]


def _char_reference(E, docs, nC):
    """Straightforward per-token, per-slot lookup of UTF-8 bytes."""
    nM = E.shape[2]
    outputs = []
    for doc in docs:
        rows = []
        for word in doc.words:
            data = word.encode("utf8")
            order, lo, hi = [], 0, len(data) - 1
            while lo <= hi:
                order.append(lo)
                if hi != lo:
                    order.append(hi)
                lo, hi = lo + 1, hi - 1
            byte_ids = [data[j] for j in order[:nC]] + [255] * (nC - min(nC, len(order)))
            rows.append(numpy.concatenate([E[c, byte_ids[c]] for c in range(nC)]))
        outputs.append(numpy.array(rows, dtype=E.dtype).reshape((len(doc), nM * nC)))
    return outputs


# ---------------------------------------------------------------- CharacterEmbed


def test_character_embed_registered_and_dims():
    model = registry.layers.get("archsweep.CharacterEmbed.v1")(nM=8, nC=4)
    assert model.get_dim("nO") == 32
    model.initialize()
    assert model.get_param("E").shape == (4, 256, 8)


def test_character_embed_zero_init_shapes():
    model = CharacterEmbed(nM=6, nC=5)
    model.initialize()
    docs = _docs()
    Ys = model.predict(docs)
    assert [y.shape for y in Ys] == [(len(d), 30) for d in docs]
    assert all(not y.any() for y in Ys)
    assert not model.get_param("E").any()


def test_character_embed_empty():
    model = CharacterEmbed(nM=3, nC=2)
    model.initialize()
    Ys, backprop = model([], is_train=True)
    assert Ys == [] and backprop([]) == []
    Ys, backprop = model([Doc([]), Doc([])], is_train=True)
    assert [y.shape for y in Ys] == [(0, 6), (0, 6)]
    assert backprop(Ys) == []


def test_character_embed_matches_reference_and_gradient():
    nM, nC = 3, 6
    model = CharacterEmbed(nM=nM, nC=nC)
    model.initialize()
    rng = numpy.random.default_rng(0)
    E = rng.normal(size=(nC, 256, nM)).astype("float32")
    model.set_param("E", E.copy())
    docs = _docs()
    Ys, backprop = model(docs, is_train=True)
    expected = _char_reference(E, docs, nC)
    for y, e in zip(Ys, expected):
        numpy.testing.assert_array_equal(y, e)
    # Y is linear in E: for L = sum(Y * R), dL/dE[c, byte] sums R's slot-c
    # columns over the tokens whose slot c holds that byte.
    Rs = [rng.normal(size=y.shape).astype("float32") for y in Ys]
    assert backprop(Rs) == []
    dE = numpy.zeros_like(E)
    for doc, R in zip(docs, Rs):
        ids = doc.char_ids(nC)
        for t in range(len(doc)):
            for c in range(nC):
                dE[c, ids[t, c]] += R[t, c * nM : (c + 1) * nM]
    numpy.testing.assert_allclose(model.get_grad("E"), dE, rtol=1e-5, atol=1e-5)
    # Finite-difference check of a few touched entries (exact up to rounding: linear).
    def loss():
        return sum(float((y * R).sum()) for y, R in zip(model.predict(docs), Rs))

    for c, byte, j in [(0, ord("H"), 0), (1, ord("o"), 2), (5, 255, 1)]:
        P = model.get_param("E").copy()
        P[c, byte, j] += 0.5
        model.set_param("E", P)
        up = loss()
        P[c, byte, j] -= 1.0
        model.set_param("E", P)
        down = loss()
        assert (up - down) / 1.0 == pytest.approx(dE[c, byte, j], rel=1e-3, abs=1e-3)
    # The gradient accumulates.
    backprop(Rs)
    numpy.testing.assert_allclose(model.get_grad("E"), 2 * dE, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- BiLSTM


def _n_params(model):
    return sum(model.get_param(name).size for name in model.param_names)


@pytest.mark.parametrize("depth", [1, 2])
def test_bilstm_param_count(depth):
    w, h = 96, 48
    model = registry.layers.get("archsweep.BiLSTM.v1")(nO=w, nI=w, depth=depth)
    model.initialize()
    assert _n_params(model) == depth * 2 * (4 * h * (w + h) + 8 * h)
    assert _n_params(model) == depth * 56064
    assert set(model.param_names) == {
        f"{p}_{layer}_{d}" for p in ("Wx", "Wh", "bx", "bh") for layer in range(depth) for d in "fb"
    }


def test_bilstm_param_count_nI_differs():
    nI, nO, h, depth = 10, 8, 4, 3
    model = BiLSTM(nO, nI, depth=depth)
    model.initialize()
    expected = 2 * (4 * h * (nI + h) + 8 * h) + (depth - 1) * 2 * (4 * h * (nO + h) + 8 * h)
    assert _n_params(model) == expected
    assert model.get_param("Wx_0_f").shape == (4 * h, nI)
    assert model.get_param("Wx_1_b").shape == (4 * h, nO)
    assert model.get_param("Wh_2_f").shape == (4 * h, h)


def test_bilstm_odd_nO_rejected():
    with pytest.raises(ValueError, match="even"):
        BiLSTM(7, 4)
    model = BiLSTM(None, 4)
    with pytest.raises(ValueError, match="even"):
        model.initialize(Y=[numpy.zeros((2, 5), dtype="f")])


def test_bilstm_infers_dims_and_shapes():
    rng = numpy.random.default_rng(1)
    Xs = [rng.normal(size=(n, 6)).astype("float32") for n in [5, 0, 3, 7]]
    model = BiLSTM(depth=2)
    model.initialize(X=Xs, Y=[numpy.zeros((n, 8), dtype="f") for n in [5, 0, 3, 7]])
    assert model.get_dim("nI") == 6 and model.get_dim("nO") == 8
    Ys, backprop = model(Xs, is_train=True)
    assert [y.shape for y in Ys] == [(5, 8), (0, 8), (3, 8), (7, 8)]
    dXs = backprop([numpy.ones_like(y) for y in Ys])
    assert [dx.shape for dx in dXs] == [x.shape for x in Xs]
    assert all(numpy.isfinite(dx).all() for dx in dXs)
    assert all(model.get_grad(name).shape == model.get_param(name).shape for name in model.param_names)


def test_bilstm_empty_inputs():
    model = BiLSTM(4, 3, depth=2)
    model.initialize()
    Ys, backprop = model([], is_train=True)
    assert Ys == [] and backprop([]) == []
    Ys, backprop = model([numpy.zeros((0, 3), dtype="f")] * 2, is_train=True)
    assert [y.shape for y in Ys] == [(0, 4), (0, 4)]
    assert [dx.shape for dx in backprop(Ys)] == [(0, 3), (0, 3)]


def _float64_model(nO, nI, depth, seed=0):
    model = BiLSTM(nO, nI, depth=depth)
    model.initialize()
    rng = numpy.random.default_rng(seed)
    for name in model.param_names:
        # Nonzero biases so the bias gradients are exercised on a generic point.
        P = model.get_param(name).astype("float64") + rng.normal(scale=0.3, size=model.get_param(name).shape)
        model.set_param(name, P)
    return model


def test_bilstm_gradient_check():
    nI, nO, depth = 3, 4, 2
    rng = numpy.random.default_rng(2)
    with use_ops("numpy", use_blis=False):  # float64 gemm
        model = _float64_model(nO, nI, depth)
        Xs = [rng.normal(size=(n, nI)) for n in [3, 0, 1, 4]]
        Rs = [rng.normal(size=(n, nO)) for n in [3, 0, 1, 4]]

        def loss(Xs):
            Ys = model.predict(Xs)
            return sum(float((y * r).sum()) for y, r in zip(Ys, Rs))

        Ys, backprop = model(Xs, is_train=True)
        assert all(y.dtype == numpy.float64 for y in Ys)
        dXs = backprop(Rs)
        eps = 1e-6
        for k, X in enumerate(Xs):
            for idx in numpy.ndindex(*X.shape):
                X[idx] += eps
                up = loss(Xs)
                X[idx] -= 2 * eps
                down = loss(Xs)
                X[idx] += eps
                assert (up - down) / (2 * eps) == pytest.approx(dXs[k][idx], rel=1e-5, abs=1e-7)
        for name in ["Wx_0_f", "Wh_0_b", "bx_0_f", "bh_0_b", "Wx_1_b", "Wh_1_f", "bh_1_f", "bx_1_b"]:
            P = model.get_param(name)
            grad = model.get_grad(name)
            for flat in rng.choice(P.size, size=4, replace=False):
                idx = numpy.unravel_index(flat, P.shape)
                P[idx] += eps
                up = loss(Xs)
                P[idx] -= 2 * eps
                down = loss(Xs)
                P[idx] += eps
                assert (up - down) / (2 * eps) == pytest.approx(grad[idx], rel=1e-5, abs=1e-7), (name, idx)


def _lstm_reference(X, Wx, Wh, bx, bh):
    """torch.nn.LSTM's equations for one sequence, one direction, gates (i, f, g, o)."""
    def sig(z):
        return 1.0 / (1.0 + numpy.exp(-z))

    h = Wh.shape[1]
    h_t, c_t, out = numpy.zeros(h), numpy.zeros(h), []
    for x in X:
        z = Wx @ x + bx + Wh @ h_t + bh
        i, f, g, o = sig(z[:h]), sig(z[h : 2 * h]), numpy.tanh(z[2 * h : 3 * h]), sig(z[3 * h :])
        c_t = f * c_t + i * g
        h_t = o * numpy.tanh(c_t)
        out.append(h_t)
    return numpy.array(out).reshape((len(X), h))


def test_bilstm_matches_reference_equations():
    nI, nO, depth = 3, 6, 2
    rng = numpy.random.default_rng(7)
    with use_ops("numpy", use_blis=False):
        model = _float64_model(nO, nI, depth, seed=7)
        Xs = [rng.normal(size=(n, nI)) for n in [4, 2, 0]]
        Ys = model.predict(Xs)
    P = {name: model.get_param(name) for name in model.param_names}
    for X, Y in zip(Xs, Ys):
        inp = X
        for layer in range(depth):
            def args(d):
                return P[f"Wx_{layer}_{d}"], P[f"Wh_{layer}_{d}"], P[f"bx_{layer}_{d}"], P[f"bh_{layer}_{d}"]

            fwd = _lstm_reference(inp, *args("f"))
            bwd = _lstm_reference(inp[::-1], *args("b"))[::-1]
            inp = numpy.concatenate([fwd, bwd], axis=1)
        numpy.testing.assert_allclose(Y, inp, rtol=1e-10, atol=1e-12)


def test_bilstm_padding_does_not_leak():
    rng = numpy.random.default_rng(3)
    model = BiLSTM(8, 5, depth=2)
    model.initialize()
    for name in model.param_names:
        if name.startswith("b"):
            model.set_param(name, rng.normal(scale=0.5, size=model.get_param(name).shape).astype("f"))
    short = rng.normal(size=(3, 5)).astype("float32")
    batch = [rng.normal(size=(9, 5)).astype("f"), short, numpy.zeros((0, 5), dtype="f"), rng.normal(size=(6, 5)).astype("f")]
    R = rng.normal(size=(3, 8)).astype("float32")

    Y_alone, bp_alone = model([short], is_train=True)
    dX_alone = bp_alone([R])[0]
    grads_alone = {name: model.get_grad(name).copy() for name in model.param_names}
    for name in model.param_names:
        model.set_grad(name, model.ops.alloc(model.get_param(name).shape))

    Ys, bp = model(batch, is_train=True)
    dYs = [numpy.zeros_like(y) for y in Ys]
    dYs[1] = R
    dX_batch = bp(dYs)
    numpy.testing.assert_allclose(Ys[1], Y_alone[0], rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(dX_batch[1], dX_alone, rtol=1e-5, atol=1e-6)
    for i in (0, 2, 3):
        assert not dX_batch[i].any()
    for name in model.param_names:
        numpy.testing.assert_allclose(model.get_grad(name), grads_alone[name], rtol=1e-4, atol=1e-6)


def test_bilstm_reversal_swaps_directions():
    rng = numpy.random.default_rng(4)
    model = BiLSTM(6, 4, depth=1)
    model.initialize()
    for p in ("Wx", "Wh", "bx", "bh"):
        model.set_param(f"{p}_0_b", model.get_param(f"{p}_0_f").copy())
    X = rng.normal(size=(5, 4)).astype("float32")
    Y = model.predict([X])[0]
    Y_rev = model.predict([X[::-1].copy()])[0][::-1]
    numpy.testing.assert_allclose(Y_rev[:, :3], Y[:, 3:], rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(Y_rev[:, 3:], Y[:, :3], rtol=1e-5, atol=1e-6)


def test_bilstm_dropout_fixed_rate_between_layers_only():
    rng = numpy.random.default_rng(5)
    Xs = [rng.normal(size=(n, 4)).astype("float32") for n in [4, 2]]
    model = BiLSTM(6, 4, depth=2, dropout=0.5)
    model.initialize()
    set_dropout_rate(model, 0.9)
    assert model.attrs["lstm_dropout_rate"] == 0.5
    assert "dropout_rate" not in model.attrs
    Y_eval = model.predict(Xs)
    for y, y2 in zip(Y_eval, model.predict(Xs)):
        numpy.testing.assert_array_equal(y, y2)
    Y_train, backprop = model(Xs, is_train=True)
    assert any(not numpy.allclose(a, b) for a, b in zip(Y_eval, Y_train))
    assert [dx.shape for dx in backprop([numpy.ones_like(y) for y in Y_train])] == [x.shape for x in Xs]
    # With a single layer there is no inter-layer output to drop.
    single = BiLSTM(6, 4, depth=1, dropout=0.5)
    single.initialize()
    for a, b in zip(single.predict(Xs), single(Xs, is_train=True)[0]):
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- CupyOps


@pytest.mark.skipif(not has_cupy_gpu, reason="cupy with a CUDA GPU is not available; CupyOps comparison skipped")
def test_cupy_matches_numpy():
    from thinc.api import CupyOps

    cupy_ops = CupyOps()
    rng = numpy.random.default_rng(6)

    def run(model, Xs, dYs_fn):
        Ys, backprop = model(Xs, is_train=True)
        return Ys, backprop(dYs_fn(Ys))

    # BiLSTM, with padding and an empty doc.
    cpu = BiLSTM(8, 5, depth=2)
    cpu.initialize()
    with use_ops("cupy"):
        gpu = BiLSTM(8, 5, depth=2)
    gpu.initialize()
    for name in cpu.param_names:
        gpu.set_param(name, cupy_ops.asarray(cpu.get_param(name)))
    Xs = [rng.normal(size=(n, 5)).astype("f") for n in [5, 0, 3, 7]]
    Rs = [rng.normal(size=(n, 8)).astype("f") for n in [5, 0, 3, 7]]
    Y_cpu, dX_cpu = run(cpu, Xs, lambda Ys: Rs)
    Y_gpu, dX_gpu = run(gpu, [cupy_ops.asarray(x) for x in Xs], lambda Ys: [cupy_ops.asarray(r) for r in Rs])
    for a, b in list(zip(Y_cpu, Y_gpu)) + list(zip(dX_cpu, dX_gpu)):
        numpy.testing.assert_allclose(a, cupy_ops.to_numpy(b), rtol=1e-4, atol=1e-5)
    for name in cpu.param_names:
        numpy.testing.assert_allclose(cpu.get_grad(name), cupy_ops.to_numpy(gpu.get_grad(name)), rtol=1e-4, atol=1e-5)
    assert run(gpu, [], lambda Ys: []) == ([], [])

    # CharacterEmbed.
    cpu = CharacterEmbed(nM=3, nC=4)
    cpu.initialize()
    with use_ops("cupy"):
        gpu = CharacterEmbed(nM=3, nC=4)
    gpu.initialize()
    E = rng.normal(size=(4, 256, 3)).astype("f")
    cpu.set_param("E", E.copy())
    gpu.set_param("E", cupy_ops.asarray(E))
    docs = _docs()
    Rs = [rng.normal(size=(len(d), 12)).astype("f") for d in docs]
    Y_cpu, _ = run(cpu, docs, lambda Ys: Rs)
    Y_gpu, _ = run(gpu, docs, lambda Ys: [cupy_ops.asarray(r) for r in Rs])
    for a, b in zip(Y_cpu, Y_gpu):
        numpy.testing.assert_allclose(a, cupy_ops.to_numpy(b), rtol=1e-6)
    numpy.testing.assert_allclose(cpu.get_grad("E"), cupy_ops.to_numpy(gpu.get_grad("E")), rtol=1e-5, atol=1e-6)
