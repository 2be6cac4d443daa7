"""What the parser's and the NER's transition systems share: cutting an oracle
sequence into training segments, and the batched states' common part
(``ArcEagerBatch``, ``NerBatch``: rows of states as arrays, the transition system
they were made with, the kernel-backed queries whose form does not depend on the
system)."""

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

import numpy

from archs.jit import njit

SystemT = TypeVar("SystemT")
StateT = TypeVar("StateT", bound="SteppedState")


class SteppedState(Protocol):
    def copy(self: StateT) -> StateT: ...

    def is_final(self) -> bool: ...


def oracle_segments(
    state: StateT,
    oracle: Sequence[int],
    max_moves: int,
    apply: Callable[[StateT, int], object],
    keep: Callable[[StateT, StateT], bool],
) -> list[StateT]:
    """Start states every ``max_moves`` moves of the ``oracle`` sequence, replayed
    from ``state`` (not modified) with ``apply``; a segment's start state is kept
    where ``keep(start, end)`` holds for the state at its start and at its end."""
    if max_moves < 1:
        raise ValueError(f"max_moves must be >= 1, got {max_moves}")
    st = state.copy()
    out: list[StateT] = []
    for i in range(0, len(oracle), max_moves):
        start = st.copy()
        for clas in oracle[i : i + max_moves]:
            apply(st, clas)
            if st.is_final():
                break
        if keep(start, st):
            out.append(start)
        if st.is_final():
            break
    return out


class StateBatch(Generic[SystemT]):
    """Rows of states in ``scal`` (one row a state, int32 scalars), advanced by
    compiled kernels. A subclass names, as class keywords, ``supported_nf`` (the
    token featurisations its ``feature_ids`` knows) and ``final_kernel`` (a
    compiled ``(scal, rows, out)`` that marks the final rows)."""

    supported_nf: tuple[int, ...]
    final_kernel: Callable[[numpy.ndarray, numpy.ndarray, numpy.ndarray], None]

    def __init_subclass__(cls, *, supported_nf: tuple[int, ...], final_kernel: Callable[..., None], **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.supported_nf = supported_nf
        cls.final_kernel = staticmethod(final_kernel)

    def __init__(self, system: SystemT | None, lengths: Sequence[int], n_scalars: int) -> None:
        """system: the transition system (None: a batch for feature_ids and is_final
        only); lengths: each state's number of tokens; n_scalars: the int32 scalars
        a state keeps in its row of ``scal`` (zeros to start with)."""
        self.system = system
        self.scal = numpy.zeros((len(lengths), n_scalars), dtype=numpy.int32)
        self.width = max([*lengths, 1])  # the longest state: the width of per-token arrays

    def __len__(self) -> int:
        return int(self.scal.shape[0])

    def all_rows(self) -> numpy.ndarray:
        """Every row, as the int64 rows argument of the other methods."""
        return numpy.arange(len(self), dtype=numpy.int64)

    def is_final(self, rows: numpy.ndarray) -> numpy.ndarray:
        """(len(rows),) bool: the rows whose episode is over."""
        out = numpy.empty(len(rows), dtype=bool)
        type(self).final_kernel(self.scal, rows, out)
        return out

    def feature_out(self, rows: numpy.ndarray, nF: int) -> numpy.ndarray:
        """The (len(rows), nF) int32 array that ``feature_ids`` fills; a ValueError
        for a featurisation the state does not have."""
        if nF not in self.supported_nf:
            raise ValueError(f"the {type(self).__name__} states have no {nF}-token featurisation (supported: {self.supported_nf})")
        return numpy.empty((len(rows), nF), dtype=numpy.int32)

    def require_system(self) -> SystemT:
        """The transition system; a ValueError for a batch made without one."""
        if self.system is None:
            raise ValueError(f"this {type(self).__name__} was made without its transition system")
        return self.system


@njit
def k_shift_token_ids(ids: numpy.ndarray, offset: int) -> None:
    """Add a document's offset in the batch to its token ids (-1, missing, stays)."""
    for f in range(ids.shape[0]):
        if ids[f] >= 0:
            ids[f] += offset


@njit
def k_training_step(
    scores: numpy.ndarray, costs: numpy.ndarray, invalid_cost: float, seen: numpy.ndarray, d_scores: numpy.ndarray, moves: numpy.ndarray
) -> float:
    """One training step's host work for the live states, in one pass (the
    transition components' module doc gives the rules): mark the classes that
    cost <= 0 somewhere as seen; give the unseen ones the minimum score (in
    ``scores``, float32 (n, n_classes), in place); write spaCy's cpu_log_loss
    gradient into ``d_scores`` (float32, zero for unseen classes and for states
    without a usable gold move) and each state's move into ``moves`` (int64: its
    best-scoring valid class, unseen ones only where no seen class is valid);
    return the loss, the sum of d_scores squared. Costs >= ``invalid_cost`` mark
    invalid moves."""
    n, n_classes = scores.shape
    for i in range(n):
        for c in range(n_classes):
            if costs[i, c] <= 0.0:
                seen[c] = True
    any_unseen = False
    for c in range(n_classes):
        if not seen[c]:
            any_unseen = True
    if any_unseen and n > 0:
        lowest = scores[0, 0]
        for i in range(n):
            for c in range(n_classes):
                if scores[i, c] < lowest:
                    lowest = scores[i, c]
        for i in range(n):
            for c in range(n_classes):
                if not seen[c]:
                    scores[i, c] = lowest
    loss = 0.0
    e_all = numpy.empty(n_classes, dtype=numpy.float64)  # a row's exp(score - top)
    e_gold = numpy.empty(n_classes, dtype=numpy.float64)  # and its gold classes' exp(min(score - best gold score, 0))
    for i in range(n):
        # the gold move the gradient aims at: the best-scoring valid class costing
        # at most min(1, the lowest valid cost)
        threshold = 1.0
        for c in range(n_classes):
            if costs[i, c] < invalid_cost and costs[i, c] < threshold:
                threshold = costs[i, c]
        best = -1
        for c in range(n_classes):
            if costs[i, c] < invalid_cost and costs[i, c] <= threshold and (best < 0 or scores[i, c] > scores[i, best]):
                best = c
        if best < 0:
            for c in range(n_classes):
                d_scores[i, c] = 0.0
        else:
            top = numpy.float64(scores[i, 0])
            for c in range(1, n_classes):
                top = max(top, numpy.float64(scores[i, c]))
            s_best = numpy.float64(scores[i, best])
            gold_cost = costs[i, best]
            z = 0.0
            z_gold = 0.0
            for c in range(n_classes):
                s = numpy.float64(scores[i, c])
                e = numpy.exp(s - top)
                z += e
                e_all[c] = e
                if costs[i, c] <= gold_cost:
                    e = numpy.exp(min(s - s_best, 0.0))
                    z_gold += e
                    e_gold[c] = e
            z += 1e-10
            z_gold += 1e-10
            for c in range(n_classes):
                if not seen[c]:
                    d_scores[i, c] = 0.0
                    continue
                d = e_all[c] / z
                if costs[i, c] <= gold_cost:
                    d -= e_gold[c] / z_gold
                d_scores[i, c] = d
                loss += numpy.float64(d_scores[i, c]) * numpy.float64(d_scores[i, c])
        # the move taken: the best-scoring valid class, a seen one where there is one
        move = -1
        move_seen = False
        for c in range(n_classes):
            if costs[i, c] >= invalid_cost:
                continue
            if move < 0 or (seen[c] and not move_seen):
                move = c
                move_seen = seen[c]
            elif seen[c] == move_seen and scores[i, c] > scores[i, move]:
                move = c
        moves[i] = max(move, 0)  # no valid move: 0, as argmax over nothing but -inf
    return loss
