from typing import Callable, List, Optional, Tuple, cast

import numpy
from thinc.api import Model
from thinc.types import Floats2d, Ints1d

from ..features import Doc
from ..registry import registry

N_BYTES = 256


@registry.layers("archsweep.CharacterEmbed.v1")
def CharacterEmbed(nM: int, nC: int) -> Model[List[Doc], List[Floats2d]]:
    """spaCy's character embedding: one table of nM-wide vectors per byte slot.

    Each token's UTF-8 bytes are read in the slot order first, last, second,
    second-last, ... (`Doc.char_ids`), with 255 in unused slots. Slot c looks
    its byte up in its own table E[c] (256 rows), and the nC lookups are
    concatenated, slot 0 first, into an (n_tokens, nM * nC) row per doc.

    The single parameter "E" has shape (nC, 256, nM) and, as in spaCy, is
    initialised to zeros.
    """
    if nM < 1 or nC < 1:
        raise ValueError(f"CharacterEmbed needs nM >= 1 and nC >= 1, got nM={nM}, nC={nC}")
    return Model(
        "charembed",
        forward,
        init=init,
        dims={"nM": nM, "nC": nC, "nO": nM * nC, "nV": N_BYTES},
        params={"E": None},
    )


def init(
    model: Model[List[Doc], List[Floats2d]],
    X: Optional[List[Doc]] = None,
    Y: Optional[List[Floats2d]] = None,
) -> None:
    shape = (model.get_dim("nC"), model.get_dim("nV"), model.get_dim("nM"))
    model.set_param("E", model.ops.alloc3f(*shape))


def forward(
    model: Model[List[Doc], List[Floats2d]], docs: List[Doc], is_train: bool
) -> Tuple[List[Floats2d], Callable]:
    ops = model.ops
    nM = model.get_dim("nM")
    nC = model.get_dim("nC")
    nV = model.get_dim("nV")
    E = model.get_param("E")
    lengths = [len(doc) for doc in docs]
    n_tokens = sum(lengths)
    if n_tokens == 0:
        Ys = [ops.alloc2f(0, nM * nC, dtype=E.dtype) for _ in docs]
        return Ys, lambda dYs: []

    # Row of each (token, slot) lookup in E viewed as (nC * 256, nM). Built on
    # the host, moved to the device once per batch.
    ids = numpy.concatenate([doc.char_ids(nC) for doc in docs], axis=0)
    rows_host = ids.astype("int32") + (numpy.arange(nC, dtype="int32") * nV)[None, :]
    rows = ops.asarray1i(cast(Ints1d, numpy.ascontiguousarray(rows_host.ravel())), dtype="int32")
    table = ops.reshape2f(E, nC * nV, nM)
    Y = ops.reshape2f(table[rows], n_tokens, nC * nM)
    Ys = ops.unflatten(Y, cast(Ints1d, numpy.asarray(lengths, dtype="int32")))

    def backprop(dYs: List[Floats2d]) -> List[Doc]:
        dY = ops.xp.concatenate(dYs, axis=0).reshape((n_tokens * nC, nM))
        dY = ops.xp.ascontiguousarray(dY, dtype=E.dtype)
        d_table = ops.alloc2f(nC * nV, nM, dtype=E.dtype)
        ops.scatter_add(d_table, rows, dY)
        model.inc_grad("E", ops.reshape3f(d_table, nC, nV, nM))
        return []

    return Ys, backprop

