"""Examples: a Doc plus its gold annotations, what every corpus reader produces.

Docs are featurized (attributes hashed) once per corpus, when it is read.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy

from archs.features import Doc


class CorpusError(ValueError):
    """Malformed input: the message names the file, the line and what was expected."""


@dataclass
class Example:
    """One sentence (or a document of several, see join_sentences): its Doc and gold
    annotations by name ("upos", "xpos", "heads", "deps", "sent_starts", ...); each
    token annotation has one value per token, None where missing; a doc-level one
    has any value (a text classifier's "cats": a dict, "cats_exhaustive": a bool)."""

    doc: Doc
    gold: Dict[str, Any] = field(default_factory=dict)
    source: str = ""  # "file:line" of the sentence start
    # Per-example values derived from the gold once and reused every epoch (e.g. a
    # tagger's label ids), keyed by their owner; not part of the example's identity.
    cache: Dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.doc)


class LazyCorpus:
    """A corpus read once, on first use; calling it returns its examples. A reader's
    corpus says how to read its file in `read_examples`."""

    _examples: Optional[List[Example]] = None

    def read_examples(self) -> List[Example]:
        raise NotImplementedError

    def __call__(self) -> List[Example]:
        if self._examples is None:
            self._examples = self.read_examples()
        return self._examples

    def __iter__(self) -> Iterator[Example]:
        return iter(self())

    def __len__(self) -> int:
        return len(self())


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


def count_words(examples: Sequence[Example]) -> int:
    return sum(len(e) for e in examples)
