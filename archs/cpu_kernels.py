"""Compiled CPU kernels of layers whose NumPy form spends its time in many small
array operations (archs/jit.py says how they are compiled and cached). Imported
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
