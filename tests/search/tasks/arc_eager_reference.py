"""The arc-eager oracle per state, in plain Python: the reference that the
compiled, batched kernels (``ArcEagerBatch``) are checked against. Validity and
costs per move type, for spaCy's system and the monotonic one."""

from typing import List, Tuple

from search.tasks.parsing.arc_eager import (
    _REBUFFER,
    _STACK,
    BREAK,
    INVALID_COST,
    Gold,
    State,
)


def validity_spacy(st: State) -> Tuple[bool, bool, bool, bool, bool]:
    depth = len(st.stack)
    blen = st.buffer_length()
    if depth == 0 and blen == 0:
        return (False, False, False, False, False)
    b0 = st.B(0)
    b0_start = b0 in st.sent_starts
    if depth == 0:
        shift = True
    elif blen < 2 or b0_start or st.unshiftable[b0]:
        shift = False
    else:
        shift = True
    reduce = depth > 0
    arc = depth > 0 and blen > 0 and not b0_start
    if blen < 2:
        brk = False
    else:
        b1 = st.B(1)
        brk = b1 == b0 + 1 and b1 not in st.sent_starts
    return (shift, reduce, arc, arc, brk)

def validity_monotonic(st: State) -> Tuple[bool, bool, bool, bool, bool]:
    depth = len(st.stack)
    blen = st.buffer_length()
    has_head = depth > 0 and st.heads[st.stack[-1]] >= 0
    return (
        blen > 0,
        depth > 0 and (has_head or blen == 0),
        depth > 0 and blen > 0 and not has_head,
        depth > 0 and blen > 0,
        False,
    )


def move_costs(st: State, g: Gold) -> Tuple[Tuple[bool, bool, bool, bool, bool], List[float], int, int]:
    """Validity and costs per move type (labels aside), plus the gold label id of
    a gold L arc (B0 -> S0) and of a gold R arc (S0 -> B0) (0: that arc is not
    gold; -1: gold arc without a gold label). Mirrors spaCy's update_gold_state
    and Shift/Reduce/LeftArc/RightArc/Break.cost, fused for speed."""
    validity = validity_spacy(st)
    gh, kids, known = g.heads, g.kids, g.known
    where = st.where
    b_i = st.b_i
    stack = st.stack
    depth = len(stack)
    s0 = stack[-1] if depth else -1
    s1 = stack[-2] if depth > 1 else -1
    b0 = st.B(0)
    sent_starts = st.sent_starts
    # "in the buffer" = buffer words before the first sentence start (spaCy's loop
    # breaks there): put-back words (front of the buffer) down to the first sentence
    # start among them, then b_i .. end-1.
    n = st.length
    end = n
    rb_set = None  # None: all put-back words count
    if sent_starts:
        rb = st.rebuffer
        for idx in range(len(rb) - 1, -1, -1):
            if rb[idx] in sent_starts:
                rb_set = set(rb[idx + 1 :])
                end = b_i
                break
        else:
            for x in sent_starts:
                if b_i <= x < end:
                    end = x
    # SHIFT (push_cost): arcs between B0 and the stack
    if b0 < 0:
        push_cost = INVALID_COST
    else:
        push_cost = 0.0
        h = gh[b0]
        if known[b0] and h != b0 and where[h] == _STACK:
            push_cost += 1
        for k in kids[b0]:
            if where[k] == _STACK:
                push_cost += 1
        if validity[BREAK] and g.sent_starts[st.B(1)] is True:
            push_cost += 1
    # pop_cost: arcs between S0 and the buffer
    s0_hs = s0_ks = 0
    if s0 < 0:
        pop_cost = INVALID_COST
    else:
        pop_cost = 0.0
        h = gh[s0]
        if known[s0] and h != s0:
            if (b_i <= h < end) or (where[h] == _REBUFFER and (rb_set is None or h in rb_set)):
                pop_cost += 1
            if where[h] == _STACK:
                s0_hs = 1
        for k in kids[s0]:
            wk = where[k]
            if wk == _STACK:
                s0_ks += 1
            elif (b_i <= k < end) or (wk == _REBUFFER and (rb_set is None or k in rb_set)):
                pop_cost += 1
    s0_headless = s0 >= 0 and st.heads[s0] < 0
    # REDUCE
    if b0 >= 0 and b0 in sent_starts:
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
        elif known[s0] and gh[s0] == s1:
            c_left += 1
        if b0 >= 0 and known[s0] and gh[s0] == b0:
            c_left -= 1
            gold_l = g.labels[s0] or -1
    # RIGHT
    gold_r = 0
    c_right = push_cost
    if b0 >= 0:
        h = gh[b0]
        if s0 >= 0 and known[b0] and h == s0:
            c_right -= 1
            gold_r = g.labels[b0] or -1
        elif known[b0] and h != b0 and not st.unshiftable[b0]:
            if (b_i <= h < end) or (where[h] == _REBUFFER and (rb_set is None or h in rb_set)):
                c_right += 1
    # BREAK
    c_break = 0.0
    if validity[BREAK]:
        for si in stack:
            h = gh[si]
            if known[si] and h != si:
                if (b_i <= h < end) or (where[h] == _REBUFFER and (rb_set is None or h in rb_set)):
                    c_break += 1
            for k in kids[si]:
                if (b_i <= k < end) or (where[k] == _REBUFFER and (rb_set is None or k in rb_set)):
                    c_break += 1
            if known[b0] and gh[b0] == si:
                c_break -= 1
            if known[si] and h == b0:
                c_break -= 1
        ss = g.sent_starts[st.B(1)]
        if ss is not None and not ss:
            c_break += 1
    return validity, [push_cost, c_reduce, c_left, c_right, c_break], gold_l, gold_r

def move_costs_monotonic(st: State, g: Gold) -> Tuple[Tuple[bool, bool, bool, bool, bool], List[float], int, int]:
    """Goldberg & Nivre (2013) arc-eager costs with the root at the end of the buffer
    (a word left without a head is attached to it): exact for projective gold."""
    validity = validity_monotonic(st)
    gh, kids, known = g.heads, g.kids, g.known
    where = st.where
    b_i = st.b_i
    stack = st.stack
    s0 = stack[-1] if stack else -1
    b0 = b_i if b_i < st.length else -1
    gold_l = gold_r = 0
    # B0's gold head / dependents in the stack
    b0_hs = b0_ks = 0
    if b0 >= 0:
        h = gh[b0]
        if known[b0] and h != b0 and where[h] == _STACK:
            b0_hs = 1
        heads = st.heads
        for k in kids[b0]:
            if where[k] == _STACK and heads[k] < 0:  # a stack word with a head keeps it
                b0_ks += 1
    # S0's dependents in the buffer
    s0_kb = 0
    if s0 >= 0:
        for k in kids[s0]:
            if k >= b_i:
                s0_kb += 1
    c_shift = float(b0_hs + b0_ks) if b0 >= 0 else INVALID_COST
    c_reduce = float(s0_kb) if s0 >= 0 else INVALID_COST
    c_left = c_right = INVALID_COST
    if s0 >= 0 and b0 >= 0:
        c_left = float(s0_kb)
        if known[s0]:
            h = gh[s0]
            if h == b0:
                gold_l = g.labels[s0] or -1
            elif h == s0 or h >= b_i:  # root arc, or head further in the buffer
                c_left += 1
        c_right = float(b0_ks)
        if known[b0]:
            h = gh[b0]
            if h == s0:
                gold_r = g.labels[b0] or -1
            elif h == b0 or h > b0 or where[h] == _STACK:  # root arc, head in buffer or stack
                c_right += 1
    return validity, [c_shift, c_reduce, c_left, c_right, INVALID_COST], gold_l, gold_r


def score(monotonic: bool, st: State, g: Gold) -> Tuple[Tuple[bool, bool, bool, bool, bool], List[float], int, int]:
    """Validity, costs per move type and the gold L/R labels, as ``move_costs``."""
    return move_costs_monotonic(st, g) if monotonic else move_costs(st, g)


def validity(monotonic: bool, st: State) -> Tuple[bool, bool, bool, bool, bool]:
    return validity_monotonic(st) if monotonic else validity_spacy(st)
