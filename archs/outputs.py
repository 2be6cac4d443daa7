"""Outputs sized by the data: one convention for every architecture whose number of
outputs comes from its component's labels (spaCy's `model.attrs["resize_output"]`).

The builder stores its resizing function under `RESIZE_OUTPUT`; a component calls
`resize_output(model, n)` when it knows its labels. Before initialize that sets the
output dimension (a config's explicit nO must agree); after, an architecture that
can grow its output (the transition parser, when new actions appear) does so and
returns the new outputs' indices.
"""

from typing import Callable, List

from thinc.api import Model

RESIZE_OUTPUT = "resize_output"

ResizeOutput = Callable[[Model, int], List[int]]


def resize_output(model: Model, nO: int) -> List[int]:
    """Give `model` nO outputs; returns the indices of outputs added to an initialized
    model (empty otherwise). ValueError when the model was built with another nO or
    cannot take nO outputs."""
    resize = model.attrs.get(RESIZE_OUTPUT)
    if resize is None:
        raise ValueError(f"{model.name}: this architecture's outputs are not sized by labels")
    return resize(model, nO)


def set_output_dim(layer_ref: str) -> ResizeOutput:
    """The resizing function of a model whose output layer (the ref `layer_ref`) only
    needs its nO set before initialize."""

    def resize(model: Model, nO: int) -> List[int]:
        layer = model.get_ref(layer_ref)
        if layer.has_dim("nO") and layer.get_dim("nO") != nO:
            raise ValueError(f"the model was built with nO = {layer.get_dim('nO')} but the data needs {nO}; set nO = null to infer it")
        layer.set_dim("nO", nO)
        return []

    return resize
