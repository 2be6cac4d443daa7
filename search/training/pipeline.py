"""The pipeline: components built from a config, a shared tok2vec feeding listeners.

Each component owns a Thinc model and a loss. A `tok2vec` component is an
encoder several components can share: per batch it runs once, hands its output
to every listening component's Tok2VecListener layer, collects their gradients
(each scaled by its grad_factor) and backpropagates the sum once. A `transformer`
component is such an encoder too; its listeners pool its wordpiece states.
"""

import contextlib
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from confection import Config
from thinc.api import Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from archs import registry
from archs.features import Doc

from ..corpora.example import Example
from .config import factory_of

# Models infer their dims from this many examples: a forward pass over a whole
# corpus at once would need gigabytes for nothing.
INIT_SAMPLE = 32


class Component:
    """A trainable pipeline step; subclasses give the model's loss, predictions and scores."""

    # The optimizer's learning rate is multiplied by this for this component's weights.
    learn_rate_scale = 1.0

    def __init__(self, name: str, model: Model) -> None:
        self.name = name
        self.model = model

    @property
    def labels(self) -> List[str]:
        return []

    @property
    def label_data(self) -> Any:
        """What labels.json stores for this component; `set_labels` takes it back
        (the labels, or e.g. a transition system's action inventory)."""
        return self.labels

    def set_labels(self, labels: Sequence[str]) -> None:
        """Restore the labels of a saved component (sets output dims)."""

    def initialize(self, examples: Sequence[Example]) -> None:
        """Set labels from all examples; infer dims from the first few (as spaCy)."""
        self.model.initialize(X=[eg.doc for eg in examples[:INIT_SAMPLE]])

    def get_loss(self, examples: Sequence[Example], outputs: Any) -> Tuple[float, Any]:
        raise NotImplementedError

    def predict(self, docs: List[Doc]) -> Any:
        raise NotImplementedError

    def score(self, examples: Sequence[Example], predictions: Sequence[Any]) -> Dict[str, float]:
        raise NotImplementedError


class Tok2VecComponent(Component):
    """A shared token encoder whose output its listeners consume."""

    kind = "tok2vec"  # listeners name the kind of encoder they take (attr "upstream_kind")

    def __init__(self, name: str, model: Model) -> None:
        super().__init__(name, model)
        self.listeners: List[Model] = []

    def gradient_buffers(self, outputs: List[Any]) -> Tuple[List[Floats2d], Optional[Floats2d]]:
        """Where the listeners add their gradients: one zeroed (n_tokens, width) array
        for the whole batch (one allocation) and its per-doc views, which the
        encoder's backprop takes. Returns (views, flat buffer)."""
        ops = self.model.ops
        lengths = [len(y) for y in outputs]
        width = outputs[0].shape[1] if outputs else 0
        flat = ops.alloc2f(sum(lengths), width, dtype=outputs[0].dtype if outputs else "float32")
        views, start = [], 0
        for n in lengths:
            views.append(flat[start : start + n])
            start += n
        return views, flat

    def fill_listeners(
        self,
        docs: List[Doc],
        outputs: List[Floats2d],
        d_outputs: Optional[List[Floats2d]],
        d_flat: Optional[Floats2d] = None,
    ) -> None:
        for listener in self.listeners:
            listener.attrs["slot"].fill(docs, outputs, d_outputs, d_flat)

    def clear_listeners(self) -> None:
        for listener in self.listeners:
            listener.attrs["slot"].clear()


class TransformerComponent(Tok2VecComponent):
    """A shared transformer (spacy-transformers.TransformerModel.v1): per batch it runs
    once; its listeners (spacy-transformers.Tok2VecListener.v1) pool its wordpiece
    states into token vectors and add their wordpiece gradients, backpropagated once."""

    kind = "transformer"

    def __init__(self, name: str, model: Model, learn_rate_scale: float) -> None:
        super().__init__(name, model)
        if not learn_rate_scale >= 0:
            raise ValueError(f"components.{name}.learn_rate_scale: expected a number >= 0, got {learn_rate_scale!r}")
        self.learn_rate_scale = learn_rate_scale

    def gradient_buffers(self, outputs: List[Any]) -> Tuple[List[Floats2d], Optional[Floats2d]]:
        # one wordpiece-state gradient per doc (their shapes differ in the padded length)
        return [self.model.ops.alloc2f(*trf.tensor.shape) for trf in outputs], None


@registry.factories("tok2vec")
def make_tok2vec(name: str, model: Model) -> Tok2VecComponent:
    """A shared encoder; components listen to it with spacy.Tok2VecListener.v1."""
    return Tok2VecComponent(name, model)


@registry.factories("transformer")
def make_transformer(name: str, model: Model, learn_rate_scale: float = 1.0) -> TransformerComponent:
    """A shared transformer; components listen to it with spacy-transformers.Tok2VecListener.v1.

    learn_rate_scale: the transformer's learning rate is the optimizer's times this, so that
        pretrained weights can be fine-tuned gently (spacy-transformers trains everything at
        about 5e-5) while the task heads learn at the full rate. 1.0 keeps one rate for all;
        0.02-0.2 suits the heads' usual 1e-3; 0 leaves the weights as they are, while the
        gradient still flows to them.
    """
    return TransformerComponent(name, model, learn_rate_scale)


class ScaledLearnRate:
    """`optimizer` with its learning rate multiplied by `scale` (Thinc's lr_scale), for one
    component's finish_update; the optimizer's state (Adam moments, schedules) stays shared."""

    def __init__(self, optimizer: Optimizer, scale: float) -> None:
        self.optimizer = optimizer
        self.scale = scale

    def __call__(self, key: Tuple[int, str], weights: Any, gradient: Any, *, lr_scale: float = 1.0) -> Any:
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.scale)


class Pipeline:
    """Components in order, with the shared tok2vec components wired to their listeners."""

    def __init__(self, components: Dict[str, Component], batch_size: int = 1000) -> None:
        self.components = components
        self.batch_size = batch_size
        self.tok2vecs = [c for c in components.values() if isinstance(c, Tok2VecComponent)]
        self.tasks = [c for c in components.values() if not isinstance(c, Tok2VecComponent)]
        self._wire_listeners()

    @classmethod
    def from_config(cls, config: Config) -> "Pipeline":
        """Build the components named in [nlp] pipeline from their [components.*] blocks."""
        names = config["nlp"]["pipeline"]
        components: Dict[str, Component] = {}
        for name in names:
            block = config["components"].get(name)
            if block is None:
                raise ValueError(f"nlp.pipeline names {name!r} but there is no [components.{name}] block")
            components[name] = build_component(name, block)
        return cls(components, batch_size=config["nlp"].get("batch_size", 1000))

    def _wire_listeners(self) -> None:
        for component in self.tasks:
            for node in component.model.walk():
                if node.name != "tok2vec_listener":
                    continue
                upstream = node.attrs["upstream_name"]
                kind = node.attrs.get("upstream_kind", Tok2VecComponent.kind)
                candidates = [t for t in self.tok2vecs if t.kind == kind]
                matches = [t for t in candidates if upstream in ("*", t.name)]
                if len(matches) != 1:
                    found = [t.name for t in candidates] or "none"
                    raise ValueError(
                        f"components.{component.name}: its Tok2VecListener listens to {upstream!r}, "
                        f"which matches {len(matches)} {kind} components (pipeline has: {found}); "
                        "name exactly one in `upstream`"
                    )
                matches[0].listeners.append(node)

    def initialize(self, examples: Sequence[Example]) -> None:
        """Infer labels and dims from the training examples and initialize every model."""
        docs = [eg.doc for eg in examples[:INIT_SAMPLE]]
        for t2v in self.tok2vecs:
            t2v.initialize(examples)
            t2v.fill_listeners(docs, t2v.model.predict(docs), None)
        try:
            for component in self.tasks:
                component.initialize(examples)
        finally:
            for t2v in self.tok2vecs:
                t2v.clear_listeners()

    def update(self, examples: Sequence[Example], *, drop: float, sgd: Optimizer) -> Dict[str, Any]:
        """One gradient step on a batch; returns each component's loss: a float, or a
        scalar left on the model's device (float() it, or let the training loop read
        them back once per evaluation)."""
        docs = [eg.doc for eg in examples]
        losses: Dict[str, Any] = {}
        if not any(len(doc) for doc in docs):
            return losses  # nothing to learn from, and the layers need at least one token
        finish = []
        for t2v in self.tok2vecs:
            set_dropout_rate(t2v.model, drop)
            outputs, backprop = t2v.model.begin_update(docs)
            d_outputs, d_flat = t2v.gradient_buffers(outputs)
            t2v.fill_listeners(docs, outputs, d_outputs, d_flat)
            finish.append((t2v, backprop, d_outputs, d_flat))
        try:
            for component in self.tasks:
                set_dropout_rate(component.model, drop)
                outputs, backprop = component.model.begin_update(docs)
                loss, d_outputs = component.get_loss(examples, outputs)
                backprop(d_outputs)
                losses[component.name] = loss
            for t2v, backprop, d_outputs, d_flat in finish:
                backprop(d_outputs)
                if d_flat is not None:
                    losses[t2v.name] = (d_flat**2).sum()  # type: ignore[call-overload]  # Thinc's Floats2d.sum overloads omit the full reduction
                else:
                    zero = t2v.model.ops.xp.zeros((), dtype="float32")
                    losses[t2v.name] = sum(((d**2).sum() for d in d_outputs), zero)  # type: ignore[call-overload]  # as above
        finally:
            for t2v in self.tok2vecs:
                t2v.clear_listeners()
        for component in self.components.values():
            scale = component.learn_rate_scale
            # Thinc's finish_update only calls the optimizer (key, weights, gradient), which
            # ScaledLearnRate does; its type names the Optimizer class
            component.model.finish_update(sgd if scale == 1.0 else ScaledLearnRate(sgd, scale))  # type: ignore[arg-type]
        return losses

    def predict(self, docs: List[Doc]) -> Dict[str, List[Any]]:
        """Each task component's predictions for a batch of docs."""
        predictions: Dict[str, List[Any]] = {c.name: [] for c in self.tasks}
        for start in range(0, len(docs), self.batch_size):
            batch = docs[start : start + self.batch_size]
            if not any(len(doc) for doc in batch):
                for component in self.tasks:
                    predictions[component.name].extend([] for _ in batch)
                continue
            for t2v in self.tok2vecs:
                t2v.fill_listeners(batch, t2v.model.predict(batch), None)
            try:
                for component in self.tasks:
                    predictions[component.name].extend(component.predict(batch))
            finally:
                for t2v in self.tok2vecs:
                    t2v.clear_listeners()
        return predictions

    def evaluate(self, examples: Sequence[Example]) -> Dict[str, float]:
        predictions = self.predict([eg.doc for eg in examples])
        scores: Dict[str, float] = {}
        for component in self.tasks:
            scores.update(component.score(examples, predictions[component.name]))
        return scores

    @contextlib.contextmanager
    def use_params(self, params: Optional[Dict[Tuple[int, str], Any]]) -> Iterator[None]:
        """Within the block, every weight that `params` holds (keyed as Thinc's optimizer
        keys them: node id, parameter name) stands in for the model's own; they are
        restored when it ends. With an optimizer's `averages` (use_averages = true), the
        pipeline is evaluated and saved with its averaged weights, as spaCy does; None
        (no averages kept) changes nothing."""
        with contextlib.ExitStack() as stack:
            if params:
                for component in self.components.values():
                    stack.enter_context(component.model.use_params(params))
            yield

    def to_disk(self, path: Union[str, Path], config: Config) -> None:
        """Save the config, each component's labels and its weights."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config.to_disk(path / "config.cfg")
        labels = {name: c.label_data for name, c in self.components.items()}
        (path / "labels.json").write_text(json.dumps(labels, indent=2), encoding="utf8")
        for name, component in self.components.items():
            (path / f"{name}.bin").write_bytes(component.model.to_bytes())


def build_component(name: str, block: Dict[str, Any]) -> Component:
    """Resolve one [components.NAME] block through its `factory`."""
    block = dict(block)
    factory = factory_of(name, block)
    block.pop("factory")
    resolved = registry.resolve(Config({name: {"@factories": factory, "name": name, **block}}))
    return resolved[name]


def load_saved_config(path: Union[str, Path]) -> Config:
    """The config of a pipeline saved by Pipeline.to_disk (not interpolated)."""
    path = Path(path)
    if not (path / "config.cfg").is_file():
        why = "no such directory" if not path.is_dir() else "no config.cfg"
        raise FileNotFoundError(
            f"{path} is not a saved model directory ({why}); give a training run's model-best/ or model-last/"
        )
    return Config().from_disk(path / "config.cfg", interpolate=False)


def load_pipeline(path: Union[str, Path]) -> Tuple[Pipeline, Config]:
    """Load a pipeline saved by Pipeline.to_disk (on the current ops' device).
    Its files are checked before any model is built: a missing or unreadable
    one is an error naming it."""
    path = Path(path)
    config = load_saved_config(path)
    labels_path = path / "labels.json"
    if not labels_path.is_file():
        # A training run's own folder has a config.cfg too, but its models are below it.
        raise FileNotFoundError(
            f"{labels_path}: missing: {path} is not a complete saved model; give a training run's model-best/ or model-last/"
        )
    try:
        labels = json.loads(labels_path.read_text(encoding="utf8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{labels_path}: not the labels of a saved model ({err})") from None
    weights = {name: path / f"{name}.bin" for name in config["nlp"]["pipeline"]}
    for name, weights_path in weights.items():
        if not weights_path.is_file():
            raise FileNotFoundError(f"{weights_path}: missing: the saved model has no weights for its component {name!r}")
    pipeline = Pipeline.from_config(config.interpolate())
    for name, component in pipeline.components.items():
        if labels.get(name):
            component.set_labels(labels[name])
        try:
            component.model.from_bytes(weights[name].read_bytes())
        except ValueError as err:  # truncated msgpack, or weights of another architecture
            raise ValueError(f"{weights[name]}: not the weights of component {name!r} as configured ({err})") from None
    return pipeline, config
