"""Argument types with ranges for the registered builders.

A builder annotates a dimension as `PositiveInt` (a width, a depth, a number of
pieces) or a rate as `DropoutRate`; the config check reports a value outside the
range under its dotted key (`components.tagger.model.tok2vec.width: expected an
integer > 0, got -64`) before anything is built. The annotations are plain
`typing.Annotated` with `annotated_types` bounds (what pydantic's PositiveInt is).
"""

from typing import Annotated

from annotated_types import Ge, Gt, Lt

PositiveInt = Annotated[int, Gt(0)]
NonNegativeInt = Annotated[int, Ge(0)]
DropoutRate = Annotated[float, Ge(0.0), Lt(1.0)]
