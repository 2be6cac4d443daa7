"""Transition-based pipeline components: the named-entity recogniser (`ner`) and
the dependency parser (`parser`), both on spacy.TransitionBasedParser.v1.

One component class drives either transition system through the same protocol
(search.tasks.parsing.ner.BiluoSystem / search.tasks.parsing.arc_eager.ArcEager):
`from_examples`, `init_states(lengths, offsets)`, `gold_from_example(eg)`,
`segments(...)`, `batch(states, golds=None)`, `to_dict` / `from_dict`,
`len(system)`, `class_names`. An episode runs on `batch(...)` (NerBatch /
ArcEagerBatch: all its states as arrays, the oracle compiled, see
archs/jit.py), whose methods take the rows to work on:
`is_final(rows)`, `feature_ids(rows, nF)`, `valid(rows)`, `costs(rows)`,
`advance(rows, class_ids)`, `decode(row)`. The oracle runs on the host; per step
the scores come to the host once and the feature ids and d_scores go to the
model's device once.

Training, per batch (as spaCy's parser): `Pipeline.update` calls
`step, finish = model.begin_update(docs)` and hands the ParserStepModel to
`get_loss`, which runs the whole episode and returns `(loss, None)`; the
pipeline then calls `finish(None)`, one backprop through the lower layer and
the tok2vec (or, with a Tok2VecListener, into the shared tok2vec's gradient).
All docs of the batch advance together; at every step, for the live states:

    ids = batch.feature_ids(live, nF); scores, backprop = step.score(ids)
    costs = batch.costs(live)                       # dynamic oracle, INVALID_COST = invalid
    classes with cost <= 0 become "seen"; the scores of unseen classes are set to min(scores)
    d_scores = spaCy's cpu_log_loss (below); unseen classes get no gradient
    backprop(d_scores); each state takes its best-scoring valid move (exploration)

(everything after the scores and costs in one compiled kernel, `k_training_step`)

cpu_log_loss: `best` = the highest-scoring valid class among those whose cost is
at most min(1, min valid cost) (a state with none gets no gradient); G = the
classes with cost <= cost[best];
`d_i = softmax(s)_i - [i in G] exp(s_i - s_best) / Z_G`, with Z = 1e-10 + Σ_all
exp(s_j - max s) and Z_G = 1e-10 + Σ_G exp(s_j - s_best). Not normalised by the
batch size. The reported loss is Σ d².

Unseen classes: a fresh model starts with every class unseen; a class is seen
from the first training state in which it costs <= 0 (updated before that
state's scores are masked, so the gold move of a step is never masked). Classes
never seen (NER ``U-``, which is never valid; the parser's ``B-ROOT`` on
sentence-level data; inventory classes that only ever cost > 0) keep the
minimum score and are never predicted while another valid move exists. The
mask is saved with the component (labels.json), so a loaded model predicts
exactly as the saved one.

Long documents (spaCy's ``update_with_oracle_cut_size``, default 100): per
batch a length ``m`` is drawn from [cut/2, 2*cut] (Python's `random`, seeded by
training); docs of at least ``m`` tokens are cut into start states every ``m``
oracle moves, and the episode stops after ``m`` steps — as spaCy. Our corpora
are sentence-level, so this rarely matters (a parse takes about 2n moves, so
sentences longer than m/2 words are trained on their first m moves only, as in
spaCy); ``update_with_oracle_cut_size = 0`` turns it off (every episode runs to
the end).

Scores (flat floats, usable as `[training.score_weights]` keys):
NER: ents_f (primary), ents_p, ents_r, and per entity type ents_{p,r,f}_TYPE
for every type of the inventory; parser: dep_uas, dep_las (spaCy's: punctuation
excluded; dep_las is primary), conll_uas, conll_las (CoNLL-2018: punctuation
included, universal labels), sents_p, sents_r, sents_f (sentence boundaries: the
spans between the leftmost words under each predicted root, against the gold
sentences of a multi-sentence document, see ConllUCorpus.v1's sentences_per_doc) and dep_las_f_LABEL per dependency label (label
characters other than letters, digits and _ replaced by _, e.g. nmod_poss).
`per_type_scores = false` leaves the per-type / per-label keys out.
"""

import random
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, cast

import numpy
from thinc.api import Model
from thinc.types import Floats2d

from archs import registry
from archs.features import Doc
from archs.outputs import resize_output
from archs.parser import n_actions as model_n_actions

from ..corpora.example import Example
from ..training.pipeline import INIT_SAMPLE, Component
from .parsing.shared import k_training_step

INVALID_COST = 9000.0


def _key_part(label: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", label)


def _num(value: Any) -> float:
    return 0.0 if value is None else float(value)


def best_valid(scores: numpy.ndarray, valid: numpy.ndarray, seen: Optional[numpy.ndarray]) -> numpy.ndarray:
    """Per state the highest-scoring valid class, unseen classes only if no seen
    class is valid (first class on ties)."""
    if seen is not None:
        preferred = valid & seen
        valid = numpy.where(preferred.any(axis=1, keepdims=True), preferred, valid)
    return numpy.where(valid, scores, -numpy.inf).argmax(axis=1)


class TransitionComponent(Component):
    """A component whose model scores the moves of a transition system."""

    kind = "transition"
    SUPPORTED_NF: Tuple[int, ...] = ()

    def __init__(
        self, name: str, model: Model, update_with_oracle_cut_size: int = 100, per_type_scores: bool = True
    ) -> None:
        super().__init__(name, model)
        if "nr_feature_tokens" not in model.attrs:
            raise ValueError(
                f"components.{name}.model: expected a spacy.TransitionBasedParser.v1 model, got {model.name!r}"
            )
        self.nF: int = model.attrs["nr_feature_tokens"]
        if self.nF not in self.SUPPORTED_NF:
            raise ValueError(
                f"components.{name}.model.nr_feature_tokens = {self.nF}: the {self.kind} has featurisations "
                f"for {', '.join(map(str, self.SUPPORTED_NF))} tokens"
            )
        if update_with_oracle_cut_size < 0:
            raise ValueError(
                f"components.{name}.update_with_oracle_cut_size: expected 0 (off) or a number of moves, "
                f"got {update_with_oracle_cut_size}"
            )
        self.cut_size = int(update_with_oracle_cut_size)
        self.per_type_scores = bool(per_type_scores)
        self.system: Any = None
        self.seen: Optional[numpy.ndarray] = None  # (n_classes,) bool
        self._gold_key: Tuple[Any, ...] = ()

    # ------------------------------------------------------------ to override
    def make_system(self, examples: Sequence[Example]) -> Any:
        raise NotImplementedError

    def system_from_dict(self, data: Dict[str, Any]) -> Any:
        raise NotImplementedError

    def system_from_list(self, labels: Sequence[str]) -> Any:
        raise NotImplementedError

    def has_gold(self, eg: Example) -> bool:
        raise NotImplementedError

    # ------------------------------------------------------------ labels
    @property
    def label_data(self) -> Dict[str, Any]:
        """What labels.json stores: the system's inventory (its to_dict) and the
        classes not seen yet in training."""
        if self.system is None:
            return {}
        unseen = [] if self.seen is None else [int(i) for i in numpy.flatnonzero(~self.seen)]
        return {"system": self.system.to_dict(), "unseen": unseen}

    def set_labels(self, labels: Any) -> None:
        """Restore the inventory: `label_data` (a dict), or a plain list (NER:
        entity labels; parser: class names), which marks every class seen."""
        if isinstance(labels, dict):
            system = self.system_from_dict(labels["system"])
            unseen = labels.get("unseen", [])
        else:
            system = self.system_from_list(list(labels))
            unseen = []
        self._set_system(system)
        assert self.seen is not None  # set by _set_system
        self.seen[numpy.asarray(unseen, dtype=int)] = False

    def _set_system(self, system: Any) -> None:
        n = len(system)
        current = model_n_actions(self.model)
        if current is not None and current != n and not self._model_initialized():
            raise ValueError(
                f"components.{self.name}.model.nO = {current} but the {self.kind} has {n} actions "
                "from the data; set nO = null to infer it"
            )
        resize_output(self.model, n)
        self.system = system
        self.seen = numpy.ones(n, dtype=bool)
        self._gold_key = ("transition_gold", self.name, object())  # golds cached for another system are stale

    def _model_initialized(self) -> bool:
        layer = self.model.get_ref("upper" if self.model.attrs["use_upper"] else "lower")
        return bool(layer.has_param("W"))  # thinc: None for a declared, unset param

    def initialize(self, examples: Sequence[Example]) -> None:
        system = self.make_system(examples)
        if len(system) == 0:
            raise ValueError(f"components.{self.name}: the training data has no {self.kind} annotation")
        self._set_system(system)
        assert self.seen is not None  # set by _set_system
        self.seen[:] = False  # a fresh model: a class is seen once it costs 0 in training
        self.model.initialize(X=[eg.doc for eg in examples[:INIT_SAMPLE]])

    # ------------------------------------------------------------ training
    def example_gold(self, eg: Example) -> Any:
        """The oracle's gold for one example (the parser's projectivised tree with
        labels mapped to the system's classes; NER's BILUO tags), made once per
        system and cached on the example: every epoch reuses it."""
        gold = eg.cache.get(self._gold_key)
        if gold is None:
            gold = eg.cache[self._gold_key] = self.system.gold_from_example(eg)
        return gold

    def get_loss(self, examples: Sequence[Example], outputs: Any) -> Tuple[float, None]:
        """Run the batch's episode on the step model (outputs of begin_update),
        accumulating every step's gradient in it; the pipeline's backprop(None)
        (the model's `finish`) then sends it through the lower layer and tok2vec."""
        step = outputs
        system = self.system
        cut = 0
        if self.cut_size:
            cut = int(random.uniform(max(self.cut_size // 2, 1), self.cut_size * 2))
        states: List[Any] = []
        golds: List[Any] = []
        lengths = [len(eg) for eg in examples]
        for eg, state in zip(examples, system.init_states(lengths, step.doc_offsets)):
            if state.is_final() or not self.has_gold(eg):
                continue
            gold = self.example_gold(eg)
            if not gold.has_gold():
                continue
            if cut and len(eg) >= cut:
                for start in system.segments(state, gold, cut):
                    states.append(start)
                    golds.append(gold)
            else:
                states.append(state)
                golds.append(gold)
        batch = system.batch(states, golds)
        ops = self.model.ops
        seen = self.seen
        loss = 0.0
        n_steps = 0
        live = batch.all_rows()
        live = live[~batch.is_final(live)]
        limit = 4 * max(lengths, default=0) + 10  # a parse takes about 2n moves
        while live.size:
            if n_steps >= limit:
                raise RuntimeError(f"components.{self.name}: an episode did not finish in {limit} moves")
            scores_dev, backprop = step.score(batch.feature_ids(live, self.nF))
            scores = numpy.ascontiguousarray(ops.to_numpy(scores_dev), dtype="float32")
            if scores is scores_dev:
                scores = scores.copy()  # the kernel masks unseen classes in place
            d_scores = numpy.empty_like(scores)
            moves = numpy.empty(len(live), dtype=numpy.int64)
            loss += k_training_step(scores, batch.costs(live), INVALID_COST, seen, d_scores, moves)
            backprop(ops.asarray2f(cast(Floats2d, d_scores)))
            batch.advance(live, moves)
            n_steps += 1
            if cut and n_steps >= cut:
                break
            live = live[~batch.is_final(live)]
        return loss, None

    # ------------------------------------------------------------ inference
    def parse(self, docs: List[Doc]) -> List[Any]:
        """Greedy decoding: every state takes its best-scoring valid move."""
        system = self.system
        step = self.model.predict(docs)
        batch = system.batch(system.init_states([len(doc) for doc in docs], step.doc_offsets))
        ops = self.model.ops
        seen = self.seen
        unseen = None if seen is None or seen.all() else ~seen
        rows = batch.all_rows()
        live = rows[~batch.is_final(rows)]
        limit = 4 * max((len(doc) for doc in docs), default=0) + 10
        for _ in range(limit):
            if not live.size:
                break
            scores = ops.to_numpy(step.predict(batch.feature_ids(live, self.nF)))
            if unseen is not None:
                scores = scores.copy()
                scores[:, unseen] = scores.min()
            batch.advance(live, best_valid(scores, batch.valid(live), seen))
            live = live[~batch.is_final(live)]
        else:
            if live.size:
                raise RuntimeError(f"components.{self.name}: decoding did not finish in {limit} moves")
        return [batch.decode(row) for row in rows]

    def predict(self, docs: List[Doc]) -> List[Any]:
        if self.system is None:
            raise ValueError(f"components.{self.name}: not initialized (no action inventory)")
        return self.parse(docs)


class NERComponent(TransitionComponent):
    """Named entities with the BILUO system; predictions are (start, end, label) spans."""

    kind = "NER"

    def __init__(self, name: str, model: Model, label_order: str = "first_seen", **kwargs: Any) -> None:
        from .parsing.ner import SUPPORTED_NF

        self.SUPPORTED_NF = SUPPORTED_NF
        if label_order not in ("first_seen", "spacy"):
            raise ValueError(f"components.{name}.label_order: expected 'first_seen' or 'spacy', got {label_order!r}")
        self.label_order = label_order
        super().__init__(name, model, **kwargs)

    @property
    def labels(self) -> List[str]:
        return list(self.system.labels) if self.system is not None else []

    def make_system(self, examples: Sequence[Example]) -> Any:
        from .parsing.ner import BiluoSystem

        if not any(eg.gold.get("ner") for eg in examples):
            raise ValueError(
                f"components.{self.name}: the training data has no NER annotation (gold \"ner\" tags; "
                "read it with archsweep.IOB2Corpus.v1)"
            )
        return BiluoSystem.from_examples(examples, label_order=self.label_order)

    def system_from_dict(self, data: Dict[str, Any]) -> Any:
        from .parsing.ner import BiluoSystem

        return BiluoSystem.from_dict(data)

    def system_from_list(self, labels: Sequence[str]) -> Any:
        from .parsing.ner import BiluoSystem

        return BiluoSystem(labels)

    def has_gold(self, eg: Example) -> bool:
        tags = eg.gold.get("ner")
        if not tags:
            return False
        return any(t is not None for t in tags)

    def score(self, examples: Sequence[Example], predictions: Sequence[Any]) -> Dict[str, float]:
        from .parsing.ner_scorer import score_examples

        if examples and not any("entities" in eg.gold for eg in examples):
            raise ValueError(f"components.{self.name}: the evaluation corpus has no entity annotation (an .iob2 file is needed)")
        # as spaCy: an example without entity annotation (a corpus's docs of another task) is not scored
        annotated = [(eg, guess) for eg, guess in zip(examples, predictions) if "entities" in eg.gold]
        result = score_examples([eg for eg, _ in annotated], [guess for _, guess in annotated])
        scores = {"ents_f": _num(result["ents_f"]), "ents_p": _num(result["ents_p"]), "ents_r": _num(result["ents_r"])}
        if self.per_type_scores:
            per_type = result["ents_per_type"] or {}
            for label in sorted(set(self.labels) | set(per_type)):
                prf = per_type.get(label, {})
                for k in ("p", "r", "f"):
                    scores[f"ents_{k}_{_key_part(label)}"] = _num(prf.get(k))
        return scores


class ParserComponent(TransitionComponent):
    """Dependency trees with spaCy's arc-eager system; predictions are (heads, labels)
    per doc (head -1 for a root), deprojectivised."""

    kind = "parser"

    def __init__(self, name: str, model: Model, min_action_freq: int = 30, **kwargs: Any) -> None:
        from .parsing.arc_eager import SUPPORTED_NF

        self.SUPPORTED_NF = SUPPORTED_NF
        if min_action_freq < 0:
            raise ValueError(f"components.{name}.min_action_freq: expected >= 0, got {min_action_freq}")
        self.min_action_freq = min_action_freq
        super().__init__(name, model, **kwargs)

    @property
    def labels(self) -> List[str]:
        """The dependency labels of the action inventory (as pseudo-projective
        decorated labels appear in it, e.g. `nsubj||xcomp`)."""
        if self.system is None:
            return []
        return sorted({name.partition("-")[2] for name in self.system.class_names} - {""})

    def make_system(self, examples: Sequence[Example]) -> Any:
        from .parsing.arc_eager import ArcEager

        trees = [eg for eg in examples if self.has_gold(eg)]
        if not trees:
            raise ValueError(
                f"components.{self.name}: the training data has no dependency annotation "
                "(gold \"heads\" and \"deps\"; read it with archsweep.ConllUCorpus.v1)"
            )
        return ArcEager.from_examples(trees, min_freq=self.min_action_freq or None)

    def system_from_dict(self, data: Dict[str, Any]) -> Any:
        from .parsing.arc_eager import ArcEager

        return ArcEager.from_dict(data)

    def system_from_list(self, labels: Sequence[str]) -> Any:
        from .parsing.arc_eager import ArcEager

        return ArcEager.from_dict({"classes": list(labels)})

    def has_gold(self, eg: Example) -> bool:
        heads = eg.gold.get("heads")
        if not heads:
            return False
        return any(h is not None for h in heads) and "deps" in eg.gold

    def score(self, examples: Sequence[Example], predictions: Sequence[Any]) -> Dict[str, float]:
        from .parsing.dep_scorer import score_examples, score_sentences, sentence_starts

        if len(predictions) != len(examples):
            raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
        result = score_examples(examples, [p[0] for p in predictions], [p[1] for p in predictions])
        scores = {key: _num(result[key]) for key in ("dep_uas", "dep_las", "conll_uas", "conll_las")}
        gold_starts = [[i for i, s in enumerate(eg.gold.get("sent_starts") or [True]) if s] for eg in examples]
        pred_starts = [sentence_starts(p[0]) for p in predictions]
        scores.update(score_sentences(gold_starts, pred_starts, [len(eg) for eg in examples]))
        if self.per_type_scores:
            per_type = {_key_part(k): v for k, v in (result["dep_las_per_type"] or {}).items()}
            base = {_key_part(label.partition("||")[0].lower()) for label in self.labels}
            for label in sorted(base | set(per_type)):
                scores[f"dep_las_f_{label}"] = _num(per_type.get(label, {}).get("f"))
        return scores


@registry.factories("ner")
def make_ner(
    name: str,
    model: Model,
    label_order: str = "first_seen",
    update_with_oracle_cut_size: int = 100,
    per_type_scores: bool = True,
) -> NERComponent:
    """A named-entity recogniser (BILUO transitions) on spacy.TransitionBasedParser.v1.

    label_order: class order of the entity labels, "first_seen" or "spacy"
    (frequency, as spaCy). update_with_oracle_cut_size: cut docs this long into
    oracle segments (0: off). per_type_scores: also report ents_{p,r,f}_TYPE.
    """
    return NERComponent(
        name, model, label_order=label_order,
        update_with_oracle_cut_size=update_with_oracle_cut_size, per_type_scores=per_type_scores,
    )


@registry.factories("parser")
def make_parser(
    name: str,
    model: Model,
    min_action_freq: int = 30,
    update_with_oracle_cut_size: int = 100,
    per_type_scores: bool = True,
) -> ParserComponent:
    """A dependency parser (spaCy's arc-eager transitions, pseudo-projective) on
    spacy.TransitionBasedParser.v1.

    min_action_freq: (move, label) pairs rarer than this in the (projectivised)
    training trees get no action; their arcs are learned as `dep` (spaCy: 30).
    update_with_oracle_cut_size: cut docs this long into oracle segments (0: off).
    per_type_scores: also report dep_las_f_LABEL per label.
    """
    return ParserComponent(
        name, model, min_action_freq=min_action_freq,
        update_with_oracle_cut_size=update_with_oracle_cut_size, per_type_scores=per_type_scores,
    )
