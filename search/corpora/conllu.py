"""CoNLL-U corpora (Universal Dependencies): archsweep.ConllUCorpus.v1."""

import logging
from pathlib import Path
from typing import List, Optional, Tuple, Union

from archs import registry
from archs.features import Doc, Featurizer

from .example import CorpusError, Example, LazyCorpus, join_sentences
from .files import sentence_blocks

logger = logging.getLogger(__name__)


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


class Corpus(LazyCorpus):
    """A CoNLL-U corpus read once, on first use; calling it returns its examples."""

    def __init__(self, path: Union[str, Path], limit: int = 0, sentences_per_doc: int = 1, encoding: str = "utf8") -> None:
        self.path = Path(path)
        self.limit = limit
        self.sentences_per_doc = sentences_per_doc
        self.encoding = encoding

    def read_examples(self) -> List[Example]:
        return join_sentences(read_conllu(self.path, limit=self.limit, encoding=self.encoding), self.sentences_per_doc)


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
