"""Shared fixtures for the architecture tests: real sentences from the bundled
UD English-EWT sample, the bundled GloVe slice, and a parameter counter."""

from pathlib import Path
from typing import List

import pytest
from thinc.api import Model

REPO = Path(__file__).resolve().parents[2]
CONLLU = REPO / "data" / "ud_english_ewt" / "en_ewt-ud-train.sample.conllu"
GLOVE = REPO / "data" / "vectors" / "glove.6B.50d.sample.txt"


def read_conllu_words(path: Path, n_sents: int) -> List[List[str]]:
    """Word forms (column 2) of the first `n_sents` sentences; multiword-token
    ranges ("1-2") and empty nodes ("8.1") are skipped."""
    sents: List[List[str]] = []
    words: List[str] = []
    with path.open(encoding="utf8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if words:
                    sents.append(words)
                    words = []
                    if len(sents) == n_sents:
                        break
                continue
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            if "-" in cols[0] or "." in cols[0]:
                continue
            words.append(cols[1])
    if words and len(sents) < n_sents:
        sents.append(words)
    return sents


def count_params(model: Model) -> int:
    """Σ size of every parameter of every (unique) node in model.walk() —
    the way spaCy's models were counted."""
    return sum(
        int(node.get_param(name).size)
        for node in model.walk()
        for name in node.param_names
        if node.has_param(name)
    )


@pytest.fixture(scope="session")
def sentences() -> List[List[str]]:
    sents = read_conllu_words(CONLLU, 8)
    assert len(sents) == 8 and all(sents)
    return sents


@pytest.fixture(scope="session")
def glove_path() -> Path:
    assert GLOVE.exists(), GLOVE
    return GLOVE


@pytest.fixture(name="count_params", scope="session")
def count_params_fixture():
    return count_params
