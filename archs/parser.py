"""spacy.TransitionBasedParser.v1: the state scorer of the dependency parser and the NER.

The model maps a batch of Docs to a `ParserStepModel`, the batch's precomputed
scorer of parser states (spaCy's TransitionBasedParser.v1 graph):

    tok2vec' = chain(tok2vec, list2array, Linear(hidden_width, t2v_width))   # (N, H)
    lower    = PrecomputableAffine(nO = hidden_width if use_upper else n_actions,
                                   nF = nr_feature_tokens, nI = hidden_width, nP = maxout_pieces)
    upper    = Linear(n_actions, hidden_width), W zero-initialised  (only if use_upper)

How a parser / NER component drives it, per batch of docs:

    step, finish = model.begin_update(docs)      # tok2vec' + lower precompute, once
    while states remain:
        ids = ...                                # (n_states, nF) int host array: rows of the
                                                 # batch's concatenated tokens
                                                 # (step.doc_offsets[d] + i), -1 = empty slot
        scores, backprop = step.score(ids)       # (n_states, n_actions)
        d_scores = ...                           # loss gradient (unseen classes masked, see below)
        backprop(d_scores)                       # the step's gradient, accumulated
        ... advance the states ...
    finish(None)                                 # one backprop through lower and tok2vec'
    model.finish_update(optimizer)

and `step = model.predict(docs)`, `step.predict(ids)` at inference.

The number of actions is usually unknown when the model is built (nO = null):
the component calls `resize_output(model, n)` once its action inventory is
known, before `model.initialize(X=docs)` (before initialize that is just
`model.get_ref("upper" if use_upper else "lower").set_dim("nO", n)`). Unseen-class masking (spaCy sets the
scores of classes never seen in training to the minimum score and zeroes their
gradient) is the component's business: `resize_output` returns the indices of
classes added to an already trained model, for it to mark as unseen.
"""

from typing import Any, Callable, Dict, List, Optional, Tuple, cast

import numpy
from thinc.api import Linear, Model, chain, list2array, zero_init
from thinc.types import Floats1d, Floats2d, Floats4d, FloatsXd, Ints1d, Ints2d

from .cpu_ops import CpuOps, cpu_kernels, dropout_bits, keep_scale, keep_threshold
from .features import Doc
from .layers import PrecomputableAffine
from .outputs import RESIZE_OUTPUT
from .registry import registry


@registry.architectures("spacy.TransitionBasedParser.v1")
def TransitionBasedParser(
    *,
    tok2vec: Model[List[Doc], List[Floats2d]],
    nr_feature_tokens: int,
    hidden_width: int,
    maxout_pieces: int,
    use_upper: bool = True,
    nO: Optional[int] = None,
) -> Model[List[Doc], "ParserStepModel"]:
    """Scores the actions of parser states from a few of their tokens (spaCy's v1 API).

    tok2vec: the token encoder (an own one, or a listener to a shared one).
    nr_feature_tokens: tokens that describe a state (nF); 8 for the parser
        (13 with extra tokens), 3 for the NER (6 with extra tokens).
        Which tokens they are is the component's featurisation (spaCy's context tokens).
    hidden_width: width of the token projection and of the hidden layer; 32-256 (64).
    maxout_pieces: maxout pieces of the hidden units; 1-4 (2). With 1 the hidden
        layer is linear when there is an upper layer, relu when there is none
        (as spaCy's documentation of the architecture states; spaCy 3.8's precompute_hiddens in fact
        applies relu in both cases — only nP=1 with an upper layer differs).
    use_upper: put a zero-initialised Linear output layer over the hidden layer;
        false makes the hidden layer itself the output (one unit per action): fewer
        FLOPs per state, usually a little less accurate.
    nO: number of actions; null lets the component set it later with
        `resize_output(model, n)` (the right layer for either use_upper value).
    """
    if nr_feature_tokens < 1 or hidden_width < 1 or maxout_pieces < 1:
        raise ValueError(
            "nr_feature_tokens, hidden_width and maxout_pieces must be >= 1, got "
            f"{nr_feature_tokens}, {hidden_width}, {maxout_pieces}"
        )
    if nO is not None and nO < 1:
        raise ValueError(f"nO (number of actions) must be >= 1 or null, got {nO}")
    t2v_width = tok2vec.get_dim("nO") if tok2vec.has_dim("nO") else None
    tok2vec_: Model[List[Doc], Floats2d] = chain(tok2vec, list2array(), Linear(hidden_width, t2v_width))
    tok2vec_.set_dim("nO", hidden_width)
    lower = PrecomputableAffine(
        nO=hidden_width if use_upper else nO,
        nI=hidden_width,
        nF=nr_feature_tokens,
        nP=maxout_pieces,
    )
    layers: List[Model] = [tok2vec_, lower]
    refs: Dict[str, Optional[Model]] = {"tok2vec": tok2vec_, "lower": lower}
    if use_upper:
        upper = Linear(nO, hidden_width, init_W=zero_init)
        layers.append(upper)
        refs["upper"] = upper
    return Model(
        "parser_model",
        forward,
        init=init,
        layers=layers,
        refs=refs,
        attrs={
            "nr_feature_tokens": nr_feature_tokens,
            "hidden_width": hidden_width,
            "maxout_pieces": maxout_pieces,
            "use_upper": use_upper,
            RESIZE_OUTPUT: resize_actions,
        },
    )


def forward(model: Model[List[Doc], "ParserStepModel"], docs: List[Doc], is_train: bool) -> Tuple["ParserStepModel", Callable]:
    step = ParserStepModel.begin(model, docs, is_train)

    def backprop(_: Any = None) -> List[Doc]:
        step.backprop_tokvecs()
        return []

    return step, backprop


def init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    if n_actions(model) is None:
        raise ValueError(
            "TransitionBasedParser: the number of actions is not set; call "
            "archs.outputs.resize_output(model, n) (or build with nO) before initialize"
        )
    model.get_ref("tok2vec").initialize(X=X)
    model.get_ref("lower").initialize()
    if model.attrs["use_upper"]:
        model.get_ref("upper").initialize()


def _output_layer_name(model: Model) -> str:
    return "upper" if model.attrs["use_upper"] else "lower"


def n_actions(model: Model) -> Optional[int]:
    """The number of actions the model scores (None while unset)."""
    return model.get_ref(_output_layer_name(model)).maybe_get_dim("nO")


def resize_actions(model: Model, n: int) -> List[int]:
    """Set the number of actions: nO of the upper layer, or of the lower layer when
    use_upper is false (so that the output really has n columns — spaCy's legacy
    v1 froze the lower layer's nO at its first resize, so a model without an upper
    layer kept scoring its first actions only).

    Before initialize this only sets the dimension. On an initialized model the
    output layer grows (it cannot shrink): the old classes keep their weights,
    the new ones start at zero (as spaCy v2's resize_output); their indices are
    returned so that the component can mark them unseen. Optimizer state of the
    replaced layer is not carried over.
    """
    if n < 1:
        raise ValueError(f"number of actions must be >= 1, got {n}")
    name = _output_layer_name(model)
    layer = model.get_ref(name)
    old = layer.maybe_get_dim("nO")
    if old == n:
        return []
    if old is None:
        layer.set_dim("nO", n)
        return []
    if not layer.has_param("W"):
        raise ValueError(f"the model was built with nO = {old} but the data needs {n}; set nO = null to infer it")
    if n < old:
        raise ValueError(f"cannot shrink the output layer from {old} to {n} actions")
    ops = layer.ops
    larger: Model
    params: Dict[str, FloatsXd]
    if name == "upper":
        larger = Linear(n, layer.get_dim("nI"), init_W=zero_init)
        W_upper = ops.alloc2f(n, layer.get_dim("nI"))
        b_upper = ops.alloc1f(n)
        W_upper[:old] = cast(Floats2d, layer.get_param("W"))
        b_upper[:old] = cast(Floats1d, layer.get_param("b"))
        params = {"W": W_upper, "b": b_upper}
    else:
        nF, nP, nI = layer.get_dim("nF"), layer.get_dim("nP"), layer.get_dim("nI")
        larger = PrecomputableAffine(n, nI, nF, nP, dropout=layer.attrs["dropout_rate"])
        W_lower = ops.alloc4f(nF, n, nP, nI)
        b_lower = ops.alloc2f(n, nP)
        pad = ops.alloc4f(1, nF, n, nP)
        W_lower[:, :old] = cast(Floats4d, layer.get_param("W"))
        b_lower[:old] = cast(Floats2d, layer.get_param("b"))
        pad[:, :, :old] = cast(Floats4d, layer.get_param("pad"))
        params = {"W": W_lower, "b": b_lower, "pad": pad}
    larger.ops = ops
    for key, value in params.items():
        larger.set_param(key, value)
    model.replace_node(layer, larger)  # also the ref `name`
    return list(range(old, n))


class ParserStepModel:
    """One batch's precomputed state scorer (spaCy's ParserStepModel).

    `begin` runs tok2vec' and the lower layer's precompute once; `score(ids)`
    then scores any number of states, each step's gradient being accumulated
    into the precomputed block; `backprop_tokvecs()` sends the sum of all
    steps' gradients through the lower layer and tok2vec' once.

    Attributes: n_actions (nO), nF, n_tokens (N, rows of the batch's token
    matrix), doc_offsets (first row of each doc in it), is_train.
    """

    def __init__(self, model: Model, docs: List[Doc], is_train: bool) -> None:
        self.model = model
        self.ops = model.ops
        self.is_train = is_train
        self.use_upper: bool = model.attrs["use_upper"]
        self.lower = model.get_ref("lower")
        self.upper: Optional[Model] = model.get_ref("upper") if self.use_upper else None
        self.nF: int = self.lower.get_dim("nF")
        self.nH: int = self.lower.get_dim("nO")  # units of the lower layer
        self.nP: int = self.lower.get_dim("nP")
        self.n_actions: int = self.upper.get_dim("nO") if self.upper is not None else self.nH
        self.dropout: float = self.lower.attrs["dropout_rate"] if self.use_upper else 0.0
        lengths = [len(doc) for doc in docs]
        self.doc_offsets: List[int] = [int(x) for x in numpy.cumsum([0] + lengths[:-1])]
        self.n_tokens: int = int(sum(lengths))

        tokvecs, bp_tokvecs = model.get_ref("tok2vec")(docs, is_train)
        Yf, bp_lower = self.lower(tokvecs, is_train)
        self.tokvecs: Floats2d = tokvecs
        # Both cleared (None) by backprop_tokvecs.
        self._bp_tokvecs: Optional[Callable] = bp_tokvecs
        self._bp_lower: Optional[Callable] = bp_lower
        width = self.nH * self.nP
        # (N+1) * nF rows of nH * nP: row (token + 1) * nF + f; token -1 = the pad.
        self._Yf2: Floats2d = self.ops.xp.ascontiguousarray(self.ops.reshape2f(Yf, (self.n_tokens + 1) * self.nF, width))
        self._b: Floats2d = self.ops.reshape2f(self.lower.get_param("b"), 1, width)
        # The gradient accumulators: only in training, cleared by backprop_tokvecs.
        self._dYf2: Optional[Floats2d] = self.ops.alloc2f(*self._Yf2.shape, dtype=Yf.dtype) if is_train else None
        self._d_b: Optional[Floats1d] = self.ops.alloc1f(width, dtype=Yf.dtype) if is_train else None
        self._n_steps_backpropped = 0
        self._finished = False
        # On CpuOps, a step with an upper layer over maxout runs as two compiled
        # kernels (state_forward, state_backward) instead of about fifteen NumPy and
        # Thinc calls; the upper layer's gradient is then summed here over the steps
        # and handed to it by backprop_tokvecs.
        self._fused = (
            isinstance(self.ops, CpuOps)
            and self.upper is not None
            and self.nP >= 2
            and self._Yf2.dtype == numpy.float32
            and self.upper.get_param("W").dtype == numpy.float32
        )
        self._d_W_upper: Optional[Floats2d] = None
        self._d_b_upper: Optional[Floats1d] = None
        if self._fused and is_train:
            assert self.upper is not None
            self._d_W_upper = self.ops.alloc2f(self.n_actions, self.nH)
            self._d_b_upper = self.ops.alloc1f(self.n_actions)

    @classmethod
    def begin(cls, model: Model, docs: List[Doc], is_train: bool) -> "ParserStepModel":
        return cls(model, docs, is_train)

    @property
    def nO(self) -> int:
        return self.n_actions

    def _rows(self, ids: Ints2d) -> Ints1d:
        """Rows of the precomputed block that states' features select, flattened
        (n_states * nF,), on the device."""
        nF = self.nF
        if ids.ndim != 2 or int(ids.shape[1]) != nF:
            raise ValueError(f"ids must have shape (n_states, {nF}), got {tuple(ids.shape)}")
        if isinstance(ids, numpy.ndarray):
            host_rows = numpy.empty(ids.shape, dtype="int32")
            if not cpu_kernels().state_rows(numpy.ascontiguousarray(ids, dtype="int32"), self.n_tokens, host_rows):
                raise ValueError(f"token ids must lie in [-1, {self.n_tokens}), got {int(ids.min())}..{int(ids.max())}")
            return self.ops.asarray1i(cast(Ints1d, host_rows.reshape(-1)), dtype="int32")
        xp = self.ops.xp
        rows = (ids.astype("int32") + 1) * nF + xp.arange(nF, dtype="int32")
        return xp.ascontiguousarray(rows.ravel())

    def score(self, ids: Ints2d) -> Tuple[Floats2d, Callable[[Floats2d], None]]:
        """Scores (n_states, n_actions) of the states whose feature tokens are ids
        (n_states, nF), and a callback that takes d_scores and accumulates the
        gradient (the upper layer's immediately, or on CpuOps summed over the steps
        until `backprop_tokvecs`; the lower layer's and the token vectors' until
        `backprop_tokvecs`). It returns None."""
        if self._finished:
            raise ValueError("this batch's step model has been backpropagated already: call model.begin_update again")
        ops = self.ops
        xp = ops.xp
        nF, nH, nP = self.nF, self.nH, self.nP
        n_states = int(ids.shape[0])
        rows = self._rows(ids)
        if n_states == 0:
            return self._no_states()
        if self._fused:
            return self._fused_score(cast(numpy.ndarray, rows).reshape((n_states, nF)))
        pre = ops.gather_add(self._Yf2, ops.reshape2i(rows, n_states, nF)) + self._b  # the states' nF rows summed
        which = relu_mask = drop_mask = bp_upper = None
        if nP >= 2:
            hidden, which = ops.maxout(xp.ascontiguousarray(pre.reshape((n_states, nH, nP))))
        elif self.use_upper:
            hidden = pre
        else:
            relu_mask = pre > 0
            hidden = pre * relu_mask
        if self.upper is not None:
            if self.is_train and self.dropout > 0:
                drop_mask = ops.get_dropout_mask(hidden.shape, self.dropout)
                hidden = hidden * drop_mask
            scores, bp_upper = self.upper(hidden, self.is_train)
        else:
            scores = hidden

        def backprop_scores(d_scores: Floats2d) -> None:
            self._check_backprop()
            d_scores = ops.asarray2f(d_scores)
            if tuple(d_scores.shape) != (n_states, self.n_actions):
                raise ValueError(f"d_scores must have shape {(n_states, self.n_actions)}, got {tuple(d_scores.shape)}")
            d_hidden = bp_upper(d_scores) if bp_upper is not None else d_scores
            if drop_mask is not None:
                d_hidden = d_hidden * drop_mask
            # is_train and not finished (checked above): the accumulators are there
            assert self._dYf2 is not None and self._d_b is not None
            d_pre: Floats2d
            if which is not None:
                d_pieces = ops.backprop_maxout(xp.ascontiguousarray(d_hidden), which, nP)
                d_pre = ops.reshape2f(d_pieces, n_states, nH * nP)
            elif relu_mask is not None:
                d_pre = d_hidden * relu_mask
            else:
                d_pre = d_hidden
            d_pre = xp.ascontiguousarray(d_pre, dtype=self._dYf2.dtype)
            if isinstance(d_pre, numpy.ndarray) and d_pre.dtype == numpy.float32:
                cpu_kernels().scatter_state_gradient(d_pre, rows.reshape(n_states, nF), self._dYf2, self._d_b)
            else:
                self._d_b += d_pre.sum(axis=0)
                ops.scatter_add(self._dYf2, rows, xp.repeat(d_pre, nF, axis=0))
            self._n_steps_backpropped += 1
            return None

        return scores, backprop_scores

    def _fused_score(self, rows: numpy.ndarray) -> Tuple[Floats2d, Callable[[Floats2d], None]]:
        """score() on CpuOps: the same computation as two compiled kernels."""
        assert self.upper is not None
        kernels = cpu_kernels()
        n_states = rows.shape[0]
        W = self.upper.get_param("W")
        b = self.upper.get_param("b")
        hidden = numpy.empty((n_states, self.nH), dtype=numpy.float32)
        which = numpy.empty((n_states, self.nH), dtype=numpy.int32)
        scores = numpy.empty((n_states, self.n_actions), dtype=numpy.float32)
        dropout = self.is_train and self.dropout > 0
        bits = dropout_bits((n_states, self.nH)) if dropout else numpy.empty((0, 0), dtype=numpy.uint16)
        threshold = keep_threshold(self.dropout) if dropout else 0
        scale = keep_scale(self.dropout if dropout else 0.0)
        kernels.state_forward(self._Yf2, self._b.reshape((-1,)), rows, self.nP, bits, threshold, scale, W, b, hidden, which, scores)

        def backprop_scores(d_scores: Floats2d) -> None:
            self._check_backprop()
            gradient = numpy.ascontiguousarray(d_scores, dtype=numpy.float32)
            if gradient.shape != (n_states, self.n_actions):
                raise ValueError(f"d_scores must have shape {(n_states, self.n_actions)}, got {tuple(gradient.shape)}")
            kernels.state_backward(
                gradient, W, hidden, which, self.nP, bits, threshold, scale, rows,
                self._dYf2, self._d_b, self._d_W_upper, self._d_b_upper,
            )
            self._n_steps_backpropped += 1

        return cast(Floats2d, scores), backprop_scores

    def _check_backprop(self) -> None:
        if not self.is_train:
            raise ValueError("the step model was made in prediction mode (model.predict): no gradient")
        if self._finished:
            raise ValueError("backprop after backprop_tokvecs: this batch is finished")

    def _no_states(self) -> Tuple[Floats2d, Callable[[Floats2d], None]]:
        def backprop_nothing(d_scores: Floats2d) -> None:
            if not self.is_train:
                raise ValueError("the step model was made in prediction mode (model.predict): no gradient")
            if tuple(d_scores.shape) != (0, self.n_actions):
                raise ValueError(f"d_scores must have shape {(0, self.n_actions)}, got {tuple(d_scores.shape)}")
            return None

        return self.ops.alloc2f(0, self.n_actions, dtype=self._Yf2.dtype), backprop_nothing

    def predict(self, ids: Ints2d) -> Floats2d:
        """Scores only (no dropout in prediction mode)."""
        return self.score(ids)[0]

    def backprop_tokvecs(self) -> None:
        """Send the gradients accumulated over all steps through the lower layer
        (W, pad, b) and tok2vec' in one pass. Call once, after the last step."""
        if not self.is_train:
            raise ValueError("the step model was made in prediction mode (model.predict): no gradient")
        if self._finished:
            raise ValueError("backprop_tokvecs was called already for this batch")
        # is_train and not finished (checked above): the accumulators and callbacks are there
        assert self._dYf2 is not None and self._d_b is not None
        assert self._bp_lower is not None and self._bp_tokvecs is not None
        self._finished = True
        if self._n_steps_backpropped:
            if self.upper is not None and self._d_W_upper is not None and self._d_b_upper is not None:
                self.upper.inc_grad("W", self._d_W_upper)
                self.upper.inc_grad("b", self._d_b_upper)
            self.lower.inc_grad("b", self.ops.reshape2f(self._d_b, self.nH, self.nP))
            dYf = self.ops.reshape4f(self._dYf2, self.n_tokens + 1, self.nF, self.nH, self.nP)
            d_tokvecs = self._bp_lower(dYf)
            self._bp_tokvecs(d_tokvecs)
        # the batch's caches are no longer needed
        self._dYf2 = self._d_b = self._d_W_upper = self._d_b_upper = None
        self._bp_lower = self._bp_tokvecs = None
