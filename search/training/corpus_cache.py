"""Corpora read once per process: a sweep worker that runs trial after trial reads
and hashes each corpus for its first trial only.

An entry is keyed by the reader's settings (its config block, as interpolated) and
the identity of every file or folder the block names (absolute path, size and
modification time), so an edited corpus file or a changed reader setting is read
again. Entries hold the examples pickled: every trial gets its own fresh objects,
exactly as a fresh read gives them, and nothing one trial does to its examples
reaches the next.
"""

import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, List, Mapping, Tuple

from ..corpora.example import Example

# train and dev of two different configs: enough for a sweep over one space,
# without holding every corpus a long-lived process has ever read.
MAX_ENTRIES = 4


class CorpusCache:
    """Examples by reader settings and file identity, kept in this process."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: "OrderedDict[str, bytes]" = OrderedDict()
        self.hits = 0
        self.misses = 0

    def examples(self, reader_block: Mapping[str, Any], read: Callable[[], Iterable[Example]]) -> List[Example]:
        """The examples of the corpus reader_block configures: from this cache when
        the same settings and files were read before, else from read()."""
        key = cache_key(reader_block)
        stored = self._entries.get(key)
        if stored is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return pickle.loads(stored)
        self.misses += 1
        examples = list(read())
        self._entries[key] = pickle.dumps(examples, protocol=pickle.HIGHEST_PROTOCOL)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return examples

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def cache_key(reader_block: Mapping[str, Any]) -> str:
    """The reader's settings and the identity of the files they name, as one string."""
    files = sorted({identity for value in _strings(reader_block) for identity in _file_identities(value)})
    return json.dumps({"reader": reader_block, "files": files}, sort_keys=True, default=repr)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _file_identities(value: str) -> List[Tuple[str, int, int]]:
    """(absolute path, size, mtime in ns) of the file value names, or of every file
    under the folder it names; nothing when it names neither."""
    if not value or "\n" in value or len(value) > 4096:
        return []
    path = Path(value)
    try:
        if path.is_file():
            files = [path]
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
        else:
            return []
        identities = []
        for file in files:
            stat = file.stat()
            identities.append((str(file.resolve()), stat.st_size, stat.st_mtime_ns))
        return identities
    except OSError:  # a name too long or not allowed as a path: not a file
        return []


# The cache a long-lived process (a sweep worker running one trial after another) shares.
PROCESS_CACHE = CorpusCache()


def process_cache_enabled() -> bool:
    """ARCHSWEEP_CORPUS_CACHE=0 turns the process cache off (every trial reads its corpora)."""
    return os.environ.get("ARCHSWEEP_CORPUS_CACHE", "1") != "0"
