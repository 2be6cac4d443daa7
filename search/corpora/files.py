"""Reading corpus files: text with a known encoding, line by line, JSON lines, and
token-per-line sentence blocks; every problem names the file and line."""

import json
import logging
from pathlib import Path
from typing import Any, Iterator, List, Tuple

from .example import CorpusError

logger = logging.getLogger(__name__)


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
