"""The layout's rules, read from the code: product code never imports the benchmarks or the tests,
`events/` (the facts) never imports `recommendations/` (what is derived from them), and the engine
is arithmetic only (no Django, no data sets)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("matchmaking_site", "events", "recommendations", "dashboard", "portal")


def _imports(package: str) -> list[tuple[str, str]]:
    """(file, imported module) for every import under `package`, relative ones resolved."""
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        base = module.split(".")[: -1 if path.name != "__init__.py" else None]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out += [(str(path.relative_to(ROOT)), alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                parts = base[: len(base) - node.level + 1] if node.level else []
                name = ".".join([*parts, node.module] if node.module else parts)
                out.append((str(path.relative_to(ROOT)), name))
    return out


@pytest.mark.parametrize("package", PRODUCT)
def test_product_code_never_imports_benchmarks_or_tests(package):
    bad = [(f, m) for f, m in _imports(package) if m.split(".")[0] in ("benchmarks", "tests")]
    assert bad == []


def test_the_facts_never_import_what_is_derived_from_them():
    assert [(f, m) for f, m in _imports("events") if m.split(".")[0] in ("recommendations", "dashboard")] == []


def test_the_engine_is_arithmetic_only():
    allowed = {"__future__", "dataclasses", "json", "math", "os", "time", "typing", "collections", "numpy", "scipy"}
    allowed |= {"numba", "sklearn", "threading", "functools", "heapq", "pathlib", "recommendations"}
    found = {m.split(".")[0] for _, m in _imports("recommendations/engine")}
    assert found <= allowed, found - allowed
    inside = {m for _, m in _imports("recommendations/engine") if m.startswith("recommendations")}
    assert all(m.startswith("recommendations.engine") for m in inside), inside


def _imported_names(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) for every absolute import of project code in ``path``; name None for
    ``import module``."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out += [(node.module, alias.name) for alias in node.names]
    return [(m, n) for m, n in out if m.split(".")[0] in (*PRODUCT, "benchmarks")]


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_every_benchmark_imports_what_exists(path):
    """The benchmarks are scripts no test runs (they take minutes and print figures), so a moved
    module broke two of them unnoticed (contact_quality.py and exposure_cap.py imported the SFHH09
    loader from the engine after it moved to recommendations/evaluation/). Every project name they
    import must exist."""
    import importlib

    missing = []
    for module, name in _imported_names(path):
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"{module}: {exc}")
            continue
        if name is not None and name != "*" and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert missing == []
