"""The BILUO transition system for named-entity recognition (spaCy's ``BiluoPushDown``).

spaCy 3.x's moves and dynamic oracle. A state reads the sentence left to right; each move
consumes the front buffer token B0:

* ``B-x`` opens an entity of label x at B0, ``I-x`` continues it, ``L-x``
  closes it at B0, ``U-x`` is a one-token entity, ``O`` is outside;
* ``U-`` (unlabelled unit) is spaCy's "not an entity" marker for *preset
  blocked* tokens. This system supports no preset annotations, so ``U-`` is
  never valid; it is kept so the action inventory (and the upper layer's
  weights) have spaCy's shape. spaCy's internal MISSING move is not a class.

Class order (``n_actions = 2 + 4 * n_labels``): ``B-*``, ``I-*``, ``L-*``,
``U-*`` (each over the labels in ``labels`` order), then ``U-``, then ``O``.
With labels (PER, ORG, LOC): B-PER B-ORG B-LOC I-PER ... U-LOC U- O = 14.

Label order. :meth:`BiluoSystem.from_examples` uses first-seen order by
default (as specified). spaCy itself sorts the labels of each move by
descending *token* frequency (ties: label string, reverse order), so for
weight-level parity with a spaCy-trained NER use ``label_order="spacy"``.

Validity (spaCy's rules without presets, sentence boundaries or whitespace tokens):
outside an entity only ``B-x``/``U-x``/``O``; inside an open x entity only
``I-x``/``L-x``; ``B`` and ``I`` are not allowed on the last token (so every
entity is closed by the end); a final state has no valid move.

Costs (:meth:`BiluoSystem.costs`). The loss of a predicted entity set is
FP + FN (exact span and label match). A valid move's cost is how much it raises
the minimum loss still achievable from the state (a dynamic oracle: exact from
any state, on or off the gold path; O(1) per move, closed form in
``_move_costs``). By default costs are clipped to 0/1: on the gold path a move
costs 1 exactly when it makes the gold entity sequence unreachable, as spaCy's
costs (``graded=True`` returns the unclipped increase, 0..3). Invalid moves cost
``INVALID_COST`` (9000, as spaCy). Missing annotation (gold tag ``None``): every
valid move at a missing B0 costs 0 (spaCy's rule); when costing an annotated B0,
a missing token elsewhere counts as "no gold entity starts here", and an open
entity whose gold start is missing is given the benefit of the doubt.

Feature tokens (``State.feature_ids`` / ``BiluoSystem.feature_ids``, §3.1):
rows of the batch-concatenated token matrix (``state.offset + i``), -1 = missing:

* nF = 1: ``B0``;
* nF = 3 (released NER default): ``B0``; ``E0`` (entity start) if an entity is
  open else -1; ``B0-1`` if both exist else -1;
* nF = 6: the **released** spaCy 3.x definition (``extra_state_tokens=true``):
  ``B0``, then the tokens from the open entity's start up to (excluding) B0,
  at most 5, unused slots -1.

The API has the names and shapes of ``search.tasks.parsing.arc_eager.ArcEager`` so one
transition-based component can drive both: ``len(system)`` / ``n_moves`` /
``class_names`` / ``class_index``; ``init_states(lengths, offsets=None)``;
``feature_ids(states, nF)`` -> (n, nF) int32; ``valid_masks(states)`` -> (n, n_moves)
bool; ``costs_batch(states, golds)`` -> (n, n_moves) float32; ``advance(states,
class_ids)``; ``state.is_final()``; ``oracle_sequence(gold, state)``;
``segments(state, gold, max_moves)``; ``gold_from_example(eg)``; ``to_dict`` /
``from_dict``; ``batch(states, golds=None)``. ``decode(state)`` returns entities
instead of a tree.

Two forms of the same rules, as in arc_eager: ``State`` with the per-state methods
(``apply``, ``valid_mask``, ``costs``, ``oracle_move``, ``oracle_sequence``,
``segments``: pure Python), and ``NerBatch`` (``BiluoSystem.batch``), the training
and decoding loops' form: many states as int32 arrays, feature ids, validity,
costs and moves as numba-compiled loops over the rows to work on
(archs/jit.py says why). ``feature_ids``, ``valid_masks`` and
``costs_batch`` run on a batch made from the given states.
"""

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy

from archs.jit import njit

from .shared import StateBatch, k_shift_token_ids, oracle_segments

Entity = Tuple[int, int, str]  # (start, end exclusive, label)

INVALID_COST = 9000.0
SUPPORTED_NF = (1, 3, 6)
_ROW0 = numpy.zeros(1, dtype=numpy.int64)  # the rows argument for a batch of one state

# Gold tag kinds (NerGold.kinds)
MISSING, OUT, BEGIN, IN, LAST, UNIT = -1, 0, 1, 2, 3, 4
_KIND_OF = {"O": OUT, "B": BEGIN, "I": IN, "L": LAST, "U": UNIT}


class State:
    """A parse in progress over one sentence of ``length`` tokens; ``offset`` is
    the sentence's first row in the batch-concatenated token matrix."""

    __slots__ = ("length", "offset", "b0", "ent_start", "ent_label", "entities", "history")

    def __init__(self, length: int, offset: int = 0) -> None:
        self.length = int(length)
        self.offset = int(offset)
        self.b0 = 0  # buffer front: the next token to label
        self.ent_start = -1  # first token of the open entity, -1 if none
        self.ent_label = -1  # label index of the open entity, -1 if none
        self.entities: List[Tuple[int, int, int]] = []  # closed entities (start, end exclusive, label index)
        self.history: List[int] = []  # class ids applied so far

    def is_final(self) -> bool:
        return self.b0 >= self.length

    def entity_is_open(self) -> bool:
        return self.ent_start >= 0

    def B(self, i: int) -> int:
        """The i-th buffer token (-1 if none)."""
        b = self.b0 + i
        return b if 0 <= i and b < self.length else -1

    def E(self, i: int) -> int:
        """The i-th token of the open entity (-1 if none)."""
        e = self.ent_start + i
        return e if self.ent_start >= 0 and 0 <= i and e < self.b0 else -1

    def feature_ids(self, nF: int) -> List[int]:
        """The nF context tokens of spaCy's NER states (offset added, -1 missing)."""
        return NerBatch(None, [self]).feature_ids(_ROW0, nF)[0].tolist()

    def copy(self) -> "State":
        new = State.__new__(State)
        new.length = self.length
        new.offset = self.offset
        new.b0 = self.b0
        new.ent_start = self.ent_start
        new.ent_label = self.ent_label
        new.entities = list(self.entities)
        new.history = list(self.history)
        return new

    def key(self) -> Tuple[int, int, int]:
        """What the future depends on: (B0, open entity start, open entity label)."""
        return (self.b0, self.ent_start, self.ent_label)

    def __repr__(self) -> str:
        return (
            f"State(b0={self.b0}/{self.length}, open={(self.ent_start, self.ent_label) if self.ent_start >= 0 else None}, "
            f"entities={self.entities})"
        )


class NerGold:
    """Gold BILUO tags of one sentence, pre-digested for O(1) costs.

    kinds[i]: MISSING/OUT/BEGIN/IN/LAST/UNIT; labels[i]: label index (-1 for
    O, missing, or a label the system does not know); starts[j] (j <= n+1):
    1 where a gold entity the system could predict starts at j.
    """

    __slots__ = ("length", "kinds", "labels", "starts", "tags")

    def __init__(self, tags: Sequence[Optional[str]], label_ids: Dict[str, int]) -> None:
        n = len(tags)
        self.length = n
        self.tags = list(tags)
        self.kinds: List[int] = []
        self.labels: List[int] = []
        for i, tag in enumerate(tags):
            if tag is None:
                self.kinds.append(MISSING)
                self.labels.append(-1)
            elif tag == "O":
                self.kinds.append(OUT)
                self.labels.append(-1)
            else:
                kind = _KIND_OF.get(tag[:1])
                if kind is None or kind == OUT or tag[1:2] != "-" or len(tag) < 3:
                    raise ValueError(f"token {i}: not a BILUO tag: {tag!r}")
                self.kinds.append(kind)
                self.labels.append(label_ids.get(tag[2:], -1))
        self._check()
        self.starts = [
            1 if i < n and self.kinds[i] in (BEGIN, UNIT) and self.labels[i] >= 0 else 0 for i in range(n + 2)
        ]

    def has_gold(self, start: int = 0, end: Optional[int] = None) -> bool:
        """Whether any token in [start, end) is annotated (spaCy's ``has_gold``)."""
        return any(k != MISSING for k in self.kinds[start:end])

    def _check(self) -> None:
        """Reject BILUO sequences no move sequence can produce (checked between
        annotated neighbours only: a missing token may hide anything)."""
        k, tags, n = self.kinds, self.tags, self.length
        for i in range(n):
            opens = k[i] in (BEGIN, IN)  # the entity goes on after token i
            if opens and i == n - 1:
                raise ValueError(f"token {i}: {tags[i]!r} on the last token leaves the entity open")
            if k[i] in (IN, LAST) and i == 0:
                raise ValueError(f"token 0: {tags[0]!r} continues an entity that never began")
            if i + 1 < n and k[i] != MISSING and k[i + 1] != MISSING:
                tag, next_tag = tags[i], tags[i + 1]
                assert tag is not None and next_tag is not None  # MISSING is exactly a None tag (__init__)
                continues = k[i + 1] in (IN, LAST)
                if opens != continues or (opens and tag[2:] != next_tag[2:]):
                    raise ValueError(f"tokens {i}-{i + 1}: {tag!r} cannot be followed by {next_tag!r}")


class BiluoSystem:
    """BILUO moves over a fixed label set (see the module doc for every rule)."""

    def __init__(self, labels: Sequence[str]) -> None:
        labels = list(labels)
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate entity labels: {labels}")
        for label in labels:
            if not label or "-" in label[:1] or any(c.isspace() for c in label):
                raise ValueError(f"invalid entity label: {label!r}")
        self.labels: Tuple[str, ...] = tuple(labels)
        self.label_ids: Dict[str, int] = {label: i for i, label in enumerate(labels)}
        n = len(labels)
        self.n_labels = n
        self.n_actions = 2 + 4 * n
        self.UNLABELLED_UNIT = 4 * n  # class id of "U-"
        self.OUT = 4 * n + 1  # class id of "O"
        self.move_names: List[str] = (
            [f"{m}-{label}" for m in "BILU" for label in labels] + ["U-", "O"]
        )
        self._class_ids = {name: i for i, name in enumerate(self.move_names)}
        # The same names as search.tasks.parsing.arc_eager.ArcEager, so one component drives both.
        self.n_moves = self.n_actions
        self.class_names = self.move_names
        # Valid-move masks, by (open label or -1, whether B0 is the last token).
        nA = self.n_actions
        self._masks: Dict[Tuple[int, bool], numpy.ndarray] = {}
        for last in (False, True):
            m = numpy.zeros(nA, dtype=bool)
            m[3 * n : 4 * n] = True  # U-x
            m[self.OUT] = True
            if not last:
                m[0:n] = True  # B-x
            self._masks[(-1, last)] = m
            for lab in range(n):
                m = numpy.zeros(nA, dtype=bool)
                m[2 * n + lab] = True  # L-x
                if not last:
                    m[n + lab] = True  # I-x
                self._masks[(lab, last)] = m
        self._no_moves = numpy.zeros(nA, dtype=bool)
        for m in self._masks.values():
            m.setflags(write=False)
        self._no_moves.setflags(write=False)

    # ------------------------------------------------------------ inventory

    @classmethod
    def from_examples(cls, examples: Iterable, key: str = "ner", label_order: str = "first_seen") -> "BiluoSystem":
        """The labels of the BILUO tags in ``example.gold[key]``.

        label_order: "first_seen" (default) or "spacy" (descending token
        frequency, ties by label in reverse string order, as spaCy's
        ``TransitionSystem.initialize_actions``).
        """
        counts: Dict[str, int] = {}
        for eg in examples:
            for tag in eg.gold.get(key) or ():
                if tag is not None and tag != "O":
                    label = tag[2:]
                    counts[label] = counts.get(label, 0) + 1
        if label_order == "first_seen":
            labels = list(counts)
        elif label_order == "spacy":
            labels = [label for _, label in sorted(((f, lab) for lab, f in counts.items()), reverse=True)]
        else:
            raise ValueError(f"label_order must be 'first_seen' or 'spacy', got {label_order!r}")
        return cls(labels)

    def class_id(self, name: str) -> int:
        try:
            return self._class_ids[name]
        except KeyError:
            raise KeyError(f"unknown move {name!r}; moves: {self.move_names}") from None

    def class_index(self, name: str) -> int:
        """= class_id (ArcEager's name)."""
        return self.class_id(name)

    def __len__(self) -> int:
        return self.n_actions

    def to_dict(self) -> Dict[str, List[str]]:
        """What to save to rebuild the same class order: BiluoSystem.from_dict(data)."""
        return {"labels": list(self.labels)}

    @classmethod
    def from_dict(cls, data: Dict) -> "BiluoSystem":
        return cls(data["labels"])

    def __repr__(self) -> str:
        return f"BiluoSystem(labels={list(self.labels)}, n_actions={self.n_actions})"

    # ------------------------------------------------------------ states

    def init_state(self, length: int, offset: int = 0) -> State:
        return State(length, offset)

    def init_states(self, lengths: Sequence[int], offsets: Optional[Sequence[int]] = None) -> List[State]:
        """One state per doc; offsets default to the running sum of lengths (rows of
        the batch-concatenated token matrix)."""
        lengths = [int(n) for n in lengths]
        if offsets is None:
            offsets = [0] * len(lengths)
            for i in range(1, len(lengths)):
                offsets[i] = offsets[i - 1] + lengths[i - 1]
        return [State(n, off) for n, off in zip(lengths, offsets)]

    @staticmethod
    def is_final(state: State) -> bool:
        return state.b0 >= state.length

    def valid_mask(self, state: State) -> numpy.ndarray:
        """(n_actions,) bool, read-only (shared). No valid move in a final state."""
        if state.b0 >= state.length:
            return self._no_moves
        return self._masks[(state.ent_label, state.b0 == state.length - 1)]

    def valid_masks(self, states: Sequence[State]) -> numpy.ndarray:
        """(len(states), n_actions) bool."""
        batch = self.batch(states)
        return batch.valid(batch.all_rows())

    def is_valid(self, state: State, class_id: int) -> bool:
        return bool(self.valid_mask(state)[class_id])

    def apply(self, state: State, class_id: int) -> State:
        """Do one move, in place; returns the state. Raises ValueError if the move is invalid."""
        if not self.is_valid(state, class_id):
            raise ValueError(f"move {self.move_names[class_id]} is not valid in {state!r}")
        n = self.n_labels
        move, lab = divmod(class_id, n) if class_id < 4 * n else (None, -1)
        b0 = state.b0
        if move == 0:  # B
            state.ent_start, state.ent_label = b0, lab
        elif move == 2:  # L
            state.entities.append((state.ent_start, b0 + 1, lab))
            state.ent_start = state.ent_label = -1
        elif move == 3:  # U
            state.entities.append((b0, b0 + 1, lab))
        # I and O only advance
        state.b0 = b0 + 1
        state.history.append(class_id)
        return state

    def advance(self, states: Sequence[State], class_ids: Sequence[int]) -> None:
        """Apply one move to each non-final state (class_ids aligned with states;
        entries for final states are ignored)."""
        for s, c in zip(states, class_ids):
            if s.b0 < s.length:
                self.apply(s, int(c))

    def decode(self, state: State) -> List[Entity]:
        """The predicted entities (start, end exclusive, label), in order."""
        return [(s, e, self.labels[lab]) for s, e, lab in state.entities]

    def is_gold_parse(self, state: State, gold: "NerGold") -> bool:
        """Whether the state's BILUO tags so far agree with every annotated gold tag."""
        tags = ["O"] * state.b0
        for s, e, lab in state.entities:
            if e - s == 1:
                tags[s] = "U-" + self.labels[lab]
            else:
                tags[s] = "B-" + self.labels[lab]
                for j in range(s + 1, e - 1):
                    tags[j] = "I-" + self.labels[lab]
                tags[e - 1] = "L-" + self.labels[lab]
        if state.ent_start >= 0:
            tags[state.ent_start] = "B-" + self.labels[state.ent_label]
            for j in range(state.ent_start + 1, state.b0):
                tags[j] = "I-" + self.labels[state.ent_label]
        return all(g is None or g == t for g, t in zip(gold.tags, tags))

    def describe(self, state: State) -> str:
        return f"{state!r} hist={[self.move_names[c] for c in state.history]}"

    # ------------------------------------------------------------ features

    def batch(self, states: Sequence[State], golds: "Sequence[NerGold] | None" = None) -> "NerBatch":
        """The states (copied) as a NerBatch, with their golds for costs."""
        return NerBatch(self, states, golds)

    def feature_ids(self, states: Sequence[State], nF: int) -> numpy.ndarray:
        """(n_states, nF) int32 token rows (each state's offset added, -1 missing);
        see ``State.feature_ids`` and the module doc."""
        batch = self.batch(states)
        return batch.feature_ids(batch.all_rows(), nF)

    # ------------------------------------------------------------ oracle

    def make_gold(self, tags: Sequence[Optional[str]]) -> NerGold:
        """Gold for costs from BILUO tags (None = missing annotation)."""
        return NerGold(tags, self.label_ids)

    def gold_from_example(self, example, key: str = "ner") -> NerGold:
        tags = example.gold[key]
        if len(tags) != len(example):
            raise ValueError(f"{example.source}: {len(tags)} {key} tags for {len(example)} tokens")
        return NerGold(tags, self.label_ids)

    def costs(self, state: State, gold: NerGold, graded: bool = False) -> numpy.ndarray:
        """(n_actions,) float32: 0/1 per valid move (see module doc), INVALID_COST for invalid moves.

        graded=True: the exact increase of the minimum achievable FP+FN instead of 0/1.
        """
        out = numpy.full(self.n_actions, INVALID_COST, dtype="float32")
        mask = self.valid_mask(state)
        if not mask.any():
            return out
        if gold.length != state.length:
            raise ValueError(f"gold has {gold.length} tokens, state {state.length}")
        for c, cost in self._move_costs(state, gold):
            out[c] = cost if graded or cost <= 1 else 1
        return out

    def costs_batch(self, states: Sequence[State], golds: Sequence[NerGold], graded: bool = False) -> numpy.ndarray:
        """(n_states, n_actions) float32 costs, as ``costs``; invalid classes get INVALID_COST."""
        batch = self.batch(states, golds)
        return batch.costs(batch.all_rows(), graded=graded)

    def _alive(self, state: State, gold: NerGold) -> bool:
        """Whether the open entity can still match a gold entity exactly (given annotated B0)."""
        lab, start, i = state.ent_label, state.ent_start, state.b0
        k = gold.kinds
        if gold.labels[i] != lab or k[i] not in (IN, LAST):
            return False
        if k[start] != MISSING and (k[start] != BEGIN or gold.labels[start] != lab):
            return False
        for j in range(start + 1, i):
            if k[j] != MISSING and (k[j] != IN or gold.labels[j] != lab):
                return False
        return True

    def _move_costs(self, state: State, gold: NerGold) -> List[Tuple[int, int]]:
        """(class id, graded cost) for every valid move. Derivation: let N(j) = the
        number of predictable gold entities starting at or after j and st(j) = N(j) - N(j+1).
        From outside at i the best future loss is -N(i) (relative); inside an entity
        that can still match (ends at gold end e) it is -2 - N(i); inside a dead
        entity it is -N(i+1) (close it at once). A move's cost is the change."""
        n = self.n_labels
        i = state.b0
        last = i == state.length - 1
        g_kind = gold.kinds[i]
        if g_kind == MISSING:
            return [(int(c), 0) for c in numpy.flatnonzero(self.valid_mask(state))]
        g_lab = gold.labels[i]
        st = gold.starts
        out: List[Tuple[int, int]] = []
        if state.ent_start < 0:
            out.append((self.OUT, st[i]))
            for lab in range(n):
                out.append((3 * n + lab, 0 if (g_kind == UNIT and g_lab == lab) else 1 + st[i]))
            if not last:
                for lab in range(n):
                    out.append((lab, 0 if (g_kind == BEGIN and g_lab == lab) else 1 + st[i] + st[i + 1]))
        else:
            lab = state.ent_label
            if self._alive(state, gold):
                out.append((2 * n + lab, 0 if g_kind == LAST else 2))
                if not last:
                    out.append((n + lab, 0 if g_kind == IN else 2 + st[i + 1]))
            else:
                out.append((2 * n + lab, 0))
                if not last:
                    out.append((n + lab, st[i + 1]))
        return out

    def oracle_sequence(self, gold: NerGold, state: Optional[State] = None) -> List[int]:
        """A minimum-cost move sequence from ``state`` (default: a fresh state; the
        state is not modified) to a final state, one ``oracle_move`` per token."""
        state = State(gold.length) if state is None else state.copy()
        moves: List[int] = []
        while state.b0 < state.length:
            c = self.oracle_move(state, gold)
            moves.append(c)
            self.apply(state, c)
        return moves

    def segments(
        self, state: State, gold: NerGold, max_moves: int, oracle: Optional[Sequence[int]] = None
    ) -> List[State]:
        """Cut a long document's oracle sequence into start states every ``max_moves``
        moves (spaCy ``_init_gold_batch``, §3.4): replays the oracle from ``state``;
        keeps a start state if the tokens it covers have any annotation. The input
        state is not modified. (One move per token, so segment k starts at token
        b0 + k * max_moves.)"""
        if oracle is None:
            oracle = self.oracle_sequence(gold, state)
        return oracle_segments(state, oracle, max_moves, self.apply, lambda start, end: gold.has_gold(start.b0, end.b0))

    def oracle_move(self, state: State, gold: NerGold) -> int:
        """The minimum-cost valid move. Ties (only with missing annotation) go to the
        move named by the gold tag, then to I-x when the next gold tag continues the
        open entity, then O, then L-x, then the lowest class id."""
        costs = self.costs(state, gold)
        best = float(costs.min())
        zero = [int(c) for c in numpy.flatnonzero(costs == best)]
        if len(zero) == 1:
            return zero[0]
        i = state.b0
        tag = gold.tags[i]
        if tag is not None and tag in self._class_ids and self._class_ids[tag] in zero:
            return self._class_ids[tag]
        if state.ent_start >= 0:
            i_move = self.n_labels + state.ent_label
            nxt = gold.kinds[i + 1] if i + 1 < gold.length else OUT
            if i_move in zero and nxt in (IN, LAST) and gold.labels[i + 1] == state.ent_label:
                return i_move
            l_move = 2 * self.n_labels + state.ent_label
            if l_move in zero:
                return l_move
        elif self.OUT in zero:
            return self.OUT
        return zero[0]


# ---------------------------------------------------------------- batched states
# NerBatch keeps many states as int32 arrays; the kernels below are the per-state
# rules above (State.feature_ids, BiluoSystem.valid_mask / _move_costs / apply)
# transcribed to those arrays, run for a set of rows at once.

# per-state scalars: NerBatch.scal[row, field]
_LEN, _OFF, _B0, _ENT_START, _ENT_LABEL = range(5)
# closed entities: NerBatch.ents[row, 0, start] = end (exclusive, 0: no entity starts
# there), NerBatch.ents[row, 1, start] = label index
_END, _LABEL = range(2)
# gold: NerBatch.gold[row, field, token], token < length (+ 2 for _GSTARTS)
_GKIND, _GLABEL, _GSTARTS = range(3)


@njit
def _k_feature_ids(scal: numpy.ndarray, rows: numpy.ndarray, nF: int, out: numpy.ndarray) -> None:
    """State.feature_ids of each row into out (len(rows), nF)."""
    for i in range(rows.shape[0]):
        r = rows[i]
        b0 = scal[r, _B0] if scal[r, _B0] < scal[r, _LEN] else -1
        e0 = scal[r, _ENT_START]
        out[i, 0] = b0
        if nF == 3:
            out[i, 1] = e0
            out[i, 2] = b0 - 1 if (b0 >= 0 and e0 >= 0) else -1
        elif nF == 6:
            for j in range(1, 6):
                out[i, j] = -1
            if e0 >= 0 and b0 >= 0:
                for j in range(min(b0, e0 + 5) - e0):
                    out[i, j + 1] = e0 + j
        k_shift_token_ids(out[i], scal[r, _OFF])


@njit
def _k_is_final(scal: numpy.ndarray, rows: numpy.ndarray, out: numpy.ndarray) -> None:
    """State.is_final of each row into out (len(rows),) bool."""
    for i in range(rows.shape[0]):
        out[i] = scal[rows[i], _B0] >= scal[rows[i], _LEN]


@njit
def _k_valid_row(scal: numpy.ndarray, r: int, n_labels: int, out_row: numpy.ndarray) -> None:
    """BiluoSystem.valid_mask into out_row (n_actions,) bool."""
    out_row[:] = False
    b0 = scal[r, _B0]
    if b0 >= scal[r, _LEN]:
        return
    last = b0 == scal[r, _LEN] - 1
    lab = scal[r, _ENT_LABEL]
    if lab < 0:
        out_row[3 * n_labels : 4 * n_labels] = True  # U-x
        out_row[4 * n_labels + 1] = True  # O
        if not last:
            out_row[0:n_labels] = True  # B-x
    else:
        out_row[2 * n_labels + lab] = True  # L-x
        if not last:
            out_row[n_labels + lab] = True  # I-x


@njit
def _k_valid(scal: numpy.ndarray, rows: numpy.ndarray, n_labels: int, out: numpy.ndarray) -> None:
    """BiluoSystem.valid_mask of each row into out (len(rows), n_actions) bool."""
    for i in range(rows.shape[0]):
        _k_valid_row(scal, rows[i], n_labels, out[i])


@njit
def _k_alive(scal: numpy.ndarray, gold: numpy.ndarray, r: int) -> bool:
    """BiluoSystem._alive."""
    lab = scal[r, _ENT_LABEL]
    start = scal[r, _ENT_START]
    i = scal[r, _B0]
    k = gold[r, _GKIND]
    labels = gold[r, _GLABEL]
    if labels[i] != lab or (k[i] != IN and k[i] != LAST):
        return False
    if k[start] != MISSING and (k[start] != BEGIN or labels[start] != lab):
        return False
    for j in range(start + 1, i):
        if k[j] != MISSING and (k[j] != IN or labels[j] != lab):
            return False
    return True


@njit
def _k_costs(scal: numpy.ndarray, gold: numpy.ndarray, rows: numpy.ndarray, n_labels: int, graded: bool, out: numpy.ndarray) -> None:
    """BiluoSystem.costs for each row (costs clipped to 1 unless graded)."""
    n = n_labels
    out_class = 4 * n + 1
    for i in range(rows.shape[0]):
        r = rows[i]
        row = out[i]
        row[:] = INVALID_COST
        b0 = scal[r, _B0]
        if b0 >= scal[r, _LEN]:
            continue
        g_kind = gold[r, _GKIND, b0]
        if g_kind == MISSING:  # every valid move costs 0
            valid = numpy.zeros(row.shape[0], dtype=numpy.bool_)
            _k_valid_row(scal, r, n, valid)
            for c in range(row.shape[0]):
                if valid[c]:
                    row[c] = 0.0
            continue
        last = b0 == scal[r, _LEN] - 1
        g_lab = gold[r, _GLABEL, b0]
        st_i = gold[r, _GSTARTS, b0]
        st_next = gold[r, _GSTARTS, b0 + 1]
        if scal[r, _ENT_START] < 0:
            row[out_class] = st_i  # 0 or 1
            for lab in range(n):
                cost = 0 if (g_kind == UNIT and g_lab == lab) else 1 + st_i
                row[3 * n + lab] = cost if graded or cost <= 1 else 1
            if not last:
                for lab in range(n):
                    cost = 0 if (g_kind == BEGIN and g_lab == lab) else 1 + st_i + st_next
                    row[lab] = cost if graded or cost <= 1 else 1
        else:
            lab = scal[r, _ENT_LABEL]
            if _k_alive(scal, gold, r):
                cost = 0 if g_kind == LAST else 2
                row[2 * n + lab] = cost if graded or cost <= 1 else 1
                if not last:
                    cost = 0 if g_kind == IN else 2 + st_next
                    row[n + lab] = cost if graded or cost <= 1 else 1
            else:
                row[2 * n + lab] = 0.0
                if not last:
                    row[n + lab] = st_next if graded or st_next <= 1 else 1


@njit
def _k_advance(scal: numpy.ndarray, ents: numpy.ndarray, rows: numpy.ndarray, classes: numpy.ndarray, n_labels: int) -> int:
    """BiluoSystem.apply of classes[i] to row rows[i]; final rows are left alone.
    Returns the index i of the first invalid move, -1 if all are valid."""
    valid = numpy.zeros(4 * n_labels + 2, dtype=numpy.bool_)
    for i in range(rows.shape[0]):
        r = rows[i]
        b0 = scal[r, _B0]
        if b0 >= scal[r, _LEN]:
            continue
        c = classes[i]
        _k_valid_row(scal, r, n_labels, valid)
        if c < 0 or c >= valid.shape[0] or not valid[c]:
            return i
        if c < 4 * n_labels:
            move = c // n_labels
            lab = c % n_labels
            if move == 0:  # B
                scal[r, _ENT_START] = b0
                scal[r, _ENT_LABEL] = lab
            elif move == 2:  # L
                start = scal[r, _ENT_START]
                ents[r, _END, start] = b0 + 1
                ents[r, _LABEL, start] = lab
                scal[r, _ENT_START] = -1
                scal[r, _ENT_LABEL] = -1
            elif move == 3:  # U
                ents[r, _END, b0] = b0 + 1
                ents[r, _LABEL, b0] = lab
        scal[r, _B0] = b0 + 1
    return -1


class NerBatch(StateBatch["BiluoSystem"], supported_nf=SUPPORTED_NF, final_kernel=_k_is_final):
    """Many NER states (and optionally their golds) as arrays, advanced together by
    the compiled kernels above: the training and decoding loops' form of ``State``.
    Rows are in the order of the states it was made from; methods take ``rows``, an
    int64 array of the rows to work on (e.g. the live ones)."""

    def __init__(
        self, system: "BiluoSystem | None", states: Sequence[State], golds: Sequence[NerGold] | None = None
    ) -> None:
        super().__init__(system, [st.length for st in states], n_scalars=5)
        n, width = len(states), self.width
        self.ents = numpy.zeros((n, 2, width), dtype=numpy.int32)
        for r, st in enumerate(states):
            self.scal[r] = (st.length, st.offset, st.b0, st.ent_start, st.ent_label)
            for start, end, lab in st.entities:
                self.ents[r, :, start] = (end, lab)
        self.gold: numpy.ndarray | None = None
        if golds is not None:
            self.gold = numpy.zeros((n, 3, width + 2), dtype=numpy.int32)
            for r, g in enumerate(golds):
                if g.length != states[r].length:
                    raise ValueError(f"gold has {g.length} tokens, state {states[r].length}")
                self.gold[r, _GKIND, : g.length] = g.kinds
                self.gold[r, _GLABEL, : g.length] = g.labels
                self.gold[r, _GSTARTS, : g.length + 2] = g.starts

    def feature_ids(self, rows: numpy.ndarray, nF: int) -> numpy.ndarray:
        """(len(rows), nF) int32 token rows (offset added, -1 missing), as State.feature_ids."""
        out = self.feature_out(rows, nF)
        _k_feature_ids(self.scal, rows, nF, out)
        return out

    def valid(self, rows: numpy.ndarray) -> numpy.ndarray:
        """(len(rows), n_actions) bool, as BiluoSystem.valid_masks."""
        system = self.require_system()
        out = numpy.empty((len(rows), system.n_actions), dtype=bool)
        _k_valid(self.scal, rows, system.n_labels, out)
        return out

    def costs(self, rows: numpy.ndarray, graded: bool = False) -> numpy.ndarray:
        """(len(rows), n_actions) float32, as BiluoSystem.costs (needs the golds)."""
        if self.gold is None:
            raise ValueError("this batch was made without golds: no costs")
        system = self.require_system()
        out = numpy.empty((len(rows), system.n_actions), dtype=numpy.float32)
        _k_costs(self.scal, self.gold, rows, system.n_labels, graded, out)
        return out

    def advance(self, rows: numpy.ndarray, class_ids: numpy.ndarray) -> None:
        """Apply class_ids[i] to row rows[i], as BiluoSystem.advance (final rows are
        left alone); raises ValueError on an invalid move."""
        system = self.require_system()
        classes = numpy.asarray(class_ids, dtype=numpy.int64)
        bad = _k_advance(self.scal, self.ents, rows, classes, system.n_labels)
        if bad >= 0:
            c = int(classes[bad])
            name = system.move_names[c] if 0 <= c < system.n_actions else str(c)
            raise ValueError(f"move {name} is not valid in row {int(rows[bad])}: {tuple(self.scal[rows[bad]])}")

    def decode(self, row: int) -> list[Entity]:
        """BiluoSystem.decode of the row's entities."""
        ends, labels = self.ents[row, _END], self.ents[row, _LABEL]
        names = self.require_system().labels
        return [(int(s), int(ends[s]), names[labels[s]]) for s in numpy.flatnonzero(ends)]
