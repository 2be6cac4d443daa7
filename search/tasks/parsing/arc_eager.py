"""spaCy's arc-eager transition system: moves, states, context tokens and the dynamic oracle.

Moves (spaCy ``arc_eager.pyx``, the non-monotonic variant of Honnibal & Johnson 2015):

- ``S`` SHIFT: push B0. Valid if the stack is empty, or the buffer has >= 2 words,
  B0 is not a sentence start and B0 was not put back by REDUCE ("unshiftable").
- ``D`` REDUCE: pop S0; if S0 has no head and the stack holds more than S0, S0 goes
  back to the front of the buffer instead (and becomes unshiftable). Valid if the
  stack is not empty.
- ``L-x`` LEFT-ARC: B0 becomes S0's head with label x (replacing a head S0 already
  had), pop S0, B0 becomes shiftable again. Valid if stack and buffer are not
  empty and B0 is not a sentence start.
- ``R-x`` RIGHT-ARC: S0 becomes B0's head with label x, push B0. Same validity as L.
- ``B-ROOT`` BREAK: mark B1 as a sentence start. Valid if the buffer has >= 2 words,
  B1 == B0 + 1 and B1 is not already a sentence start.

A state is final when stack and buffer are empty; tokens without a head are
roots (label ``ROOT`` in the inventory, ``ArcEager.root_label`` when decoded).

Costs are spaCy's dynamic-oracle costs (``set_costs``): for every valid class the
number of gold arcs the move makes unreachable, plus 1 for a wrong label on a
gold arc; invalid classes get ``INVALID_COST`` (9000, as spaCy). They are *not*
clipped: REDUCE of a head-less S0 subtracts the stack arcs it "saves" and can be
-1 off the gold path, exactly as in spaCy (the loss only uses which classes have
the minimum cost). Heads missing from the gold (None) cost nothing.

``monotonic=True`` selects the textbook monotonic arc-eager system instead (not
spaCy's): REDUCE only for a word with a head (or, once the buffer is empty, any
word, which becomes a root), LEFT-ARC only for a head-less S0, SHIFT whenever the
buffer is not empty, BREAK never valid (sentence-level input), and Goldberg & Nivre's
(2013) costs with the root at the end of the buffer. Its oracle is exact: the cost
of any move is the number of gold arcs (with labels) it makes unreachable, so along
any path the costs sum to the final tree's errors (tested). spaCy's non-monotonic
oracle is only approximate (tests report how often it is exact). Same classes either way.

For documents of several sentences (spaCy's ``convert -n 10``) join the trees with
``concat_trees`` and pass its sentence starts to ``make_gold``; the oracle then uses
BREAK. One sentence per example needs nothing: token 0 starts the only sentence.

Action inventory (``ArcEager.from_examples``; spaCy ``get_actions`` with
``min_freq``): after projectivising every training tree, S and D (unlabelled),
one ``L-x`` per label seen with its head to the right, one ``R-x`` per label with
its head to the left, one ``B-x`` per root label (``root``/``ROOT`` -> ``ROOT``);
(move, label) pairs seen fewer than ``min_freq`` times are dropped (those gold
arcs get the backoff label ``dep``); ``B-ROOT``, ``L-dep``, ``R-dep`` are always
present. Class order: by move type S, D, L, R, B; within a type, ``order="first"``
(default) keeps the labels in order of first occurrence in the examples (tokens
in order), with the backoff ``dep`` at the end of its type unless it was itself
frequent enough; ``order="freq"`` reproduces spaCy's ``initialize_actions``
(frequency descending, ties by label string descending, backoffs (freq 0) last).

Token ids from ``State.feature_ids`` / ``ArcEager.feature_ids`` are rows of the
batch-concatenated token matrix (``state.offset + i``), -1 = missing.

The rules run in one form, ``ArcEagerBatch`` (``ArcEager.batch``): many states as
int32 arrays, with feature ids, validity, costs and transitions as numba-compiled
loops over the rows to work on (archs/jit.py says why compiled
rather than NumPy-vectorised): the training and decoding loops advance it. The
per-state methods (``valid_mask``, ``costs``, ``oracle_move``, ``oracle_sequence``)
run on a batch made from the given states; ``State`` and ``ArcEager.apply`` remain
for replaying moves on single states (segment start states, tests).
"""

from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, cast

import numpy

from archs.jit import njit

from .nonproj import deprojectivize, projectivize
from .shared import StateBatch, k_shift_token_ids, oracle_segments

SHIFT, REDUCE, LEFT, RIGHT, BREAK = 0, 1, 2, 3, 4
N_MOVE_TYPES = 5
MOVE_NAMES = ("S", "D", "L", "R", "B")
INVALID_COST = 9000.0
BACKOFF_LABEL = "dep"
ROOT = "ROOT"
SUPPORTED_NF = (1, 2, 8, 13)

_BUFFER, _STACK, _REBUFFER, _DONE = 0, 1, 2, 3
_ROW0 = numpy.zeros(1, dtype=numpy.int64)  # the rows argument for a batch of one state


class State:
    """One parse in progress: stack, buffer (front words put back by REDUCE first,
    then ``b_i .. length-1``), the arcs so far and the sentence starts set by BREAK."""

    __slots__ = (
        "length",
        "offset",
        "heads",
        "labels",
        "stack",
        "rebuffer",
        "b_i",
        "where",
        "unshiftable",
        "sent_starts",
        "_lefts",
        "_rights",
        "history",
    )

    def __init__(self, length: int, offset: int = 0) -> None:
        self.length = int(length)
        self.offset = int(offset)
        self.heads = [-1] * self.length  # -1 = no head yet
        self.labels = [0] * self.length  # label ids of the ArcEager inventory, 0 = none
        self.stack: List[int] = []
        self.rebuffer: List[int] = []  # last element = B0
        self.b_i = 0
        self.where = [_BUFFER] * self.length
        self.unshiftable = [False] * self.length
        self.sent_starts: set = set()
        # children in the order added, per word; made on first use (a batch's fresh
        # states never need them, and their lists cost more than the rest)
        self._lefts: Optional[List[List[int]]] = None
        self._rights: Optional[List[List[int]]] = None
        self.history: List[int] = []

    @property
    def lefts(self) -> List[List[int]]:
        if self._lefts is None:
            self._lefts = [[] for _ in range(self.length)]
        return self._lefts

    @property
    def rights(self) -> List[List[int]]:
        if self._rights is None:
            self._rights = [[] for _ in range(self.length)]
        return self._rights

    def copy(self) -> "State":
        new = State.__new__(State)
        new.length = self.length
        new.offset = self.offset
        new.heads = list(self.heads)
        new.labels = list(self.labels)
        new.stack = list(self.stack)
        new.rebuffer = list(self.rebuffer)
        new.b_i = self.b_i
        new.where = list(self.where)
        new.unshiftable = list(self.unshiftable)
        new.sent_starts = set(self.sent_starts)
        new._lefts = None if self._lefts is None else [list(x) for x in self._lefts]
        new._rights = None if self._rights is None else [list(x) for x in self._rights]
        new.history = list(self.history)
        return new

    # ------------------------------------------------------------ accessors
    def S(self, i: int) -> int:
        stack = self.stack
        if i < 0 or i >= len(stack):
            return -1
        return stack[-1 - i]

    def B(self, i: int) -> int:
        if i < 0:
            return -1
        nr = len(self.rebuffer)
        if i < nr:
            return self.rebuffer[-1 - i]
        b = self.b_i + (i - nr)
        return b if b < self.length else -1

    def H(self, child: int) -> int:
        if child < 0 or child >= self.length:
            return -1
        return self.heads[child]

    def L(self, head: int, idx: int) -> int:
        """idx-th leftmost child (1 = the left child attached last, i.e. leftmost), -1 if none."""
        if head < 0 or idx < 1:
            return -1
        kids = self.lefts[head]
        return kids[-idx] if idx <= len(kids) else -1

    def R(self, head: int, idx: int) -> int:
        """idx-th rightmost child (1 = the right child attached last, i.e. rightmost), -1 if none."""
        if head < 0 or idx < 1:
            return -1
        kids = self.rights[head]
        return kids[-idx] if idx <= len(kids) else -1

    def has_head(self, child: int) -> bool:
        return self.heads[child] >= 0

    def stack_depth(self) -> int:
        return len(self.stack)

    def buffer_length(self) -> int:
        return (self.length - self.b_i) + len(self.rebuffer)

    def is_final(self) -> bool:
        return not self.stack and self.buffer_length() == 0

    def is_sent_start(self, word: int) -> bool:
        return word in self.sent_starts if word >= 0 else False

    def in_stack(self, word: int) -> bool:
        return self.where[word] == _STACK

    def in_buffer(self, word: int) -> bool:
        return word >= self.b_i or self.where[word] == _REBUFFER

    def buffer(self) -> List[int]:
        return self.rebuffer[::-1] + list(range(self.b_i, self.length))

    # ------------------------------------------------------------ features
    def feature_ids(self, nF: int) -> List[int]:
        """The nF context tokens of spaCy 3.x's parser states (offset added, -1 missing)."""
        return ArcEagerBatch(None, [self]).feature_ids(_ROW0, nF)[0].tolist()

    # ------------------------------------------------------------ mutations
    def push(self) -> None:
        if self.rebuffer:
            b0 = self.rebuffer.pop()
        else:
            b0 = self.b_i
            self.b_i += 1
        self.stack.append(b0)
        self.where[b0] = _STACK

    def pop(self) -> None:
        s0 = self.stack.pop()
        self.where[s0] = _DONE

    def unshift(self) -> None:
        s0 = self.stack.pop()
        self.unshiftable[s0] = True
        self.rebuffer.append(s0)
        self.where[s0] = _REBUFFER

    def add_arc(self, head: int, child: int, label: int) -> None:
        old = self.heads[child]
        if old >= 0:
            (self.lefts[old] if old > child else self.rights[old]).remove(child)
        (self.lefts[head] if head > child else self.rights[head]).append(child)
        self.heads[child] = head
        self.labels[child] = label

    def __repr__(self) -> str:
        return f"State(stack={self.stack}, buffer={self.buffer()}, heads={self.heads})"


class Gold:
    """A sentence's gold parse for the oracle: projectivised, labels mapped to the
    inventory (label ids), roots have ``heads[i] == i``, missing heads ``-2``."""

    __slots__ = ("length", "heads", "labels", "known", "kids", "sent_starts", "orig_heads", "orig_labels", "_array")

    def __init__(self, heads, labels, known, sent_starts, orig_heads, orig_labels) -> None:
        self.length = len(heads)
        self.heads: List[int] = heads
        self.labels: List[int] = labels
        self.known: List[bool] = known
        self.sent_starts: List[Optional[bool]] = sent_starts
        self.orig_heads = orig_heads
        self.orig_labels = orig_labels
        kids: List[List[int]] = [[] for _ in range(self.length)]
        for i, h in enumerate(heads):
            if known[i] and h != i:
                kids[h].append(i)
        self.kids = kids
        self._array: Optional[numpy.ndarray] = None

    def as_array(self) -> numpy.ndarray:
        """(4, length) int32: heads, labels, known, sentence starts (1, 0, -1 for
        None), ArcEagerBatch's gold rows; made on first use and kept."""
        if self._array is None:
            starts = [-1 if s is None else int(bool(s)) for s in self.sent_starts]
            self._array = numpy.array([self.heads, self.labels, self.known, starts], dtype=numpy.int32).reshape(4, self.length)
        return self._array

    def has_gold(self, start: int = 0, end: Optional[int] = None) -> bool:
        return any(self.known[start:end])


class ArcEager:
    """The action inventory plus the transition functions over ``State``s."""

    def __init__(self, classes: Sequence[Tuple[int, str]], root_label: str = ROOT, monotonic: bool = False) -> None:
        """classes: (move type, label) pairs in class order; label "" for S and D.
        monotonic: use the monotonic arc-eager system (see module doc) instead of spaCy's."""
        self.root_label = root_label
        self.monotonic = bool(monotonic)
        self.label_names: List[str] = [""]
        self.label_ids: Dict[str, int] = {"": 0}
        self.classes: List[Tuple[int, int]] = []
        self.labels_by_move: Dict[int, Dict[str, int]] = {m: {} for m in range(N_MOVE_TYPES)}
        for move, label in classes:
            move = int(move)
            if move in (SHIFT, REDUCE):
                label = ""
            if label not in self.label_ids:
                self.label_ids[label] = len(self.label_names)
                self.label_names.append(label)
            if label in self.labels_by_move[move]:
                continue
            self.labels_by_move[move][label] = len(self.classes)
            self.classes.append((move, self.label_ids[label]))
        for move, label in ((BREAK, ROOT), (LEFT, BACKOFF_LABEL), (RIGHT, BACKOFF_LABEL)):
            if label not in self.labels_by_move[move]:
                raise ValueError(f"the inventory needs the class {MOVE_NAMES[move]}-{label}")
        for move in (SHIFT, REDUCE):
            if "" not in self.labels_by_move[move]:
                raise ValueError(f"the inventory needs the class {MOVE_NAMES[move]}")
        self.n_moves = len(self.classes)
        self.move_of_class = numpy.array([m for m, _ in self.classes], dtype=numpy.int64)
        self.label_of_class = numpy.array([lab for _, lab in self.classes], dtype=numpy.int64)
        self.class_names: List[str] = [
            MOVE_NAMES[m] + ("-" + self.label_names[lab] if lab else "") for m, lab in self.classes
        ]
        self._class_index = {name: i for i, name in enumerate(self.class_names)}
        self.backoff_id = self.label_ids[BACKOFF_LABEL]
        self.root_id = self.label_ids[ROOT]

    # ---------------------------------------------------------- inventory
    @classmethod
    def from_examples(
        cls, examples: Iterable, min_freq: Optional[int] = 30, order: str = "first", monotonic: bool = False
    ) -> "ArcEager":
        """Inventory from Examples (``eg.gold["heads"]``, ``eg.gold["deps"]``)."""
        return cls.from_trees(
            ((eg.gold["heads"], eg.gold["deps"]) for eg in examples),
            min_freq=min_freq,
            order=order,
            monotonic=monotonic,
        )

    @classmethod
    def from_trees(
        cls, trees: Iterable[Tuple[Sequence[Optional[int]], Sequence[Optional[str]]]],
        min_freq: Optional[int] = 30, order: str = "first", monotonic: bool = False,
    ) -> "ArcEager":
        """Inventory from (heads, labels) pairs in the corpus convention (root -1)."""
        if order not in ("first", "freq"):
            raise ValueError(f"order must be 'first' or 'freq', got {order!r}")
        counts: Dict[int, Counter[str]] = {m: Counter() for m in (LEFT, RIGHT, BREAK)}
        root_labels: Counter[str] = Counter()
        for heads, labels in trees:
            pheads, plabels = projectivize(heads, labels)
            for child, (head, label) in enumerate(zip(pheads, plabels)):
                if head is None or label is None:
                    continue
                if head == -1:
                    root_labels[label] += 1
                if label.upper() == ROOT:
                    label = ROOT
                if head == -1:
                    counts[BREAK][label] += 1
                elif head < child:
                    counts[RIGHT][label] += 1
                else:
                    counts[LEFT][label] += 1
        classes: List[Tuple[int, str]] = [(SHIFT, ""), (REDUCE, "")]
        for move in (LEFT, RIGHT, BREAK):
            freqs = counts[move]  # Counter keeps first-insertion order
            kept = [(lab, f) for lab, f in freqs.items() if min_freq is None or f >= min_freq]
            backoff = BACKOFF_LABEL if move != BREAK else ROOT
            if order == "freq":
                kept.sort(key=lambda lf: (lf[1], lf[0]), reverse=True)
            move_labels = [lab for lab, _ in kept]
            if backoff not in move_labels:
                move_labels.append(backoff)
            classes.extend((move, lab) for lab in move_labels)
        root_label = root_labels.most_common(1)[0][0] if root_labels else ROOT
        return cls(classes, root_label=root_label, monotonic=monotonic)

    def __len__(self) -> int:
        return self.n_moves

    def class_index(self, name: str) -> int:
        return self._class_index[name]

    def to_dict(self) -> Dict:
        return {"classes": list(self.class_names), "root_label": self.root_label, "monotonic": self.monotonic}

    @classmethod
    def from_dict(cls, data: Dict) -> "ArcEager":
        classes = []
        for name in data["classes"]:
            move, _, label = name.partition("-")
            classes.append((MOVE_NAMES.index(move), label))
        return cls(classes, root_label=data.get("root_label", ROOT), monotonic=data.get("monotonic", False))

    # ---------------------------------------------------------- gold
    def make_gold(
        self,
        heads: Sequence[Optional[int]],
        labels: Sequence[Optional[str]],
        sent_starts: Optional[Sequence[Optional[bool]]] = None,
    ) -> Gold:
        """Gold for the oracle: projectivise, then map labels to the inventory
        (spaCy ``_replace_unseen_labels``: unknown L/R labels -> dep, roots -> ROOT).
        sent_starts: True/False/None per token; default: token 0 starts a sentence
        and no other token does (one sentence per example). A head of None: that word's
        arc costs nothing; a label of None with a head: any label is right."""
        n = len(heads)
        if n == 0:
            raise ValueError("empty sentence")
        pheads, plabels = projectivize(heads, labels)
        gheads: List[int] = []
        glabels: List[int] = []
        known: List[bool] = []
        left = self.labels_by_move[LEFT]
        right = self.labels_by_move[RIGHT]
        brk = self.labels_by_move[BREAK]
        lid = self.label_ids
        for i, (h, lab) in enumerate(zip(pheads, plabels)):
            if h is None:
                gheads.append(-2)
                glabels.append(0)
                known.append(False)
                continue
            known.append(True)
            if h == -1:
                gheads.append(i)
                glabels.append(lid[lab] if lab in brk else self.root_id)
            else:
                gheads.append(h)
                if lab is None:
                    glabels.append(0)  # any label is right
                elif h > i:
                    glabels.append(lid[lab] if lab in left else self.backoff_id)
                else:
                    glabels.append(lid[lab] if lab in right else self.backoff_id)
        if sent_starts is None:
            sent_starts = [True] + [False] * (n - 1)
        return Gold(gheads, glabels, known, list(sent_starts), list(heads), list(labels))

    def gold_from_example(self, eg) -> Gold:
        return self.make_gold(eg.gold["heads"], eg.gold["deps"], eg.gold.get("sent_starts"))

    def gold_tree(self, gold: Gold) -> Tuple[List[Optional[int]], List[Optional[str]]]:
        """The gold tree the oracle aims at, in ``decode(..., deprojectivize=False)`` form."""
        heads: List[Optional[int]] = []
        labels: List[Optional[str]] = []
        for i, (h, lab) in enumerate(zip(gold.heads, gold.labels)):
            if not gold.known[i]:
                heads.append(None)
                labels.append(None)
            elif h == i:
                heads.append(-1)
                labels.append(self.root_label if lab == self.root_id else self.label_names[lab])
            else:
                heads.append(h)
                labels.append(self.label_names[lab] if lab else None)
        return heads, labels

    # ---------------------------------------------------------- states
    def init_state(self, length: int, offset: int = 0) -> State:
        return State(length, offset)

    def init_states(self, lengths: Sequence[int], offsets: Optional[Sequence[int]] = None) -> List[State]:
        """One state per doc; offsets default to the running sum of lengths (rows of
        the batch-concatenated token matrix)."""
        if offsets is None:
            offsets = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]]).tolist() if len(lengths) else []
        return [State(n, off) for n, off in zip(lengths, offsets)]

    def batch(self, states: Sequence[State], golds: Sequence[Gold] | None = None) -> "ArcEagerBatch":
        """The states (copied) as an ArcEagerBatch, with their golds for costs."""
        return ArcEagerBatch(self, states, golds)

    def feature_ids(self, states: Sequence[State], nF: int) -> numpy.ndarray:
        """(n_states, nF) int32 token rows (offset added, -1 missing)."""
        batch = self.batch(states)
        return batch.feature_ids(batch.all_rows(), nF)

    # ---------------------------------------------------------- validity
    def valid_mask(self, st: State) -> numpy.ndarray:
        """Bool array over classes: which moves are valid in the state."""
        return self.valid_masks([st])[0]

    def valid_masks(self, states: Sequence[State]) -> numpy.ndarray:
        """(n_states, n_moves) bool."""
        batch = self.batch(states)
        return batch.valid(batch.all_rows())

    def is_valid(self, st: State, clas: int) -> bool:
        return bool(self.valid_mask(st)[clas])

    # ---------------------------------------------------------- transitions
    def apply(self, st: State, clas: int) -> State:
        """Apply class ``clas`` to the state in place (no validity check)."""
        move, label = self.classes[clas]
        if move == SHIFT:
            st.push()
        elif move == REDUCE:
            s0 = st.stack[-1]
            if st.heads[s0] >= 0 or len(st.stack) == 1 or self.monotonic:
                st.pop()
            else:
                st.unshift()
        elif move == LEFT:
            b0 = st.B(0)
            st.add_arc(b0, st.stack[-1], label)
            st.unshiftable[b0] = False
            st.pop()
        elif move == RIGHT:
            st.add_arc(st.stack[-1], st.B(0), label)
            st.push()
        else:  # BREAK
            st.sent_starts.add(st.B(1))
        st.history.append(clas)
        return st

    def advance(self, states: Sequence[State], class_ids: Sequence[int]) -> None:
        """Apply one class per state (in place)."""
        for st, c in zip(states, class_ids):
            self.apply(st, int(c))

    @staticmethod
    def best_valid(scores: numpy.ndarray, valid: numpy.ndarray) -> numpy.ndarray:
        """Per row, the highest-scoring valid class (the first on ties), as spaCy's
        ``transition_states``; -1 for a row with no valid class (a final state)."""
        masked = numpy.where(valid, scores, -numpy.inf)
        best = masked.argmax(axis=1)
        best[~valid.any(axis=1)] = -1
        return best

    def costs(self, st: State, gold: Gold) -> numpy.ndarray:
        """float32 cost per class (INVALID_COST where the move is invalid)."""
        return self.costs_batch([st], [gold])[0]

    def costs_batch(self, states: Sequence[State], golds: Sequence[Gold]) -> numpy.ndarray:
        """(n_states, n_moves) float32 costs; invalid classes get INVALID_COST."""
        batch = self.batch(states, golds)
        return batch.costs(batch.all_rows())

    def oracle_move(self, st: State, gold: Gold) -> int:
        """The first valid class with the minimum cost (the argmin of ``costs``), -1
        if none is valid."""
        return _cheapest_valid(self.costs(st, gold))

    def oracle_sequence(self, gold: Gold, state: Optional[State] = None, max_steps: Optional[int] = None) -> List[int]:
        """The static oracle's move sequence from ``state`` (default: a fresh state;
        the state is not modified): at each step the first valid class with the
        minimum cost (spaCy ``get_oracle_sequence_from_state``)."""
        start = self.init_state(gold.length) if state is None else state
        batch = self.batch([start], [gold])
        row = batch.all_rows()
        seq: List[int] = []
        limit = max_steps if max_steps is not None else 4 * gold.length + 10
        while not batch.is_final(row)[0]:
            if len(seq) >= limit:
                raise RuntimeError(f"oracle did not finish in {limit} moves: {self.replay(start, seq)!r}")
            clas = _cheapest_valid(batch.costs(row)[0])
            if clas < 0:
                raise RuntimeError(f"no valid move in a non-final state: {self.replay(start, seq)!r}")
            seq.append(clas)
            batch.advance(row, numpy.array([clas], dtype=numpy.int64))
        return seq

    def replay(self, state: State, classes: Sequence[int]) -> State:
        """A copy of ``state`` with ``classes`` applied in turn."""
        st = state.copy()
        for clas in classes:
            self.apply(st, clas)
        return st

    def segments(
        self, state: State, gold: Gold, max_moves: int, oracle: Optional[Sequence[int]] = None
    ) -> List[State]:
        """Cut a long document's oracle sequence into start states every ``max_moves``
        moves (spaCy ``_init_gold_batch``): replays the oracle from ``state``; keeps a
        start state if the words it covers (B0 at its start .. B0 at the next cut) have
        gold heads. The input state is not modified. (spaCy cuts only docs with at least
        ``max_moves`` words, with ``max_moves`` drawn per batch uniformly from
        [cut // 2, cut * 2], cut = update_with_oracle_cut_size, and steps every batch
        at most max_moves + 1 times; that is the caller's business.)"""
        if oracle is None:
            oracle = self.oracle_sequence(gold, state)

        def words_have_gold(start: State, end: State) -> bool:
            b_start, b_end = start.B(0), end.B(0)
            return b_start >= 0 and gold.has_gold(b_start, b_end if b_end >= 0 else None)

        return oracle_segments(state, oracle, max_moves, self.apply, words_have_gold)

    def is_gold_parse(self, st: State, gold: Gold) -> bool:
        for i in range(st.length):
            if not gold.known[i]:
                continue
            h = st.heads[i] if st.heads[i] >= 0 else i
            lab = st.labels[i] if st.heads[i] >= 0 else self.root_id
            if h != gold.heads[i] or (gold.labels[i] and lab != gold.labels[i]):
                return False
        return True

    # ---------------------------------------------------------- output
    def decode(self, st: State, deprojectivize_tree: bool = True) -> Tuple[List[int], List[str]]:
        """(heads, labels) in the corpus convention: head -1 and ``root_label`` for
        words without a head; decorated labels undone by deprojectivize unless
        ``deprojectivize_tree`` is False."""
        return self.decode_arcs(st.heads, st.labels, deprojectivize_tree)

    def decode_arcs(
        self, state_heads: Sequence[int], state_labels: Sequence[int], deprojectivize_tree: bool = True
    ) -> tuple[list[int], list[str]]:
        """``decode`` of a state's heads (-1: none) and label ids."""
        heads = [h if h >= 0 else -1 for h in state_heads]
        names = self.label_names
        labels = [names[lab] if h >= 0 else self.root_label for h, lab in zip(state_heads, state_labels)]
        if deprojectivize_tree:
            dep_heads, dep_labels = deprojectivize(heads, labels)
            # deprojectivize yields None only where its input has one: these have none
            heads, labels = cast(List[int], dep_heads), cast(List[str], dep_labels)
        return heads, labels

    def describe(self, st: State) -> str:
        return f"S={st.stack[::-1]} B={st.buffer()} hist={[self.class_names[c] for c in st.history]}"


def _cheapest_valid(costs: numpy.ndarray) -> int:
    """The first class with the minimum cost, -1 where every class is invalid."""
    best = int(costs.argmin())
    return best if costs[best] < INVALID_COST else -1


def concat_trees(
    trees: Sequence[Tuple[Sequence[Optional[int]], Sequence[Optional[str]]]]
) -> Tuple[List[Optional[int]], List[Optional[str]], List[Optional[bool]]]:
    """Join sentences into one document (as spaCy's ``convert -n 10``): heads shifted by
    each sentence's offset (roots stay -1), plus gold sentence starts for ``make_gold``."""
    heads: List[Optional[int]] = []
    labels: List[Optional[str]] = []
    starts: List[Optional[bool]] = []
    for sent_heads, sent_labels in trees:
        off = len(heads)
        heads.extend(h if h is None or h == -1 else h + off for h in sent_heads)
        labels.extend(sent_labels)
        starts.extend([True] + [False] * (len(sent_heads) - 1))
    return heads, labels, starts


def count_errors(moves: ArcEager, st: State, gold: Gold) -> int:
    """Tokens whose (head, inventory label) differs from the gold (missing gold heads skipped)."""
    n = 0
    for i in range(st.length):
        if not gold.known[i]:
            continue
        h = st.heads[i] if st.heads[i] >= 0 else i
        lab = st.labels[i] if st.heads[i] >= 0 else moves.root_id
        if h != gold.heads[i] or (gold.labels[i] and lab != gold.labels[i]):
            n += 1
    return n


# ---------------------------------------------------------------- batched states
# ArcEagerBatch keeps many states as int32 arrays; the kernels below are the
# per-state rules above (State, ArcEager._validity_*, ArcEager._move_costs*,
# ArcEager.apply) transcribed to those arrays, run for a set of rows at once.

# per-state scalars: ArcEagerBatch.scal[row, field]
_LEN, _OFF, _BI, _DEPTH, _NRB, _CLOCK = range(6)
# per-word fields: ArcEagerBatch.tok[row, field, word]; the stack (bottom first) and
# the put-back words (B0 last) are prefixes of their rows, of lengths _DEPTH and _NRB
_STK, _RB, _HEAD, _LABEL, _WHERE, _UNSHIFTABLE, _SENT_START, _ATTACHED = range(8)
# gold fields: ArcEagerBatch.gold[row, field, word]; _GSS: 1 True, 0 False, -1 None
_GHEAD, _GLABEL, _GKNOWN, _GSS = range(4)


@njit
def _k_B(scal: numpy.ndarray, tok: numpy.ndarray, r: int, i: int) -> int:
    """State.B: the i-th buffer word of row r, -1 if none."""
    nrb = scal[r, _NRB]
    if i < nrb:
        return tok[r, _RB, nrb - 1 - i]
    b = scal[r, _BI] + i - nrb
    return b if b < scal[r, _LEN] else -1


@njit
def _k_S(scal: numpy.ndarray, tok: numpy.ndarray, r: int, i: int) -> int:
    """State.S: the i-th stack word of row r (0: the top), -1 if none."""
    depth = scal[r, _DEPTH]
    return tok[r, _STK, depth - 1 - i] if i < depth else -1


@njit
def _k_child(scal: numpy.ndarray, tok: numpy.ndarray, r: int, head: int, idx: int, left: bool) -> int:
    """State.L (left) / State.R: the idx-th (1 or 2) child on that side counted
    from the one attached last (_ATTACHED orders the children as State's lists)."""
    if head < 0:
        return -1
    lo = 0
    hi = head
    if not left:
        lo = head + 1
        hi = scal[r, _LEN]
    first = second = -1
    t_first = t_second = -1
    for c in range(lo, hi):
        if tok[r, _HEAD, c] == head:
            t = tok[r, _ATTACHED, c]
            if t > t_first:
                second, t_second = first, t_first
                first, t_first = c, t
            elif t > t_second:
                second, t_second = c, t
    return first if idx == 1 else second


@njit
def _k_feature_ids(scal: numpy.ndarray, tok: numpy.ndarray, rows: numpy.ndarray, nF: int, out: numpy.ndarray) -> None:
    """State.feature_ids of each row into out (len(rows), nF)."""
    for i in range(rows.shape[0]):
        r = rows[i]
        b0 = _k_B(scal, tok, r, 0)
        s0 = _k_S(scal, tok, r, 0)
        if nF == 1:
            out[i, 0] = b0
        elif nF == 2:
            out[i, 0] = b0
            out[i, 1] = s0
        elif nF == 8:
            out[i, 0] = b0
            out[i, 1] = _k_B(scal, tok, r, 1)
            out[i, 2] = s0
            out[i, 3] = _k_S(scal, tok, r, 1)
            out[i, 4] = _k_S(scal, tok, r, 2)
            out[i, 5] = _k_child(scal, tok, r, b0, 1, True)
            out[i, 6] = _k_child(scal, tok, r, s0, 1, True)
            out[i, 7] = _k_child(scal, tok, r, s0, 1, False)
        else:  # 13
            s1 = _k_S(scal, tok, r, 1)
            out[i, 0] = b0
            out[i, 1] = _k_B(scal, tok, r, 1)
            out[i, 2] = s0
            out[i, 3] = s1
            out[i, 4] = _k_S(scal, tok, r, 2)
            out[i, 5] = _k_child(scal, tok, r, s0, 1, True)
            out[i, 6] = _k_child(scal, tok, r, s0, 1, False)
            out[i, 7] = _k_child(scal, tok, r, b0, 1, True)
            out[i, 8] = _k_child(scal, tok, r, s0, 2, False)
            out[i, 9] = _k_child(scal, tok, r, s1, 1, True)
            out[i, 10] = _k_child(scal, tok, r, s1, 2, True)
            out[i, 11] = _k_child(scal, tok, r, s1, 1, False)
            out[i, 12] = _k_child(scal, tok, r, s1, 2, False)
        k_shift_token_ids(out[i], scal[r, _OFF])


@njit
def _k_is_final(scal: numpy.ndarray, rows: numpy.ndarray, out: numpy.ndarray) -> None:
    """State.is_final of each row into out (len(rows),) bool."""
    for i in range(rows.shape[0]):
        r = rows[i]
        out[i] = scal[r, _DEPTH] == 0 and scal[r, _LEN] - scal[r, _BI] + scal[r, _NRB] == 0


@njit
def _k_validity(scal: numpy.ndarray, tok: numpy.ndarray, r: int, monotonic: bool, v: numpy.ndarray) -> None:
    """ArcEager._validity_spacy / _validity_monotonic into v (5,) bool."""
    depth = scal[r, _DEPTH]
    blen = scal[r, _LEN] - scal[r, _BI] + scal[r, _NRB]
    if monotonic:
        has_head = depth > 0 and tok[r, _HEAD, _k_S(scal, tok, r, 0)] >= 0
        v[SHIFT] = blen > 0
        v[REDUCE] = depth > 0 and (has_head or blen == 0)
        v[LEFT] = depth > 0 and blen > 0 and not has_head
        v[RIGHT] = depth > 0 and blen > 0
        v[BREAK] = False
        return
    if depth == 0 and blen == 0:
        v[:] = False
        return
    b0 = _k_B(scal, tok, r, 0)
    b0_start = b0 >= 0 and tok[r, _SENT_START, b0] != 0
    if depth == 0:
        v[SHIFT] = True
    else:
        v[SHIFT] = not (blen < 2 or b0_start or tok[r, _UNSHIFTABLE, b0] != 0)
    v[REDUCE] = depth > 0
    v[LEFT] = v[RIGHT] = depth > 0 and blen > 0 and not b0_start
    if blen < 2:
        v[BREAK] = False
    else:
        b1 = _k_B(scal, tok, r, 1)
        v[BREAK] = b1 == b0 + 1 and tok[r, _SENT_START, b1] == 0


@njit
def _k_valid(scal: numpy.ndarray, tok: numpy.ndarray, rows: numpy.ndarray, monotonic: bool, move_of_class: numpy.ndarray, out: numpy.ndarray) -> None:
    """ArcEager.valid_mask of each row into out (len(rows), n_moves) bool."""
    v = numpy.zeros(N_MOVE_TYPES, dtype=numpy.bool_)
    for i in range(rows.shape[0]):
        _k_validity(scal, tok, rows[i], monotonic, v)
        for c in range(move_of_class.shape[0]):
            out[i, c] = v[move_of_class[c]]


@njit
def _k_in_buffer(scal: numpy.ndarray, tok: numpy.ndarray, r: int, w: int, end: int, rb_cut: int) -> bool:
    """Whether word w is in the buffer before its first sentence start (see
    ArcEager._move_costs): b_i <= w < end, or put back at rebuffer position >= rb_cut."""
    if scal[r, _BI] <= w < end:
        return True
    if tok[r, _WHERE, w] != _REBUFFER:
        return False
    for j in range(rb_cut, scal[r, _NRB]):
        if tok[r, _RB, j] == w:
            return True
    return False


@njit
def _k_gold_label(gold: numpy.ndarray, r: int, w: int) -> int:
    """The gold arc label of word w (-1: the arc is known, its label is not)."""
    label = gold[r, _GLABEL, w]
    return label if label != 0 else -1


@njit
def _k_move_costs(
    scal: numpy.ndarray, tok: numpy.ndarray, gold: numpy.ndarray, r: int, monotonic: bool, v: numpy.ndarray, c: numpy.ndarray
) -> tuple[int, int]:
    """ArcEager._move_costs (or _move_costs_monotonic) into v (5,) validity and c (5,)
    costs; returns (gold_l, gold_r), the gold labels of a LEFT and a RIGHT arc that
    would be gold (0: none)."""
    _k_validity(scal, tok, r, monotonic, v)
    gh, known, s0 = gold[r, _GHEAD], gold[r, _GKNOWN], _k_S(scal, tok, r, 0)
    if monotonic:
        c[SHIFT], c[REDUCE], c[LEFT], c[RIGHT], c[BREAK], gold_l, gold_r = _k_move_costs_monotonic(scal, tok, gold, r, gh, known, s0)
    else:
        c[SHIFT], c[REDUCE], c[LEFT], c[RIGHT], c[BREAK], gold_l, gold_r = _k_move_costs_spacy(scal, tok, gold, r, v, gh, known, s0)
    return gold_l, gold_r


@njit
def _k_move_costs_spacy(
    scal: numpy.ndarray, tok: numpy.ndarray, gold: numpy.ndarray, r: int, v: numpy.ndarray,
    gh: numpy.ndarray, known: numpy.ndarray, s0: int,
) -> tuple[float, float, float, float, float, int, int]:
    """_k_move_costs of the non-monotonic system (gh, known: the row's gold heads and
    their known flags; s0: the stack's top): the costs of SHIFT, REDUCE, LEFT, RIGHT
    and BREAK, then gold_l and gold_r."""
    n = scal[r, _LEN]
    b_i = scal[r, _BI]
    nrb = scal[r, _NRB]
    depth = scal[r, _DEPTH]
    where = tok[r, _WHERE]
    sstart = tok[r, _SENT_START]
    s1 = _k_S(scal, tok, r, 1)
    b0 = _k_B(scal, tok, r, 0)
    # the buffer region ends at the first predicted sentence start
    end = n
    rb_cut = 0
    found = False
    for idx in range(nrb - 1, -1, -1):
        if sstart[tok[r, _RB, idx]] != 0:
            rb_cut = idx + 1
            end = b_i
            found = True
            break
    if not found:
        for x in range(b_i, n):
            if sstart[x] != 0:
                end = x
                break
    # SHIFT (push_cost)
    if b0 < 0:
        push_cost = INVALID_COST
    else:
        push_cost = 0.0
        h = gh[b0]
        if known[b0] != 0 and h != b0 and where[h] == _STACK:
            push_cost += 1
        for k in range(n):
            if gh[k] == b0 and known[k] != 0 and k != b0 and where[k] == _STACK:
                push_cost += 1
        if v[BREAK] and gold[r, _GSS, _k_B(scal, tok, r, 1)] == 1:
            push_cost += 1
    # pop_cost
    s0_hs = s0_ks = 0
    if s0 < 0:
        pop_cost = INVALID_COST
    else:
        pop_cost = 0.0
        h = gh[s0]
        if known[s0] != 0 and h != s0:
            if _k_in_buffer(scal, tok, r, h, end, rb_cut):
                pop_cost += 1
            if where[h] == _STACK:
                s0_hs = 1
        for k in range(n):
            if gh[k] == s0 and known[k] != 0 and k != s0:
                if where[k] == _STACK:
                    s0_ks += 1
                elif _k_in_buffer(scal, tok, r, k, end, rb_cut):
                    pop_cost += 1
    s0_headless = s0 >= 0 and tok[r, _HEAD, s0] < 0
    # REDUCE
    if b0 >= 0 and sstart[b0] != 0:
        c_reduce = 0.0
    else:
        c_reduce = pop_cost
        if s0_headless:
            c_reduce -= s0_hs + s0_ks
    # LEFT
    gold_l = 0
    c_left = pop_cost
    if s0 >= 0:
        if s0_headless:
            c_left += s0_hs + s0_ks
        elif known[s0] != 0 and gh[s0] == s1:
            c_left += 1
        if b0 >= 0 and known[s0] != 0 and gh[s0] == b0:
            c_left -= 1
            gold_l = _k_gold_label(gold, r, s0)
    # RIGHT
    gold_r = 0
    c_right = push_cost
    if b0 >= 0:
        h = gh[b0]
        if s0 >= 0 and known[b0] != 0 and h == s0:
            c_right -= 1
            gold_r = _k_gold_label(gold, r, b0)
        elif (
            known[b0] != 0 and h != b0 and tok[r, _UNSHIFTABLE, b0] == 0
            and _k_in_buffer(scal, tok, r, h, end, rb_cut)
        ):
            c_right += 1
    # BREAK
    c_break = 0.0
    if v[BREAK]:
        for j in range(depth):
            si = tok[r, _STK, j]
            h = gh[si]
            if known[si] != 0 and h != si and _k_in_buffer(scal, tok, r, h, end, rb_cut):
                c_break += 1
            if known[b0] != 0 and gh[b0] == si:
                c_break -= 1
            if known[si] != 0 and h == b0:
                c_break -= 1
        for k in range(n):  # the stack words' gold children in the buffer region
            h = gh[k]
            if known[k] != 0 and h != k and where[h] == _STACK and _k_in_buffer(scal, tok, r, k, end, rb_cut):
                c_break += 1
        if gold[r, _GSS, _k_B(scal, tok, r, 1)] == 0:
            c_break += 1
    return push_cost, c_reduce, c_left, c_right, c_break, gold_l, gold_r


@njit
def _k_move_costs_monotonic(
    scal: numpy.ndarray, tok: numpy.ndarray, gold: numpy.ndarray, r: int,
    gh: numpy.ndarray, known: numpy.ndarray, s0: int,
) -> tuple[float, float, float, float, float, int, int]:
    """_k_move_costs of the monotonic system (arguments and result as _k_move_costs_spacy's)."""
    n = scal[r, _LEN]
    b_i = scal[r, _BI]
    where = tok[r, _WHERE]
    b0 = b_i if b_i < n else -1
    gold_l = gold_r = 0
    b0_hs = b0_ks = 0
    if b0 >= 0:
        h = gh[b0]
        if known[b0] != 0 and h != b0 and where[h] == _STACK:
            b0_hs = 1
        for k in range(n):
            if gh[k] == b0 and known[k] != 0 and k != b0 and where[k] == _STACK and tok[r, _HEAD, k] < 0:
                b0_ks += 1
    s0_kb = 0
    if s0 >= 0:
        for k in range(b_i, n):
            if gh[k] == s0 and known[k] != 0 and k != s0:
                s0_kb += 1
    c_shift = float(b0_hs + b0_ks) if b0 >= 0 else INVALID_COST
    c_reduce = float(s0_kb) if s0 >= 0 else INVALID_COST
    c_left = c_right = INVALID_COST
    if s0 >= 0 and b0 >= 0:
        c_left = float(s0_kb)
        if known[s0] != 0:
            h = gh[s0]
            if h == b0:
                gold_l = _k_gold_label(gold, r, s0)
            elif h == s0 or h >= b_i:
                c_left += 1
        c_right = float(b0_ks)
        if known[b0] != 0:
            h = gh[b0]
            if h == s0:
                gold_r = _k_gold_label(gold, r, b0)
            elif h == b0 or h > b0 or where[h] == _STACK:
                c_right += 1
    return c_shift, c_reduce, c_left, c_right, INVALID_COST, gold_l, gold_r


@njit
def _k_costs(
    scal: numpy.ndarray, tok: numpy.ndarray, gold: numpy.ndarray, rows: numpy.ndarray, monotonic: bool,
    move_of_class: numpy.ndarray, label_of_class: numpy.ndarray, out: numpy.ndarray,
) -> None:
    """ArcEager.costs for each row: the move's cost, +1 on an L (R) class whose label
    is not the gold arc's, INVALID_COST for invalid classes."""
    v = numpy.zeros(N_MOVE_TYPES, dtype=numpy.bool_)
    c = numpy.zeros(N_MOVE_TYPES, dtype=numpy.float64)
    for i in range(rows.shape[0]):
        gold_l, gold_r = _k_move_costs(scal, tok, gold, rows[i], monotonic, v, c)
        for k in range(move_of_class.shape[0]):
            m = move_of_class[k]
            if not v[m]:
                out[i, k] = INVALID_COST
                continue
            cost = numpy.float32(c[m])
            gold_label = gold_l if m == LEFT else (gold_r if m == RIGHT else 0)
            if gold_label > 0 and label_of_class[k] != gold_label:
                cost += numpy.float32(1.0)  # the gold arc with a wrong label
            out[i, k] = cost


@njit
def _k_add_arc(scal: numpy.ndarray, tok: numpy.ndarray, r: int, head: int, child: int, label: int) -> None:
    """State.add_arc: head and label of child (replacing any), stamped with the row's clock."""
    tok[r, _HEAD, child] = head
    tok[r, _LABEL, child] = label
    tok[r, _ATTACHED, child] = scal[r, _CLOCK]
    scal[r, _CLOCK] += 1


@njit
def _k_push(scal: numpy.ndarray, tok: numpy.ndarray, r: int) -> None:
    """State.push: B0 onto the stack."""
    nrb = scal[r, _NRB]
    if nrb:
        b0 = tok[r, _RB, nrb - 1]
        scal[r, _NRB] = nrb - 1
    else:
        b0 = scal[r, _BI]
        scal[r, _BI] = b0 + 1
    depth = scal[r, _DEPTH]
    tok[r, _STK, depth] = b0
    scal[r, _DEPTH] = depth + 1
    tok[r, _WHERE, b0] = _STACK


@njit
def _k_pop(scal: numpy.ndarray, tok: numpy.ndarray, r: int) -> None:
    """State.pop: S0 off the stack, done."""
    depth = scal[r, _DEPTH] - 1
    tok[r, _WHERE, tok[r, _STK, depth]] = _DONE
    scal[r, _DEPTH] = depth


@njit
def _k_advance(
    scal: numpy.ndarray, tok: numpy.ndarray, rows: numpy.ndarray, classes: numpy.ndarray, monotonic: bool,
    move_of_class: numpy.ndarray, label_of_class: numpy.ndarray,
) -> None:
    """ArcEager.apply of classes[i] to row rows[i] (no validity check)."""
    for i in range(rows.shape[0]):
        r = rows[i]
        clas = classes[i]
        move = move_of_class[clas]
        label = label_of_class[clas]
        if move == SHIFT:
            _k_push(scal, tok, r)
        elif move == REDUCE:
            depth = scal[r, _DEPTH]
            s0 = tok[r, _STK, depth - 1]
            if tok[r, _HEAD, s0] >= 0 or depth == 1 or monotonic:
                _k_pop(scal, tok, r)
            else:  # unshift: S0 goes back to the front of the buffer
                scal[r, _DEPTH] = depth - 1
                tok[r, _UNSHIFTABLE, s0] = 1
                tok[r, _RB, scal[r, _NRB]] = s0
                scal[r, _NRB] += 1
                tok[r, _WHERE, s0] = _REBUFFER
        elif move == LEFT:
            b0 = _k_B(scal, tok, r, 0)
            _k_add_arc(scal, tok, r, b0, tok[r, _STK, scal[r, _DEPTH] - 1], label)
            tok[r, _UNSHIFTABLE, b0] = 0
            _k_pop(scal, tok, r)
        elif move == RIGHT:
            _k_add_arc(scal, tok, r, tok[r, _STK, scal[r, _DEPTH] - 1], _k_B(scal, tok, r, 0), label)
            _k_push(scal, tok, r)
        else:  # BREAK
            tok[r, _SENT_START, _k_B(scal, tok, r, 1)] = 1


class ArcEagerBatch(StateBatch["ArcEager"], supported_nf=SUPPORTED_NF, final_kernel=_k_is_final):
    """Many parser states (and optionally their golds) as arrays, advanced together
    by the compiled kernels above: the training and decoding loops' form of
    ``State``. Rows are in the order of the states it was made from; methods take
    ``rows``, an int64 array of the rows to work on (e.g. the live ones)."""

    def __init__(
        self, system: "ArcEager | None", states: Sequence[State], golds: Sequence[Gold] | None = None
    ) -> None:
        super().__init__(system, [st.length for st in states], n_scalars=6)
        n, width = len(states), self.width
        self.tok = numpy.zeros((n, 8, width), dtype=numpy.int32)
        self.tok[:, _HEAD] = -1
        for r, st in enumerate(states):
            self.scal[r, _LEN] = st.length
            self.scal[r, _OFF] = st.offset
            if st.b_i == 0 and not st.stack and not st.rebuffer and not st.sent_starts:
                continue  # a fresh state: the defaults
            self._load(r, st)
        self.gold: numpy.ndarray | None = None
        if golds is not None:
            self.gold = numpy.zeros((n, 4, width), dtype=numpy.int32)
            for r, g in enumerate(golds):
                self.gold[r, :, : g.length] = g.as_array()  # rows _GHEAD, _GLABEL, _GKNOWN, _GSS

    def _load(self, r: int, st: State) -> None:
        n = st.length
        scal, tok = self.scal[r], self.tok[r]
        scal[_BI] = st.b_i
        scal[_DEPTH] = len(st.stack)
        scal[_NRB] = len(st.rebuffer)
        tok[_STK, : len(st.stack)] = st.stack
        tok[_RB, : len(st.rebuffer)] = st.rebuffer
        tok[_HEAD, :n] = st.heads
        tok[_LABEL, :n] = st.labels
        tok[_WHERE, :n] = st.where
        tok[_UNSHIFTABLE, :n] = st.unshiftable
        tok[_SENT_START, list(st.sent_starts)] = 1
        # attachment times only order the children of one head: list positions do
        for kids in (st._lefts or []) + (st._rights or []):  # none made: no arcs yet
            for pos, child in enumerate(kids):
                tok[_ATTACHED, child] = pos
        scal[_CLOCK] = n

    def feature_ids(self, rows: numpy.ndarray, nF: int) -> numpy.ndarray:
        """(len(rows), nF) int32 token rows (offset added, -1 missing), as State.feature_ids."""
        out = self.feature_out(rows, nF)
        _k_feature_ids(self.scal, self.tok, rows, nF, out)
        return out

    def valid(self, rows: numpy.ndarray) -> numpy.ndarray:
        """(len(rows), n_moves) bool, as ArcEager.valid_masks."""
        system = self.require_system()
        out = numpy.empty((len(rows), system.n_moves), dtype=bool)
        _k_valid(self.scal, self.tok, rows, system.monotonic, system.move_of_class, out)
        return out

    def costs(self, rows: numpy.ndarray) -> numpy.ndarray:
        """(len(rows), n_moves) float32, as ArcEager.costs (needs the golds)."""
        if self.gold is None:
            raise ValueError("this batch was made without golds: no costs")
        system = self.require_system()
        out = numpy.empty((len(rows), system.n_moves), dtype=numpy.float32)
        _k_costs(self.scal, self.tok, self.gold, rows, system.monotonic, system.move_of_class, system.label_of_class, out)
        return out

    def advance(self, rows: numpy.ndarray, class_ids: numpy.ndarray) -> None:
        """Apply class_ids[i] to row rows[i] (no validity check), as ArcEager.apply."""
        system = self.require_system()
        classes = numpy.asarray(class_ids, dtype=numpy.int64)
        _k_advance(self.scal, self.tok, rows, classes, system.monotonic, system.move_of_class, system.label_of_class)

    def decode(self, row: int, deprojectivize_tree: bool = True) -> tuple[list[int], list[str]]:
        """ArcEager.decode of the row's parse."""
        n = int(self.scal[row, _LEN])
        return self.require_system().decode_arcs(
            self.tok[row, _HEAD, :n].tolist(), self.tok[row, _LABEL, :n].tolist(), deprojectivize_tree
        )
