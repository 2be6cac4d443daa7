"""`archsweep debug model`: each component's layer tree with parameter counts."""

from typing import Dict, List

from confection import Config
from thinc.api import Model

from archs import registry

from .pipeline import Pipeline


def count_params(model: Model) -> int:
    """Parameters of every distinct node, as spaCy's parity counts do."""
    return sum(node.get_param(name).size for node in model.walk() for name in node.param_names if node.has_param(name))


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
        size = sum(node.get_param(n).size for n in node.param_names if node.has_param(n))
        detail = ", ".join(f"{n} {tuple(s)}" for n, s in own)
        lines.append(f"{'  ' * depth}{node.name}" + (f"  [{size:,}: {detail}]" if own else ""))
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
