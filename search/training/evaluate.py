"""Re-scoring a saved model on a corpus."""

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

from ..corpora.conllu import read_conllu
from ..corpora.docbin import read_for_evaluation as read_for_evaluation_docbin
from ..corpora.entity_linker import read_for_evaluation as read_for_evaluation_el
from ..corpora.example import Example, count_words
from ..corpora.iob2 import read_iob2
from ..corpora.textcat import read_for_evaluation
from .device import gpu_allocator, select_device
from .pipeline import Pipeline, load_pipeline, load_saved_config

logger = logging.getLogger(__name__)
MODEL_BEST = "model-best"


def evaluate(model_dir: Union[str, Path], corpus_path: Union[str, Path], *, gpu_id: int = -1) -> Dict[str, float]:
    """Scores of the model saved in model_dir (model-best/ or model-last/ of a
    training run; the run's own folder means its model-best/) on a corpus,
    plus its inference speed in words/s. The reader goes by the file's
    suffix: .spacy (spaCy's DocBin, spacy.Corpus.v1), .iob2 (named entities, archsweep.IOB2Corpus.v1), .conllu CoNLL-U,
    .jsonl text classification (archsweep.TextCatJSONL.v1); any other file is
    read by the saved config's text-classification dev reader when it has one
    (e.g. SST-2's `label text` lines), .tsv by archsweep.TextCatTSV.v1,
    anything else as CoNLL-U. A model whose dev reader is
    archsweep.ElevantCorpus.v1 (the entity linker) reads ELEVANT JSONL."""
    model_dir = saved_model_dir(model_dir)
    config = load_saved_config(model_dir)
    select_device(gpu_id, allocator=gpu_allocator(config.interpolate()))
    pipeline, config = load_pipeline(model_dir)
    examples = read_for_evaluation_docbin(corpus_path, config.interpolate())
    if examples is None:
        examples = read_for_evaluation_el(corpus_path, config.interpolate())
    if examples is None:
        examples = read_for_evaluation(corpus_path, config.interpolate())
    if examples is None:
        examples = read_iob2(corpus_path) if Path(corpus_path).suffix == ".iob2" else read_conllu(corpus_path)
    for name, attr, unseen, total in unseen_labels(pipeline, examples):
        logger.warning(
            "warning: %d of %d gold %s labels in %s are labels components.%s was not trained on (%s): "
            "they count as errors", sum(unseen.values()), total, attr, corpus_path, name,
            ", ".join(label for label, _ in unseen.most_common(5)) + (", ..." if len(unseen) > 5 else ""),
        )
    start = time.perf_counter()
    scores = pipeline.evaluate(examples)
    seconds = time.perf_counter() - start
    scores["words_per_second"] = count_words(examples) / seconds if seconds else 0.0
    return scores


def unseen_labels(pipeline: Pipeline, examples: Sequence[Example]) -> List[Tuple[str, str, Counter, int]]:
    """Per tagging component (one with a `label_attr`): the gold labels of the corpus it
    has no output for, counted, and how many gold labels there are in all."""
    found = []
    for component in pipeline.tasks:
        attr = getattr(component, "label_attr", None)
        if attr is None or not component.labels:
            continue
        known = set(component.labels)
        gold = [tag for eg in examples for tag in eg.gold.get(attr) or [] if tag is not None]
        unseen = Counter(tag for tag in gold if tag not in known)
        if unseen:
            found.append((component.name, attr, unseen, len(gold)))
    return found


def saved_model_dir(path: Union[str, Path]) -> Path:
    """The saved model a path names: the path itself, or, for a training run's
    output folder (no labels.json, a model-best/ in it), its model-best/ (said
    in one line of the log: stderr, from the CLI)."""
    path = Path(path)
    best = path / MODEL_BEST
    if not (path / "labels.json").exists() and best.is_dir():
        logger.info("%s is a training run's folder: evaluating its %s", path, best)
        return best
    return path
