"""A hashed sparse linear layer (Thinc's SparseLinear.v1 semantics), vectorized
so that it runs on NumpyOps and CupyOps alike."""

from typing import Callable, Optional, Tuple

from thinc.api import Model
from thinc.types import Floats1d, Floats2d, Ints1d
from thinc.util import get_width

from ..registry import registry

InT = Tuple[Ints1d, Floats1d, Ints1d]  # keys (uint64), values (float32), lengths (int32, one per doc)

_C1, _C2 = 0xCC9E2D51, 0x1B873593


@registry.layers("archsweep.SparseLinear.v1")
def SparseLinear(nO: Optional[int] = None, length: int = 2**18) -> Model[InT, Floats2d]:
    """score[doc, c] = b[c] + sum over the doc's keys of value * (W[i1 + c] + W[i2 + c]).

    Each uint64 key gets two hashes (MurmurHash3_x86_32 with seeds 0 and 1) and
    the index `i = hash & (length - 1)`: Thinc's v1 indexing, which spaCy's
    TextCatBOW.v1 and TextCatEnsemble.v1 use (only the first length + nO
    weights are ever touched; kept for parameter and numerical parity).
    W has nO * length entries, zero-initialised, like b. length must be a
    power of two.
    """
    if length < 1 or length & (length - 1):
        raise ValueError(f"SparseLinear length must be a power of two, got {length}")
    return Model(
        "sparse_linear",
        forward,
        init=init,
        params={"W": None, "b": None},
        dims={"nO": nO, "length": length},
    )


def murmurhash3_32_uint64(xp, keys, seed: int):
    """MurmurHash3_x86_32 of each 8-byte key (little-endian) with `seed`, as
    uint32, computed with array arithmetic (numpy or cupy)."""
    keys = keys.astype(xp.uint64, copy=False)
    h = xp.full(keys.shape, seed, dtype=xp.uint32)
    c1, c2 = xp.uint32(_C1), xp.uint32(_C2)
    for block in ((keys & xp.uint64(0xFFFFFFFF)).astype(xp.uint32), (keys >> xp.uint64(32)).astype(xp.uint32)):
        k = block * c1
        k = (k << xp.uint32(15)) | (k >> xp.uint32(17))
        k = k * c2
        h = h ^ k
        h = (h << xp.uint32(13)) | (h >> xp.uint32(19))
        h = h * xp.uint32(5) + xp.uint32(0xE6546B64)
    h = h ^ xp.uint32(8)
    h = h ^ (h >> xp.uint32(16))
    h = h * xp.uint32(0x85EBCA6B)
    h = h ^ (h >> xp.uint32(13))
    h = h * xp.uint32(0xC2B2AE35)
    h = h ^ (h >> xp.uint32(16))
    return h


def forward(model: Model[InT, Floats2d], X: InT, is_train: bool) -> Tuple[Floats2d, Callable]:
    ops = model.ops
    xp = ops.xp
    keys, values, lengths = X
    keys = ops.asarray1i(keys, dtype="uint64")
    values = ops.asarray1f(values)
    lengths = ops.asarray1i(lengths)
    nO = model.get_dim("nO")
    length = model.get_dim("length")
    W = model.get_param("W")
    b = model.get_param("b")
    mask = xp.uint32(length - 1)
    classes = xp.arange(nO, dtype="int64")
    # (n_keys, nO) weight indices of both hashes (v1 indexing: i + c)
    idx1 = (murmurhash3_32_uint64(xp, keys, 0) & mask).astype("int64")[:, None] + classes
    idx2 = (murmurhash3_32_uint64(xp, keys, 1) & mask).astype("int64")[:, None] + classes
    per_key = (W[idx1] + W[idx2]) * values[:, None]  # type: ignore[call-overload]  # Thinc's Floats1d keys omit None (newaxis)
    if per_key.shape[0]:
        scores = ops.reduce_sum(per_key, lengths) + b
    else:  # no keys at all (empty docs): the bias alone
        scores = ops.alloc2f(len(lengths), nO) + b

    def backprop(d_scores: Floats2d) -> InT:
        d_scores = ops.asarray2f(d_scores)
        # each key's gradient is its doc's d_scores row times its value
        if not per_key.shape[0]:
            model.inc_grad("b", d_scores.sum(axis=0))
            return X
        d_per_key = ops.backprop_reduce_sum(d_scores, lengths) * values[:, None]  # type: ignore[call-overload]  # as above
        dW = ops.alloc1f(nO * length)
        _scatter_add(ops, dW, idx1.ravel(), d_per_key.ravel())
        _scatter_add(ops, dW, idx2.ravel(), d_per_key.ravel())
        model.inc_grad("W", dW)
        model.inc_grad("b", d_scores.sum(axis=0))
        return X

    return scores, backprop


def _scatter_add(ops, table, indices, values) -> None:
    xp = ops.xp
    if xp.__name__ == "numpy":
        xp.add.at(table, indices, values)  # few keys: faster than a table-sized bincount
    else:  # cupy
        import cupyx

        cupyx.scatter_add(table, indices, values)


def init(model: Model[InT, Floats2d], X: Optional[InT] = None, Y: Optional[Floats2d] = None) -> None:
    if Y is not None:
        model.set_dim("nO", get_width(Y))
    nO = model.get_dim("nO")
    model.set_param("W", model.ops.alloc1f(nO * model.get_dim("length")))
    model.set_param("b", model.ops.alloc1f(nO))
