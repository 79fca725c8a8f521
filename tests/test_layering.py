"""The package's floors, and how it uses the libraries it builds on.

docs/architecture.md: "Data flows one way; a lower layer never imports a higher one." These tests
hold the code to it, reading every ``.py`` of ``sweeper/`` and ``hydra_plugins/`` (an import inside a
function counts as much as one at the top of a file):

- ``FLOORS`` lists the floors from the bottom. A module imports from lower floors only (and from
  its own unit), never from a higher floor nor from another unit of its own floor, and no imports
  close a circle. nn imports nothing but NumPy, data nothing but NumPy and pandas, train nothing
  but NumPy and nn.
- Only the launcher (the runtime floor) starts processes or tunes the interpreter: no other
  module imports multiprocessing, signal or gc, or calls os.fork.
- A dependency is used through its public API: no private name of it (``x._name``,
  ``f(_name=...)``, ``getattr(x, "_name")``, ``from lib import _name``), none of its internal modules
  (``hydra._internal``, ``mlflow.store``, ``omegaconf.basecontainer``: in an import statement or
  a module name handed to importlib), and no object its documentation says not to build.

Each test fails with all of its findings, one ``path:line: source line`` each.
"""
from __future__ import annotations

import ast
import functools
import importlib.machinery
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from .paths import ROOT

STDLIB = set(sys.stdlib_module_names)

#: Where the project's own code is; everything else a module imports is a dependency.
FOLDERS = ("sweeper", "hydra_plugins")
OWN = ("sweeper", "hydra_plugins.sweeper_optuna")

#: The package's floors, bottom first: a unit (a module or a package; imports within one are free)
#: may import any unit of a lower floor, none of a higher floor and none of its own floor.
#: docs/architecture.md's picture (data, nn, train, config, tracking, app, sweep, rerun, predict,
#: report) should follow this list, from which it differs in three places, each where its own text
#: says otherwise: config is above tracking (validate checks each range with the code it
#: configures, the tracking store's too); app is above sweep (a job learns it is a trial through
#: sweep/trial_link.py; the sweeper reaches the task function through Hydra, never by import); and
#: report is beside sweep, not above it (issue 25: they don't import each other). The launcher
#: (issue 25's runtime floor) runs any Hydra sweeper's jobs, so it imports no sweeper.
#: A module on no floor fails test_every_floor_imports_only_lower_floors: put it on one here and
#: in docs/architecture.md.
FLOORS = (
    ("sweeper", "sweeper.errors",        # the package's paths (CONF_DIR, DATA_DIR...) and its errors
     "sweeper.stop"),                    # how a running job is asked to stop (a signal's handler -> its report)
    ("sweeper.nn",                       # the network (NumPy only)
     "sweeper.data",                     # CSV -> arrays (NumPy, pandas)
     "sweeper.overrides",                # the checks of a command line's overrides (Hydra's parser)
     "sweeper.composer"),                # job configs composed as Hydra's launchers do, cached
    ("sweeper.train",),                  # the epoch loop, early stopping, metrics (nn)
    ("sweeper.tracking",),               # MLflow: params, curves, artifacts, the model (data, nn)
    ("sweeper.config",),                 # structured configs and validate (each range by its owner)
    ("sweeper.launcher",),               # the runtime: processes, forks, pipes, preloads (any sweeper's jobs)
    ("sweeper.sweep",                    # the Optuna sweeper: plugin, settings, space, study, loop, trial link
     "sweeper.report"),                  # python -m sweeper.report (MLflow rows -> tables, plots, HTML)
    ("sweeper.app",),                    # the task function: config -> data -> network -> trainer -> MLflow
    ("sweeper.cli",                      # python -m sweeper's start and its errors as exit codes
     "sweeper.rerun",                    # python -m sweeper.rerun
     "sweeper.predict",                  # python -m sweeper.predict
     "hydra_plugins.sweeper_optuna"),    # what Hydra's plugin scan finds: the sweeper, the SLURM launcher
    ("sweeper.__main__",),               # python -m sweeper
)

#: The one floor that may start processes and tune the interpreter (issue 25: the launcher "owns
#: every process, fork, pipe, GC and preload trick -- and nothing else does").
RUNTIME = "sweeper.launcher"
#: Modules that start processes or tune the interpreter, and os's process-starting functions.
RUNTIME_MODULES = ("multiprocessing", "signal", "gc", "concurrent.futures.process", "loky")
RUNTIME_NAMES = ("os.fork", "os.forkpty", "os.register_at_fork", "concurrent.futures.ProcessPoolExecutor")

#: Dependencies whose internal modules have no leading underscore: the modules their reference
#: documentation lists (``name.*``: the module and everything under it). Any other dependency's
#: internal modules are the ones with a component starting with ``_`` (``optuna.storages._heartbeat``).
PUBLIC_MODULES = {
    # https://mlflow.org/docs/latest/python_api/index.html and its module index (py-modindex.html);
    # mlflow.types' page documents its classes as mlflow.types.schema.*.
    "mlflow": ("mlflow", "mlflow.artifacts", "mlflow.client", "mlflow.config", "mlflow.data",
               "mlflow.deployments", "mlflow.entities", "mlflow.entities.model_registry",
               "mlflow.environment_variables", "mlflow.exceptions", "mlflow.metrics", "mlflow.models",
               "mlflow.models.signature", "mlflow.projects", "mlflow.pyfunc", "mlflow.server",
               "mlflow.store.entities", "mlflow.system_metrics", "mlflow.tracing", "mlflow.tracking",
               "mlflow.types", "mlflow.types.schema", "mlflow.sklearn"),
    # Hydra's API and what its plugin docs (sweepers, launchers, callbacks) import; hydra._internal
    # and anything not listed is Hydra's own.
    "hydra": ("hydra", "hydra.main", "hydra.compose", "hydra.initialize", "hydra.types", "hydra.utils",
              "hydra.errors", "hydra.version", "hydra.core.config_store", "hydra.core.config_search_path",
              "hydra.core.global_hydra", "hydra.core.hydra_config", "hydra.core.object_type",
              "hydra.core.plugins", "hydra.core.singleton", "hydra.core.utils", "hydra.core.override_parser.*",
              "hydra.plugins.*", "hydra.experimental.callback"),
    # OmegaConf documents what ``omegaconf`` exports (its __all__: DictConfig, OmegaConf, the nodes...)
    # and the errors it raises; omegaconf.basecontainer, .nodes, ._utils... are its internals.
    "omegaconf": ("omegaconf", "omegaconf.errors"),
}

#: Names with a leading underscore that are public all the same.
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}  # any namedtuple's
PUBLIC_UNDERSCORED = {"os._exit"}

#: Classes their library says not to instantiate; what to use instead.
NOT_TO_BUILD = {
    # "Note that the direct use of this constructor is not recommended": a Trial comes from
    # Study.ask() or the objective's argument; a job reports through the storage's public methods.
    "optuna.trial.Trial": "Study.ask(), or optuna.storages.BaseStorage's public methods",
    "optuna.Trial": "Study.ask(), or optuna.storages.BaseStorage's public methods",
}

#: Calls whose string arguments are module names to import.
IMPORTERS = {"import_module", "__import__", "find_spec", "set_forkserver_preload"}
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


# --- the code as a tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    name: str                       # sweeper.sweep.loop; a package's __init__.py is the package
    path: Path
    tree: ast.Module
    lines: tuple[str, ...]

    @property
    def package(self) -> str:
        """What a relative import of this module starts from."""
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]

    def at(self, node: ast.AST) -> str:
        return f"{self.path.relative_to(ROOT)}:{node.lineno}: {self.lines[node.lineno - 1].strip()}"


@functools.cache
def sources() -> tuple[Source, ...]:
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            text = path.read_text()
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append(Source(name, path, ast.parse(text, str(path)), tuple(text.splitlines())))
    return tuple(found)


def is_own(name: str) -> bool:
    return any(name == own or name.startswith(own + ".") for own in OWN)


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@functools.cache
def is_module(name: str) -> bool:
    """Whether ``name`` is a module (ours, or an installed one), found without importing anything."""
    if is_own(name):
        return any(s.name == name for s in sources())
    top, *rest = name.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or not rest:
        return spec is not None
    folders = [Path(folder) for folder in spec.submodule_search_locations or ()]
    for i, part in enumerate(rest):
        last = i == len(rest) - 1
        packages = [folder / part for folder in folders if (folder / part).is_dir()]
        if packages:
            folders = packages
            continue
        return last and any((folder / (part + suffix)).exists()
                            for folder in folders for suffix in importlib.machinery.all_suffixes())
    return True


@dataclass(frozen=True)
class Import:
    source: Source
    node: ast.AST              # the import statement, or the string naming the module
    module: str                # what it imports: ``from a import b`` imports a.b if that is a module
    names: tuple[str, ...]     # the names ``from module import ...`` takes; () for a module


def absolute(source: Source, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = source.package.split(".")
    base = ".".join(parts[:len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def callee(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else \
        call.func.attr if isinstance(call.func, ast.Attribute) else None


def calls_importer(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and callee(n) in IMPORTERS for n in ast.walk(node))


def strings(node: ast.AST) -> Iterator[ast.Constant]:
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and MODULE_NAME.fullmatch(n.value):
            yield n


def module_names_for_importlib(source: Source) -> Iterator[ast.Constant]:
    """The strings this module hands to importlib (or a fork server's preload) as module names:
    given to the call itself, iterated by a loop that calls it, or held by a module-level
    constant given to either (``PRELOAD = ("numpy", "mlflow.tracking", ...)``)."""
    feeding: list[ast.AST] = []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Call) and callee(node) in IMPORTERS:
            feeding += [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, (ast.For, ast.AsyncFor)) and any(calls_importer(n) for n in node.body):
            feeding.append(node.iter)
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp)) and calls_importer(node.elt):
            feeding += [g.iter for g in node.generators]
    names = {n.id for f in feeding for n in ast.walk(f) if isinstance(n, ast.Name)}
    for f in feeding:
        yield from strings(f)
    for statement in source.tree.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else \
            [statement.target] if isinstance(statement, ast.AnnAssign) and statement.value else []
        if any(isinstance(t, ast.Name) and t.id in names for t in targets):
            yield from strings(statement.value)


@functools.cache
def imports(source: Source) -> tuple[Import, ...]:
    found = []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            found += [Import(source, node, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute(source, node)
            for alias in node.names:
                if alias.name != "*" and is_module(f"{base}.{alias.name}"):
                    found.append(Import(source, node, f"{base}.{alias.name}", ()))
                else:
                    found.append(Import(source, node, base, (alias.name,)))
    found += [Import(source, s, s.value, ()) for s in module_names_for_importlib(source)]
    return tuple(found)


def bound_names(source: Source) -> dict[str, str]:
    """What the module's imports bind each name to: ``{"np": "numpy", "JobReturn":
    "hydra.core.utils.JobReturn", ...}``, wherever the import is (a name bound two ways keeps both
    readings out: None)."""
    bound: dict[str, str] = {}
    for imp in imports(source):
        if not isinstance(imp.node, (ast.Import, ast.ImportFrom)):
            continue
        for alias in imp.node.names:
            if isinstance(imp.node, ast.Import):
                name, dotted = (alias.asname, alias.name) if alias.asname else (alias.name.split(".")[0],) * 2
            else:
                name, dotted = alias.asname or alias.name, f"{absolute(source, imp.node)}.{alias.name}"
            bound[name] = dotted if bound.get(name, dotted) == dotted else None
    return {name: dotted for name, dotted in bound.items() if dotted}


def qualified(node: ast.AST, bound: dict[str, str]) -> str | None:
    """The dotted name an expression stands for through the module's imports (``optuna.trial.Trial``
    for ``optuna.trial.Trial`` after ``import optuna``), or None."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        base = qualified(node.value, bound)
        return f"{base}.{node.attr}" if base else None
    return None


def internal(module: str) -> bool:
    """Whether a dependency's module is one of its internals."""
    if any(private(part) for part in module.split(".")):
        return True
    public = PUBLIC_MODULES.get(module.split(".")[0])
    return public is not None and not any(
        module == p or (p.endswith(".*") and (module == p[:-2] or module.startswith(p[:-1]))) for p in public)


def report(findings: list[str], ordered: bool = True) -> str:
    """The findings, one a line, each once; by file and line unless ``ordered`` is False."""
    def place(finding: str) -> tuple[str, int]:
        path, line, _ = finding.split(":", 2)
        return path, int(line)

    findings = list(dict.fromkeys(findings))
    return "\n" + "\n".join(sorted(findings, key=place) if ordered else findings)


# --- what our own code defines ------------------------------------------------------------------


def scope(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a module's or class's own scope: into if/try/with/for, not into a function or
    class it defines (those are yielded, not entered)."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            yield from scope(child)


def defined(node: ast.AST) -> Iterator[str]:
    """The names a module or class body binds: what code elsewhere may reach as its attribute."""
    for n in scope(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield n.name
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            yield n.id
        elif isinstance(n, ast.alias):
            yield (n.asname or n.name).split(".")[0]


@functools.cache
def own_attributes() -> frozenset[str]:
    """Every name an object of ours may have as an attribute: a module's names (and the modules
    themselves), a class's, and what a method sets on ``self`` or ``cls``."""
    names = set()
    for s in sources():
        names.add(s.name.rpartition(".")[2])
        names.update(defined(s.tree))
        for node in ast.walk(s.tree):
            if isinstance(node, ast.ClassDef):
                names.update(defined(node))
            elif isinstance(node, ast.Global):
                names.update(node.names)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)) \
                    and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
            elif isinstance(node, ast.Call) and callee(node) in ("setattr", "__setattr__") and len(node.args) >= 2 \
                    and isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls") \
                    and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                names.add(node.args[1].value)  # object.__setattr__(self, "_x", ...) in a frozen dataclass
    return frozenset(names)


@functools.cache
def own_parameters() -> frozenset[str]:
    """Every keyword a callable of ours takes: its functions' parameters, its classes' fields."""
    names = set(own_attributes())
    for s in sources():
        for node in ast.walk(s.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                a = node.args
                names.update(arg.arg for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if arg)
    return frozenset(names)


# --- floors ------------------------------------------------------------------------------------


def floor_of(unit: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if unit in floor)


def unit_of(module: str) -> str | None:
    """The unit of FLOORS a module of ours belongs to (``sweeper`` is the package's __init__ only)."""
    for floor in FLOORS:
        for unit in floor:
            if module == unit or (unit != "sweeper" and module.startswith(unit + ".")):
                return unit
    return None


def own_imports() -> Iterator[tuple[str, str, Import]]:
    """(unit, imported unit, the import) of every import of one of our units by another."""
    for s in sources():
        for imp in imports(s):
            unit, target = unit_of(s.name), unit_of(imp.module)
            if is_own(imp.module) and unit and target and unit != target:
                yield unit, target, imp


def third_party(package: str) -> set[str]:
    """The top-level names of what a unit's modules import that is neither ours nor the stdlib."""
    return {imp.module.split(".")[0] for s in sources() if unit_of(s.name) == f"sweeper.{package}"
            for imp in imports(s) if not is_own(imp.module) and imp.module.split(".")[0] not in STDLIB}


def test_nn_imports_nothing_but_numpy():
    assert third_party("nn") <= {"numpy"}, third_party("nn")


@pytest.mark.parametrize("package,allowed,ours", [
    ("nn", {"numpy"}, set()),
    ("data", {"numpy", "pandas"}, {"sweeper.errors"}),
    ("train", {"numpy"}, {"sweeper.nn", "sweeper.errors"}),
])
def test_lower_layers_never_import_higher_ones(package, allowed, ours):
    found = [imp.source.at(imp.node) for s in sources() if unit_of(s.name) == f"sweeper.{package}"
             for imp in imports(s)
             if (imp.module.split(".")[0] not in STDLIB | allowed | {"sweeper"})
             or (is_own(imp.module) and unit_of(imp.module) not in ours | {f"sweeper.{package}"})]
    assert not found, f"sweeper/{package} imports what is not its to import:{report(found)}"


def test_every_floor_imports_only_lower_floors():
    """docs/architecture.md's claim, with FLOORS as its picture: no module imports from a higher floor
    or from another unit of its own floor (so report and sweep don't import each other)."""
    found = [f"{s.path.relative_to(ROOT)}:1: on no floor: add {s.name} to FLOORS"
             for s in sources() if unit_of(s.name) is None]
    for unit, target, imp in own_imports():
        if floor_of(target) >= floor_of(unit):
            where = "a higher floor" if floor_of(target) > floor_of(unit) else "its own floor"
            found.append(f"{imp.source.at(imp.node)}    [{unit} -> {target}: {where}]")
    assert not found, f"imports that go up or sideways (FLOORS lists the floors, bottom first):{report(found)}"


def test_no_imports_close_a_circle():
    """No unit imports, directly or through others, a unit that imports it (app <-> cli, report <->
    sweep...): each circle, then the imports it is made of."""
    edges: dict[str, dict[str, list[Import]]] = {}
    for unit, target, imp in own_imports():
        edges.setdefault(unit, {}).setdefault(target, []).append(imp)
    circles = []

    def walk(path: list[str]) -> None:  # each circle once: from its smallest unit
        for target in sorted(edges.get(path[-1], ())):
            if target == path[0]:
                circles.append(path + [target])
            elif target > path[0] and target not in path:
                walk(path + [target])

    for unit in sorted(edges):
        walk([unit])
    found = []
    for circle in circles:
        found.append(" -> ".join(circle) + ":")
        found += [f"  {imp.source.at(imp.node)}" for a, b in zip(circle, circle[1:]) for imp in edges[a][b]]
    assert not circles, f"{len(circles)} import circles:{report(found, ordered=False)}"


def runtime_uses(s: Source) -> Iterator[ast.AST]:
    """Where a module imports what starts processes or tunes the interpreter, or calls os.fork."""
    for imp in imports(s):
        names = [f"{imp.module}.{name}" for name in imp.names] or [imp.module]
        if any(n == m or n.startswith(m + ".") for n in names for m in RUNTIME_MODULES) \
                or any(n in RUNTIME_NAMES for n in names):
            yield imp.node
    bound = bound_names(s)
    yield from (node for node in ast.walk(s.tree)
                if isinstance(node, ast.Attribute) and qualified(node, bound) in RUNTIME_NAMES)


def test_only_the_launcher_starts_processes():
    """Issue 25: the launcher owns every process, fork, pipe, GC and preload trick; sweep/ is the Optuna
    protocol only, and app, tracking, report and the rest import no multiprocessing, signal or gc."""
    found = [s.at(node) for s in sources() if unit_of(s.name) != RUNTIME for node in runtime_uses(s)]
    assert not found, f"process and interpreter tricks outside {RUNTIME}:{report(found)}"


# --- dependencies through their public APIs only -------------------------------------------------


def private_uses(s: Source) -> Iterator[ast.AST]:
    """Where a module reaches a private name of something not ours.

    A private attribute (``x._name``, ``getattr(x, "_name")``) or keyword (``f(_name=...)``) of
    what an import of a dependency names (``BaseContainer._resolvers``, ``JobReturn(_return_value=)``)
    is one whatever the name; of any other object (a parameter, a call's result: ``trial._trial_id``),
    one unless our own code defines that name (``self._cut``, a module's ``_checks``): a name we
    never define can only be a dependency's. ``from lib import _name`` is one too.
    """
    bound = bound_names(s)

    def foreign(node: ast.AST) -> bool | None:  # True: a dependency's; False: ours; None: unknown
        name = qualified(node, bound)
        return None if name is None else not is_own(name)

    def reaches(receiver: ast.AST, attribute: str) -> bool:
        if not private(attribute) or attribute in NAMEDTUPLE_API:
            return False
        if f"{qualified(receiver, bound)}.{attribute}" in PUBLIC_UNDERSCORED:
            return False
        owner = foreign(receiver)
        return owner if owner is not None else attribute not in own_attributes()

    for node in ast.walk(s.tree):
        if isinstance(node, ast.Attribute) and reaches(node.value, node.attr):
            yield node
        elif isinstance(node, ast.Call):
            if callee(node) in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str) \
                    and reaches(node.args[0], node.args[1].value):
                yield node
            owner = foreign(node.func)
            yield from (k for k in node.keywords if k.arg and private(k.arg) and (
                owner if owner is not None else k.arg not in own_parameters()))
    for imp in imports(s):
        if not is_own(imp.module) and any(private(name) for name in imp.names):
            yield imp.node


def internal_uses(s: Source) -> Iterator[ast.AST]:
    """Where a module imports a dependency's internal module: an import statement, a module name
    handed to importlib or a fork server's preload, or an attribute path into one
    (``mlflow.store.db.db_types`` after ``import mlflow``)."""
    yield from (imp.node for imp in imports(s) if not is_own(imp.module) and internal(imp.module))
    bound = bound_names(s)
    for node in ast.walk(s.tree):
        name = qualified(node, bound) if isinstance(node, ast.Attribute) else None
        if name and not is_own(name):
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value
            parts = name.split(".")
            module = next((m for m in (".".join(parts[:i]) for i in range(len(parts), 0, -1)) if is_module(m)), None)
            # only where the path itself goes into the module: an imported name's module is its import's finding
            if module and internal(module) and len(module) > len(bound[root.id]):
                yield node


def forbidden_builds(s: Source) -> Iterator[ast.Call]:
    """Where a module instantiates a class its library says not to (NOT_TO_BUILD)."""
    bound = bound_names(s)
    yield from (node for node in ast.walk(s.tree)
                if isinstance(node, ast.Call) and qualified(node.func, bound) in NOT_TO_BUILD)


def test_the_package_uses_its_dependencies_through_their_public_apis_only():
    """No private attribute or keyword of Optuna, Hydra, OmegaConf, MLflow... objects: they change
    without notice between releases (``trial._trial_id``, ``JobReturn._return_value``)."""
    found = [s.at(node) for s in sources() for node in private_uses(s)]
    assert not found, f"private names of dependencies (use their public API):{report(found)}"


def test_the_package_imports_no_internal_module_of_a_dependency():
    """PUBLIC_MODULES says which modules of MLflow, Hydra and OmegaConf are public; of any other
    dependency, those without a private component."""
    found = [s.at(node) for s in sources() for node in internal_uses(s)]
    assert not found, f"internal modules of dependencies (use a documented module):{report(found)}"


def test_the_package_builds_no_object_its_library_says_not_to():
    found = [f"{s.at(node)}    [instead: {NOT_TO_BUILD[qualified(node.func, bound_names(s))]}]"
             for s in sources() for node in forbidden_builds(s)]
    assert not found, f"objects their library says not to build:{report(found)}"


#: A module of what the checks above must find, each line marked with the check that finds it.
SAMPLE = """\
import gc  # runtime
import importlib
import os
from multiprocessing import get_context  # runtime

import mlflow
import optuna
from hydra._internal.utils import run_and_report  # internal
from hydra.core.utils import JobReturn
from omegaconf import DictConfig
from omegaconf.basecontainer import BaseContainer  # internal
from optuna.storages import _heartbeat  # internal
from optuna.trial import _trial  # internal

PRELOAD = ("numpy", "mlflow.tracking",
           "mlflow.store.tracking.sqlalchemy_store")  # internal


def sample(trial, study, result, parts, cfg: DictConfig):
    importlib.import_module("mlflow.utils.file_utils")  # internal
    for name in PRELOAD:
        importlib.import_module(name)
    engines = mlflow.store.db.db_types.DATABASE_ENGINES  # internal
    trial._trial_id  # private
    getattr(result, "_return_value")  # private
    JobReturn(status=None, _return_value=1)  # private
    BaseContainer._resolvers  # private
    cfg._get_node("a")  # private
    optuna.trial.Trial(study, 0)  # build
    optuna.trial.FrozenTrial
    parts._replace(netloc="")
    os._exit(0)
    os.fork()  # runtime
    self._cut
    logging.getLogger("mlflow.store.db.utils")
"""


def test_the_checks_find_what_they_look_for():
    """The checks themselves, on a module of what they must find (and what they must let pass)."""
    text = SAMPLE
    sample = Source("sweeper.sample", ROOT / "sweeper" / "sample.py", ast.parse(text), tuple(text.splitlines()))
    for check, mark in ((private_uses, "private"), (internal_uses, "internal"), (forbidden_builds, "build"),
                        (runtime_uses, "runtime")):
        expected = {i for i, line in enumerate(sample.lines, 1) if line.endswith(f"# {mark}")}
        assert {node.lineno for node in check(sample)} == expected, check.__name__
