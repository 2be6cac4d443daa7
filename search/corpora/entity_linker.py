"""ELEVANT benchmark files (JSONL) -> entity-linking Examples, one per sentence with mentions.

Format (the ELEVANT benchmark, github.com/ad-freiburg/elevant): one document per line,
``{"id", "title", "text", "evaluation_span": [start, end], "labels": [...]}``; each label
``{"span": [char_start, char_end], "entity_id": "Q…" | "<NIL>" | "<NO_MAPPING>" | "DATETIME" |
"QUANTITY", "name", "type", "coref", "optional", ...}``.

Decisions (the issue was silent):
* Mentions used: labels inside ``evaluation_span`` whose entity_id is a QID (linkable) or
  ``<NIL>`` / ``<NO_MAPPING>`` (gold NIL: the entity has no KB entry). DATETIME and QUANTITY
  labels (not entities), coreference mentions (``coref: true``, mostly pronouns such as
  "he", which an alias table cannot serve) and ``optional`` labels are left out, as are
  labels with an empty entity_id.
* Sentences: the text is split after ``.``, ``!`` or ``?`` followed by whitespace and an
  upper-case letter, digit or opening quote/bracket, never inside a mention. Each sentence
  holding a used mention becomes one Example (the EntityLinker.v1 input, spaCy's
  ``n_sents = 0``); its words come from ``search.textcat_corpus.tokenize`` run separately on
  the text before, inside and after each mention, so mentions are whole tokens.
* ``exclude``: a second benchmark file whose documents (by title) are skipped: Wiki-Fair v2's
  80 training articles are ``wiki-fair-v2`` minus ``wiki-fair-v2-test``.
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Set, Tuple, Union

from archs import registry
from archs.features import Doc, Featurizer

from .example import CorpusError, Example, LazyCorpus
from .files import json_lines
from .textcat import tokenize

logger = logging.getLogger(__name__)

NIL = "NIL"
_NIL_IDS = {"<NIL>", "<NO_MAPPING>"}
_SKIP_IDS = {"DATETIME", "QUANTITY", ""}
_QID = re.compile(r"^Q[1-9][0-9]*$")
_SENT_END = re.compile(r"[.!?][\"')\]”’]*\s+(?=[A-Z0-9\"'“‘(\[])")


@dataclass(frozen=True)
class Mention:
    """A mention in a sentence: tokens [start, end), its surface text, and (gold) its KB id or NIL."""

    start: int
    end: int
    text: str


class MentionDoc(Doc):
    """A Doc (a sentence) with the mentions to link; the entity linker reads `mentions`."""

    __slots__ = ("mentions",)

    def __init__(self, words: Sequence[str], features, mentions: Sequence[Mention]) -> None:
        super().__init__(words, features)
        self.mentions: List[Mention] = list(mentions)


@dataclass
class Label:
    """One used gold label of a document: character span, text, KB id (or NIL), name and types."""

    start: int
    end: int
    text: str
    kb_id: str
    name: str
    types: List[str]


@dataclass
class RawDoc:
    """One benchmark document: its title, text and used labels, and its file:line."""

    title: str
    text: str
    labels: List[Label]
    source: str


def read_elevant_docs(path: Union[str, Path], *, include_nil: bool = True) -> List[RawDoc]:
    """The documents of an ELEVANT benchmark file with their used labels (see the module
    docstring); raises CorpusError naming file:line on malformed input."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"entity-linking file not found: {path}")
    return [_raw_doc(record, where, include_nil) for where, record in json_lines(path)]


def _raw_doc(record: Any, where: str, include_nil: bool) -> RawDoc:
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object per line, found {type(record).__name__}")
    for key, kind in (("text", str), ("labels", list)):
        if not isinstance(record.get(key), kind):
            raise CorpusError(f"{where}: expected a {kind.__name__} under {key!r}")
    text = record["text"]
    span = record.get("evaluation_span", [0, len(text)])
    if not _is_span(span, len(text)):
        raise CorpusError(f"{where}: evaluation_span {span!r} is not [start, end] within the text ({len(text)} chars)")
    labels: List[Label] = []
    for i, label in enumerate(record["labels"]):
        if not isinstance(label, dict) or not _is_span(label.get("span"), len(text)):
            raise CorpusError(f"{where}: label {i}: expected an object with a span [start, end] within the text")
        kb_id = label.get("entity_id")
        if not isinstance(kb_id, str):
            raise CorpusError(f"{where}: label {i}: expected a string entity_id, found {kb_id!r}")
        if kb_id in _SKIP_IDS or label.get("coref") or label.get("optional"):
            continue
        if kb_id in _NIL_IDS:
            if not include_nil:
                continue
            kb_id = NIL
        elif not _QID.match(kb_id):
            raise CorpusError(
                f"{where}: label {i}: entity_id {kb_id!r} is not a Wikidata QID, <NIL>, <NO_MAPPING>, DATETIME or QUANTITY"
            )
        start, end = label["span"]
        if start < span[0] or end > span[1] or start == end:
            continue
        surface = text[start:end]
        if not surface.strip():
            raise CorpusError(f"{where}: label {i}: span {label['span']} covers only whitespace")
        types = [t for t in str(label.get("type") or "").split("|") if t]
        labels.append(Label(start, end, surface.strip(), kb_id, str(label.get("name") or ""), types))
    labels.sort(key=lambda l: (l.start, -l.end))
    return RawDoc(str(record.get("title", "")), text, labels, where)


def _is_span(span: Any, n: int) -> bool:
    return (
        isinstance(span, list)
        and len(span) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in span)
        and 0 <= span[0] <= span[1] <= n
    )


def _sentence_spans(text: str, labels: Sequence[Label]) -> List[Tuple[int, int]]:
    """Character spans of the sentences; a boundary never falls inside a mention."""
    spans, start = [], 0
    for m in _SENT_END.finditer(text):
        cut = m.end()
        if any(l.start < cut < l.end for l in labels):
            continue
        spans.append((start, cut))
        start = cut
    spans.append((start, len(text)))
    return spans


def doc_examples(raw: RawDoc, featurize: Featurizer) -> List[Example]:
    """One Example per sentence with a used mention: a MentionDoc plus gold["kb_ids"]
    (one KB id or NIL per mention). Nested mentions (a label inside another) are kept
    only when they do not cross a token boundary of the outer one; here the outer one wins."""
    examples: List[Example] = []
    line = raw.source
    for s_start, s_end in _sentence_spans(raw.text, raw.labels):
        inside = [l for l in raw.labels if s_start <= l.start and l.end <= s_end]
        if not inside:
            continue
        flat: List[Label] = []
        for label in inside:  # sorted by start, longest first: drop overlapping ones
            if flat and label.start < flat[-1].end:
                continue
            flat.append(label)
        words: List[str] = []
        mentions: List[Mention] = []
        pos = s_start
        for label in flat:
            words += tokenize(raw.text[pos : label.start])
            ment_words = tokenize(raw.text[label.start : label.end])
            mentions.append(Mention(len(words), len(words) + len(ment_words), label.text))
            words += ment_words
            pos = label.end
        words += tokenize(raw.text[pos:s_end])
        doc = MentionDoc(words, featurize(words), mentions)
        examples.append(Example(doc, {"kb_ids": [l.kb_id for l in flat]}, source=line))
    return examples


def read_elevant(
    path: Union[str, Path], *, limit: int = 0, exclude: Optional[Union[str, Path]] = None
) -> List[Example]:
    """Entity-linking Examples from an ELEVANT file; `limit` documents (0 = all),
    skipping the documents (by title) of the `exclude` file."""
    skip: Set[str] = {d.title for d in read_elevant_docs(exclude)} if exclude else set()
    featurize = Featurizer()
    examples: List[Example] = []
    n_docs = 0
    for raw in read_elevant_docs(path):
        if raw.title in skip:
            continue
        examples += doc_examples(raw, featurize)
        n_docs += 1
        if limit and n_docs >= limit:
            break
    logger.info("read %d docs, %d sentences with mentions from %s", n_docs, len(examples), path)
    return examples


class ElevantCorpus(LazyCorpus):
    """An ELEVANT corpus read once, on first use; calling it returns its examples."""

    def __init__(self, path: Union[str, Path], limit: int = 0, exclude: Optional[str] = None) -> None:
        self.path = Path(path)
        self.limit = limit
        self.exclude = exclude

    def read_examples(self) -> List[Example]:
        return read_elevant(self.path, limit=self.limit, exclude=self.exclude)


@registry.readers("archsweep.ElevantCorpus.v1")
def elevant_corpus(path: str, also: Optional[str] = None, limit: int = 0, exclude: Optional[str] = None) -> ElevantCorpus:
    """An ELEVANT entity-linking benchmark (JSONL, one document per line). also: a second
    file read after `path`, as one corpus (e.g. OKE-2016 train after Wiki-Fair v2's
    training articles); null for none. limit: the first N documents of each file (0 = all).
    exclude: a benchmark file whose documents (by title) are skipped (wiki-fair-v2-test,
    to read Wiki-Fair v2's 80 training articles from wiki-fair-v2)."""
    if limit < 0:
        raise ValueError(f"limit must be 0 (all) or a positive number of documents, got {limit}")
    if also:
        return MultiCorpus([ElevantCorpus(path, limit, exclude), ElevantCorpus(also, limit, exclude)])
    return ElevantCorpus(path, limit, exclude)


class MultiCorpus(ElevantCorpus):
    """Several ELEVANT files read as one corpus, in order."""

    def __init__(self, parts: List[ElevantCorpus]) -> None:
        super().__init__(parts[0].path, 0, None)
        self.parts = parts

    def read_examples(self) -> List[Example]:
        return [eg for part in self.parts for eg in part()]


def read_for_evaluation(path: Union[str, Path], config) -> Optional[List[Example]]:
    """`archsweep evaluate`: ELEVANT examples when the saved config's dev corpus uses
    archsweep.ElevantCorpus.v1, else None (another reader's turn)."""
    corpora = config.get("corpora", {})
    dev_key = config.get("training", {}).get("dev_corpus", "corpora.dev").split(".")[-1]
    block = corpora.get(dev_key) or {}
    if block.get("@readers") != "archsweep.ElevantCorpus.v1":
        return None
    return read_elevant(path)
