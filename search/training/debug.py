"""`archsweep debug model`: each component's layer tree with parameter counts."""

from typing import Any, Dict, Iterable, List

from confection import Config
from thinc.api import Model

from archs import registry

from .pipeline import Pipeline


def count_params(model: Model) -> int:
    """Parameters of every distinct node, as spaCy's parity counts do, plus the
    weights of wrapped framework models (a transformer's PyTorch weights live in
    its shim, not in Thinc's parameters)."""
    return sum(_own_params(node) + _shim_params(node) for node in model.walk())


def _own_params(node: Model) -> int:
    return sum(node.get_param(name).size for name in node.param_names if node.has_param(name))


def _shim_params(node: Model) -> int:
    wrapped: Iterable[Any] = (getattr(shim, "_model", None) for shim in node.shims)  # a torch module, or None
    return sum(int(p.numel()) for m in wrapped if hasattr(m, "parameters") for p in m.parameters())


def layer_tree(model: Model) -> List[str]:
    """One line per node, indented by depth, with its own params and their shapes."""
    lines: List[str] = []
    seen = set()

    def visit(node: Model, depth: int) -> None:
        if node.id in seen:
            lines.append(f"{'  ' * depth}{node.name} (shared, see above)")
            return
        seen.add(node.id)
        own = [(n, node.get_param(n).shape) for n in node.param_names if node.has_param(n)]
        detail = ", ".join(f"{n} {tuple(s)}" for n, s in own)
        lines.append(f"{'  ' * depth}{node.name}" + (f"  [{_own_params(node):,}: {detail}]" if own else ""))
        if node.shims and _shim_params(node):
            lines.append(f"{'  ' * (depth + 1)}(wrapped {type(node.shims[0]._model).__name__}: {_shim_params(node):,})")
        for child in node.layers:
            visit(child, depth + 1)

    visit(model, 0)
    return lines


def describe_pipeline(config: Config) -> Dict[str, Dict]:
    """Build and initialize the pipeline on its training corpus and describe each component."""
    C = config.interpolate()
    corpora = registry.resolve({"corpora": C["corpora"]})["corpora"]
    train_key = C["training"]["train_corpus"].split(".", 1)[1]
    pipeline = Pipeline.from_config(C)
    pipeline.initialize(list(corpora[train_key]()))
    return {
        name: {"tree": layer_tree(c.model), "params": count_params(c.model), "labels": len(c.labels)}
        for name, c in pipeline.components.items()
    }
