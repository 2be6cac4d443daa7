"""spaCy's binary corpora (.spacy files, DocBin): spacy.Corpus.v1.

The files `spacy convert` writes (from CoNLL-U, IOB, ...) or a `DocBin` a script
saves. Reading them needs spaCy, an optional extra (`pip install 'archsweep[spacy]'`),
imported only here and only when a corpus is read.

Gold annotations per Example, from each reference Doc:

* ``"xpos"`` (``token.tag_``) and ``"upos"`` (``token.pos_``), None where empty;
* ``"heads"`` (index within the example, -1 for a root) and ``"deps"``, None where
  the token has no dependency annotation (spaCy's missing dep);
* ``"ner"`` (BILUO tags) and ``"entities"`` (``(start, end, label)`` spans), when the
  Doc has entity annotation: a token whose ``ent_iob_`` is empty is missing (None),
  ``O`` is outside, as spaCy's ``Example.get_aligned_ner``;
* ``"cats"`` and ``"cats_exhaustive"`` (False: a label the Doc's ``cats`` leaves out is
  missing, as spaCy's textcat reads it), when the Doc has categories;
* ``"sent_starts"`` on an example of several sentences (the parser learns them).

Tokens are always the DocBin's own (archsweep has no tokenizer). As spaCy's reader:
``gold_preproc = true`` gives one example per sentence (when the Doc has sentence
boundaries); false gives one per Doc, split into sentences only when the Doc has
``max_length`` tokens or more (0: no limit).
"""

import logging
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

from archs import registry
from archs.features import Doc, Featurizer

from .example import CorpusError, Example, LazyCorpus

logger = logging.getLogger(__name__)

INSTALL_HINT = "reading .spacy corpora needs spaCy: pip install 'archsweep[spacy]'"


def docbin_files(path: Path) -> List[Path]:
    """The .spacy file itself, or every .spacy file under a directory (sorted), as spaCy's walk_corpus."""
    if not path.exists():
        raise FileNotFoundError(f"corpus file not found: {path}")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.spacy") if p.is_file())
        if not files:
            raise CorpusError(f"{path}: expected .spacy files in the directory, found none")
        return files
    return [path]


def read_docbin(
    path: Union[str, Path], *, gold_preproc: bool = False, max_length: int = 0, limit: int = 0
) -> List[Example]:
    """Read a .spacy file (or a directory of them) into Examples (see the module doc).
    limit: read only the first N Docs (0 = all)."""
    try:
        import spacy
    except ImportError:
        raise CorpusError(INSTALL_HINT) from None
    from spacy.tokens import DocBin
    featurize = Featurizer()
    vocab = spacy.blank("xx").vocab
    examples: List[Example] = []
    n_docs = 0
    for file in docbin_files(Path(path)):
        try:
            docs = list(DocBin().from_disk(file).get_docs(vocab))
        except Exception as err:  # not a DocBin: msgpack / zlib errors
            raise CorpusError(f"{file}: expected a spaCy DocBin (.spacy), could not read it: {err}") from None
        for index, doc in enumerate(docs):
            if limit and n_docs >= limit:
                break
            n_docs += 1
            source = f"{file}:doc {index}"
            for part in _parts(doc, gold_preproc, max_length):
                if len(part):
                    examples.append(_example(part, featurize, source))
    logger.info("read %d examples, %d words from %s", len(examples), sum(len(e) for e in examples), path)
    return examples


def _parts(doc: Any, gold_preproc: bool, max_length: int) -> Iterator[Any]:
    """The Docs spaCy's Corpus makes examples of: sentences (gold_preproc), or the
    whole Doc unless it is too long and has sentence boundaries."""
    has_sents = doc.has_annotation("SENT_START")
    if gold_preproc:
        yield from (sent.as_doc() for sent in doc.sents) if has_sents else [doc]
    elif max_length == 0 or len(doc) < max_length:
        yield doc
    elif has_sents:
        yield from (sent.as_doc() for sent in doc.sents if len(sent) < max_length)


def _example(doc: Any, featurize: Featurizer, source: str) -> Example:
    words = [token.text for token in doc]
    has_dep = doc.has_annotation("DEP")
    gold: Dict[str, Any] = {
        "upos": [token.pos_ or None for token in doc],
        "xpos": [token.tag_ or None for token in doc],
        "heads": [_head(token) if has_dep and token.dep_ else None for token in doc],
        "deps": [(token.dep_ or None) if has_dep else None for token in doc],
    }
    if doc.has_annotation("SENT_START") and len(list(doc.sents)) > 1:
        gold["sent_starts"] = [bool(token.is_sent_start) for token in doc]
    if doc.has_annotation("ENT_IOB"):
        gold["ner"] = _biluo(doc)
        gold["entities"] = [(ent.start, ent.end, ent.label_) for ent in doc.ents]
    if doc.cats:
        gold["cats"] = {label: float(value) for label, value in doc.cats.items()}
        gold["cats_exhaustive"] = False
    return Example(doc=Doc(words, featurize(words)), gold=gold, source=source)


def _biluo(doc: Any) -> List[Optional[str]]:
    """BILUO tags as spaCy's Example.get_aligned_ner: None where ent_iob_ is empty
    (missing), O outside, the entities' tags inside."""
    tags: List[Optional[str]] = [None if token.ent_iob_ == "" else "O" for token in doc]
    for ent in doc.ents:
        if len(ent) == 1:
            tags[ent.start] = f"U-{ent.label_}"
            continue
        tags[ent.start] = f"B-{ent.label_}"
        tags[ent.start + 1 : ent.end - 1] = [f"I-{ent.label_}"] * (len(ent) - 2)
        tags[ent.end - 1] = f"L-{ent.label_}"
    return tags


def _head(token: Any) -> int:
    return -1 if token.head.i == token.i else token.head.i


def read_for_evaluation(path: Union[str, Path], config: Dict[str, Any]) -> Optional[List[Example]]:
    """Examples for `archsweep evaluate` when `path` is a .spacy file (or a directory of
    them), else None: read as the saved model's [corpora.dev] spacy.Corpus.v1 block reads
    (gold_preproc, max_length), else with spaCy's defaults."""
    path = Path(path)
    if path.suffix != ".spacy" and not (path.is_dir() and any(path.rglob("*.spacy"))):
        return None
    block = dict((config.get("corpora") or {}).get("dev") or {})
    if block.get("@readers") != "spacy.Corpus.v1":
        return read_docbin(path)
    return read_docbin(path, gold_preproc=bool(block.get("gold_preproc", False)), max_length=int(block.get("max_length", 0)))


class DocBinCorpus(LazyCorpus):
    """A .spacy corpus read once, on first use; calling it returns its examples."""

    def __init__(self, path: Union[str, Path], gold_preproc: bool, max_length: int, limit: int) -> None:
        self.path = Path(path)
        self.gold_preproc = gold_preproc
        self.max_length = max_length
        self.limit = limit

    def read_examples(self) -> List[Example]:
        return read_docbin(self.path, gold_preproc=self.gold_preproc, max_length=self.max_length, limit=self.limit)


@registry.readers("spacy.Corpus.v1")
def docbin_corpus(
    path: str, gold_preproc: bool = False, max_length: int = 0, limit: int = 0, augmenter: Any = None
) -> DocBinCorpus:
    """spaCy's .spacy corpus (a file or a directory of them). gold_preproc: one example
    per sentence; max_length: split longer Docs into sentences (0: no limit); limit:
    the first N Docs (0: all). augmenter must be null (archsweep does not augment)."""
    if augmenter is not None:
        raise ValueError("augmenter: archsweep does not augment corpora; expected null")
    if limit < 0 or max_length < 0:
        raise ValueError(f"limit and max_length must be 0 or more, got {limit} and {max_length}")
    return DocBinCorpus(path, gold_preproc, max_length, limit)
