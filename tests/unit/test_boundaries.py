"""Registries match the config choices; the layers only point down; the pure layers import
nothing heavy.

The layer order is docs/ARCHITECTURE.md's "Layers": a module may import (at module level,
inside a function, or under TYPE_CHECKING: all count) only from its own package or from a
package on a lower line of ``LAYERS``. A new package, or a new edge that points up or sideways,
fails ``test_every_import_points_down_the_layers`` with the offending lines.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from seedgrpo.algorithms import (
    BASELINES,
    CLUSTERINGS,
    GEOMETRY_MEASURES,
    LOSS_AGGREGATIONS,
    MODULATIONS,
    SE_ESTIMATORS,
    UNCERTAINTY_SOURCES,
    Registry,
)
from seedgrpo.config.sections import AlgorithmConfig, GcpoConfig
from seedgrpo.rewards import REWARDS


@pytest.mark.parametrize(
    ("model", "field", "registry"),
    [
        (AlgorithmConfig, "estimator", SE_ESTIMATORS),
        (AlgorithmConfig, "clustering", CLUSTERINGS),
        (AlgorithmConfig, "baseline", BASELINES),
        (AlgorithmConfig, "loss_aggregation", LOSS_AGGREGATIONS),
        (GcpoConfig, "measure", GEOMETRY_MEASURES),
    ],
)
def test_config_choices_are_the_registry_names(model, field, registry) -> None:
    """Each registered name loads, the default is registered, and nothing else loads."""
    assert model.model_fields[field].default in registry.names()
    for name in registry.names():
        assert getattr(model(**{field: name}), field) == name
    with pytest.raises(ValueError, match=registry.names()[0]):
        model(**{field: "no_such_name"})


# the names plug-ins extend are strings checked against their registry: the package's own
# entries are the built-ins the field's description (docs/CONFIG.md) names
@pytest.mark.parametrize(
    ("field", "registry", "builtins"),
    [
        ("uncertainty", UNCERTAINTY_SOURCES, {"semantic_entropy", "gcpo"}),
        ("modulation", MODULATIONS, {"none", "linear", "exp", "focal", "inverse"}),
        ("reward", REWARDS, {"math"}),
    ],
)
def test_pluggable_choices_are_the_registry(field, registry, builtins) -> None:
    own = {name for name in registry.names()
           if getattr(getattr(registry.get(name), "fn", registry.get(name)), "__module__",
                      "").startswith("seedgrpo.")}
    assert own == builtins
    description = AlgorithmConfig.model_fields[field].description
    assert all(f"`{name}`" in description for name in builtins)
    for name in registry.names():
        assert getattr(AlgorithmConfig(**{field: name}), field) == name
    with pytest.raises(ValueError, match=f"is not one of '{registry.names()[0]}'"):
        AlgorithmConfig(**{field: "no_such_name"})


def test_registry_refuses_a_taken_name() -> None:
    registry: Registry = Registry("thing")
    registry.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        registry.register("a")(lambda: 2)


FORBIDDEN = ("ray", "torch.distributed", "vllm", "deepspeed", "mlflow")


@pytest.mark.parametrize("module", ["seedgrpo.algorithms", "seedgrpo.config", "seedgrpo.rewards",
                                    "seedgrpo.cli.sweep", "seedgrpo.fileio", "seedgrpo._compat",
                                    "seedgrpo.redact"])
def test_pure_layers_import_nothing_heavy(module: str) -> None:
    """A fresh interpreter imports the module; none of the runtime stacks may come along."""
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "bad += ['torch'] if 'torch' in sys.modules else []\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"


def test_policy_loss_loads_torch_lazily() -> None:
    code = ("import sys, seedgrpo.algorithms as A\nassert 'torch' not in sys.modules\n"
            "A.policy_loss\nassert 'torch' in sys.modules\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_device_strings_stay_out_of_pure_layers() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "platform" / "seedgrpo"
    offenders = [
        str(path.relative_to(root))
        for sub in ("algorithms", "config", "rewards")
        for path in (root / sub).rglob("*.py")
        if '"cuda"' in path.read_text() or "'cuda'" in path.read_text()
    ]
    assert offenders == []


# -- the import graph ------------------------------------------------------------------------------
PACKAGE_DIR = Path(__file__).resolve().parents[2] / "platform" / "seedgrpo"

# lowest first; each name is a subpackage or a top-level module of seedgrpo ("seedgrpo" is the
# package's own __init__, which holds only the version)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("seedgrpo", "fileio", "_compat", "redact"),  # leaves: stdlib and third-party only
    ("algorithms",),  # pure math
    ("rewards",),  # verifiable rewards, the math-verify worker
    ("config",),  # the schema, which names the registries' entries
    ("data", "models", "tracking"),
    ("rollout", "learner", "evaluation"),
    ("runtime",),  # one training run on Ray
    ("sweep",),
    ("cli",),
)
# imports between two packages of one line that are allowed, (importer, imported)
SIDEWAYS: frozenset[tuple[str, str]] = frozenset({
    ("evaluation", "rollout"),  # evaluation generates its samples with an engine
})


def _module_name(path: Path, package_dir: Path) -> tuple[list[str], bool]:
    """The dotted parts of the module at ``path``, and whether it is a package's __init__."""
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    if parts[-1] == "__init__":
        return parts[:-1], True
    return parts, False


def _imported(node: ast.Import | ast.ImportFrom, module: list[str], is_package: bool
              ) -> Iterator[str]:
    """The modules an import statement names, relative ones resolved: ``from a.b import c``
    names ``a.b``, and ``a.b.c`` too when ``a.b`` is the root (``from seedgrpo import runtime``
    reaches ``seedgrpo.runtime``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:  # from . import x / from ..pkg import y
        base = module if is_package else module[:-1]
        base = base[:len(base) - (node.level - 1)]
        prefix = ".".join([*base, *([node.module] if node.module else [])])
    else:
        prefix = node.module or ""
    if "." in prefix:
        yield prefix
    else:
        yield from (f"{prefix}.{alias.name}" for alias in node.names)


def _unit(dotted: str, root: str, units: set[str]) -> str | None:
    """The layer table's name for a dotted module: its top-level package or module under
    ``root``; ``root`` itself for anything else in the root's __init__; None outside it."""
    parts = dotted.split(".")
    if parts[0] != root:
        return None
    if len(parts) > 1 and parts[1] in units:
        return parts[1]
    return root


def upward_imports(package_dir: Path, layers: Sequence[Sequence[str]],
                   sideways: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """Every import under ``package_dir`` that breaks the layer order, one line each:
    ``file:line imports X (layer a -> layer b)``; a module outside every layer is one too."""
    root = package_dir.name
    line_of = {name: i for i, names in enumerate(layers) for name in names}
    units = {p.stem if p.is_file() else p.name for p in package_dir.iterdir()
             if (p.is_dir() and (p / "__init__.py").is_file())
             or (p.suffix == ".py" and p.name != "__init__.py")}
    problems = [f"{root}/{unit} is in no layer: add it to LAYERS"
                for unit in sorted(units - set(line_of))]
    for path in sorted(package_dir.rglob("*.py")):
        module, is_package = _module_name(path, package_dir)
        own = _unit(".".join(module), root, units)
        assert own is not None
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for dotted in _imported(node, module, is_package):
                target = _unit(dotted, root, units)
                if target is None or target == own or own not in line_of:
                    continue
                if target not in line_of:
                    continue  # reported above as a module in no layer
                a, b = line_of[own], line_of[target]
                if b < a or (b == a and (own, target) in sideways):
                    continue
                where = path.relative_to(package_dir.parent).as_posix()
                problems.append(f"{where}:{node.lineno} imports {dotted} "
                                f"(layer {a} {own} -> layer {b} {target})")
    return problems


def test_every_import_points_down_the_layers() -> None:
    problems = upward_imports(PACKAGE_DIR, LAYERS, SIDEWAYS)
    assert not problems, "imports against the layer order:\n" + "\n".join(problems)


def test_the_layer_table_names_every_package_once() -> None:
    names = [name for line in LAYERS for name in line]
    assert len(names) == len(set(names))
    packages = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(names), packages - set(names)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


FAKE_LAYERS = (("pkg", "leaf"), ("low",), ("mid", "side"), ("high",))


def test_the_checker_finds_upward_imports_of_every_kind(tmp_path: Path) -> None:
    """A planted tree with one upward import of each form: all are reported, with file and
    line, and the downward and same-package ones are not."""
    package = _write(tmp_path, {
        "__init__.py": "",
        "leaf.py": "import json\n",
        "low/__init__.py": "from pkg.low import a\n",
        "low/a.py": ("from __future__ import annotations\n"
                     "from typing import TYPE_CHECKING\n"
                     "import pkg.leaf\n"
                     "from . import b\n"
                     "if TYPE_CHECKING:\n"
                     "    from pkg.mid.m import Thing\n"
                     "def f():\n"
                     "    from ..high import h\n"
                     "    return h\n"),
        "low/b.py": "from pkg import mid\n",
        "mid/__init__.py": "",
        "mid/m.py": "from pkg.low.a import f\nfrom ..side import s\nclass Thing: ...\n",
        "side/__init__.py": "",
        "side/s.py": "",
        "high/__init__.py": "",
        "high/h.py": "from pkg.mid.m import Thing\nimport pkg.low\n",
    })
    problems = upward_imports(package, FAKE_LAYERS)
    assert problems == [
        "pkg/low/a.py:6 imports pkg.mid.m (layer 1 low -> layer 2 mid)",
        "pkg/low/a.py:8 imports pkg.high (layer 1 low -> layer 3 high)",
        "pkg/low/b.py:1 imports pkg.mid (layer 1 low -> layer 2 mid)",
        "pkg/mid/m.py:2 imports pkg.side (layer 2 mid -> layer 2 side)",
    ]
    assert upward_imports(package, FAKE_LAYERS, frozenset({("mid", "side")})) == problems[:3]


def test_the_checker_reports_a_package_outside_the_layers(tmp_path: Path) -> None:
    package = _write(tmp_path, {"__init__.py": "", "leaf.py": "", "extra/__init__.py": ""})
    assert upward_imports(package, (("pkg", "leaf"),)) == [
        "pkg/extra is in no layer: add it to LAYERS"]
