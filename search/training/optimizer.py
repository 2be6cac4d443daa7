"""The optimizer training runs with: the config's Thinc optimizer, whose Adam
update of a CPU parameter is one compiled kernel."""

from typing import Any, Tuple, cast

import numpy
from thinc.api import NumpyOps, Optimizer
from thinc.types import FloatsXd


class FusedAdam(Optimizer):
    """Thinc's `Optimizer`, the same settings, state and schedules, whose Adam
    update of a float32 NumPy parameter (gradient L2 or weight decay, gradient
    clipping, moments, step, zeroed gradient) runs as one compiled kernel in two
    passes over the arrays, where Thinc makes about eight NumPy passes. That was
    a tenth of a CNN tagger's CPU training time. Other updates (RAdam, SGD, GPU
    arrays) are Thinc's own."""

    __slots__ = ()

    @classmethod
    def from_optimizer(cls, optimizer: Optimizer) -> "FusedAdam":
        """The same optimizer (its settings, schedules and state) as a FusedAdam."""
        fused = cls.__new__(cls)
        for name in Optimizer.__slots__:
            setattr(fused, name, getattr(optimizer, name))
        return fused

    def __call__(self, key: Tuple[int, str], weights: FloatsXd, gradient: FloatsXd, *, lr_scale: float = 1.0) -> Any:
        if self.use_radam or not (self.b1 > 0.0 and self.b2 > 0.0) or not _fusable(weights, gradient):
            return super().__call__(key, weights, gradient, lr_scale=lr_scale)
        if len(gradient) < 1:
            return weights, gradient
        for moments in (self.mom1, self.mom2):
            if key not in moments:
                moments[key] = cast(FloatsXd, numpy.zeros(weights.size, dtype=numpy.float32))
            elif moments[key].shape != (weights.size,) or moments[key].dtype != numpy.float32:
                return super().__call__(key, weights, gradient, lr_scale=lr_scale)  # Thinc says what is wrong
        from archs import cpu_kernels

        self.nr_update[key] += 1
        nr_update = self.nr_update[key]
        # Thinc's bias-corrected step size
        learn_rate = self.learn_rate * (1.0 - self.b2**nr_update) ** 0.5 / (1.0 - self.b1**nr_update)
        decays = self.L2 != 0 and self.L2_is_weight_decay
        f32 = numpy.float32
        cpu_kernels.adam_step(
            numpy.asarray(weights).reshape(-1),  # views: updated in place
            numpy.asarray(gradient).reshape(-1),
            self.mom1[key],
            self.mom2[key],
            0.0 if decays else float(self.L2),
            float(self.grad_clip or 0.0),
            f32(self.b1),
            f32(1.0) - f32(self.b1),
            f32(self.b2),
            f32(1.0) - f32(self.b2),
            f32(self.eps),
            f32(learn_rate * lr_scale),
            f32(lr_scale * self.learn_rate * self.L2) if decays else f32(0.0),
        )
        if self.averages is not None:
            if key not in self.averages:
                self.averages[key] = cast(FloatsXd, numpy.zeros(weights.shape, dtype=numpy.float32))
            NumpyOps().update_averages(self.averages[key], weights, nr_update)
        return weights, gradient


def _fusable(weights: FloatsXd, gradient: FloatsXd) -> bool:
    return (
        isinstance(weights, numpy.ndarray)
        and isinstance(gradient, numpy.ndarray)
        and weights.dtype == numpy.float32
        and gradient.dtype == numpy.float32
        and weights.shape == gradient.shape
        and weights.flags.c_contiguous
        and gradient.flags.c_contiguous
    )
