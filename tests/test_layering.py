"""The package's layers: nn imports nothing but NumPy; lower layers never import higher ones."""
import ast
import re
import sys

import pytest

from .paths import ROOT

STDLIB = set(sys.stdlib_module_names)


def imported_modules(package: str) -> set[str]:
    modules = set()
    for path in (ROOT / "sweeper" / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module)
    return modules


def test_nn_imports_nothing_but_numpy():
    third_party = {m for m in imported_modules("nn") if m.split(".")[0] not in STDLIB}
    assert third_party <= {"numpy"}, third_party


@pytest.mark.parametrize("package,allowed", [("nn", {"numpy"}), ("train", {"numpy", "sweeper"})])
def test_lower_layers_never_import_higher_ones(package, allowed):
    for module in imported_modules(package):
        top = module.split(".")[0]
        if top in STDLIB:
            continue
        assert top in allowed, module
        if top == "sweeper":
            assert module in ("sweeper.nn", "sweeper.errors"), module


#: A dependency's private modules or attributes: they change without notice between releases.
PRIVATE = re.compile(r"optuna\.[a-z_.]*\._|hydra\._internal|_n_warmup_steps")


def test_the_package_uses_optuna_and_hydra_through_their_public_apis_only():
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for folder in ("sweeper", "hydra_plugins") for path in sorted((ROOT / folder).rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if PRIVATE.search(line)]
    assert found == []
