"""Child process of bench/parser.py and bench/spacy_roundtrip.py: a trained spaCy
pipeline predicts a CoNLL-U (parser, or a tagger of UPOS as its tag_) or IOB2 (NER)
file read by archsweep's own readers, and archsweep's scorers score it (the tagger's
UPOS accuracy counted as archsweep's tagger counts it), so both libraries are scored
by the same code.

    python bench/spacy_predict.py MODEL_DIR CORPUS [--per-doc 1]

Input as spaCy trains and evaluates with `gold_preproc = true` (which
splits every Doc into its gold sentences): gold words, one sentence per Doc. With
--per-doc N > 1 the parser must also find the sentence boundaries: a head outside a
word's gold sentence then scores as wrong, and an entity counts for the sentence it
starts in. Inference speed: words per CPU-second of nlp.pipe alone (one thread).
Prints one JSON line."""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy  # noqa: E402
from spacy.tokens import Doc  # noqa: E402

from search.corpora.conllu import read_conllu  # noqa: E402
from search.corpora.iob2 import read_iob2  # noqa: E402
from search.tasks.parsing import dep_scorer, ner_scorer  # noqa: E402
from search.tasks.tagger import score_tags  # noqa: E402

OUTSIDE = -2  # a head in another sentence: never equal to a gold head


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("corpus")
    parser.add_argument("--per-doc", type=int, default=1)
    args = parser.parse_args()
    ner = Path(args.corpus).suffix == ".iob2"
    examples = read_iob2(args.corpus) if ner else read_conllu(args.corpus)
    nlp = spacy.load(args.model)
    groups = [examples[i : i + args.per_doc] for i in range(0, len(examples), args.per_doc)]
    docs = [Doc(nlp.vocab, words=[w for eg in group for w in eg.doc.words]) for group in groups]
    start = time.process_time()
    parsed = list(nlp.pipe(docs, batch_size=64))
    cpu = time.process_time() - start
    n_words = sum(len(d) for d in docs)
    tagger = "tagger" in nlp.pipe_names and "parser" not in nlp.pipe_names
    heads, labels, entities, tags = [], [], [], []
    for group, doc in zip(groups, parsed):
        offset = 0
        for eg in group:
            n = len(eg.doc.words)
            if tagger:
                tags.append([token.tag_ for token in doc[offset : offset + n]])
            elif ner:
                entities.append([(e.start - offset, e.end - offset, e.label_) for e in doc.ents if offset <= e.start < offset + n])
            else:
                sent_heads, sent_labels = [], []
                for token in doc[offset : offset + n]:
                    h = token.head.i
                    sent_heads.append(-1 if h == token.i else (h - offset if offset <= h < offset + n else OUTSIDE))
                    sent_labels.append(token.dep_)
                heads.append(sent_heads)
                labels.append(sent_labels)
            offset += n
    if tagger:
        scores = score_tags(examples, tags, "upos")
    elif ner:
        result = ner_scorer.score_examples(examples, entities)
        scores = {k: result[k] for k in ("ents_p", "ents_r", "ents_f")}
        scores["ents_per_type"] = result["ents_per_type"]
    else:
        result = dep_scorer.score_examples(examples, heads, labels)
        scores = {k: result[k] for k in ("dep_uas", "dep_las", "conll_uas", "conll_las")}
    scores["words_per_cpu_second"] = n_words / cpu if cpu else 0.0
    print("SCORES " + json.dumps(scores), flush=True)


if __name__ == "__main__":
    main()
