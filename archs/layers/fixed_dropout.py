from typing import Callable, Tuple

from thinc.api import Model
from thinc.types import Floats2d

from ..registry import registry


@registry.layers("archsweep.FixedDropout.v1")
def FixedDropout(rate: float) -> Model[Floats2d, Floats2d]:
    """Elementwise dropout whose rate is part of the architecture.

    Unlike Thinc's `Dropout`, its rate lives under its own attribute, so the
    training loop's global `dropout` (applied with `set_dropout_rate`) does not
    overwrite it. Active only in training; inference is the identity.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    return Model("fixed_dropout", forward, attrs={"fixed_dropout_rate": rate})


def forward(model: Model[Floats2d, Floats2d], X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
    rate = model.attrs["fixed_dropout_rate"]
    if not is_train or rate == 0.0:
        return X, lambda dY: dY
    mask = model.ops.get_dropout_mask(X.shape, rate)

    def backprop(dY: Floats2d) -> Floats2d:
        return dY * mask

    return X * mask, backprop
