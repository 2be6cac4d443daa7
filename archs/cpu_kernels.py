"""Compiled CPU kernels for what a training step spends its time in besides matrix
products, where the NumPy form makes many small passes over the arrays: layers'
and ops' inner loops, and the optimizer's Adam update (archs/jit.py says how
they are compiled and cached). Imported
on first use, so a process that never runs a model on the CPU does not load numba.

Every kernel takes float32 C-contiguous arrays and writes its outputs into
arrays the caller allocates.
"""

import numpy

from .jit import njit_fastmath


@njit_fastmath
def layer_norm_forward(
    X: numpy.ndarray, G: numpy.ndarray, b: numpy.ndarray, Y: numpy.ndarray, X_hat: numpy.ndarray, inv_std: numpy.ndarray
) -> None:
    """Per row of X (n, w): X_hat = (x - mean) / sqrt(var + 1e-8), Y = X_hat * G + b;
    inv_std[i] = 1 / sqrt(var + 1e-8), kept with X_hat for the backward pass."""
    n, w = X.shape
    for i in range(n):
        total = 0.0
        for j in range(w):
            total += X[i, j]
        mean = total / w
        squares = 0.0
        for j in range(w):
            dist = X[i, j] - mean
            squares += dist * dist
        r = 1.0 / numpy.sqrt(squares / w + 1e-8)
        inv_std[i] = r
        for j in range(w):
            x_hat = (X[i, j] - mean) * r
            X_hat[i, j] = x_hat
            Y[i, j] = x_hat * G[j] + b[j]


@njit_fastmath
def layer_norm_backward(
    dY: numpy.ndarray,
    G: numpy.ndarray,
    X_hat: numpy.ndarray,
    inv_std: numpy.ndarray,
    dX: numpy.ndarray,
    dG: numpy.ndarray,
    db: numpy.ndarray,
) -> None:
    """Gradients of layer_norm_forward: dX (written), dG and db (added to)."""
    n, w = dY.shape
    for i in range(n):
        sum_d = 0.0
        sum_d_x_hat = 0.0
        for j in range(w):
            dy = dY[i, j]
            db[j] += dy
            dG[j] += dy * X_hat[i, j]
            d_x_hat = dy * G[j]
            sum_d += d_x_hat
            sum_d_x_hat += d_x_hat * X_hat[i, j]
        r = inv_std[i] / w
        for j in range(w):
            dX[i, j] = r * (w * dY[i, j] * G[j] - sum_d - X_hat[i, j] * sum_d_x_hat)


@njit_fastmath
def maxout(X: numpy.ndarray, best: numpy.ndarray, which: numpy.ndarray) -> None:
    """Per row of X (n, pieces): the largest piece and its index (the first on ties)."""
    n, pieces = X.shape
    for i in range(n):
        k = 0
        top = X[i, 0]
        for p in range(1, pieces):
            x = X[i, p]
            if x > top:
                top = x
                k = p
        best[i] = top
        which[i] = k


@njit_fastmath
def adam_step(
    weights: numpy.ndarray,
    gradient: numpy.ndarray,
    mom1: numpy.ndarray,
    mom2: numpy.ndarray,
    l2: float,
    grad_clip: float,
    beta1: numpy.float32,
    one_minus_beta1: numpy.float32,
    beta2: numpy.float32,
    one_minus_beta2: numpy.float32,
    eps: numpy.float32,
    learn_rate: numpy.float32,
    weight_decay: numpy.float32,
) -> None:
    """One Adam update of a parameter as Thinc's Optimizer makes it (1-d float32
    arrays, in place), in two passes instead of about eight: gradient += l2 *
    weights (l2 != 0: L2 as a gradient term); the gradient scaled to norm
    grad_clip where its norm is at least that (grad_clip > 0); the moments; the
    weights moved by learn_rate * mom1 / (sqrt(mom2) + eps), then shrunk by
    weight_decay * weights (L2 as weight decay); the gradient zeroed."""
    n = weights.shape[0]
    if l2 != 0.0:
        for i in range(n):
            gradient[i] += numpy.float32(l2) * weights[i]
    scale = numpy.float32(1.0)
    if grad_clip > 0.0:
        squares = 0.0
        for i in range(n):
            squares += numpy.float64(gradient[i]) * numpy.float64(gradient[i])
        norm = numpy.sqrt(squares)
        if norm >= grad_clip:
            scale = numpy.float32(grad_clip / norm)
    for i in range(n):
        g = gradient[i] * scale
        m1 = mom1[i] * beta1 + g * one_minus_beta1
        m2 = mom2[i] * beta2 + one_minus_beta2 * (g * g)
        mom1[i] = m1
        mom2[i] = m2
        w = weights[i] - learn_rate * (m1 / (numpy.sqrt(m2) + eps))
        weights[i] = w - weight_decay * w
        gradient[i] = 0.0


@njit_fastmath
def gather_add(table: numpy.ndarray, indices: numpy.ndarray, out: numpy.ndarray) -> None:
    """out[i] += the sum of table's rows indices[i, :] (out (n, width), indices (n, k));
    IndexError for a row outside the table."""
    n, k = indices.shape
    n_rows, width = table.shape
    for i in range(n):
        for j in range(k):
            row = indices[i, j]
            if row < 0 or row >= n_rows:
                raise IndexError("gather_add: index outside the table")
            for c in range(width):
                out[i, c] += table[row, c]


@njit_fastmath
def state_rows(ids: numpy.ndarray, n_tokens: int, rows: numpy.ndarray) -> bool:
    """A parser step's rows of its precomputed block: rows[i, f] = (ids[i, f] + 1) *
    nF + f for ids (n, nF) of tokens in [-1, n_tokens) (-1: the padding row);
    False, leaving rows unfinished, if an id lies outside that range."""
    n, n_features = ids.shape
    for i in range(n):
        for f in range(n_features):
            token = ids[i, f]
            if token < -1 or token >= n_tokens:
                return False
            rows[i, f] = (token + 1) * n_features + f
    return True


@njit_fastmath
def scatter_state_gradient(d_pre: numpy.ndarray, rows: numpy.ndarray, d_block: numpy.ndarray, d_bias: numpy.ndarray) -> None:
    """A parser step's gradient into its precomputed block: d_pre[i] (n, width) added
    to every row rows[i, :] of d_block, and to d_bias (width,)."""
    n, n_features = rows.shape
    width = d_pre.shape[1]
    for i in range(n):
        for c in range(width):
            d_bias[c] += d_pre[i, c]
        for f in range(n_features):
            row = rows[i, f]
            for c in range(width):
                d_block[row, c] += d_pre[i, c]


@njit_fastmath
def backprop_bias_maxout(d_best: numpy.ndarray, which: numpy.ndarray, pieces: int, dY: numpy.ndarray, d_bias: numpy.ndarray) -> None:
    """Gradients of a biased maxout (Y + bias, Y (n, width * pieces), pieces chosen as
    `which` (n, width)): dY (overwritten: d_best at each chosen piece, 0 elsewhere) and
    d_bias (width * pieces,; added to), in one pass."""
    n, width = d_best.shape
    dY[:] = 0.0
    for i in range(n):
        for o in range(width):
            chosen = o * pieces + which[i, o]
            dY[i, chosen] = d_best[i, o]
            d_bias[chosen] += d_best[i, o]


@njit_fastmath
def state_forward(
    block: numpy.ndarray,
    bias: numpy.ndarray,
    rows: numpy.ndarray,
    pieces: int,
    keep_bits: numpy.ndarray,
    keep_threshold: int,
    keep_scale: numpy.float32,
    W: numpy.ndarray,
    b: numpy.ndarray,
    hidden: numpy.ndarray,
    which: numpy.ndarray,
    scores: numpy.ndarray,
) -> None:
    """A parser step's forward pass for n states in one pass per state: the sum of
    its precomputed rows block[rows[i, :]] (rows (n, nF) in range, as state_rows
    makes them) plus bias (width * pieces,); maxout over pieces into hidden (n,
    width) and which (n, width); dropout where keep_bits has rows (uint16 (n,
    width): a unit is kept, and scaled by keep_scale, where its bits are at least
    keep_threshold; (0, 0): no dropout); scores (n, nO) = hidden @ W.T + b, W (nO,
    width) the output layer's."""
    n, n_features = rows.shape
    width = hidden.shape[1]
    n_out = W.shape[0]
    n_pre = width * pieces
    dropout = keep_bits.shape[0] > 0
    pre = numpy.empty(n_pre, dtype=numpy.float32)
    for i in range(n):
        for c in range(n_pre):
            pre[c] = bias[c]
        for f in range(n_features):
            row = rows[i, f]
            for c in range(n_pre):
                pre[c] += block[row, c]
        maxout(pre.reshape((width, pieces)), hidden[i], which[i])
        if dropout:
            for o in range(width):
                hidden[i, o] = hidden[i, o] * keep_scale if keep_bits[i, o] >= keep_threshold else numpy.float32(0.0)
        for a in range(n_out):
            s = b[a]
            for o in range(width):
                s += hidden[i, o] * W[a, o]
            scores[i, a] = s


@njit_fastmath
def state_backward(
    d_scores: numpy.ndarray,
    W: numpy.ndarray,
    hidden: numpy.ndarray,
    which: numpy.ndarray,
    pieces: int,
    keep_bits: numpy.ndarray,
    keep_threshold: int,
    keep_scale: numpy.float32,
    rows: numpy.ndarray,
    d_block: numpy.ndarray,
    d_bias: numpy.ndarray,
    d_W: numpy.ndarray,
    d_b: numpy.ndarray,
) -> None:
    """The gradient of state_forward's scores, d_scores (n, nO), added to the
    output layer's d_W (nO, width) and d_b (nO,), and, through the dropout and
    the chosen pieces, to the precomputed rows' d_block and to d_bias (the
    arguments as in state_forward)."""
    n, n_features = rows.shape
    width = hidden.shape[1]
    n_out = W.shape[0]
    dropout = keep_bits.shape[0] > 0
    d_hidden = numpy.empty(width, dtype=numpy.float32)
    for i in range(n):
        for o in range(width):
            d_hidden[o] = 0.0
        for a in range(n_out):
            g = d_scores[i, a]
            if g == 0.0:  # unseen classes, states without a gold move
                continue
            d_b[a] += g
            for o in range(width):
                d_W[a, o] += g * hidden[i, o]
                d_hidden[o] += g * W[a, o]
        for o in range(width):
            d = d_hidden[o]
            if dropout:
                d = d * keep_scale if keep_bits[i, o] >= keep_threshold else numpy.float32(0.0)
            chosen = o * pieces + which[i, o]
            d_bias[chosen] += d
            for f in range(n_features):
                d_block[rows[i, f], chosen] += d
