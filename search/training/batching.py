"""Batchers: spaCy's batch_by_words, so the same config batches the same way."""

import itertools
from typing import Annotated, Callable, Iterable, Iterator, List, Optional, TypeVar, Union

from annotated_types import Ge

from archs import registry
from archs.types import PositiveInt

from .config import ConfigError

ItemT = TypeVar("ItemT")
Sizing = Union[PositiveInt, Iterable[int]]


@registry.batchers("spacy.batch_by_words.v1")
def configure_batch_by_words(
    *, size: Sizing, tolerance: Annotated[float, Ge(0.0)] = 0.2, discard_oversize: bool = False,
    get_length: Optional[Callable] = None,
) -> Callable[[Iterable[ItemT]], Iterator[List[ItemT]]]:
    """Batches of about `size` words (an int or a schedule such as compounding.v1).

    tolerance: fraction by which a batch may exceed the size (0.2 in spaCy).
    discard_oversize: drop items longer than size*(1+tolerance) instead of
    yielding them alone.
    """

    def batcher(items: Iterable[ItemT]) -> Iterator[List[ItemT]]:
        return batch_by_words(items, size, tolerance, discard_oversize, get_length or len)

    return batcher


def batch_by_words(
    items: Iterable[ItemT], size: Sizing, tolerance: float, discard_oversize: bool, get_length: Callable = len
) -> Iterator[List[ItemT]]:
    """spaCy's minibatch_by_words: fill a batch up to the target size; items
    that fit only within the tolerance wait in an overflow that starts the next
    batch; items over the tolerated size go alone (or are discarded)."""
    sizes = _checked(itertools.repeat(size) if isinstance(size, int) else iter(size))
    target = next(sizes)
    tol = target * tolerance
    batch: List[ItemT] = []
    overflow: List[ItemT] = []
    batch_size = overflow_size = 0
    for item in items:
        n = get_length(item)
        if n > target + tol:
            if not discard_oversize:
                yield [item]
            continue
        # at most two tries: into the open batch or its overflow, else after closing
        # the batch (its overflow starts the next); an item that fits neither starts
        # a batch of its own after closing that one too
        for _ in range(2):
            if overflow_size == 0 and batch_size + n <= target:
                batch.append(item)
                batch_size += n
                break
            if batch_size + overflow_size + n <= target + tol:
                overflow.append(item)
                overflow_size += n
                break
            if batch:
                yield batch
            target = next(sizes)
            tol = target * tolerance
            batch, batch_size, overflow, overflow_size = overflow, overflow_size, [], 0
        else:
            batch, batch_size = [item], n
    batch.extend(overflow)
    if batch:
        yield batch


def _checked(sizes: Iterator[int]) -> Iterator[int]:
    """The sizes a schedule gives, refusing one below 1 (a schedule such as
    compounding.v1 with a negative start would otherwise make empty batches)."""
    for size in sizes:
        if size < 1:
            raise ConfigError(f"training.batcher.size: expected batch sizes of at least 1 word, the schedule gave {size:g}")
        yield size
