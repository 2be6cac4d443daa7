"""CPU kernels compiled with numba's ``njit`` and an on-disk cache: the transition
systems' batched oracles (``ArcEagerBatch``, ``NerBatch``) and the layers', ops'
and optimizer's kernels in ``archs.cpu_kernels``.

Why the oracles are compiled rather than vectorised with NumPy: training advances all states of a
batch together, but at 1000-word batches only about 20-60 states are live per
step, so a NumPy formulation of spaCy's arc-eager oracle (a few dozen array
operations per step over (states, words) arrays: buffer membership around
predicted sentence starts, gold children on the stack or in the buffer, the
two latest children of S0/S1/B0, ...) would spend its time in per-call overhead
(1-3 microseconds each: 100-200 microseconds per step, what the per-state Python
oracle costs for 10-15 states at 11-15 microseconds per state and step). The
compiled loops over the same state arrays take 1-2 microseconds per live state
and step, all kernels together (measured on the bundled samples' 1000-word
batches); the oracle went from 13% to 3% of the parser's CPU update time (5% to
1% for the NER). And the kernels stay a line-by-line transcription of the
per-state rules, which keeps "identical behaviour" checkable
(tests/search/test_batched_oracle.py).

Cost per process: ``cache=True`` stores the machine code next to the modules
(``__pycache__``; numba falls back to a per-user cache directory where that is
not writable), so only the first process after a code change compiles: on a
2-core AMD EPYC, 5.0 s for the parser's five kernels, 1.8 s for the NER's (up to
3x that on a loaded machine). Later processes (each sweep trial) pay about 0.25 s
to import numba (only once a model runs on the CPU or a parser or NER is built)
and 0.4 s to load the cached kernels. Kernels take fixed dtypes (int32 arrays, int64 row indices) so
one compiled version serves every call.
"""

from collections.abc import Callable
from typing import Any

import numba


def njit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``numba.njit`` with the on-disk cache (see the module doc)."""
    return numba.njit(cache=True, nogil=True)(fn)


# fastmath without "nnan"/"ninf": a non-finite input must come out non-finite
# (the training loop names the step whose loss went nan), not be assumed away
_REORDER_FLOATS = {"reassoc", "nsz", "arcp", "contract"}


def njit_fastmath(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``njit`` that lets LLVM reorder float sums, so that row reductions
    vectorise (results may differ from a sequential sum in the last bits, the
    same on every run), with NumPy's float semantics (x / 0 is inf or nan, not
    an exception)."""
    return numba.njit(cache=True, nogil=True, fastmath=_REORDER_FLOATS, error_model="numpy")(fn)
