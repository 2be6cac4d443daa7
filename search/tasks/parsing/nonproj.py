"""Pseudo-projective parsing (Nivre & Nilsson 2005, HEAD decoration scheme), as spaCy does it.

Trees use the corpus convention (search/corpora/example.py): ``heads[i]`` is the 0-based
index of token i's head, ``-1`` for a root, ``None`` where the head is missing.
Labels are strings (``None`` = missing).

- ``projectivize`` repeatedly lifts the *smallest* non-projective arc (size =
  |dependent - head|, ties broken left to right) to the head's head; when the
  head is a root, the dependent becomes a root itself (spaCy's ``_lift``). Every
  lifted token's label is decorated ``label||headlabel`` with the label of its
  *original* head.
- ``deprojectivize`` undoes it: for each decorated token, in token order, a
  breadth-first search top-down, left to right, from its current head's children
  (skipping the token itself) finds the first token labelled ``headlabel`` and
  makes it the head; if there is none the head stays. Labels of later tokens are
  compared while still decorated, earlier ones already undecorated, and
  "children" are the tokens inside the node's subtree span of the *input* tree
  whose current head is the node -- all exactly as spaCy's in-place version over
  a Doc (whose l_edge/r_edge are not refreshed until the end).

A non-projective arc (Havelka 2007, spaCy's ``is_nonproj_arc``): arc h -> d is
non-projective if some token strictly between h and d is not dominated by h
(tokens with a missing head count as dominated; root arcs never are).

Lossy cases (the round trip does not restore the input): the BFS finds another
token with the head label before the original head, or a lifted dependent of a
root became a root. Partial trees whose lifting would need the head of a token
with a missing head are left with that arc unlifted (spaCy would index
``heads[-1]`` there).
"""

from typing import List, Optional, Sequence, Tuple, TypeGuard

DELIMITER = "||"

Heads = List[Optional[int]]
Labels = List[Optional[str]]


def decompose(label: str) -> Tuple[str, str]:
    """``"nmod||obl"`` -> ``("nmod", "obl")``; an undecorated label -> ``(label, "")``."""
    base, _, head_label = label.partition(DELIMITER)
    return base, head_label


def is_decorated(label: Optional[str]) -> TypeGuard[str]:
    return label is not None and DELIMITER in label


# --------------------------------------------------------------- internal form
# Internally (as in spaCy): root = head is itself, missing head = -1.


def _to_internal(heads: Sequence[Optional[int]]) -> List[int]:
    n = len(heads)
    out = []
    for i, h in enumerate(heads):
        if h is None:
            out.append(-1)
        elif h == -1:
            out.append(i)
        else:
            if not 0 <= h < n:
                raise ValueError(f"head {h} of token {i} is outside the sentence of {n} tokens")
            out.append(int(h))
    return out


def _from_internal(iheads: Sequence[int]) -> Heads:
    return [None if h < 0 else (-1 if h == i else h) for i, h in enumerate(iheads)]


def _has_head_as_ancestor(tokenid: int, head: int, heads: Sequence[int]) -> bool:
    ancestor = tokenid
    seen = {ancestor}
    while True:
        h = heads[ancestor]
        if h == head or h < 0:  # reached the head, or a disconnected node
            return True
        if h == ancestor:  # reached a root
            return False
        ancestor = h
        if ancestor in seen:
            raise ValueError(f"found a cycle in the dependency graph: {list(heads)}")
        seen.add(ancestor)


def _is_nonproj_arc(tokenid: int, heads: Sequence[int]) -> bool:
    head = heads[tokenid]
    if head == tokenid or head < 0:  # root arcs / unattached tokens
        return False
    start, end = (head + 1, tokenid) if head < tokenid else (tokenid + 1, head)
    for k in range(start, end):
        if not _has_head_as_ancestor(k, head, heads):
            return True
    return False


def _smallest_nonproj_arc(heads: Sequence[int], skip: Sequence[int] = ()) -> int:
    smallest_size = 1 << 30
    smallest = -1
    for tokenid, head in enumerate(heads):
        size = abs(tokenid - head)
        if size < smallest_size and tokenid not in skip and _is_nonproj_arc(tokenid, heads):
            smallest_size = size
            smallest = tokenid
    return smallest


# ------------------------------------------------------------------ public API


def is_nonproj_arc(tokenid: int, heads: Sequence[Optional[int]]) -> bool:
    return _is_nonproj_arc(tokenid, _to_internal(heads))


def is_projective(heads: Sequence[Optional[int]]) -> bool:
    """True if no arc of the tree is non-projective (Havelka's definition, as spaCy)."""
    iheads = _to_internal(heads)
    return not any(_is_nonproj_arc(i, iheads) for i in range(len(iheads)))


def nonproj_arcs(heads: Sequence[Optional[int]]) -> List[int]:
    """The dependents whose arcs are non-projective."""
    iheads = _to_internal(heads)
    return [i for i in range(len(iheads)) if _is_nonproj_arc(i, iheads)]


def projectivize(heads: Sequence[Optional[int]], labels: Sequence[Optional[str]]) -> Tuple[Heads, Labels]:
    """Lift non-projective arcs (smallest first) until the tree is projective;
    decorate lifted tokens' labels ``label||original_head_label``. Returns new lists."""
    if len(heads) != len(labels):
        raise ValueError(f"{len(heads)} heads but {len(labels)} labels")
    orig = _to_internal(heads)
    proj = list(orig)
    skip: List[int] = []
    arc = _smallest_nonproj_arc(proj)
    if arc == -1:
        return _from_internal(proj), list(labels)
    while arc != -1:
        head = proj[arc]
        ghead = proj[head]
        if ghead < 0:  # head's own head is missing: cannot lift (see module doc)
            skip.append(arc)
        else:
            proj[arc] = ghead if head != ghead else arc
        arc = _smallest_nonproj_arc(proj, skip)
    deco: Labels = []
    for i, h in enumerate(orig):
        if h != proj[i]:
            deco.append(f"{labels[i]}{DELIMITER}{labels[h]}")
        else:
            deco.append(labels[i])
    return _from_internal(proj), deco


def deprojectivize(heads: Sequence[Optional[int]], labels: Sequence[Optional[str]]) -> Tuple[Heads, Labels]:
    """Reattach tokens with decorated labels ``X||Y`` to the first ``Y`` found
    breadth-first below their current head; strip the decoration. Returns new lists."""
    if len(heads) != len(labels):
        raise ValueError(f"{len(heads)} heads but {len(labels)} labels")
    if not any(is_decorated(lab) for lab in labels):
        return list(heads), list(labels)
    ih = _to_internal(heads)
    labels = list(labels)
    n = len(ih)
    # subtree spans of the input tree (spaCy's l_edge / r_edge, not refreshed during the loop)
    l_edge = list(range(n))
    r_edge = list(range(n))
    for i in range(n):
        seen = set()
        h, child = ih[i], i
        while h >= 0 and h != child and child not in seen:
            seen.add(child)
            if l_edge[i] < l_edge[h]:
                l_edge[h] = l_edge[i]
            if r_edge[i] > r_edge[h]:
                r_edge[h] = r_edge[i]
            child, h = h, ih[h]

    def children(q: int) -> List[int]:
        return [t for t in range(l_edge[q], r_edge[q] + 1) if t != q and ih[t] == q]

    for i in range(n):
        label = labels[i]
        if not is_decorated(label):
            continue
        new_label, head_label = label.split(DELIMITER)[:2]
        new_head = ih[i]
        if new_head >= 0:
            queue = [ih[i]]
            found = False
            while queue and not found:
                next_queue = []
                for q in queue:
                    for child in children(q):
                        if child == i:
                            continue
                        if labels[child] == head_label:
                            new_head = child
                            found = True
                            break
                        next_queue.append(child)
                    if found:
                        break
                queue = next_queue
        ih[i] = new_head
        labels[i] = new_label
    return _from_internal(ih), labels
