"""The entity_linker component (spaCy's EntityLinker with spacy.EntityLinker.v1, spec section 6).

Each Example is one sentence (search.entity_linker_corpus) with its mentions; the model
encodes the sentence into one vector of the KB's entity-vector width.

* Loss (spaCy v1's): Thinc's CosineDistance(normalize=False) between each linkable mention's
  sentence encoding and its gold entity's KB vector; mentions of a sentence share its row and
  their gradients add up. Gold NIL, entities missing from the KB and zero KB vectors are
  skipped. Reported loss = Σ (1 - cos) / the number of such mentions.
* Prediction per mention: candidates = kb.get_candidates(mention text); none -> NIL; exactly
  one -> it; otherwise prior = the candidate's prior (0 when `incl_prior` is false) and
  sim = cos(entity vector, sentence encoding) (0 when `incl_context` is false),
  score = prior + sim - prior * sim, highest score wins. Ties go to the candidate listed
  first (highest prior) instead of spaCy's random shuffle, so runs are reproducible.
* Scores: ``nel_acc`` (accuracy over linkable mentions, gold a KB entity),
  ``nel_micro_p``/``_r``/``_f`` counting NIL (a non-NIL prediction is a true positive when it
  equals the gold entity, else a false positive, also when the gold is NIL; a linkable
  mention not predicted correctly is a false negative), and ``nel_candidate_recall``: the
  share of linkable mentions whose gold entity is among the KB's candidates (the ceiling of
  nel_acc for this KB).

`nO` of the model: null takes the KB's entity-vector length; a number below it projects the
KB's vectors to that width (KnowledgeBase.reduced, PCA), so nO can be searched.
"""

from typing import Dict, List, Sequence, Tuple, cast

import numpy
from thinc.api import CosineDistance, Model
from thinc.types import Floats2d

from archs import registry
from archs.features import Doc
from archs.outputs import resize_output

from ...corpora.entity_linker import NIL
from ...corpora.example import Example
from ...training.pipeline import Component
from .kb import KnowledgeBase


class EntityLinkerComponent(Component):
    def __init__(self, name: str, model: Model, *, kb: str, incl_prior: bool, incl_context: bool) -> None:
        super().__init__(name, model)
        if not (incl_prior or incl_context):
            raise ValueError(
                f"components.{name}: incl_prior and incl_context are both false: "
                "nothing would choose between candidates; use at least one"
            )
        self.incl_prior = incl_prior
        self.incl_context = incl_context
        full = KnowledgeBase.from_disk(kb)
        output = model.get_ref("output_layer")
        width = output.get_dim("nO") if output.has_dim("nO") else full.entity_vector_length
        if width > full.entity_vector_length:
            raise ValueError(
                f"components.{name}.model.nO = {width} but the KB at {kb} has entity vectors of width "
                f"{full.entity_vector_length}; use at most that (or null)"
            )
        try:
            self.kb = full.reduced(width)
        except ValueError as err:
            raise ValueError(f"components.{name}.model.{err}") from None
        resize_output(model, width)
        self.distance = CosineDistance(normalize=False)
        self._norms = numpy.linalg.norm(self.kb.vectors, axis=1)

    def _targets(self, examples: Sequence[Example]) -> Tuple[List[int], List[int]]:
        """(row in the batch, KB row) of every mention trained on."""
        rows, kb_rows = [], []
        for i, eg in enumerate(examples):
            for kb_id in eg.gold.get("kb_ids", []):
                if kb_id != NIL and kb_id in self.kb:
                    r = self.kb.row[kb_id]
                    if self._norms[r] > 0:
                        rows.append(i)
                        kb_rows.append(r)
        return rows, kb_rows

    def get_loss(self, examples: Sequence[Example], outputs: Floats2d) -> Tuple[float, Floats2d]:
        ops = self.model.ops
        d_outputs = ops.alloc2f(*outputs.shape)
        rows, kb_rows = self._targets(examples)
        if not rows:
            return 0.0, d_outputs
        index = ops.asarray1i(rows)
        guesses = outputs[index]
        truths = ops.asarray2f(cast(Floats2d, self.kb.vectors[kb_rows]))  # the KB's float32 (n_entities, width) table
        d_rows = self.distance.get_grad(guesses, truths)
        loss = float(self.distance.get_loss(guesses, truths)) / len(rows)
        ops.scatter_add(d_outputs, index, d_rows)
        return loss, d_outputs

    def predict(self, docs: List[Doc]) -> List[List[str]]:
        encodings = self.model.ops.to_numpy(self.model.predict(docs))
        return [self.link(doc, enc) for doc, enc in zip(docs, encodings)]

    def link(self, doc: Doc, encoding: numpy.ndarray) -> List[str]:
        """The KB id (or NIL) chosen for each of the doc's mentions."""
        out: List[str] = []
        enc_norm = float(numpy.linalg.norm(encoding))
        for mention in getattr(doc, "mentions", []):
            cands = self.kb.get_candidates(mention.text)
            if not cands:
                out.append(NIL)
                continue
            if len(cands) == 1:
                out.append(cands[0].entity)
                continue
            prior = numpy.array([c.prior for c in cands]) if self.incl_prior else numpy.zeros(len(cands))
            if self.incl_context:
                kb_rows = [c.row for c in cands]
                denom = self._norms[kb_rows] * enc_norm
                sim = numpy.where(denom > 0, self.kb.vectors[kb_rows] @ encoding / numpy.maximum(denom, 1e-12), 0.0)
            else:
                sim = numpy.zeros(len(cands))
            scores = prior + sim - prior * sim
            out.append(cands[int(numpy.argmax(scores))].entity)
        return out

    def score(self, examples: Sequence[Example], predictions: Sequence[List[str]]) -> Dict[str, float]:
        return score_links(examples, predictions, self.kb)


def score_links(examples: Sequence[Example], predictions: Sequence[List[str]], kb: KnowledgeBase) -> Dict[str, float]:
    """nel_acc, nel_micro_p/r/f (NIL counted), nel_candidate_recall (see the module docstring)."""
    tp = fp = fn = linkable = correct = covered = 0
    for eg, guesses in zip(examples, predictions):
        mentions = getattr(eg.doc, "mentions", [])
        for mention, gold, guess in zip(mentions, eg.gold["kb_ids"], guesses):
            if gold != NIL:
                linkable += 1
                correct += guess == gold
                covered += any(c.entity == gold for c in kb.get_candidates(mention.text))
            if guess != NIL:
                if guess == gold:
                    tp += 1
                else:
                    fp += 1
            if gold != NIL and guess != gold:
                fn += 1
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {
        "nel_acc": correct / linkable if linkable else 0.0,
        "nel_micro_p": p,
        "nel_micro_r": r,
        "nel_micro_f": 2 * p * r / (p + r) if p + r else 0.0,
        "nel_candidate_recall": covered / linkable if linkable else 0.0,
    }


@registry.factories("entity_linker")
def make_entity_linker(
    name: str, model: Model, kb: str, incl_prior: bool = True, incl_context: bool = True
) -> EntityLinkerComponent:
    """Links each mention to a KB entity or NIL.

    kb: directory of a knowledge base written by `archsweep kb build` (kb.json + entity_vectors.npy).
    incl_prior: use the alias's prior probabilities P(entity | alias).
    incl_context: use the cosine similarity of the sentence encoding and the entity vectors.
    """
    return EntityLinkerComponent(name, model, kb=kb, incl_prior=incl_prior, incl_context=incl_context)
