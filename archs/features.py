"""Token attributes as spaCy defines them, hashed to uint64 once per corpus.

A `Doc` carries its words and a (n_tokens, len(ATTRS)) uint64 matrix of hashed
attribute values. Layers select the columns they need by attribute name, so the
strings are hashed once when a corpus is read, never per batch.

Hashes are spaCy's string hashes (64-bit MurmurHash64A of the UTF-8 text,
seed 1), so a feature matrix here equals `doc.to_array([...])` in spaCy for the
same attribute values.
"""

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy

ATTRS: Tuple[str, ...] = ("ORTH", "LOWER", "NORM", "PREFIX", "SUFFIX", "SHAPE")
_MASK64 = 0xFFFFFFFFFFFFFFFF
_M = 0xC6A4A7935BD1E995
_R = 47

# spaCy's base norm table (punctuation and currency normalisation): on gold
# tokens, spaCy's NORM is the lower-cased text unless the word is listed here.
NORM_EXCEPTIONS: Dict[str, str] = {
    "'s": "'s", "'S": "'s", "’s": "'s", "’S": "'s", "’": "'", "‘": "'", "´": "'", "`": "'",
    "”": '"', "“": '"', "''": '"', "``": '"', "´´": '"', "„": '"', "»": '"', "«": '"',
    "‘‘": '"', "’’": '"', "？": "?", "！": "!", "，": ",", "；": ";", "：": ":", "。": ".",
    "।": ".", "…": "...", "—": "-", "–": "-", "--": "-", "---": "-", "——": "-",
    "€": "$", "£": "$", "¥": "$", "฿": "$", "US$": "$", "C$": "$", "A$": "$", "₺": "$",
    "₹": "$", "৳": "$", "₩": "$", "Mex$": "$", "₣": "$", "E£": "$",
}


def hash_string(text: str) -> int:
    """spaCy's `hash_string`: MurmurHash64A of the UTF-8 bytes with seed 1."""
    data = text.encode("utf8")
    length = len(data)
    h = (1 ^ (length * _M)) & _MASK64
    n_blocks = length // 8
    for i in range(n_blocks):
        k = int.from_bytes(data[8 * i : 8 * i + 8], "little")
        k = (k * _M) & _MASK64
        k ^= k >> _R
        k = (k * _M) & _MASK64
        h ^= k
        h = (h * _M) & _MASK64
    tail = data[8 * n_blocks :]
    if tail:
        for i, byte in enumerate(tail):
            h ^= byte << (8 * i)
        h = (h * _M) & _MASK64
    h ^= h >> _R
    h = (h * _M) & _MASK64
    h ^= h >> _R
    return h


def word_shape(text: str) -> str:
    """spaCy's SHAPE: x/X/d per character, other characters kept, runs cut at 4."""
    if len(text) >= 100:
        return "LONG"
    shape = []
    last = ""
    seq = 0
    for char in text:
        if char.isalpha():
            shape_char = "X" if char.isupper() else "x"
        elif char.isdigit():
            shape_char = "d"
        else:
            shape_char = char
        if shape_char == last:
            seq += 1
        else:
            seq = 0
            last = shape_char
        if seq < 4:
            shape.append(shape_char)
    return "".join(shape)


def attribute_strings(word: str) -> Tuple[str, ...]:
    """The string value of every attribute in ATTRS for one token."""
    lower = word.lower()
    return (
        word,
        lower,
        NORM_EXCEPTIONS.get(word, lower),
        word[:1],
        word[-3:],
        word_shape(word),
    )


def attr_column(attr: str) -> int:
    """Column of `attr` in a Doc's feature matrix; clear error for unknown names."""
    try:
        return ATTRS.index(attr.upper())
    except ValueError:
        raise ValueError(f"unknown token attribute {attr!r}: expected one of {', '.join(ATTRS)}") from None


class Featurizer:
    """Hashes each distinct word once; reuse one instance over a whole corpus."""

    def __init__(self) -> None:
        self._rows: Dict[str, Tuple[int, ...]] = {}

    def row(self, word: str) -> Tuple[int, ...]:
        row = self._rows.get(word)
        if row is None:
            row = tuple(hash_string(s) for s in attribute_strings(word))
            self._rows[word] = row
        return row

    def __call__(self, words: Sequence[str]) -> numpy.ndarray:
        if not words:
            return numpy.zeros((0, len(ATTRS)), dtype="uint64")
        return numpy.array([self.row(w) for w in words], dtype="uint64")


class Doc:
    """A tokenized text: its words and their hashed attribute matrix."""

    __slots__ = ("words", "features", "_char_ids")

    def __init__(self, words: Sequence[str], features: Optional[numpy.ndarray] = None) -> None:
        self.words: List[str] = list(words)
        self.features = Featurizer()(self.words) if features is None else features
        if self.features.shape != (len(self.words), len(ATTRS)):
            raise ValueError(
                f"feature matrix of shape {self.features.shape} does not fit "
                f"{len(self.words)} words x {len(ATTRS)} attributes"
            )
        self._char_ids: Dict[int, numpy.ndarray] = {}

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"Doc({' '.join(self.words)!r})"

    def char_ids(self, nC: int) -> numpy.ndarray:
        """UTF-8 bytes of each word in the slot order first, last, second,
        second-last, ... (nC slots, 255 where a word has fewer bytes); cached."""
        ids = self._char_ids.get(nC)
        if ids is None:
            ids = numpy.full((len(self.words), nC), 255, dtype="int32")
            for i, word in enumerate(self.words):
                data = word.encode("utf8")
                order = _interleaved(len(data))[:nC]
                ids[i, : len(order)] = [data[j] for j in order]
            self._char_ids[nC] = ids
        return ids


def _interleaved(n: int) -> List[int]:
    order = []
    lo, hi = 0, n - 1
    while lo <= hi:
        order.append(lo)
        if hi != lo:
            order.append(hi)
        lo += 1
        hi -= 1
    return order


def make_docs(texts: Iterable[Sequence[str]]) -> List[Doc]:
    """Docs for many tokenized texts, hashing each distinct word once."""
    featurize = Featurizer()
    return [Doc(words, featurize(words)) for words in texts]
