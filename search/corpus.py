"""Corpora: readers turn annotated files into Examples (a Doc plus gold annotations).

Docs are featurized (attributes hashed) once per corpus, when it is read.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy

from archs import registry
from archs.features import Doc, Featurizer

logger = logging.getLogger(__name__)


class CorpusError(ValueError):
    """Malformed input: the message names the file, the line and what was expected."""


@dataclass
class Example:
    """One sentence (or a document of several, see join_sentences): its Doc and gold
    annotations by name ("upos", "xpos", "heads", "deps", "sent_starts", ...); each
    annotation has one value per token, None where missing."""

    doc: Doc
    gold: Dict[str, List] = field(default_factory=dict)
    source: str = ""  # "file:line" of the sentence start
    # Per-example values derived from the gold once and reused every epoch (e.g. a
    # tagger's label ids), keyed by their owner; not part of the example's identity.
    cache: Dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.doc)


def read_text(path: Path, encoding: str = "utf8") -> str:
    """A corpus file's text. encoding: "utf8", "latin-1", ... or "auto" (UTF-8, or
    Latin-1 with a warning naming the first bad line). A directory, an unreadable
    file, a binary file or bytes that are not `encoding` raise CorpusError naming
    the file (and line)."""
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, expected a corpus file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"corpus file not found: {path}") from None
    except OSError as err:
        raise CorpusError(f"{path}: cannot be read ({err.strerror})") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data[:nul].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: a binary file (NUL byte), expected a text corpus")
    if encoding == "auto":
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            logger.warning("%s:%d: not valid UTF-8; reading the file as Latin-1", path, line)
            return data.decode("latin-1")
    try:
        return data.decode("utf-8-sig" if encoding.replace("-", "").lower() == "utf8" else encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise CorpusError(
            f"{path}:{line}: not valid {encoding} (byte {data[err.start]:#04x}); "
            'set the reader\'s encoding (e.g. "latin-1", or "auto" to detect)'
        ) from None
    except LookupError:
        raise CorpusError(f"{path}: unknown encoding {encoding!r}") from None


def text_lines(path: Path, encoding: str = "utf8") -> Iterator[Tuple[str, str]]:
    """("file:line", the line without its line break) for each non-blank line of a
    one-record-per-line file (see read_text for the encoding and the errors)."""
    for line_no, line in enumerate(read_text(path, encoding).split("\n"), 1):
        if line.strip():
            yield f"{path}:{line_no}", line.rstrip("\r")


def json_lines(path: Path) -> Iterator[Tuple[str, Any]]:
    """("file:line", the parsed value) for each non-blank line of a UTF-8 JSONL file;
    CorpusError naming file:line where a line is not valid JSON."""
    for where, line in text_lines(path):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
        yield where, value


def sentence_blocks(path: Path, encoding: str = "utf8") -> Iterator[List[Tuple[int, List[str]]]]:
    """The sentences of a token-per-line, tab-separated file (CoNLL-U, IOB2):
    `#` comment lines are skipped and a blank line ends a sentence. Each
    sentence is a list of (line number, columns). See read_text for the encoding."""
    block: List[Tuple[int, List[str]]] = []
    for line_no, line in enumerate(read_text(path, encoding).split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            if block:
                yield block
                block = []
        elif not line.startswith("#"):
            block.append((line_no, line.split("\t")))
    if block:
        yield block


def read_conllu(path: Union[str, Path], limit: int = 0, encoding: str = "utf8") -> List[Example]:
    """Read a CoNLL-U file into Examples, one per sentence.

    Multiword-token ranges (ID "3-4") and empty nodes (ID "5.1") are skipped:
    the examples hold the syntactic words of the basic tree. "_" in a column
    means missing. encoding: of the file ("utf8"; "auto": UTF-8, else Latin-1).
    Raises CorpusError naming file and line on malformed input.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus file not found: {path}")
    featurize = Featurizer()
    examples: List[Example] = []
    for block in sentence_blocks(path, encoding):
        rows: List[Tuple[int, List[str]]] = []
        for line_no, cols in block:
            if len(cols) != 10:
                raise CorpusError(f"{path}:{line_no}: expected 10 tab-separated columns, found {len(cols)}")
            token_id = cols[0]
            if "-" in token_id or "." in token_id:
                _check_special_id(path, line_no, token_id)
                continue
            if not token_id.isdigit() or int(token_id) != len(rows) + 1:
                raise CorpusError(
                    f"{path}:{line_no}: expected token ID {len(rows) + 1} (IDs count from 1 within a sentence), found {token_id!r}"
                )
            if not cols[1]:
                raise CorpusError(f"{path}:{line_no}: empty FORM column")
            head = cols[6]
            if head != "_" and not head.isdigit():
                raise CorpusError(f"{path}:{line_no}: expected HEAD to be an integer or '_', found {head!r}")
            rows.append((line_no, cols))
        if not rows:
            continue
        for line_no, cols in rows:
            if cols[6] != "_" and int(cols[6]) > len(rows):
                raise CorpusError(
                    f"{path}:{line_no}: token {cols[0]} has HEAD {cols[6]}, beyond the sentence's {len(rows)} words"
                )
        words = [cols[1] for _, cols in rows]
        examples.append(
            Example(
                doc=Doc(words, featurize(words)),
                gold={
                    "upos": [_value(cols[3]) for _, cols in rows],
                    "xpos": [_value(cols[4]) for _, cols in rows],
                    "heads": [None if cols[6] == "_" else int(cols[6]) - 1 for _, cols in rows],
                    "deps": [_value(cols[7]) for _, cols in rows],
                },
                source=f"{path}:{rows[0][0]}",
            )
        )
        if limit and len(examples) >= limit:
            break
    logger.info("read %d sentences, %d words from %s", len(examples), sum(len(e) for e in examples), path)
    return examples


def _value(text: str) -> Optional[str]:
    return None if text == "_" else text


def _check_special_id(path: Path, line_no: int, token_id: str) -> None:
    sep = "-" if "-" in token_id else "."
    parts = token_id.split(sep)
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise CorpusError(f"{path}:{line_no}: expected an ID like 3, 3-4 or 3.1, found {token_id!r}")


def join_sentences(examples: Sequence[Example], per_doc: int) -> List[Example]:
    """Documents of `per_doc` consecutive sentences (as spaCy's `convert -n`): words,
    features and every gold annotation concatenated, heads shifted by each sentence's
    offset (roots stay -1), plus gold "sent_starts" (True at each sentence's first
    word), which the parser learns to predict with its BREAK move."""
    if per_doc < 1:
        raise ValueError(f"sentences_per_doc must be >= 1, got {per_doc}")
    if per_doc == 1:
        return list(examples)
    docs: List[Example] = []
    for i in range(0, len(examples), per_doc):
        group = examples[i : i + per_doc]
        gold: Dict[str, List] = {key: [] for key in group[0].gold}
        starts: List[Optional[bool]] = []
        offset = 0
        for eg in group:
            for key, values in eg.gold.items():
                if key == "heads":
                    values = [h if h is None or h < 0 else h + offset for h in values]
                gold.setdefault(key, []).extend(values)
            starts += [True] + [False] * (len(eg) - 1)
            offset += len(eg)
        gold["sent_starts"] = starts
        words = [w for eg in group for w in eg.doc.words]
        features = numpy.concatenate([eg.doc.features for eg in group])
        docs.append(Example(Doc(words, features), gold, source=group[0].source))
    return docs


class Corpus:
    """A corpus read once, on first use; calling it returns its examples."""

    def __init__(self, path: Union[str, Path], limit: int = 0, sentences_per_doc: int = 1, encoding: str = "utf8") -> None:
        self.path = Path(path)
        self.limit = limit
        self.sentences_per_doc = sentences_per_doc
        self.encoding = encoding
        self._examples: Optional[List[Example]] = None

    def __call__(self) -> List[Example]:
        if self._examples is None:
            examples = read_conllu(self.path, limit=self.limit, encoding=self.encoding)
            self._examples = join_sentences(examples, self.sentences_per_doc)
        return self._examples

    def __iter__(self) -> Iterator[Example]:
        return iter(self())

    def __len__(self) -> int:
        return len(self())


@registry.readers("archsweep.ConllUCorpus.v1")
def conllu_corpus(path: str, limit: int = 0, sentences_per_doc: int = 1, encoding: str = "utf8") -> Corpus:
    """A CoNLL-U corpus (Universal Dependencies). limit: read only the first N
    sentences (0 = all). sentences_per_doc: join this many consecutive sentences into
    one example (1 = one sentence each, the sentence boundaries given; more = the
    parser also finds the boundaries, scored as sents_p/r/f). encoding: of the file
    ("utf8", "latin-1", ...; "auto": UTF-8, else Latin-1 with a warning)."""
    if limit < 0:
        raise ValueError(f"limit must be 0 (all) or a positive number of sentences, got {limit}")
    if sentences_per_doc < 1:
        raise ValueError(f"sentences_per_doc must be 1 or more, got {sentences_per_doc}")
    return Corpus(path, limit=limit, sentences_per_doc=sentences_per_doc, encoding=encoding)


def count_words(examples: Sequence[Example]) -> int:
    return sum(len(e) for e in examples)
