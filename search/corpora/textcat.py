"""Text-classification corpora: one example per line, TSV-like or JSONL, tokenized by a rule-based tokenizer.

Gold annotation of an Example (``Example.gold``):

* ``"cats"``: ``{label: score}`` with scores in [0, 1] — what the line says;
* ``"cats_exhaustive"``: True when the line lists *all* of the example's positive
  labels (a ``label`` column, a ``label`` key or a list of label ids), so every
  other label of the task is a known negative; False for a JSONL ``cats`` dict,
  where labels absent from the dict are *missing* (neither positive nor
  negative), as spaCy treats ``doc.cats``.

Readers (registered in ``registry.readers``):

* ``archsweep.TextCatTSV.v1`` — delimited lines. Defaults read ``label<TAB>text``.
  SST-2 (``label<space>text``): ``separator = " "``. TREC (``COARSE:fine text``):
  ``separator = " "``, ``label_part_separator = ":"`` (keeps ``COARSE``; set
  ``label_part = 1`` for the fine label) and ``encoding = "auto"`` (TREC.train is
  Latin-1). GoEmotions (``text<TAB>ids<TAB>comment_id``): ``text_column = 0``,
  ``label_column = 1``, ``multi_label_separator = ","`` and ``label_names`` =
  its ``emotions.txt`` (ids index into it).
* ``archsweep.TextCatJSONL.v1`` — ``{"text": ..., "label": "POS"}``, ``"label": ["a", "b"]``
  or ``"cats": {"POS": 1.0, "NEG": 0.0}``.

Errors name the file and line (:class:`search.corpus.CorpusError`).
"""

import logging
import re
from pathlib import Path
from typing import Dict, List, Optional, Union

from archs import registry
from archs.features import Doc, Featurizer

from .example import CorpusError, Example, LazyCorpus
from .files import json_lines, text_lines

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Tokenizer

_TOKEN_RE = re.compile(
    r"""
      \[[A-Z]+\]                                  # masked placeholders: [NAME], [RELIGION]
    | (?:https?://|www\.)[^\s]+[^\s.,;:!?)\]'"]   # URLs (without trailing punctuation)
    | -[lr][rcs]b-                                # PTB brackets: -lrb- -rrb- -lsb- ...
    | (?:[^\W\d_]\.){2,}                          # abbreviations with periods: U.S., e.g.
    | (?:mrs?|ms|dr|jr|sr|st|vs|etc|prof|inc|ltd|co)\.(?!\w)  # common abbreviations
    | [^\W\d_]\.(?!\w)                            # initials: J.
    | ['’]\d0s                                    # decades: '70s
    | ['’](?:s|re|ve|ll|d|m|t)(?![^\W_])          # clitics already split off ('s, 're, ...)
    | \d+(?:[.,:]\d+)+                            # numbers: 1,000  3.14  10:30
    | [^\W_]+(?:(?:[-'’.&/]|\\/)[^\W_]+)*          # words, with inner - ' ’ . & / (and PTB's \/)
    | \\/                                         # PTB's escaped slash
    | ([^\w\s])\1*                                # a run of one punctuation/symbol character
    | _+                                          # underscores
    """,
    re.VERBOSE | re.IGNORECASE,
)
_CLITIC_RE = re.compile(r"^(.+?)(n['’]t|['’](?:s|re|ve|ll|d|m))$", re.IGNORECASE)


def tokenize(text: str) -> List[str]:
    r"""Split a text into tokens with fixed rules (no model, no lexicon):

    1. Whitespace separates tokens; nothing is dropped but whitespace.
    2. Within a chunk, tokens are (in this order of preference): masked placeholders
       (``[NAME]``), URLs, PTB brackets (``-lrb-``), abbreviations with periods (``U.S.``,
       ``mr.``, ``vs.``, an initial ``J.``), decades (``'70s``), clitics that are already
       split (``'s``, ``n't``), numbers with separators (``1,000``), words (letters/digits with
       inner ``- ' ’ . & /`` or PTB's ``\/``: ``re-imagining``, ``o'clock``), and runs of one
       punctuation or symbol character (``...``, ``!!``, ``--``, an emoji each).
    3. English clitics are split off words, PTB-style: ``don't`` -> ``do n't``,
       ``it's`` -> ``it 's`` (also with ’).

    Already tokenized text (SST-2, TREC: PTB tokens separated by spaces) comes out
    unchanged except for the rare token that rule 2 splits (e.g. ``$5`` -> ``$ 5``).
    """
    tokens: List[str] = []
    for chunk in text.split():
        for match in _TOKEN_RE.finditer(chunk):
            token = match.group(0)
            clitic = _CLITIC_RE.match(token)
            if clitic and clitic.group(1)[-1:].isalpha():
                tokens.extend(clitic.groups())
            else:
                tokens.append(token)
    return tokens


# ---------------------------------------------------------------------------------------------
# Readers


def _make_example(featurize: Featurizer, text: str, cats: Dict[str, float], exhaustive: bool, where: str) -> Example:
    words = tokenize(text)
    if not words:
        raise CorpusError(f"{where}: empty text")
    return Example(doc=Doc(words, featurize(words)), gold={"cats": cats, "cats_exhaustive": exhaustive}, source=where)


def read_textcat_tsv(
    path: Union[str, Path],
    *,
    separator: str = "\t",
    label_column: int = 0,
    text_column: int = 1,
    multi_label_separator: Optional[str] = None,
    label_part_separator: Optional[str] = None,
    label_part: int = 0,
    label_names: Optional[Union[str, Path]] = None,
    encoding: str = "utf8",
    limit: int = 0,
) -> List[Example]:
    """Read delimited lines (see the module doc). When the text is the last column
    it takes the rest of the line, separators included. Blank lines are skipped."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus file not found: {path}")
    if label_column == text_column or min(label_column, text_column) < 0:
        raise ValueError(f"label_column and text_column must be different columns >= 0, got {label_column} and {text_column}")
    if not separator:
        raise ValueError("separator must not be empty")
    names = _read_label_names(label_names) if label_names else None
    n_min = max(label_column, text_column) + 1
    featurize = Featurizer()
    examples: List[Example] = []
    for where, line in text_lines(path, encoding):
        if text_column == n_min - 1:
            cols = line.split(separator, text_column)
        else:
            cols = line.split(separator)
        if len(cols) < n_min:
            raise CorpusError(
                f"{where}: expected at least {n_min} columns separated by {separator!r} "
                f"(label in column {label_column}, text in column {text_column}), found {len(cols)}"
            )
        field = cols[label_column].strip()
        raw_labels = field.split(multi_label_separator) if multi_label_separator else [field]
        labels = []
        for raw in raw_labels:
            label = raw.strip()
            if label_part_separator:
                parts = label.split(label_part_separator)
                if len(parts) <= label_part:
                    raise CorpusError(
                        f"{where}: expected a label with part {label_part} after splitting on "
                        f"{label_part_separator!r}, found {label!r}"
                    )
                label = parts[label_part]
            if names is not None:
                if not label.isdigit() or int(label) >= len(names):
                    raise CorpusError(f"{where}: expected a label id 0-{len(names) - 1} (label_names), found {label!r}")
                label = names[int(label)]
            if not label:
                raise CorpusError(f"{where}: empty label in column {label_column}")
            labels.append(label)
        examples.append(_make_example(featurize, cols[text_column], {l: 1.0 for l in labels}, True, where))
        if limit and len(examples) >= limit:
            break
    if not examples:
        raise CorpusError(f"{path}: no examples found")
    logger.info("read %d texts from %s", len(examples), path)
    return examples


def read_textcat_jsonl(
    path: Union[str, Path], *, text_key: str = "text", label_key: str = "label", cats_key: str = "cats", limit: int = 0
) -> List[Example]:
    """Read one JSON object per line: the text under `text_key`, and either
    `label_key` (a label, or a list of labels: all positives, others negative)
    or `cats_key` (a dict label -> score in [0, 1]; absent labels are missing)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus file not found: {path}")
    featurize = Featurizer()
    examples: List[Example] = []
    for where, obj in json_lines(path):
        if not isinstance(obj, dict):
            raise CorpusError(f"{where}: expected a JSON object, found {type(obj).__name__}")
        text = obj.get(text_key)
        if not isinstance(text, str):
            raise CorpusError(f"{where}: expected a string under {text_key!r}")
        if cats_key in obj:
            cats = obj[cats_key]
            if not isinstance(cats, dict) or not all(
                isinstance(k, str) and k and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
                for k, v in cats.items()
            ):
                raise CorpusError(f"{where}: expected {cats_key!r} to map labels to scores between 0 and 1")
            examples.append(_make_example(featurize, text, {k: float(v) for k, v in cats.items()}, False, where))
        elif label_key in obj:
            label = obj[label_key]
            labels = label if isinstance(label, list) else [label]
            if not all(isinstance(l, str) and l for l in labels):
                raise CorpusError(f"{where}: expected {label_key!r} to be a label or a list of labels (non-empty strings)")
            examples.append(_make_example(featurize, text, {l: 1.0 for l in labels}, True, where))
        else:
            raise CorpusError(f"{where}: expected a {label_key!r} or a {cats_key!r} key")
        if limit and len(examples) >= limit:
            break
    if not examples:
        raise CorpusError(f"{path}: no examples found")
    logger.info("read %d texts from %s", len(examples), path)
    return examples


def _read_label_names(path: Union[str, Path]) -> List[str]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"label_names file not found: {path}")
    names = [line.strip() for line in path.read_text(encoding="utf8").splitlines()]
    while names and not names[-1]:
        names.pop()
    for i, name in enumerate(names, 1):
        if not name:
            raise CorpusError(f"{path}:{i}: empty label name")
    return names


class TextCatCorpus(LazyCorpus):
    """A text-classification corpus read once, on first use; calling it returns its examples."""

    def __init__(self, read, path: Union[str, Path], **options) -> None:
        self.read = read
        self.path = Path(path)
        self.options = options

    def read_examples(self) -> List[Example]:
        return self.read(self.path, **self.options)

    def with_path(self, path: Union[str, Path]) -> "TextCatCorpus":
        """The same reader settings on another file (used by `archsweep evaluate`)."""
        return TextCatCorpus(self.read, path, **self.options)


def _check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must be 0 (all) or a positive number of texts, got {limit}")


@registry.readers("archsweep.TextCatTSV.v1")
def textcat_tsv_corpus(
    path: str,
    separator: str = "\t",
    label_column: int = 0,
    text_column: int = 1,
    multi_label_separator: Optional[str] = None,
    label_part_separator: Optional[str] = None,
    label_part: int = 0,
    label_names: Optional[str] = None,
    encoding: str = "utf8",
    limit: int = 0,
) -> TextCatCorpus:
    """One text per line with its label(s) in a column (see search.textcat_corpus).

    separator: column separator ("\\t"; " " for SST-2 and TREC).
    label_column, text_column: 0-based columns; a last text column takes the rest of the line.
    multi_label_separator: splits the label column into several labels (GoEmotions: ",").
    label_part_separator, label_part: keep part `label_part` of each label split on it (TREC ":" -> coarse).
    label_names: file with one label name per line; labels in the data are ids into it.
    encoding: "utf8", "latin-1", ... or "auto" (UTF-8, else Latin-1).
    limit: read only the first N texts (0 = all).
    """
    _check_limit(limit)
    return TextCatCorpus(
        read_textcat_tsv,
        path,
        separator=separator,
        label_column=label_column,
        text_column=text_column,
        multi_label_separator=multi_label_separator,
        label_part_separator=label_part_separator,
        label_part=label_part,
        label_names=label_names,
        encoding=encoding,
        limit=limit,
    )


@registry.readers("archsweep.TextCatJSONL.v1")
def textcat_jsonl_corpus(
    path: str, text_key: str = "text", label_key: str = "label", cats_key: str = "cats", limit: int = 0
) -> TextCatCorpus:
    """One JSON object per line: a text and a label, a list of labels, or a dict of label scores."""
    _check_limit(limit)
    return TextCatCorpus(read_textcat_jsonl, path, text_key=text_key, label_key=label_key, cats_key=cats_key, limit=limit)


def read_for_evaluation(path: Union[str, Path], config) -> Optional[List[Example]]:
    """Examples for `archsweep evaluate` when `path` is a text-classification file,
    else None. `.jsonl` -> archsweep.TextCatJSONL.v1; any other suffix but .conllu
    and .iob2 -> the text-classification reader of the saved model's [corpora.dev]
    block (so its separator, columns, label names and encoding apply), or
    archsweep.TextCatTSV.v1 with its defaults for a .tsv file when there is none."""
    path = Path(path)
    if path.suffix in (".conllu", ".iob2"):
        return None
    if path.suffix == ".jsonl":
        return read_textcat_jsonl(path)
    block = dict((config or {}).get("corpora", {}).get("dev") or {})
    if block.get("@readers") in ("archsweep.TextCatTSV.v1", "archsweep.TextCatJSONL.v1"):
        corpus = registry.resolve({"corpus": {**block, "path": str(path)}})["corpus"]
        return corpus()
    if path.suffix == ".tsv":
        return read_textcat_tsv(path)
    return None
