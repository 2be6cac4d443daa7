"""search.batching: batch_by_words must batch exactly as spaCy's minibatch_by_words.

Items are small lists of ints (their size is len()); each list is a distinct
object, so "appears exactly once" is checked by identity.
"""

import itertools
import random

import pytest
from confection import Config
from search_testing import TRAIN
from thinc.api import compounding

from archs import registry
from search.corpora.conllu import read_conllu
from search.training.batching import batch_by_words, configure_batch_by_words


def items_of(sizes):
    return [list(range(100 * i, 100 * i + n)) for i, n in enumerate(sizes)]


def sizes_of(batches):
    return [[len(x) for x in batch] for batch in batches]


class CountingSizes:
    """A size schedule that records every value the batcher takes from it."""

    def __init__(self, values):
        self.values = iter(values)
        self.taken = []

    def __iter__(self):
        return self

    def __next__(self):
        value = next(self.values)
        self.taken.append(value)
        return value


def reference(sizes, size, tolerance, discard_oversize):
    """spaCy v3 minibatch_by_words, restated on item sizes: returns the batches
    (as lists of item indices) and how many schedule values were taken."""
    schedule = itertools.repeat(size) if isinstance(size, int) else iter(size)
    taken = 0

    def take():
        nonlocal taken
        taken += 1
        return next(schedule)

    target = take()
    batches, batch, overflow = [], [], []

    def total(idx):
        return sum(sizes[i] for i in idx)

    for i, n in enumerate(sizes):
        limit = target + target * tolerance
        if n > limit:  # oversize: alone, right away (or dropped)
            if not discard_oversize:
                batches.append([i])
        elif not overflow and total(batch) + n <= target:  # fits the batch
            batch.append(i)
        elif total(batch) + total(overflow) + n <= limit:  # fits the tolerance margin
            overflow.append(i)
        else:  # close the batch; the overflow starts the next one
            if batch:
                batches.append(batch)
            target = take()
            limit = target + target * tolerance
            batch, overflow = overflow, []
            if total(batch) + n <= target:
                batch.append(i)
            elif total(batch) + n <= limit:
                overflow.append(i)
            else:  # not even with the carried overflow: that goes alone
                if batch:
                    batches.append(batch)
                target = take()
                batch = [i]
    if batch + overflow:
        batches.append(batch + overflow)
    return batches, taken


# ------------------------------------------------------------------ hand-worked cases


def test_hand_worked_example_with_tolerance_and_oversize():
    # target 10, tolerance 0.2 -> at most 12 words.
    #   4, 4       -> batch [4, 4] (8)
    #   3          -> 11 > 10 but <= 12: overflow [3]
    #   5          -> 8+3+5 > 12: yield [4, 4]; [3] starts the next batch, 3+5 fits
    #   2          -> [3, 5, 2] (10)
    #   13         -> > 12: yielded alone at once, before the open batch
    #   6          -> yield [3, 5, 2]; new batch [6]
    #   6          -> 12: overflow [6]
    #   1          -> 13 > 12: yield [6]; [6] carried over, + 1
    items = items_of([4, 4, 3, 5, 2, 13, 6, 6, 1])
    sizes = CountingSizes(itertools.repeat(10))
    batches = list(batch_by_words(items, sizes, 0.2, False))
    assert sizes_of(batches) == [[4, 4], [13], [3, 5, 2], [6], [6, 1]]
    assert len(sizes.taken) == 4  # the first target + one per closed batch; not for the oversize item
    kept = list(batch_by_words(items, 10, 0.2, True))
    assert sizes_of(kept) == [[4, 4], [3, 5, 2], [6], [6, 1]]


def test_carried_overflow_that_does_not_fit_goes_alone():
    # 8 -> batch; 3 -> overflow (11 <= 12); 11 -> 8+3+11 > 12: yield [8];
    # [3] carried, 3+11 = 14 > 12: yield [3] too and start [11] (two targets taken).
    items = items_of([8, 3, 11])
    sizes = CountingSizes(itertools.repeat(10))
    assert sizes_of(batch_by_words(items, sizes, 0.2, False)) == [[8], [3], [11]]
    assert len(sizes.taken) == 3


def test_overflow_is_appended_to_the_last_batch():
    assert sizes_of(batch_by_words(items_of([5, 4, 2]), 10, 0.2, False)) == [[5, 4, 2]]
    assert sizes_of(batch_by_words(items_of([5, 4, 2]), 10, 0.0, False)) == [[5, 4], [2]]


def test_empty_input_and_exact_fit():
    assert list(batch_by_words([], 10, 0.2, False)) == []
    assert sizes_of(batch_by_words(items_of([10, 10, 10]), 10, 0.0, False)) == [[10], [10], [10]]
    assert sizes_of(batch_by_words(items_of([12]), 10, 0.2, True)) == [[12]]  # exactly the limit: kept
    assert list(batch_by_words(items_of([13]), 10, 0.2, True)) == []


# ------------------------------------------------------------------ properties against the reference


@pytest.mark.parametrize("discard_oversize", [False, True])
@pytest.mark.parametrize("tolerance", [0.0, 0.2, 0.5])
@pytest.mark.parametrize("size", [1, 7, 20, "schedule"])
def test_matches_reference_on_random_lists(size, tolerance, discard_oversize):
    rng = random.Random(f"{size}-{tolerance}-{discard_oversize}")
    for _ in range(60):
        sizes = [rng.choice([0, 1, 2, 3, 5, 8, 13, 21, 30]) for _ in range(rng.randint(0, 40))]
        items = items_of(sizes)
        schedule = [rng.randint(3, 25) for _ in range(2 * len(sizes) + 2)] if size == "schedule" else None
        counting = CountingSizes(schedule if schedule else itertools.repeat(size))
        batches = list(batch_by_words(items, counting, tolerance, discard_oversize))
        expected, n_taken = reference(sizes, schedule if schedule else size, tolerance, discard_oversize)
        assert [[id(x) for x in b] for b in batches] == [[id(items[i]) for i in b] for b in expected], sizes
        assert len(counting.taken) == n_taken
        assert all(batches), "no empty batch"
        # Every kept item exactly once; apart from oversize items (yielded
        # alone, at once) the order is the input order.
        flat = [id(x) for b in batches for x in b]
        assert len(flat) == len(set(flat))
        if size != "schedule":
            limit = size * (1 + tolerance)
            oversize = {id(x) for x in items if len(x) > limit}
            assert set(flat) == {id(x) for x in items} - (oversize if discard_oversize else set())
            regular = [i for i in flat if i not in oversize]
            assert regular == [id(x) for x in items if id(x) not in oversize]
            for batch in batches:
                words = sum(len(x) for x in batch)
                assert words <= limit or (len(batch) == 1 and id(batch[0]) in oversize), sizes_of([batch])
                if discard_oversize:
                    assert words <= limit


def test_compounding_schedule_on_the_real_corpus():
    """The training config's schedule, on the sentence lengths of the train sample."""
    examples = read_conllu(TRAIN)
    lengths = [len(eg) for eg in examples]
    counting = CountingSizes(compounding(100, 1000, 1.001))
    batches = list(batch_by_words(examples, counting, 0.2, False))
    expected, n_taken = reference(lengths, compounding(100, 1000, 1.001), 0.2, False)
    assert [[id(eg) for eg in b] for b in batches] == [[id(examples[i]) for i in b] for b in expected]
    assert len(counting.taken) == n_taken
    # No sentence of the sample exceeds 120 words, so every batch is a closed
    # one: exactly one schedule value per batch, and the values compound.
    assert max(lengths) <= 120
    assert len(counting.taken) == len(batches)
    assert counting.taken[:3] == pytest.approx([100.0, 100.1, 100.2001])
    assert [eg for b in batches for eg in b] == examples
    for batch, target in zip(batches, counting.taken):
        assert sum(len(eg) for eg in batch) <= target * 1.2 + 1e-9


# ------------------------------------------------------------------ registry


def test_registered_batcher_resolves_from_config():
    config = Config().from_str(
        """
        [batcher]
        @batchers = "spacy.batch_by_words.v1"
        tolerance = 0.2
        discard_oversize = true

        [batcher.size]
        @schedules = "compounding.v1"
        start = 10
        stop = 20
        compound = 1.5
        """
    )
    batcher = registry.resolve(config)["batcher"]
    assert registry.batchers.get("spacy.batch_by_words.v1") is configure_batch_by_words
    items = items_of([4, 4, 3, 30, 5, 2, 9, 9, 9, 1])
    got = sizes_of(batcher(items))
    expected, _ = reference([len(x) for x in items], compounding(10, 20, 1.5), 0.2, True)
    assert got == [[len(items[i]) for i in b] for b in expected]
    assert [30] not in got


def test_registered_batcher_get_length():
    batcher = configure_batch_by_words(size=10, tolerance=0.0, get_length=lambda item: item[0])
    assert list(batcher([(6,), (4,), (3,)])) == [[(6,), (4,)], [(3,)]]
