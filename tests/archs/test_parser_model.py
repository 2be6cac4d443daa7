"""spacy.TransitionBasedParser.v1 and its PrecomputableAffine layer.

Parameter counts are spaCy 3.8's (rows 16/17 are spaCy's v2 = the
correct use_upper=false sizes) and §3.3 (75 EWT actions); the step model is
checked against a closed form of the graph and by finite differences.
"""

import contextlib
import time
from typing import Dict, Iterator, List, Tuple

import numpy
import pytest
from confection import Config
from thinc.api import Adam, CupyOps, Model, NumpyOps, fix_random_seed, get_current_ops, set_current_ops, use_ops
from thinc.util import has_cupy_gpu

from archs import make_docs, registry
from archs.cpu_ops import CpuOps
from archs.layers import PrecomputableAffine
from archs.outputs import resize_output
from archs.parser import ParserStepModel, n_actions

PARSER = "spacy.TransitionBasedParser.v1"

# spaCy's English tokenization of the three sample texts spaCy's counts were taken on (10, 13, 8 tokens).
PARITY_WORDS = [
    ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "."],
    ["Apple", "is", "looking", "at", "buying", "a", "U.K.", "startup", "for", "$", "1", "billion", "."],
    ["I", "like", "walking", "outdoors", "in", "New", "York", "."],
]
T2V = dict(width=96, depth=4, embed_size=2000, window_size=1, maxout_pieces=3, subword_features=True)
SMALL_T2V = dict(width=16, depth=1, embed_size=200, window_size=1, maxout_pieces=2, subword_features=False)

OPS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("cpu", id="cpu"),  # archsweep's CpuOps: the step's compiled kernels
    pytest.param(
        "cupy",
        id="cupy",
        marks=pytest.mark.skipif(not has_cupy_gpu, reason="no CUDA GPU with CuPy available"),
    ),
]


@contextlib.contextmanager
def ops_named(name: str) -> Iterator[None]:
    """Thinc's use_ops, and "cpu" for archsweep's CpuOps (what training runs on)."""
    if name != "cpu":
        with use_ops(name):
            yield
        return
    previous = get_current_ops()
    set_current_ops(CpuOps())
    try:
        yield
    finally:
        set_current_ops(previous)


def parser(tok2vec: Model, **kwargs) -> Model:
    return registry.architectures.get(PARSER)(tok2vec=tok2vec, **kwargs)


def hash_embed_cnn(**kwargs) -> Model:
    return registry.architectures.get("spacy.HashEmbedCNN.v1")(**kwargs)


def random_ids(rng, n_states: int, nF: int, n_tokens: int, p_missing: float = 0.25) -> numpy.ndarray:
    ids = rng.integers(0, n_tokens, size=(n_states, nF)).astype("int32")
    ids[rng.random(ids.shape) < p_missing] = -1
    return ids


def host(model: Model, array) -> numpy.ndarray:
    return model.ops.to_numpy(array)


def snapshot(model: Model) -> Dict[tuple, numpy.ndarray]:
    return {
        (node.id, name): host(model, node.get_param(name)).copy()
        for node in model.walk()
        for name in node.param_names
        if node.has_param(name)
    }


# ------------------------------------------------------------ parameter counts


@pytest.mark.parametrize(
    "nF,n_act,use_upper,expected",
    [
        pytest.param(8, 128, True, 1_005_984, id="row14-parser"),
        pytest.param(3, 14, True, 956_974, id="row15-ner"),
        pytest.param(8, 128, False, 1_064_352, id="row16-parser-no-upper"),
        pytest.param(3, 14, False, 936_464, id="row17-ner-no-upper"),
        pytest.param(8, 75, True, 1_002_539, id="ewt-75-actions"),
    ],
)
def test_param_counts_equal_reference(nF, n_act, use_upper, expected, count_params):
    docs = make_docs(PARITY_WORDS)
    model = parser(hash_embed_cnn(**T2V), nr_feature_tokens=nF, hidden_width=64, maxout_pieces=2, use_upper=use_upper)
    assert n_actions(model) is None
    resize_output(model, n_act)
    assert n_actions(model) == n_act
    model.initialize(X=docs)
    assert count_params(model) == expected
    # closed form: t2v + H·w + H + nF·H·P·H + H·P + nF·H·P + (nA·H + nA)
    H, P, w = 64, 2, 96
    nO_lower = H if use_upper else n_act
    upper = n_act * H + n_act if use_upper else 0
    assert expected == 924_768 + H * w + H + nF * nO_lower * P * H + nO_lower * P + nF * nO_lower * P + upper
    step = model.predict(docs)
    assert step.n_tokens == 31 and step.doc_offsets == [0, 10, 23]
    assert step.predict(numpy.array([[0] * nF, [-1] * nF, [30] * nF], dtype="int32")).shape == (3, n_act)


def test_row14_layer_shapes():
    model = parser(hash_embed_cnn(**T2V), nr_feature_tokens=8, hidden_width=64, maxout_pieces=2, nO=128)
    model.initialize(X=make_docs(PARITY_WORDS))
    lower, upper = model.get_ref("lower"), model.get_ref("upper")
    assert lower.get_param("W").shape == (8, 64, 2, 64)
    assert lower.get_param("b").shape == (64, 2)
    assert lower.get_param("pad").shape == (1, 8, 64, 2)
    assert upper.get_param("W").shape == (128, 64) and upper.get_param("b").shape == (128,)
    assert not upper.get_param("W").any()  # zero-initialised output layer
    linear = model.get_ref("tok2vec").layers[-1]
    assert linear.get_param("W").shape == (64, 96)
    assert model.attrs["nr_feature_tokens"] == 8 and model.attrs["use_upper"] is True
    assert [layer.name for layer in model.layers][1:] == ["precomputable_affine", "linear"]


def test_no_upper_has_no_upper_ref():
    model = parser(hash_embed_cnn(**SMALL_T2V), nr_feature_tokens=3, hidden_width=8, maxout_pieces=2, use_upper=False, nO=14)
    assert not model.has_ref("upper")
    assert model.get_ref("lower").get_dim("nO") == 14


def test_resolves_from_config():
    config = f"""
[model]
@architectures = "{PARSER}"
nr_feature_tokens = 3
hidden_width = 16
maxout_pieces = 2
use_upper = false
nO = null

[model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v1"
width = 16
depth = 1
embed_size = 200
window_size = 1
maxout_pieces = 2
subword_features = false
"""
    model = registry.resolve(Config().from_str(config))["model"]
    resize_output(model, 6)
    docs = make_docs(PARITY_WORDS)
    model.initialize(X=docs)
    assert model.predict(docs).predict(numpy.zeros((4, 3), dtype="int32")).shape == (4, 6)


# --------------------------------------------------------------- n_actions


def test_initialize_without_actions_raises():
    model = parser(hash_embed_cnn(**SMALL_T2V), nr_feature_tokens=3, hidden_width=8, maxout_pieces=2)
    with pytest.raises(ValueError, match="resize_output"):
        model.initialize(X=make_docs(PARITY_WORDS))


@pytest.mark.parametrize("use_upper", [True, False])
def test_resize_output_grows_an_initialized_model(use_upper):
    docs = make_docs(PARITY_WORDS)
    fix_random_seed(0)
    model = parser(hash_embed_cnn(**SMALL_T2V), nr_feature_tokens=3, hidden_width=8, maxout_pieces=2, use_upper=use_upper, nO=4)
    model.initialize(X=docs)
    name = "upper" if use_upper else "lower"
    if use_upper:  # make the old rows distinguishable from the new zero rows
        model.get_ref("upper").set_param("W", numpy.random.default_rng(0).normal(size=(4, 8)).astype("float32"))
    ids = random_ids(numpy.random.default_rng(1), 6, 3, 31)
    before = model.predict(docs).predict(ids)
    assert resize_output(model, 4) == []
    assert resize_output(model, 7) == [4, 5, 6]
    assert model.get_ref(name).get_dim("nO") == 7 and n_actions(model) == 7
    assert model.get_ref(name) in model.layers
    after = model.predict(docs).predict(ids)
    assert after.shape == (6, 7)
    numpy.testing.assert_allclose(after[:, :4], before, rtol=1e-5, atol=1e-6)
    if use_upper:
        numpy.testing.assert_array_equal(after[:, 4:], 0.0)
    with pytest.raises(ValueError, match="shrink"):
        resize_output(model, 5)
    # the grown model trains and round-trips
    step, finish = model.begin_update(docs)
    scores, backprop = step.score(ids)
    backprop(numpy.ones_like(scores))
    finish(None)
    model.finish_update(Adam(0.001))
    clone = parser(hash_embed_cnn(**SMALL_T2V), nr_feature_tokens=3, hidden_width=8, maxout_pieces=2, use_upper=use_upper, nO=7)
    clone.from_bytes(model.to_bytes())
    numpy.testing.assert_array_equal(clone.predict(docs).predict(ids), model.predict(docs).predict(ids))


# ------------------------------------------------------- PrecomputableAffine


def test_precomputable_affine_forward_and_gradients():
    rng = numpy.random.default_rng(0)
    nO, nI, nF, nP, N = 3, 4, 2, 2, 5
    layer = PrecomputableAffine(nO, nI, nF, nP)
    layer.initialize()
    W, pad = layer.get_param("W"), layer.get_param("pad")
    X = rng.normal(size=(N, nI)).astype("float32")
    Yf, backprop = layer.begin_update(X)
    assert Yf.shape == (N + 1, nF, nO, nP)
    numpy.testing.assert_array_equal(Yf[0], pad[0])
    numpy.testing.assert_allclose(Yf[1:], numpy.einsum("fopi,ni->nfop", W, X), rtol=1e-5, atol=1e-5)

    G = rng.normal(size=Yf.shape).astype("float32")
    dX = backprop(G)
    assert dX.shape == (N, nI)
    dW, dpad = layer.get_grad("W").copy(), layer.get_grad("pad").copy()
    assert not layer.has_grad("b")  # b is added (and its gradient taken) by the consumer

    def loss() -> float:
        return float((layer.predict(X).astype("float64") * G).sum())

    eps = 1e-2
    for array, analytic in ((W, dW), (pad, dpad), (X, dX)):
        numeric = numpy.zeros_like(analytic)
        for idx in numpy.ndindex(array.shape):
            old = array[idx]
            array[idx] = old + eps
            up = loss()
            array[idx] = old - eps
            down = loss()
            array[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        numpy.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-3)


def test_precomputable_affine_init_is_lsuv_normalised():
    fix_random_seed(0)
    nO, nI, nF, nP = 64, 64, 8, 2
    layer = PrecomputableAffine(nO, nI, nF, nP)
    start = time.perf_counter()
    layer.initialize()
    assert time.perf_counter() - start < 1.0
    W, b, pad = layer.get_param("W"), layer.get_param("b"), layer.get_param("pad")
    assert 0.7 < pad.std() < 1.3 and abs(pad.mean()) < 0.1
    assert (b == b.flat[0]).all()  # one scalar mean shift
    # fresh random states over fresh whitened tokens: ~unit variance, ~zero mean
    rng = numpy.random.default_rng(1)
    X = rng.normal(size=(4000, nI)).astype("float32")
    ids = rng.integers(0, 4000, size=(4000, nF))
    Yf = layer.predict(X)[1:]
    pre = Yf[ids, numpy.arange(nF)].sum(axis=1) + b
    acts = pre.max(axis=-1)
    assert abs(acts.var() - 1.0) < 0.1 and abs(acts.mean()) < 0.1
    # already-initialised weights are kept
    layer.initialize()
    assert layer.get_param("W") is W or numpy.array_equal(layer.get_param("W"), W)


def test_precomputable_affine_infers_nI():
    layer = PrecomputableAffine(3, None, 2, 1)
    layer.initialize(X=numpy.zeros((2, 5), dtype="float32"))
    assert layer.get_dim("nI") == 5 and layer.get_param("W").shape == (2, 3, 1, 5)


# --------------------------------------------------------------- step model


def reference_scores(model: Model, step: ParserStepModel, ids: numpy.ndarray) -> numpy.ndarray:
    """The parser model's graph written out state by state in float64."""
    lower = model.get_ref("lower")
    W = host(model, lower.get_param("W")).astype("float64")
    b = host(model, lower.get_param("b")).astype("float64")
    pad = host(model, lower.get_param("pad")).astype("float64")
    X = host(model, step.tokvecs).astype("float64")
    nF, nO, nP, _ = W.shape
    rows = []
    for state in ids:
        h = b.copy()
        for f, token in enumerate(state):
            h += pad[0, f] if token < 0 else W[f] @ X[token]
        if nP >= 2:
            h = h.max(axis=-1)
        elif model.attrs["use_upper"]:
            h = h[:, 0]
        else:
            h = numpy.maximum(h[:, 0], 0.0)
        rows.append(h)
    H = numpy.array(rows)
    if not model.attrs["use_upper"]:
        return H
    upper = model.get_ref("upper")
    return H @ host(model, upper.get_param("W")).astype("float64").T + host(model, upper.get_param("b"))


def small_model(ops_name: str, use_upper: bool, nP: int = 2, nF: int = 3, n_act: int = 5) -> Tuple[Model, list]:
    docs = make_docs(PARITY_WORDS)
    fix_random_seed(0)
    model = parser(hash_embed_cnn(**SMALL_T2V), nr_feature_tokens=nF, hidden_width=8, maxout_pieces=nP, use_upper=use_upper, nO=n_act)
    model.initialize(X=docs)
    if use_upper:  # a trained-looking upper layer (it starts at zero)
        W = numpy.random.default_rng(5).normal(size=(n_act, 8)).astype("float32")
        model.get_ref("upper").set_param("W", model.ops.asarray(W))
    return model, docs


@pytest.mark.parametrize("ops_name", OPS)
@pytest.mark.parametrize("use_upper,nP", [(True, 2), (False, 2), (True, 1), (False, 1)])
def test_scores_match_closed_form(ops_name, use_upper, nP):
    with ops_named(ops_name):
        model, docs = small_model(ops_name, use_upper, nP)
        step = model.predict(docs)
        assert isinstance(step, ParserStepModel) and step.nO == step.n_actions == 5
        ids = random_ids(numpy.random.default_rng(2), 9, 3, step.n_tokens)
        ids[0] = -1  # a state with no tokens at all: b + Σ pad
        scores = step.predict(ids)
        assert tuple(scores.shape) == (9, 5)
        assert host(model, scores).dtype == numpy.float32
        numpy.testing.assert_allclose(host(model, scores), reference_scores(model, step, ids), rtol=1e-4, atol=1e-4)
        # ids may also come as a device array
        numpy.testing.assert_allclose(host(model, step.predict(model.ops.asarray(ids))), host(model, scores), rtol=1e-6)
        assert tuple(step.predict(ids[:0]).shape) == (0, 5)


def test_missing_ids_use_the_pad_vector():
    model, docs = small_model("numpy", use_upper=False)
    step = model.predict(docs)
    lower = model.get_ref("lower")
    before = step.predict(numpy.array([[-1, -1, -1], [4, -1, 7]], dtype="int32"))
    expected_empty = (lower.get_param("b") + lower.get_param("pad")[0].sum(axis=0)).max(axis=-1)
    numpy.testing.assert_allclose(before[0], expected_empty, rtol=1e-5, atol=1e-6)
    # changing pad[1] changes exactly the states whose slot 1 is missing
    lower.get_param("pad")[0, 1] += 1.0
    step = model.predict(docs)
    after = step.predict(numpy.array([[-1, -1, -1], [4, -1, 7], [4, 2, 7]], dtype="int32"))
    assert not numpy.allclose(after[0], before[0]) and not numpy.allclose(after[1], before[1])
    model.get_ref("lower").get_param("pad")[0, 1] -= 1.0
    numpy.testing.assert_allclose(model.predict(docs).predict(numpy.array([[4, 2, 7]], dtype="int32"))[0], after[2], rtol=1e-6)


def test_ids_are_validated():
    model, docs = small_model("numpy", use_upper=True)
    step = model.predict(docs)
    with pytest.raises(ValueError, match=r"\(n_states, 3\)"):
        step.predict(numpy.zeros((2, 4), dtype="int32"))
    with pytest.raises(ValueError, match=r"\[-1, 31\)"):
        step.predict(numpy.array([[0, 31, 1]], dtype="int32"))
    with pytest.raises(ValueError, match=r"\[-1, 31\)"):
        step.predict(numpy.array([[0, -2, 1]], dtype="int32"))


class ConstTok2Vec:
    """A stand-in tok2vec returning fixed per-doc arrays and recording its gradient,
    so that the token-vector gradient can be checked numerically."""

    def __init__(self, Xs: List[numpy.ndarray]) -> None:
        self.Xs = Xs
        self.dXs = None
        self.model = Model("const_tok2vec", self._forward, dims={"nO": int(Xs[0].shape[1])})

    def _forward(self, model, docs, is_train):
        def backprop(dXs):
            self.dXs = [d.copy() for d in dXs]
            return []

        return [X for X in self.Xs[: len(docs)]], backprop


@pytest.mark.parametrize("ops_name", ["numpy", "cpu"])
@pytest.mark.parametrize("use_upper,nP", [(True, 2), (False, 2), (True, 1), (False, 1)])
def test_step_model_gradients_match_finite_differences(ops_name, use_upper, nP):
    """width 8, hidden 4, pieces 2 (and 1), nF 3, 5 actions; two steps whose
    states share tokens and have missing slots, so that the accumulation of
    the per-step gradients and the pad gradient are exercised. On CpuOps, with
    an upper layer over maxout, the step runs as compiled kernels: their
    gradients are checked the same way."""
    with ops_named(ops_name):
        _check_step_model_gradients(use_upper, nP)


def _check_step_model_gradients(use_upper: bool, nP: int) -> None:
    rng = numpy.random.default_rng(0)
    docs = make_docs([["a", "b", "c"], ["d", "e", "f", "g"]])
    Xs = [rng.normal(size=(len(d), 8)).astype("float32") for d in docs]
    t2v = ConstTok2Vec(Xs)
    fix_random_seed(0)
    model = parser(t2v.model, nr_feature_tokens=3, hidden_width=4, maxout_pieces=nP, use_upper=use_upper, nO=5)
    model.get_ref("lower").attrs["dropout_rate"] = 0.0  # a deterministic function to differentiate
    model.initialize(X=docs)
    if use_upper:
        model.get_ref("upper").set_param("W", rng.normal(size=(5, 4)).astype("float32"))
        model.get_ref("upper").set_param("b", rng.normal(size=(5,)).astype("float32"))
    lower = model.get_ref("lower")
    lower.set_param("b", rng.normal(size=lower.get_param("b").shape).astype("float32"))
    steps = [
        numpy.array([[0, 3, -1], [3, 3, 6], [-1, -1, 2], [5, 0, 1]], dtype="int32"),
        numpy.array([[6, -1, 0], [1, 2, 3], [-1, 4, 4]], dtype="int32"),
    ]
    G = [rng.normal(size=(len(ids), 5)).astype("float32") for ids in steps]

    def loss() -> float:
        step = model.predict(docs)
        return float(sum((step.predict(ids).astype("float64") * g).sum() for ids, g in zip(steps, G)))

    step, finish = model.begin_update(docs)
    for ids, g in zip(steps, G):
        scores, backprop = step.score(ids)
        assert scores.shape == (len(ids), 5)
        assert backprop(g) is None
    assert finish(None) == []
    linear = model.get_ref("tok2vec").layers[-1]
    checks = [(Xs[0], t2v.dXs[0]), (Xs[1], t2v.dXs[1])]
    for node, names in ((lower, ("W", "pad", "b")), (linear, ("W", "b"))) + (
        ((model.get_ref("upper"), ("W", "b")),) if use_upper else ()
    ):
        for name in names:
            checks.append((node.get_param(name), node.get_grad(name).copy()))
    eps = 1e-3
    for array, analytic in checks:
        numeric = numpy.zeros(analytic.shape, dtype="float64")
        for idx in numpy.ndindex(array.shape):
            old = array[idx]
            array[idx] = old + eps
            up = loss()
            array[idx] = old - eps
            down = loss()
            array[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        numpy.testing.assert_allclose(analytic, numeric, rtol=2e-2, atol=2e-2)
    # the pad gradient is nonzero exactly in the slots some state left empty
    d_pad = lower.get_grad("pad")[0]
    assert (numpy.abs(d_pad).sum(axis=(1, 2)) > 0).tolist() == [True, True, True]


@pytest.mark.parametrize("ops_name", ["numpy", "cpu"])
def test_training_dropout_on_hidden_only_with_upper(ops_name):
    with ops_named(ops_name):
        model, docs = small_model(ops_name, use_upper=True)
        ids = random_ids(numpy.random.default_rng(3), 20, 3, 31)
        step, _ = model.begin_update(docs)
        a, b = step.score(ids)[0], step.score(ids)[0]
        assert not numpy.allclose(a, b)  # fresh 0.1 dropout masks
        assert numpy.allclose(model.predict(docs).predict(ids), model.predict(docs).predict(ids))
        model, docs = small_model(ops_name, use_upper=False)
        step, _ = model.begin_update(docs)
        numpy.testing.assert_array_equal(step.score(ids)[0], step.score(ids)[0])
        numpy.testing.assert_allclose(step.score(ids)[0], model.predict(docs).predict(ids), rtol=1e-6)


def test_cpu_step_kernels_match_the_numpy_form_with_dropout():
    """On CpuOps a step with an upper layer over maxout runs as two compiled kernels;
    from the same random state they give the scores and gradients of the step's
    NumPy form (the same dropout bits: 0.3 here)."""
    runs = []
    for fused in (True, False):
        with ops_named("cpu"):
            model, docs = small_model("cpu", use_upper=True)
            model.get_ref("lower").attrs["dropout_rate"] = 0.3
            rng = numpy.random.default_rng(4)
            fix_random_seed(1)
            step, finish = model.begin_update(docs)
            assert step._fused
            step._fused = fused
            scores = []
            for _ in range(3):
                ids = random_ids(rng, 7, 3, step.n_tokens)
                step_scores, backprop = step.score(ids)
                scores.append(step_scores.copy())
                backprop(rng.uniform(-1, 1, size=(7, 5)).astype("float32"))
            finish(None)
            grads = {(node.id, name): node.get_grad(name).copy() for node in model.walk() for name in node.param_names if node.has_grad(name)}
            runs.append((scores, grads))
    (fused_scores, fused_grads), (numpy_scores, numpy_grads) = runs
    for a, b in zip(fused_scores, numpy_scores):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert len(fused_grads) == len(numpy_grads) > 0
    for (fused_key, fused_grad), (numpy_key, numpy_grad) in zip(sorted(fused_grads.items()), sorted(numpy_grads.items())):
        assert fused_key[1] == numpy_key[1]
        numpy.testing.assert_allclose(fused_grad, numpy_grad, rtol=1e-4, atol=1e-4)  # float32 sums in another order


def test_prediction_mode_and_finished_batches_refuse_gradients():
    model, docs = small_model("numpy", use_upper=True)
    ids = numpy.zeros((2, 3), dtype="int32")
    step = model.predict(docs)
    scores, backprop = step.score(ids)
    with pytest.raises(ValueError, match="prediction mode"):
        backprop(numpy.ones_like(scores))
    step, finish = model.begin_update(docs)
    scores, backprop = step.score(ids)
    with pytest.raises(ValueError, match="shape"):
        backprop(numpy.ones((3, 5), dtype="float32"))
    backprop(numpy.ones_like(scores))
    finish(None)
    with pytest.raises(ValueError, match="already"):
        finish(None)
    with pytest.raises(ValueError):
        step.score(ids)
    with pytest.raises(ValueError):
        backprop(numpy.ones_like(scores))


@pytest.mark.parametrize("ops_name", OPS)
@pytest.mark.parametrize("use_upper", [True, False])
def test_adam_steps_change_every_parameter(ops_name, use_upper, sentences):
    with ops_named(ops_name):
        docs = make_docs(sentences[:4])
        fix_random_seed(0)
        model = parser(hash_embed_cnn(**SMALL_T2V), nr_feature_tokens=3, hidden_width=8, maxout_pieces=2, use_upper=use_upper, nO=5)
        assert isinstance(model.ops, {"numpy": NumpyOps, "cpu": CpuOps, "cupy": CupyOps}[ops_name])
        model.initialize(X=docs)
        optimizer = Adam(0.001)
        initial = snapshot(model)
        rng = numpy.random.default_rng(0)
        for update in range(2):
            step, finish = model.begin_update(docs)
            for _ in range(3):
                ids = random_ids(rng, 6, 3, step.n_tokens)
                scores, backprop = step.score(ids)
                assert tuple(scores.shape) == (6, 5)
                backprop(model.ops.asarray2f(rng.uniform(-1, 1, size=(6, 5)).astype("float32")))
            finish(None)
            model.finish_update(optimizer)
            after = snapshot(model)
            moved = {k for k in initial if not numpy.array_equal(initial[k], after[k])}
            if update == 0:
                assert moved  # one Adam step changes parameters
                if use_upper:  # zero-initialised upper: only it gets a gradient at first
                    upper = {(n.id, p) for n in model.get_ref("upper").walk() for p in n.param_names}
                    assert moved == upper
        assert moved == set(initial), f"parameters that did not move: {set(initial) - moved}"


def test_empty_docs_inside_a_batch():
    docs = make_docs([["Hello", "there", "!"], [], ["x"], []])
    model = parser(hash_embed_cnn(**SMALL_T2V), nr_feature_tokens=3, hidden_width=8, maxout_pieces=2, nO=5)
    model.initialize(X=docs)
    step, finish = model.begin_update(docs)
    assert step.n_tokens == 4 and step.doc_offsets == [0, 3, 3, 4]
    scores, backprop = step.score(numpy.array([[0, 3, -1], [2, -1, -1]], dtype="int32"))
    backprop(numpy.ones_like(scores))
    finish(None)
    model.finish_update(Adam(0.001))


def test_no_steps_means_no_gradient():
    model, docs = small_model("numpy", use_upper=False)
    before = snapshot(model)
    step, finish = model.begin_update(docs)
    finish(None)
    model.finish_update(Adam(0.001))
    after = snapshot(model)
    assert all(numpy.array_equal(before[k], after[k]) for k in before)
