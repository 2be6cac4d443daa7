from typing import Callable, Dict, List, Optional, Tuple, cast

import numpy
from thinc.api import Model
from thinc.initializers import glorot_uniform_init, zero_init
from thinc.types import Floats2d, Floats3d, FloatsXd, Ints1d

from ..registry import registry

DIRECTIONS = ("f", "b")


@registry.layers("archsweep.BiLSTM.v1")
def BiLSTM(
    nO: Optional[int] = None,
    nI: Optional[int] = None,
    *,
    depth: int = 1,
    dropout: float = 0.0,
) -> Model[List[Floats2d], List[Floats2d]]:
    """A bidirectional multi-layer LSTM over a batch of sequences, as
    `torch.nn.LSTM(nI, nO // 2, num_layers=depth, bidirectional=True,
    dropout=dropout)` with zero initial states.

    Each doc's output row is [h_forward ; h_backward] of the last layer, so
    nO = 2 * hidden and must be even.

    Parameters, for layer l in 0..depth-1 and direction d in {"f", "b"}
    (forward, backward), h = nO // 2, in = nI for layer 0 and nO after:
      "Wx_{l}_{d}" (4h, in), "Wh_{l}_{d}" (4h, h), "bx_{l}_{d}" (4h,),
      "bh_{l}_{d}" (4h,)
    Gate rows are ordered (i, f, g, o) as in torch: input, forget, cell
    candidate, output gate. W are glorot-uniform, biases zero.

    `dropout` is applied, in training only, to the output of every layer but
    the last (like torch's `dropout`). Its rate is stored under the attribute
    "lstm_dropout_rate", so Thinc's `set_dropout_rate` does not change it.
    """
    if depth < 1:
        raise ValueError(f"BiLSTM depth must be at least 1, got {depth}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"BiLSTM dropout must be in [0, 1), got {dropout}")
    if nO is not None:
        _check_nO(nO)
    params: Dict[str, Optional[FloatsXd]] = {}
    for layer in range(depth):
        for d in DIRECTIONS:
            for name in ("Wx", "Wh", "bx", "bh"):
                params[f"{name}_{layer}_{d}"] = None
    return Model(
        "bilstm",
        forward,
        init=init,
        dims={"nO": nO, "nI": nI, "depth": depth},
        params=params,
        attrs={"lstm_dropout_rate": dropout},
    )


def _check_nO(nO: int) -> None:
    if nO < 2 or nO % 2 != 0:
        raise ValueError(
            f"BiLSTM nO must be a positive even number (forward and backward "
            f"halves of nO // 2 each), got nO={nO}"
        )


def init(
    model: Model[List[Floats2d], List[Floats2d]],
    X: Optional[List[Floats2d]] = None,
    Y: Optional[List[Floats2d]] = None,
) -> None:
    if X is not None and len(X):
        model.set_dim("nI", int(X[0].shape[1]))
    if Y is not None and len(Y):
        model.set_dim("nO", int(Y[0].shape[1]))
    nO = model.get_dim("nO")
    nI = model.get_dim("nI")
    _check_nO(nO)
    h = nO // 2
    depth = model.get_dim("depth")
    ops = model.ops
    layer_nI = nI
    for layer in range(depth):
        for d in DIRECTIONS:
            model.set_param(f"Wx_{layer}_{d}", glorot_uniform_init(ops, (4 * h, layer_nI)))
            model.set_param(f"Wh_{layer}_{d}", glorot_uniform_init(ops, (4 * h, h)))
            model.set_param(f"bx_{layer}_{d}", zero_init(ops, (4 * h,)))
            model.set_param(f"bh_{layer}_{d}", zero_init(ops, (4 * h,)))
        layer_nI = nO


def forward(
    model: Model[List[Floats2d], List[Floats2d]], Xs: List[Floats2d], is_train: bool
) -> Tuple[List[Floats2d], Callable]:
    ops = model.ops
    xp = ops.xp
    nO = model.get_dim("nO")
    nI = model.get_dim("nI")
    depth = model.get_dim("depth")
    rate = model.attrs["lstm_dropout_rate"]
    h = nO // 2
    dtype = model.get_param("Wx_0_f").dtype

    lengths = [int(x.shape[0]) for x in Xs]
    n_tokens = sum(lengths)
    if n_tokens == 0:
        Ys = [ops.alloc2f(0, nO, dtype=dtype) for _ in Xs]

        def backprop_empty(dYs: List[Floats2d]) -> List[Floats2d]:
            return [ops.alloc2f(0, nI, dtype=dtype) for _ in Xs]

        return Ys, backprop_empty

    T = max(lengths)
    B = len(Xs)
    # Host-side bookkeeping: where each doc's rows go in the time-major
    # (T * B) padded layout, and a (T, B, 1) mask of real steps.
    rows_host = numpy.concatenate(
        [numpy.arange(n, dtype="int64") * B + b for b, n in enumerate(lengths)]
    )
    rows = ops.asarray1i(cast(Ints1d, rows_host.astype("int32")), dtype="int32")
    mask_host = (numpy.arange(T)[:, None] < numpy.asarray(lengths)[None, :]).astype(dtype)
    M = ops.asarray3f(cast(Floats3d, mask_host.reshape((T, B, 1))), dtype=dtype)

    X_rows = ops.alloc2f(T * B, nI, dtype=dtype)
    X_rows[rows] = xp.concatenate(Xs, axis=0).astype(dtype, copy=False)
    X = ops.reshape3f(X_rows, T, B, nI)

    callbacks: List[Callable[[Floats3d], Floats3d]] = []
    for layer in range(depth):
        X, bp_layer = _layer_forward(model, layer, X, M, h)
        callbacks.append(bp_layer)
        if is_train and rate > 0.0 and layer < depth - 1:
            drop_mask = ops.get_dropout_mask(X.shape, rate).astype(dtype, copy=False)
            X = X * drop_mask
            callbacks.append(_dropout_backprop(drop_mask))

    Y = ops.reshape2f(X, T * B, nO)[rows]
    Ys = ops.unflatten(Y, cast(Ints1d, numpy.asarray(lengths, dtype="int32")))

    def backprop(dYs: List[Floats2d]) -> List[Floats2d]:
        dY_rows = ops.alloc2f(T * B, nO, dtype=dtype)
        dY_rows[rows] = xp.concatenate(dYs, axis=0)
        dX = ops.reshape3f(dY_rows, T, B, nO)
        for callback in reversed(callbacks):
            dX = callback(dX)
        dX_rows = ops.reshape2f(dX, T * B, nI)[rows]
        return ops.unflatten(dX_rows, cast(Ints1d, numpy.asarray(lengths, dtype="int32")))

    return Ys, backprop


def _dropout_backprop(mask) -> Callable:
    def backprop(dY):
        return dY * mask

    return backprop


def _layer_forward(model: Model, layer: int, X: Floats3d, M, h: int) -> Tuple[Floats3d, Callable]:
    """One bidirectional layer over the padded time-major input X (T, B, in).

    Both directions run in one loop over time: their states are stacked as
    (2, B, h), direction 1 (backward) reading the sequence reversed, so each
    step is one batched matmul for the recurrent projections of both directions
    and one cell update (on a GPU a single fused kernel for the gates, c and h).
    The input projections of all steps and both directions are one gemm before
    the loop."""
    ops = model.ops
    xp = ops.xp
    T, B, nIl = (int(s) for s in X.shape)
    Wx = xp.concatenate([model.get_param(f"Wx_{layer}_{d}") for d in DIRECTIONS], axis=0)
    b = xp.concatenate(
        [model.get_param(f"bx_{layer}_{d}") + model.get_param(f"bh_{layer}_{d}") for d in DIRECTIONS]
    )
    Wh = xp.stack([model.get_param(f"Wh_{layer}_{d}") for d in DIRECTIONS])  # (2, 4h, h)
    X2d = xp.ascontiguousarray(X.reshape((T * B, nIl)))
    # Input projections of both directions and all steps in one gemm.
    G2d = ops.gemm(X2d, Wx, trans2=True)
    G2d += b
    G = ops.reshape3f(G2d, T, B, 8 * h)
    # Processing order: step t of direction 0 is time t, of direction 1 time T-1-t.
    Gs = ops.alloc((T, 2, B, 4 * h), dtype=G.dtype)
    Gs[:, 0] = G[:, :, : 4 * h]
    Gs[:, 1] = G[::-1, :, 4 * h :]
    Ms = xp.ascontiguousarray(xp.stack([M, M[::-1]], axis=1))  # (T, 2, B, 1)
    Hs, state = _recurrence_forward(ops, Gs, Ms, Wh)
    Y = xp.concatenate([Hs[:, 0], Hs[::-1, 1]], axis=-1)

    def backprop(dY: Floats3d) -> Floats3d:
        dHs = ops.alloc((T, 2, B, h), dtype=dY.dtype)
        dHs[:, 0] = dY[:, :, :h]
        dHs[:, 1] = dY[::-1, :, h:]
        dGs, dWh = _recurrence_backward(ops, dHs, Ms, Wh, state)
        dG = xp.concatenate([dGs[:, 0], dGs[::-1, 1]], axis=-1).reshape((T * B, 8 * h))
        dWx = ops.gemm(dG, X2d, trans1=True)
        db = dG.sum(axis=0)
        for i, d in enumerate(DIRECTIONS):
            model.inc_grad(f"Wx_{layer}_{d}", xp.ascontiguousarray(dWx[i * 4 * h : (i + 1) * 4 * h]))
            model.inc_grad(f"bx_{layer}_{d}", xp.ascontiguousarray(db[i * 4 * h : (i + 1) * 4 * h]))
            model.inc_grad(f"bh_{layer}_{d}", xp.ascontiguousarray(db[i * 4 * h : (i + 1) * 4 * h]))
            model.inc_grad(f"Wh_{layer}_{d}", dWh[i])
        return ops.reshape3f(ops.gemm(dG, Wx), T, B, nIl)

    return Y, backprop


def _recurrence_forward(ops, Gs, Ms, Wh) -> Tuple[Floats3d, Tuple]:
    """Run both directions over Gs (T, 2, B, 4h), the input projections plus
    biases in processing order; Wh (2, 4h, h). Masked steps (Ms == 0) set h
    and c to zero. Returns H (T, 2, B, h) and what the backward pass needs."""
    xp = ops.xp
    T, _, B, h4 = (int(s) for s in Gs.shape)
    h = h4 // 4
    dtype = Gs.dtype
    fused = _cupy_kernels(xp)
    # the gates: one array for the GPU kernel, else one per step (the sigmoid's own output, not copied)
    acts = ops.alloc((T, 2, B, h4), dtype=dtype) if fused is not None else [None] * T
    C = ops.alloc((T, 2, B, h), dtype=dtype)
    TC = ops.alloc((T, 2, B, h), dtype=dtype)
    H = ops.alloc((T, 2, B, h), dtype=dtype)
    zeros = ops.alloc((2, B, h), dtype=dtype)
    WhT = Wh.transpose((0, 2, 1))
    for t in range(T):
        h_prev = H[t - 1] if t > 0 else zeros
        c_prev = C[t - 1] if t > 0 else zeros
        r = xp.matmul(h_prev, WhT)  # (2, B, 4h): both directions in one batched product
        if fused is not None:
            fused[0](Gs[t], r, c_prev, Ms[t], h, acts[t], C[t], TC[t], H[t], size=2 * B * h)
            continue
        # NumPy: the same equations in place (no temporaries beyond the gates)
        z = r
        z += Gs[t]
        a = ops.sigmoid(z, inplace=False)
        xp.tanh(z[..., 2 * h : 3 * h], out=a[..., 2 * h : 3 * h])
        i, f, g, o = a[..., :h], a[..., h : 2 * h], a[..., 2 * h : 3 * h], a[..., 3 * h :]
        m = Ms[t]
        c = xp.multiply(f, c_prev, out=C[t])
        c += i * g
        c *= m
        tc = xp.tanh(c, out=TC[t])
        hh = xp.multiply(o, tc, out=H[t])
        hh *= m
        acts[t] = a
    return H, (acts, C, TC, H)


def _recurrence_backward(ops, dH, Ms, Wh, state) -> Tuple[Floats3d, Floats3d]:
    """Backprop through time for both directions at once; returns the gradient
    of the gate pre-activations (T, 2, B, 4h) and of Wh (2, 4h, h)."""
    acts, C, TC, H = state
    xp = ops.xp
    T, _, B, h = (int(s) for s in dH.shape)
    dtype = dH.dtype
    dG = ops.alloc((T, 2, B, 4 * h), dtype=dtype)
    dh_next = ops.alloc((2, B, h), dtype=dtype)
    dc_next = ops.alloc((2, B, h), dtype=dtype)
    zeros = ops.alloc((2, B, h), dtype=dtype)
    fused = _cupy_kernels(xp)
    for t in range(T - 1, -1, -1):
        c_prev = C[t - 1] if t > 0 else zeros
        dGt = dG[t]
        if fused is not None:
            # writes dG[t] and, in place, the next dc
            fused[1](acts[t], TC[t], c_prev, dH[t], dh_next, Ms[t], h, dGt, dc_next, size=2 * B * h)
        else:
            m = Ms[t]
            a = acts[t]
            i, f, g, o = a[..., :h], a[..., h : 2 * h], a[..., 2 * h : 3 * h], a[..., 3 * h :]
            tc = TC[t]
            dh = dH[t] + dh_next
            dh *= m
            dc = dc_next * m
            dc += dh * o * (1.0 - tc * tc)
            d = xp.multiply(dc, g, out=dGt[..., :h])
            d *= i
            d *= 1.0 - i
            d = xp.multiply(dc, c_prev, out=dGt[..., h : 2 * h])
            d *= f
            d *= 1.0 - f
            d = xp.multiply(dc, i, out=dGt[..., 2 * h : 3 * h])
            d *= 1.0 - g * g
            d = xp.multiply(dh, tc, out=dGt[..., 3 * h :])
            d *= o
            d *= 1.0 - o
            dc *= f
            dc_next = dc
        dh_next = xp.matmul(dGt, Wh)  # (2, B, h)
    dWh = ops.alloc((2, 4 * h, h), dtype=dtype)
    if T > 1:
        for d in range(2):
            dWh[d] = ops.gemm(
                xp.ascontiguousarray(dG[1:, d]).reshape(((T - 1) * B, 4 * h)),
                xp.ascontiguousarray(H[:-1, d]).reshape(((T - 1) * B, h)),
                trans1=True,
            )
    return dG, dWh


# The LSTM cell as two CuPy elementwise kernels (one launch per step each way
# instead of about fifteen): index i runs over the (2, B, h) cell states; gate
# k of row r = i / h sits at r * 4h + k * h + i % h. All arrays are C-contiguous.
_CELL_FORWARD = """
const ptrdiff_t row = i / h, j = i % h, base = row * 4 * h + j;
const T one = 1;
const T gi = one / (one + exp(-(g[base] + r[base])));
const T gf = one / (one + exp(-(g[base + h] + r[base + h])));
const T gg = tanh(g[base + 2 * h] + r[base + 2 * h]);
const T go = one / (one + exp(-(g[base + 3 * h] + r[base + 3 * h])));
acts[base] = gi;
acts[base + h] = gf;
acts[base + 2 * h] = gg;
acts[base + 3 * h] = go;
const T mm = m[row];
const T cc = (gf * c_prev[i] + gi * gg) * mm;
const T tcc = tanh(cc);
c[i] = cc;
tc[i] = tcc;
hh[i] = go * tcc * mm;
"""
_CELL_BACKWARD = """
const ptrdiff_t row = i / h, j = i % h, base = row * 4 * h + j;
const T one = 1;
const T gi = acts[base], gf = acts[base + h], gg = acts[base + 2 * h], go = acts[base + 3 * h];
const T mm = m[row];
const T tcc = tc[i];
const T dh = (dH[i] + dh_next[i]) * mm;
const T dc = dc_next[i] * mm + dh * go * (one - tcc * tcc);
dG[base] = dc * gg * gi * (one - gi);
dG[base + h] = dc * c_prev[i] * gf * (one - gf);
dG[base + 2 * h] = dc * gi * (one - gg * gg);
dG[base + 3 * h] = dh * tcc * go * (one - go);
dc_next[i] = dc * gf;
"""
_kernels: Optional[Tuple] = None


def _cupy_kernels(xp) -> Optional[Tuple]:
    """The fused cell kernels when the arrays are CuPy's, else None (NumPy runs
    the same equations as array expressions)."""
    global _kernels
    if xp is numpy:
        return None
    if _kernels is None:
        import cupy

        _kernels = (
            cupy.ElementwiseKernel(
                "raw T g, raw T r, raw T c_prev, raw T m, int32 h",
                "raw T acts, raw T c, raw T tc, raw T hh",
                _CELL_FORWARD,
                "archsweep_bilstm_cell_forward",
            ),
            cupy.ElementwiseKernel(
                "raw T acts, raw T tc, raw T c_prev, raw T dH, raw T dh_next, raw T m, int32 h",
                "raw T dG, raw T dc_next",
                _CELL_BACKWARD,
                "archsweep_bilstm_cell_backward",
            ),
        )
    return _kernels

