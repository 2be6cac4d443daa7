"""The batched, compiled oracles (ArcEagerBatch, NerBatch) against straightforward
per-state references, state by state, on real and random data.

Every episode runs the same moves on per-state ``State`` objects (``system.apply``)
and on one batch (``batch.advance``), mixing oracle moves and random valid moves
(REDUCE put-backs, BREAKs, wrong labels, dead entities); at every step, for every
live state, the batch's feature ids (all featurisations), validity, costs and
finality must equal the references', both on the batch advanced in lockstep and
on a batch packed afresh from the current states (as segment start states are).
The references: the per-state Python featurisations that the packages' ``State``
classes had before the batches (kept here, ``ref_*``), the arc-eager per-state
validity and oracle (``arc_eager_reference``, beside this file), and
BiluoSystem's per-state ``valid_mask`` and ``costs``.
"""

import random
from collections.abc import Sequence
from pathlib import Path

import arc_eager_reference  # the per-state oracle, beside this file
import numpy
import pytest

from search.corpora.conllu import read_conllu
from search.corpora.iob2 import read_iob2
from search.tasks.parsing import arc_eager as ae
from search.tasks.parsing import ner
from search.tasks.parsing.arc_eager import BREAK, INVALID_COST, LEFT, REDUCE, RIGHT, ArcEager, concat_trees

REPO = Path(__file__).resolve().parents[3]
DEP_TRAIN = REPO / "data" / "ud_english_ewt" / "en_ewt-ud-train.sample.conllu"
NER_TRAIN = REPO / "data" / "uner_english_ewt" / "en_ewt-ud-train.approx.sample.iob2"


# ------------------------------------------------------------------ references


def ref_arc_eager_feature_ids(st: ae.State, nF: int) -> list[int]:
    """The per-state featurisation (spaCy's context tokens), as State.feature_ids was."""
    S, B, L, R = st.S, st.B, st.L, st.R
    if nF == 8:
        b0, s0 = B(0), S(0)
        ids = [b0, B(1), s0, S(1), S(2), L(b0, 1), L(s0, 1), R(s0, 1)]
    elif nF == 13:
        b0, s0, s1 = B(0), S(0), S(1)
        ids = [b0, B(1), s0, s1, S(2), L(s0, 1), R(s0, 1), L(b0, 1), R(s0, 2),
               L(s1, 1), L(s1, 2), R(s1, 1), R(s1, 2)]
    elif nF == 1:
        ids = [B(0)]
    else:
        ids = [B(0), S(0)]
    return [i + st.offset if i >= 0 else -1 for i in ids]


def ref_arc_eager_costs(moves: ArcEager, st: ae.State, gold: ae.Gold) -> numpy.ndarray:
    """Per-state costs per class: the move's cost from the per-state oracle, +1 for
    an L/R class whose label is not the gold arc's, INVALID_COST where invalid."""
    valid, move_costs, gold_l, gold_r = arc_eager_reference.score(moves.monotonic, st, gold)
    out = numpy.empty(moves.n_moves, dtype=numpy.float32)
    for c, (move, label) in enumerate(moves.classes):
        if not valid[move]:
            out[c] = INVALID_COST
            continue
        cost = numpy.float32(move_costs[move])
        gold_label = gold_l if move == LEFT else gold_r if move == RIGHT else 0
        if gold_label > 0 and label != gold_label:
            cost += numpy.float32(1)
        out[c] = cost
    return out


def ref_ner_feature_ids(st: ner.State, nF: int) -> list[int]:
    """The per-state NER featurisation, as ner.State.feature_ids was."""
    b0 = st.b0 if st.b0 < st.length else -1
    e0 = st.ent_start
    if nF == 3:
        ids = [b0, e0, b0 - 1 if (b0 >= 0 and e0 >= 0) else -1]
    elif nF == 6:
        ids = [b0, -1, -1, -1, -1, -1]
        if e0 >= 0 and b0 >= 0:
            for j, tok in enumerate(range(e0, min(b0, e0 + 5)), 1):
                ids[j] = tok
    else:
        ids = [b0]
    return [i + st.offset if i >= 0 else -1 for i in ids]


# ------------------------------------------------------------------ arc-eager


def random_tree(rng: random.Random, n: int) -> tuple[list[int | None], list[str | None]]:
    """A random (possibly non-projective) tree over n words, one root, some heads and
    labels missing (None)."""
    order = list(range(n))
    rng.shuffle(order)
    heads: list[int | None] = [-1] * n
    for k, w in enumerate(order[1:], 1):
        heads[w] = order[rng.randrange(k)]
    labels: list[str | None] = [rng.choice(["nsubj", "obj", "amod", "det", "rare"]) for _ in range(n)]
    for w in range(n):
        if heads[w] == -1:
            labels[w] = "root"
        if rng.random() < 0.05:
            heads[w] = labels[w] = None
        elif rng.random() < 0.05:
            labels[w] = None
    return heads, labels


def arc_eager_docs(rng: random.Random, examples) -> list[tuple[list, list, list | None]]:
    """(heads, labels, sent_starts) documents: sample sentences, multi-sentence
    documents (BREAK and sentence starts in the oracle), random trees."""
    trees = [(eg.gold["heads"], eg.gold["deps"]) for eg in examples]
    docs = [(h, lab, None) for h, lab in trees[:60]]
    for i in range(60, 120, 4):
        heads, labels, starts = concat_trees(trees[i : i + 4])
        if i % 8:
            starts = [s if rng.random() < 0.8 else None for s in starts]  # some unknown boundaries
        docs.append((heads, labels, starts))
    docs += [(*random_tree(rng, rng.randint(1, 25)), None) for _ in range(40)]
    return docs


def check_arc_eager_rows(moves, states, golds, batch, rows):
    fresh = moves.batch([states[r] for r in rows], [golds[r] for r in rows])
    fresh_rows = fresh.all_rows()
    for nF in ae.SUPPORTED_NF:
        ref = [ref_arc_eager_feature_ids(states[r], nF) for r in rows]
        assert batch.feature_ids(rows, nF).tolist() == ref, nF
        assert fresh.feature_ids(fresh_rows, nF).tolist() == ref, nF
    valid = numpy.array([numpy.array(arc_eager_reference.validity(moves.monotonic, states[r]))[moves.move_of_class] for r in rows])
    assert (batch.valid(rows) == valid).all()
    assert (fresh.valid(fresh_rows) == valid).all()
    costs = numpy.array([ref_arc_eager_costs(moves, states[r], golds[r]) for r in rows])
    assert numpy.array_equal(batch.costs(rows), costs)
    assert numpy.array_equal(fresh.costs(fresh_rows), costs)
    return costs, valid


@pytest.mark.parametrize("monotonic", [False, True])
def test_arc_eager_batch_matches_per_state_oracle(monotonic):
    examples = read_conllu(DEP_TRAIN)
    rng = random.Random(1 + monotonic)
    moves = ArcEager.from_examples(examples[:200], min_freq=5, monotonic=monotonic)
    docs = arc_eager_docs(rng, examples)
    golds = [moves.make_gold(h, lab, s) for h, lab, s in docs]
    lengths = [g.length for g in golds]
    states = moves.init_states(lengths)
    batch = moves.batch(states, golds)
    explore = [rng.choice([0.0, 0.1, 0.5, 1.0]) for _ in states]  # per doc: chance of a random move
    rows = batch.all_rows()
    n_checked = n_random = 0
    for _ in range(4 * max(lengths) + 10):
        final = numpy.array([states[r].is_final() for r in rows])
        assert (batch.is_final(rows) == final).all()
        rows = rows[~final]
        if not rows.size:
            break
        costs, valid = check_arc_eager_rows(moves, states, golds, batch, rows)
        picks = []
        for i, r in enumerate(rows):
            options = numpy.flatnonzero(valid[i])
            if rng.random() < explore[r]:
                # half the random moves are REDUCE or BREAK where valid: put-back words
                # and predicted sentence starts among them, the oracle's rarest cases
                rare = [c for c in options if moves.classes[c][0] in (REDUCE, BREAK)]
                picks.append(int(rng.choice(rare if rare and rng.random() < 0.5 else options)))
                n_random += 1
            else:
                picks.append(int(options[numpy.argmin(costs[i, options])]))
        for r, c in zip(rows, picks):
            moves.apply(states[r], c)
        batch.advance(rows, numpy.array(picks))
        n_checked += len(rows)
    assert not rows.size, "episodes did not finish"
    for r, st in enumerate(states):
        assert batch.decode(r) == moves.decode(st)
        assert batch.decode(r, deprojectivize_tree=False) == moves.decode(st, deprojectivize_tree=False)
    assert n_checked > 3000 and n_random > 300


def test_arc_eager_batch_sentence_start_among_put_back_words():
    """The oracle's buffer region stops at a predicted sentence start among the words
    REDUCE put back (S S S S D D D B: word 2 starts a sentence, words 1 and 3 are put
    back, in front of and behind it): rare on random paths, so forced here, then
    continued at random, over random gold trees."""
    rng = random.Random(5)
    n_checked = 0
    for _ in range(150):
        moves = ArcEager([(0, ""), (1, ""), (2, "dep"), (2, "nsubj"), (3, "dep"), (3, "obj"), (4, "ROOT")])
        n = rng.randint(6, 12)
        heads, labels = random_tree(rng, n)
        labels = [lab if lab in (None, "nsubj", "obj") else "dep" for lab in labels]
        starts = [True] + [rng.choice([False, False, True, None]) for _ in range(n - 1)]
        golds = [moves.make_gold(heads, labels, starts)]
        states = moves.init_states([n])
        for name in ("S", "S", "S", "S", "D", "D", "D", "B-ROOT"):
            moves.apply(states[0], moves.class_index(name))
        assert states[0].rebuffer == [3, 2, 1] and states[0].sent_starts == {2}
        batch = moves.batch(states, golds)
        rows = batch.all_rows()
        while not states[0].is_final():
            _, valid = check_arc_eager_rows(moves, states, golds, batch, rows)
            pick = int(rng.choice(numpy.flatnonzero(valid[0])))
            moves.apply(states[0], pick)
            batch.advance(rows, numpy.array([pick]))
            n_checked += 1
    assert n_checked > 1000


def test_arc_eager_batch_rows_are_independent():
    """Working on some rows leaves the others alone; offsets and empty docs."""
    examples = read_conllu(DEP_TRAIN)[:5]
    moves = ArcEager.from_examples(examples, min_freq=1)
    golds = [moves.gold_from_example(eg) for eg in examples]
    states = moves.init_states([g.length for g in golds], offsets=[100 * i for i in range(5)])
    batch = moves.batch(states, golds)
    before = batch.feature_ids(batch.all_rows(), 8)
    assert before[:, 0].tolist() == [100 * i for i in range(5)]
    batch.advance(numpy.array([1, 3]), numpy.array([moves.class_index("S")] * 2))
    after = batch.feature_ids(batch.all_rows(), 8)
    assert (after[[0, 2, 4]] == before[[0, 2, 4]]).all() and (after[[1, 3]] != before[[1, 3]]).any()
    empty = moves.batch(moves.init_states([0, 3]))
    assert empty.is_final(empty.all_rows()).tolist() == [True, False]
    assert empty.feature_ids(numpy.zeros(0, dtype=numpy.int64), 8).shape == (0, 8)
    with pytest.raises(ValueError, match="without golds"):
        empty.costs(empty.all_rows())
    with pytest.raises(ValueError, match="featurisation"):
        empty.feature_ids(empty.all_rows(), 3)


# ------------------------------------------------------------------ NER


def random_biluo(rng: random.Random, n: int, labels: Sequence[str]) -> list[str | None]:
    """Random valid BILUO tags (some labels unknown to the system), some tokens missing."""
    tags: list[str | None] = []
    i = 0
    while i < n:
        length = rng.choice([0, 0, 1, 1, 2, 3, 7])
        if length == 0 or i + length > n:
            tags.append("O")
            i += 1
            continue
        label = rng.choice(list(labels) + ["MISC"])
        tags += [f"U-{label}"] if length == 1 else [f"B-{label}"] + [f"I-{label}"] * (length - 2) + [f"L-{label}"]
        i += length
    return [None if rng.random() < 0.08 else t for t in tags]


@pytest.mark.parametrize("graded", [False, True])
def test_ner_batch_matches_per_state_oracle(graded):
    rng = random.Random(3)
    examples = read_iob2(NER_TRAIN)
    system = ner.BiluoSystem.from_examples(examples)
    tag_seqs = [eg.gold["ner"] for eg in examples[:150]]
    tag_seqs += [random_biluo(rng, rng.randint(1, 30), system.labels) for _ in range(100)]
    golds = [system.make_gold(tags) for tags in tag_seqs]
    states = system.init_states([g.length for g in golds])
    batch = system.batch(states, golds)
    explore = [rng.choice([0.0, 0.2, 0.6]) for _ in states]
    rows = batch.all_rows()
    n_checked = 0
    for _ in range(max(g.length for g in golds) + 1):
        final = numpy.array([st.is_final() for st in (states[r] for r in rows)])
        assert (batch.is_final(rows) == final).all()
        rows = rows[~final]
        if not rows.size:
            break
        fresh = system.batch([states[r] for r in rows], [golds[r] for r in rows])
        fresh_rows = fresh.all_rows()
        for nF in ner.SUPPORTED_NF:
            ref = [ref_ner_feature_ids(states[r], nF) for r in rows]
            assert batch.feature_ids(rows, nF).tolist() == ref
            assert fresh.feature_ids(fresh_rows, nF).tolist() == ref
        valid = numpy.array([system.valid_mask(states[r]) for r in rows])
        assert (batch.valid(rows) == valid).all() and (fresh.valid(fresh_rows) == valid).all()
        costs = numpy.array([system.costs(states[r], golds[r], graded=graded) for r in rows])
        assert numpy.array_equal(batch.costs(rows, graded=graded), costs)
        assert numpy.array_equal(fresh.costs(fresh_rows, graded=graded), costs)
        picks = []
        for i, r in enumerate(rows):
            if rng.random() < explore[r]:
                picks.append(int(rng.choice(numpy.flatnonzero(valid[i]))))
            else:
                picks.append(system.oracle_move(states[r], golds[r]))
        for r, c in zip(rows, picks):
            system.apply(states[r], c)
        batch.advance(rows, numpy.array(picks))
        n_checked += len(rows)
    assert not rows.size
    for r, st in enumerate(states):
        assert batch.decode(r) == system.decode(st)
    assert n_checked > 3000


def test_ner_batch_rejects_invalid_moves_and_skips_final_rows():
    system = ner.BiluoSystem(["PER"])
    batch = system.batch(system.init_states([2, 0]))
    batch.advance(batch.all_rows(), numpy.array([system.class_id("B-PER"), 0]))  # row 1 is final: ignored
    assert batch.feature_ids(batch.all_rows(), 3).tolist() == [[1, 0, 0], [-1, -1, -1]]
    with pytest.raises(ValueError, match="not valid"):
        batch.advance(numpy.array([0]), numpy.array([system.class_id("O")]))  # an entity is open
    with pytest.raises(ValueError, match="not valid"):
        batch.advance(numpy.array([0]), numpy.array([system.class_id("U-")]))
    batch.advance(numpy.array([0]), numpy.array([system.class_id("L-PER")]))
    assert batch.decode(0) == [(0, 2, "PER")] and batch.is_final(batch.all_rows()).all()
