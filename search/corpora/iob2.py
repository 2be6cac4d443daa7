"""Reading IOB2 named-entity files (Universal NER layout) into Examples.

Format (UNER v1, e.g. English-EWT): one token per line with five tab-separated
columns ``id<TAB>token<TAB>tag<TAB>misc<TAB>annotator``; ``#`` comment lines
(``# newdoc id``, ``# sent_id``, ``# text``); a blank line ends a sentence.
IDs count from 1 within a sentence. Tags are ``O``, ``B-X`` or ``I-X``.

Gold annotations per Example:

* ``"ner"``: one BILUO tag per token (``O``, ``B-X``, ``I-X``, ``L-X``, ``U-X``),
  or ``None`` where the annotation is missing;
* ``"entities"``: the gold spans as ``(start, end, label)`` token offsets,
  ``end`` exclusive (like a spaCy ``Span``).

Decisions (documented, tested):

* **Missing annotation.** A tag column of ``-`` or ``_`` means "not annotated"
  and becomes ``None`` (the UNER files themselves have no such tokens: every
  token is ``O``/``B-X``/``I-X``; their 4th and 5th columns are metadata and are
  not read). An *empty* tag column is an error. A span never crosses a missing
  token: ``B-X`` followed by a missing token becomes ``U-X``, ``I-X`` followed
  by one becomes ``L-X`` (the BILUO tag assumes the span ends there).
* **I-X without a preceding B-X/I-X of the same type** (after ``O``, after
  another type, after a missing token or at the sentence start) is *repaired*:
  it starts a new entity, as if it were ``B-X`` — what spaCy's
  ``iob_to_biluo`` does. Repairs are counted, logged as a warning with the
  first few ``file:line`` places, and available as ``IOB2Corpus.n_repaired``
  / ``read_iob2(..., stats=dict)``.
* **Genuinely broken lines raise** :class:`search.corpus.CorpusError` naming
  ``file:line`` and what was expected: a column count other than 5, an ID out
  of sequence, an empty token, an empty tag, or a tag that is not ``O``,
  ``B-X``, ``I-X`` (or a missing marker), e.g. ``B-``, ``E-PER``, ``L-PER``.
"""

import logging
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from archs import registry
from archs.features import Doc, Featurizer

from .conllu import Corpus
from .example import CorpusError, Example
from .files import sentence_blocks

logger = logging.getLogger(__name__)

N_COLUMNS = 5
MISSING_TAGS = frozenset({"-", "_"})
_TAG_RE = re.compile(r"^([BI])-(\S+)$")

Span = Tuple[int, int, str]


def read_iob2(
    path: Union[str, Path], limit: int = 0, stats: Optional[Dict[str, int]] = None, encoding: str = "utf8"
) -> List[Example]:
    """Read an IOB2 file into Examples, one per sentence (see the module doc).

    limit: read only the first N sentences (0 = all). stats: if given, filled
    with "sentences", "tokens", "entities", "repaired" and "missing" counts.
    encoding: of the file ("utf8"; "auto": UTF-8, else Latin-1). Raises CorpusError naming file and line on malformed input.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus file not found: {path}")
    featurize = Featurizer()
    examples: List[Example] = []
    repaired: List[str] = []
    n_missing = 0
    for block in sentence_blocks(path, encoding):
        words: List[str] = []
        tags: List[Optional[str]] = []
        for line_no, cols in block:
            if len(cols) != N_COLUMNS:
                raise CorpusError(
                    f"{path}:{line_no}: expected {N_COLUMNS} tab-separated columns "
                    f"(id, token, tag, misc, annotator), found {len(cols)}"
                )
            token_id, form, tag = cols[0], cols[1], cols[2]
            if not token_id.isdigit() or int(token_id) != len(words) + 1:
                raise CorpusError(
                    f"{path}:{line_no}: expected token ID {len(words) + 1} (IDs count from 1 within a sentence), found {token_id!r}"
                )
            if not form:
                raise CorpusError(f"{path}:{line_no}: empty token column")
            if tag in MISSING_TAGS:
                value: Optional[str] = None
                n_missing += 1
            elif tag == "O" or _TAG_RE.match(tag):
                value = tag
            else:
                raise CorpusError(
                    f"{path}:{line_no}: expected the tag to be O, B-X or I-X (or - for missing), found {tag!r}"
                )
            words.append(form)
            tags.append(value)
        biluo, fixed = iob2_to_biluo(tags)
        repaired.extend(f"{path}:{block[i][0]}" for i in fixed)
        examples.append(
            Example(
                doc=Doc(words, featurize(words)),
                gold={"ner": biluo, "entities": biluo_to_spans(biluo)},
                source=f"{path}:{block[0][0]}",
            )
        )
        if limit and len(examples) >= limit:
            break
    n_tokens = sum(len(e) for e in examples)
    n_ents = sum(len(e.gold["entities"]) for e in examples)
    logger.info("read %d sentences, %d tokens, %d entities from %s", len(examples), n_tokens, n_ents, path)
    if repaired:
        logger.warning(
            "%s: %d I-X tag(s) without a preceding B-X/I-X of the same type were read as B-X (first: %s)",
            path, len(repaired), ", ".join(repaired[:5]),
        )
    if stats is not None:
        stats.update(
            sentences=len(examples), tokens=n_tokens, entities=n_ents, repaired=len(repaired), missing=n_missing
        )
    return examples


def iob2_to_biluo(tags: Sequence[Optional[str]]) -> Tuple[List[Optional[str]], List[int]]:
    """Convert IOB2 tags (``O``, ``B-X``, ``I-X``, ``None`` = missing) to BILUO.

    Returns the BILUO tags and the indices of the I-X tags that were repaired
    (read as B-X because no B-X/I-X of the same type precedes them). A span
    never crosses a missing (None) token. Raises ValueError for a tag that is
    not O, B-X, I-X or None.
    """
    n = len(tags)
    parsed: List[Optional[Tuple[str, str]]] = []
    for tag in tags:
        if tag is None or tag == "O":
            parsed.append(None if tag is None else ("O", ""))
            continue
        m = _TAG_RE.match(tag)
        if not m:
            raise ValueError(f"not an IOB2 tag: {tag!r}")
        parsed.append((m.group(1), m.group(2)))
    # Pass 1: decide where each entity begins (B, or a repaired I).
    begins: List[bool] = [False] * n
    repaired: List[int] = []
    for i, p in enumerate(parsed):
        if p is None or p[0] == "O":
            continue
        kind, label = p
        prev = parsed[i - 1] if i > 0 else None
        continues = kind == "I" and prev is not None and prev[0] in "BI" and prev[1] == label
        begins[i] = not continues
        if kind == "I" and not continues:
            repaired.append(i)
    # Pass 2: an entity token is the last of its span unless the next token continues it.
    out: List[Optional[str]] = []
    for i, p in enumerate(parsed):
        if p is None:
            out.append(None)
            continue
        if p[0] == "O":
            out.append("O")
            continue
        label = p[1]
        nxt = parsed[i + 1] if i + 1 < n else None
        ends = not (nxt is not None and nxt[0] == "I" and nxt[1] == label and not begins[i + 1])
        if begins[i]:
            out.append(("U-" if ends else "B-") + label)
        else:
            out.append(("L-" if ends else "I-") + label)
    return out, repaired


def biluo_to_spans(tags: Sequence[Optional[str]]) -> List[Span]:
    """Entity spans ``(start, end, label)`` (end exclusive) of a valid BILUO sequence.

    Missing (None) tokens are never part of a span. Raises ValueError on an
    invalid sequence (e.g. I-X without B-X, an unclosed B-X).
    """
    spans: List[Span] = []
    start = -1
    label = ""
    for i, tag in enumerate(tags):
        kind, name = ("-", "") if tag is None else (tag[0], tag[2:])
        if start >= 0 and (kind not in "IL" or name != label):
            raise ValueError(f"invalid BILUO sequence at token {i}: {tag!r} inside an open {label} entity")
        if kind == "U":
            spans.append((i, i + 1, name))
        elif kind == "B":
            start, label = i, name
        elif kind == "L":
            if start < 0:
                raise ValueError(f"invalid BILUO sequence at token {i}: {tag!r} without B-")
            spans.append((start, i + 1, label))
            start = -1
        elif kind == "I":
            if start < 0:
                raise ValueError(f"invalid BILUO sequence at token {i}: {tag!r} without B-")
        elif tag is not None and tag != "O":
            raise ValueError(f"not a BILUO tag at token {i}: {tag!r}")
    if start >= 0:
        raise ValueError(f"invalid BILUO sequence: {label} entity opened at token {start} is never closed")
    return spans


def spans_to_biluo(length: int, spans: Sequence[Span]) -> List[str]:
    """BILUO tags for non-overlapping spans ``(start, end, label)`` (end exclusive)."""
    tags = ["O"] * length
    for start, end, label in spans:
        if not 0 <= start < end <= length:
            raise ValueError(f"span {(start, end, label)} out of range for {length} tokens")
        if any(t != "O" for t in tags[start:end]):
            raise ValueError(f"span {(start, end, label)} overlaps another span")
        if end - start == 1:
            tags[start] = f"U-{label}"
        else:
            tags[start] = f"B-{label}"
            for i in range(start + 1, end - 1):
                tags[i] = f"I-{label}"
            tags[end - 1] = f"L-{label}"
    return tags


class IOB2Corpus(Corpus):
    """An IOB2 corpus read once, on first use; calling it returns its examples."""

    def __init__(self, path: Union[str, Path], limit: int = 0, encoding: str = "utf8") -> None:
        super().__init__(path, limit=limit, encoding=encoding)
        self.stats: Dict[str, int] = {}

    def read_examples(self) -> List[Example]:
        return read_iob2(self.path, limit=self.limit, stats=self.stats, encoding=self.encoding)

    @property
    def n_repaired(self) -> int:
        """How many I-X tags without a preceding B-X/I-X were read as B-X (reads the file if needed)."""
        self()
        return self.stats.get("repaired", 0)


@registry.readers("archsweep.IOB2Corpus.v1")
def iob2_corpus(path: str, limit: int = 0, encoding: str = "utf8") -> IOB2Corpus:
    """An IOB2 NER corpus (Universal NER layout). limit: read only the first N sentences
    (0 = all). encoding: of the file ("utf8", "latin-1", ...; "auto": UTF-8, else Latin-1)."""
    if limit < 0:
        raise ValueError(f"limit must be 0 (all) or a positive number of sentences, got {limit}")
    return IOB2Corpus(path, limit=limit, encoding=encoding)
