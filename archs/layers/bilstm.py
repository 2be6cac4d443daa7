from typing import Callable, List, Optional, Tuple

import numpy
from thinc.api import Model
from thinc.initializers import glorot_uniform_init, zero_init
from thinc.types import Floats2d, Floats3d

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
    params = {}
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
    rows = ops.asarray(rows_host.astype("int32"), dtype="int32")
    mask_host = (numpy.arange(T)[:, None] < numpy.asarray(lengths)[None, :]).astype(dtype)
    M = ops.asarray(mask_host.reshape((T, B, 1)), dtype=dtype)

    X = ops.alloc2f(T * B, nI, dtype=dtype)
    X[rows] = xp.concatenate(Xs, axis=0).astype(dtype, copy=False)
    X = X.reshape((T, B, nI))

    callbacks = []
    for layer in range(depth):
        X, bp_layer = _layer_forward(model, layer, X, M, h)
        callbacks.append(bp_layer)
        if is_train and rate > 0.0 and layer < depth - 1:
            drop_mask = ops.get_dropout_mask(X.shape, rate).astype(dtype, copy=False)
            X = X * drop_mask
            callbacks.append(_dropout_backprop(drop_mask))

    Y = X.reshape((T * B, nO))[rows]
    Ys = _split(Y, lengths)

    def backprop(dYs: List[Floats2d]) -> List[Floats2d]:
        dX = ops.alloc2f(T * B, nO, dtype=dtype)
        dX[rows] = xp.concatenate(dYs, axis=0)
        dX = dX.reshape((T, B, nO))
        for callback in reversed(callbacks):
            dX = callback(dX)
        dX_rows = dX.reshape((T * B, nI))[rows]
        return _split(dX_rows, lengths)

    return Ys, backprop


def _dropout_backprop(mask) -> Callable:
    def backprop(dY):
        return dY * mask

    return backprop


def _layer_forward(model: Model, layer: int, X: Floats3d, M, h: int) -> Tuple[Floats3d, Callable]:
    """One bidirectional layer over the padded time-major input X (T, B, in)."""
    ops = model.ops
    xp = ops.xp
    T, B, nIl = (int(s) for s in X.shape)
    Wx = xp.concatenate([model.get_param(f"Wx_{layer}_{d}") for d in DIRECTIONS], axis=0)
    b = xp.concatenate(
        [model.get_param(f"bx_{layer}_{d}") + model.get_param(f"bh_{layer}_{d}") for d in DIRECTIONS]
    )
    Wh = {d: model.get_param(f"Wh_{layer}_{d}") for d in DIRECTIONS}
    X2d = xp.ascontiguousarray(X.reshape((T * B, nIl)))
    # Input projections of both directions and all steps in one gemm.
    G = ops.gemm(X2d, Wx, trans2=True)
    G += b
    G = G.reshape((T, B, 8 * h))
    Gf = xp.ascontiguousarray(G[:, :, : 4 * h])
    Gb = xp.ascontiguousarray(G[::-1, :, 4 * h :])
    M_rev = xp.ascontiguousarray(M[::-1])
    Hf, state_f = _direction_forward(ops, Gf, M, Wh["f"])
    Hb_rev, state_b = _direction_forward(ops, Gb, M_rev, Wh["b"])
    Y = xp.concatenate([Hf, Hb_rev[::-1]], axis=-1)

    def backprop(dY: Floats3d) -> Floats3d:
        dHf = xp.ascontiguousarray(dY[:, :, :h])
        dHb_rev = xp.ascontiguousarray(dY[::-1, :, h:])
        dGf, dWhf = _direction_backward(ops, dHf, M, Wh["f"], state_f)
        dGb_rev, dWhb = _direction_backward(ops, dHb_rev, M_rev, Wh["b"], state_b)
        dG = xp.concatenate([dGf, dGb_rev[::-1]], axis=-1).reshape((T * B, 8 * h))
        dWx = ops.gemm(dG, X2d, trans1=True)
        db = dG.sum(axis=0)
        for i, d in enumerate(DIRECTIONS):
            model.inc_grad(f"Wx_{layer}_{d}", xp.ascontiguousarray(dWx[i * 4 * h : (i + 1) * 4 * h]))
            model.inc_grad(f"bx_{layer}_{d}", xp.ascontiguousarray(db[i * 4 * h : (i + 1) * 4 * h]))
            model.inc_grad(f"bh_{layer}_{d}", xp.ascontiguousarray(db[i * 4 * h : (i + 1) * 4 * h]))
        model.inc_grad(f"Wh_{layer}_f", dWhf)
        model.inc_grad(f"Wh_{layer}_b", dWhb)
        return ops.gemm(dG, Wx).reshape((T, B, nIl))

    return Y, backprop


def _direction_forward(ops, G, M, Wh) -> Tuple[Floats3d, Tuple]:
    """Run one direction over G (T, B, 4h), the input projections plus biases
    in processing order. Masked steps (M == 0) set h and c to zero."""
    xp = ops.xp
    T, B, h4 = (int(s) for s in G.shape)
    h = h4 // 4
    dtype = G.dtype
    acts = ops.alloc((T, B, h4), dtype=dtype)
    C = ops.alloc((T, B, h), dtype=dtype)
    TC = ops.alloc((T, B, h), dtype=dtype)
    H = ops.alloc((T, B, h), dtype=dtype)
    h_prev = ops.alloc((B, h), dtype=dtype)
    c_prev = ops.alloc((B, h), dtype=dtype)
    for t in range(T):
        z = G[t] + ops.gemm(h_prev, Wh, trans2=True)
        a = ops.sigmoid(z, inplace=False)
        a[:, 2 * h : 3 * h] = xp.tanh(z[:, 2 * h : 3 * h])
        i, f, g, o = a[:, :h], a[:, h : 2 * h], a[:, 2 * h : 3 * h], a[:, 3 * h :]
        c = (f * c_prev + i * g) * M[t]
        tc = xp.tanh(c)
        hh = o * tc * M[t]
        acts[t] = a
        C[t] = c
        TC[t] = tc
        H[t] = hh
        h_prev = hh
        c_prev = c
    return H, (acts, C, TC, H)


def _direction_backward(ops, dH, M, Wh, state) -> Tuple[Floats3d, Floats2d]:
    """Backprop through time for one direction; returns the gradient of the
    gate pre-activations (T, B, 4h) and of Wh (4h, h)."""
    acts, C, TC, H = state
    xp = ops.xp
    T, B, h = (int(s) for s in dH.shape)
    dtype = dH.dtype
    dG = ops.alloc((T, B, 4 * h), dtype=dtype)
    dh_next = ops.alloc((B, h), dtype=dtype)
    dc_next = ops.alloc((B, h), dtype=dtype)
    zeros = ops.alloc((B, h), dtype=dtype)
    for t in range(T - 1, -1, -1):
        m = M[t]
        a = acts[t]
        i, f, g, o = a[:, :h], a[:, h : 2 * h], a[:, 2 * h : 3 * h], a[:, 3 * h :]
        tc = TC[t]
        c_prev = C[t - 1] if t > 0 else zeros
        dh = (dH[t] + dh_next) * m
        dc = dc_next * m + dh * o * (1.0 - tc * tc)
        dGt = dG[t]
        dGt[:, :h] = dc * g * i * (1.0 - i)
        dGt[:, h : 2 * h] = dc * c_prev * f * (1.0 - f)
        dGt[:, 2 * h : 3 * h] = dc * i * (1.0 - g * g)
        dGt[:, 3 * h :] = dh * tc * o * (1.0 - o)
        dc_next = dc * f
        dh_next = ops.gemm(dGt, Wh)
    if T > 1:
        dWh = ops.gemm(
            dG[1:].reshape(((T - 1) * B, 4 * h)),
            xp.ascontiguousarray(H[:-1]).reshape(((T - 1) * B, h)),
            trans1=True,
        )
    else:
        dWh = ops.alloc((4 * h, h), dtype=dtype)
    return dG, dWh


def _split(Y, lengths: List[int]) -> List:
    Ys = []
    start = 0
    for n in lengths:
        Ys.append(Y[start : start + n])
        start += n
    return Ys
