from typing import Callable, Optional, Tuple, cast

import numpy
from thinc.api import Model
from thinc.types import Floats2d, Floats3d, Floats4d, Ints1d

from ..registry import registry

# The LSUV-like init: random states over random whitened token vectors.
INIT_N_STATES = 5000
INIT_N_TOKENS = 5000
INIT_MAX_ROUNDS = 10
INIT_TOL_VAR = 0.01
INIT_TOL_MEAN = 0.01


@registry.layers("archsweep.PrecomputableAffine.v1")
def PrecomputableAffine(
    nO: Optional[int], nI: Optional[int], nF: int, nP: int, dropout: float = 0.1
) -> Model[Floats2d, Floats4d]:
    """The transition parser's hidden layer, precomputed per token and feature slot.

    A parser state is described by nF feature tokens (-1 where a slot is empty);
    its hidden pre-activation is `b + Σ_f W[f] · x[token_f]`, with the learned
    `pad[f]` standing in for an empty slot. Since every token can fill every
    slot, the products are computed once per batch in one gemm, and a state
    then only sums nF cached rows.

    nO: hidden units (the parser's hidden_width, or the number of actions when
        there is no upper layer); may be None until set.
    nI: width of the token vectors; inferred from X at initialize when None.
    nF: feature tokens per state; 1-13 (parser 8, NER 3).
    nP: maxout pieces of the hidden units; 1-4 (2 in spaCy's defaults).
    dropout: dropout rate the step model applies to the hidden layer in training
        (spaCy's fixed 0.1; not touched by the training loop's dropout).

    Params: W (nF, nO, nP, nI), b (nO, nP), pad (1, nF, nO, nP).
    Forward: X (N, nI) -> Yf (N+1, nF, nO, nP), row 0 the pad block, row 1+i
    the products of token i (`Yf[1+i, f] = W[f] @ X[i]`). `b` is not added: the
    consumer adds it once per state (and increments its gradient itself).
    Backprop: dYf (N+1, nF, nO, nP) -> dX (N, nI); increments W (from rows 1..)
    and pad (from row 0).
    """
    if nF < 1 or nP < 1:
        raise ValueError(f"PrecomputableAffine needs nF >= 1 and nP >= 1, got nF={nF}, nP={nP}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {dropout}")
    return Model(
        "precomputable_affine",
        forward,
        init=init,
        dims={"nO": nO, "nI": nI, "nF": nF, "nP": nP},
        params={"W": None, "b": None, "pad": None},
        attrs={"dropout_rate": dropout},
    )


def forward(model: Model[Floats2d, Floats4d], X: Floats2d, is_train: bool) -> Tuple[Floats4d, Callable]:
    ops = model.ops
    nF = model.get_dim("nF")
    nO = model.get_dim("nO")
    nP = model.get_dim("nP")
    nI = model.get_dim("nI")
    W = model.get_param("W")
    pad = model.get_param("pad")
    N = int(X.shape[0])
    W2 = ops.reshape2f(W, nF * nO * nP, nI)
    Yf2 = ops.alloc2f(N + 1, nF * nO * nP, zeros=False, dtype=W.dtype)
    if N:
        ops.gemm(X, W2, trans2=True, out=Yf2[1:])
    Yf2[0] = ops.reshape1f(pad, nF * nO * nP)
    Yf = ops.reshape4f(Yf2, N + 1, nF, nO, nP)

    def backprop(dYf: Floats4d) -> Floats2d:
        if tuple(dYf.shape) != (N + 1, nF, nO, nP):
            raise ValueError(f"dYf must have shape {(N + 1, nF, nO, nP)}, got {tuple(dYf.shape)}")
        model.inc_grad("pad", ops.xp.ascontiguousarray(dYf[:1]))
        if N == 0:
            return ops.alloc2f(0, nI, dtype=W.dtype)
        dY2 = ops.xp.ascontiguousarray(dYf[1:].reshape((N, nF * nO * nP)))
        model.inc_grad("W", ops.reshape4f(ops.gemm(dY2, X, trans1=True), nF, nO, nP, nI))
        return ops.gemm(dY2, W2)

    return Yf, backprop


def init(model: Model[Floats2d, Floats4d], X: Optional[Floats2d] = None, Y: Optional[Floats4d] = None) -> None:
    """LSUV-like init (spaCy's): W ~ N(0, sqrt(nI / nF)), pad ~ N(0, 1), b = 0,
    then up to 10 rounds over 5000 random states of nF tokens drawn from 5000
    N(0, 1) token vectors: while the variance of the hidden activations (after
    maxout, or relu when nP == 1) is off 1 by >= 0.01 divide W by its square
    root, else while |mean| >= 0.01 subtract the mean from b. Skipped when W
    already holds nonzero values (a loaded or resized model)."""
    if X is not None and not model.has_dim("nI"):
        model.set_dim("nI", int(X.shape[1]))
    if Y is not None and not model.has_dim("nO"):
        model.set_dim("nO", int(Y.shape[2]))
    if not model.has_dim("nO"):
        raise ValueError(
            "PrecomputableAffine: nO is not set; set it (the number of actions when "
            "the parser has no upper layer) before initialize"
        )
    if model.has_param("W") and bool(model.get_param("W").any()):
        return
    ops = model.ops
    nF = model.get_dim("nF")
    nO = model.get_dim("nO")
    nP = model.get_dim("nP")
    nI = model.get_dim("nI")
    # Host RNG (seeded by thinc's fix_random_seed), the same numbers on every backend.
    W = numpy.random.normal(scale=numpy.sqrt(nI / nF), size=(nF, nO, nP, nI)).astype("float32")
    pad = numpy.random.normal(scale=1.0, size=(1, nF, nO, nP)).astype("float32")
    model.set_param("W", ops.asarray4f(cast(Floats4d, W)))
    model.set_param("pad", ops.asarray4f(cast(Floats4d, pad)))
    model.set_param("b", ops.alloc2f(nO, nP))

    ids = numpy.random.randint(0, INIT_N_TOKENS, size=(INIT_N_STATES, nF))
    rows = ops.asarray1i(cast(Ints1d, (ids * nF + numpy.arange(nF)).ravel()), dtype="int32")
    tokvecs = ops.asarray2f(cast(Floats2d, numpy.random.normal(size=(INIT_N_TOKENS, nI)).astype("float32")))

    def hidden() -> Floats2d:
        W2 = ops.reshape2f(model.get_param("W"), nF * nO * nP, nI)
        Yf = ops.reshape2f(ops.gemm(tokvecs, W2, trans2=True), INIT_N_TOKENS * nF, nO * nP)
        pre2 = ops.reshape3f(Yf[rows], INIT_N_STATES, nF, nO * nP).sum(axis=1, keepdims=False)
        pre: Floats3d = ops.reshape3f(pre2, INIT_N_STATES, nO, nP) + model.get_param("b")
        if nP >= 2:
            return ops.maxout(ops.xp.ascontiguousarray(pre))[0]
        return ops.relu(ops.reshape2f(pre, INIT_N_STATES, nO))

    for _ in range(INIT_MAX_ROUNDS):
        acts = hidden()
        var = float(acts.var())
        mean = float(acts.mean())
        if abs(var - 1.0) >= INIT_TOL_VAR:
            model.set_param("W", model.get_param("W") / numpy.float32(numpy.sqrt(var)))
        elif abs(mean) >= INIT_TOL_MEAN:
            model.set_param("b", model.get_param("b") - numpy.float32(mean))
        else:
            break
