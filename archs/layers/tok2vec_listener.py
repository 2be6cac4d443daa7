from typing import Callable, List, Optional, Tuple

from thinc.api import Model
from thinc.model import deserialize_attr, serialize_attr
from thinc.types import Floats2d

from ..features import Doc
from ..registry import registry


class UpstreamSlot:
    """Where a shared tok2vec component leaves its output for one batch.

    The component fills it before any listening component runs; each listener
    returns those outputs and adds its gradient (times grad_factor) into
    `d_outputs`, which the component backpropagates once per batch. When
    `d_flat` is given, `d_outputs` are per-doc views of that one (n_tokens, width)
    buffer and a listener adds its whole batch's gradient into it in one operation.
    """

    __slots__ = ("docs", "outputs", "d_outputs", "d_flat")
    docs: Optional[List[Doc]]
    outputs: List[Floats2d]
    d_outputs: Optional[List[Floats2d]]
    d_flat: Optional[Floats2d]

    def __init__(self) -> None:
        self.clear()

    def fill(
        self,
        docs: List[Doc],
        outputs: List[Floats2d],
        d_outputs: Optional[List[Floats2d]],
        d_flat: Optional[Floats2d] = None,
    ) -> None:
        self.docs = docs
        self.outputs = outputs
        self.d_outputs = d_outputs
        self.d_flat = d_flat

    def holds(self, docs: List[Doc]) -> bool:
        """Whether the slot holds the outputs for exactly these Doc objects."""
        return (
            self.docs is not None
            and len(self.docs) == len(docs)
            and all(a is b for a, b in zip(self.docs, docs))
        )

    def clear(self) -> None:
        self.docs = None
        self.outputs = []
        self.d_outputs = None
        self.d_flat = None


@serialize_attr.register(UpstreamSlot)
def _serialize_slot(_: UpstreamSlot, value: UpstreamSlot, name: str, model: Model) -> bytes:
    return b""  # a batch's outputs are transient: nothing to save


@deserialize_attr.register(UpstreamSlot)
def _deserialize_slot(current: UpstreamSlot, value: bytes, name: str, model: Model) -> UpstreamSlot:
    return current


@registry.layers("archsweep.Tok2VecListener.v1")
def Tok2VecListener(width: Optional[int], upstream: str = "*", grad_factor: float = 1.0) -> Model[List[Doc], List[Floats2d]]:
    """Stand-in for a shared tok2vec inside a component's model.

    upstream: name of the tok2vec component to listen to ("*" = the only one).
    grad_factor: weight of this component's gradient in the shared encoder's update.
    """
    return Model(
        "tok2vec_listener",
        forward,
        dims={"nO": width},
        attrs={"upstream_name": upstream, "grad_factor": grad_factor, "slot": UpstreamSlot()},
    )


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    slot: UpstreamSlot = model.attrs["slot"]
    if not slot.holds(docs):
        raise ValueError(
            f"Tok2VecListener (upstream {model.attrs['upstream_name']!r}) got a batch its upstream "
            "tok2vec component has not encoded: run the pipeline's shared tok2vec first"
        )
    factor = model.attrs["grad_factor"]

    def backprop(d_outputs: List[Floats2d]) -> List[Doc]:
        if slot.d_outputs is None:
            raise ValueError("Tok2VecListener: the upstream tok2vec ran in prediction mode; no gradient can flow")
        if slot.d_flat is not None:
            d = model.ops.flatten(d_outputs, ndim_if_empty=slot.d_flat.ndim)
            slot.d_flat += d * factor if factor != 1.0 else d
            return []
        for acc, d in zip(slot.d_outputs, d_outputs):
            acc += d * factor if factor != 1.0 else d
        return []

    return slot.outputs, backprop
