"""Compilation of the transition systems' batched oracles (``ArcEagerBatch``,
``NerBatch``): numba's ``njit`` with an on-disk cache.

Why compiled rather than vectorised with NumPy: training advances all states of a
batch together, but at 1000-word batches only about 20-60 states are live per
step, so a NumPy formulation of spaCy's arc-eager oracle (a few dozen array
operations per step over (states, words) arrays: buffer membership around
predicted sentence starts, gold children on the stack or in the buffer, the
two latest children of S0/S1/B0, ...) spends its time in per-call overhead
(about 1-3 microseconds each, i.e. 100-200 microseconds per step, against the
0.3 ms of the per-state Python oracle). Compiled loops over the same state
arrays take a few microseconds per step, so the oracle is no longer visible
next to the model's step; and the code stays a line-by-line transcription of
the per-state rules, which keeps "identical behaviour" checkable.

Cost per process: ``cache=True`` stores the machine code next to the modules
(``__pycache__``; numba falls back to a per-user cache directory where that is
not writable), so only the first process after a code change compiles (a few
seconds); later processes (each sweep trial) load it in a fraction of a second,
on top of about 0.3 s to import numba. Kernels take fixed dtypes (int32
arrays, int64 row indices) so one compiled version serves every call.
"""

from collections.abc import Callable
from typing import Any

import numba


def njit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``numba.njit`` with the on-disk cache (see the module doc)."""
    return numba.njit(cache=True, nogil=True)(fn)
