"""The ops archsweep trains with on the CPU."""

import functools
import math
from types import ModuleType
from typing import Optional, Tuple, cast

import numpy
from thinc.api import NumpyOps
from thinc.types import Floats2d, Floats3d, FloatsXd, Ints2d, Shape

# dropout draws 16 random bits per unit: rates are exact to 1/65536
_LEVELS = 1 << 16


@functools.cache
def cpu_kernels() -> ModuleType:
    """archs.cpu_kernels, imported on first use (it loads numba); a cached call, as
    hot paths ask for it every step."""
    from . import cpu_kernels as kernels

    return kernels


def dropout_bits(shape: Shape) -> numpy.ndarray:
    """Random uint16 bits of that shape from NumPy's global generator (so
    `fix_random_seed` makes them repeatable); a unit is kept where its bits are
    at least `keep_threshold(drop)`."""
    size = shape if isinstance(shape, int) else math.prod(shape)
    return numpy.frombuffer(numpy.random.bytes(2 * size), dtype=numpy.uint16).reshape(shape)


def keep_threshold(drop: float) -> int:
    """The bits at or above which dropout at rate drop (0 < drop < 1) keeps a unit."""
    return round(drop * _LEVELS)


def keep_scale(drop: float) -> numpy.float32:
    """What dropout at rate drop (0 <= drop < 1) scales a kept unit by."""
    return numpy.float32(1.0 / (1.0 - drop))


class CpuOps(NumpyOps):
    """Thinc's NumpyOps with faster versions of the ops, besides matrix products,
    that a training step spends its time in (measured on a tagger and a parser
    at 1000-word batches):

    - `get_dropout_mask`: NumpyOps draws float64 uniforms and divides them, about
      1.5 ms for a (1000, 96) mask, one per dropout layer and step; this draws 16
      random bits per unit from the same global NumPy generator (so
      `fix_random_seed` still makes runs repeatable), about 8x faster.
    - `maxout` and `gather_add` (hash embeddings' rows): compiled kernels
      (archs/cpu_kernels.py) on float32 arrays, 3x faster; the same results (ties
      in maxout go to the first piece).
    """

    def gather_add(self, table: Floats2d, indices: Ints2d) -> Floats2d:
        if table.dtype != numpy.float32 or table.ndim != 2 or indices.ndim != 2 or numpy.dtype(indices.dtype).kind not in "iu":
            return super().gather_add(table, indices)
        out = numpy.zeros((indices.shape[0], table.shape[1]), dtype=numpy.float32)
        cpu_kernels().gather_add(numpy.ascontiguousarray(table), numpy.ascontiguousarray(indices), out)
        return cast(Floats2d, out)

    def maxout(self, X: Floats3d) -> Tuple[Floats2d, Ints2d]:
        if X.dtype != numpy.float32 or X.ndim != 3 or not X.flags.c_contiguous:
            return super().maxout(X)
        n, width, pieces = X.shape
        best = numpy.empty((n, width), dtype=numpy.float32)
        which = numpy.empty((n, width), dtype=numpy.int32)
        cpu_kernels().maxout(X.reshape((n * width, pieces)), best.reshape(-1), which.reshape(-1))
        return cast(Floats2d, best), cast(Ints2d, which)

    def get_dropout_mask(self, shape: Shape, drop: Optional[float]) -> FloatsXd:
        if drop is None or drop <= 0:
            return self.xp.ones(shape, dtype="f")
        if drop >= 1.0:
            return self.alloc_f(shape)
        # bool * float32 scalar is float32 (NumPy 2), and much faster than a multiply into `out`
        return cast(FloatsXd, (dropout_bits(shape) >= keep_threshold(drop)) * keep_scale(drop))
