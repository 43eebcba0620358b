"""The code's shape: imports run one way (no cycle among vibes_eval's modules, lazy and string imports included);
callers import each name from its home (no re-exports); functions stay small, and a long module says why."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "vibes_eval"
MODULE_LINES = 600
"""Above this, a module's docstring says why it is one module (a line starting `Size:`)."""
STRING_IMPORT = re.compile(r"^(vibes_eval(?:\.\w+)+)(?::\w+)?$")


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Line numbers of imports under `if TYPE_CHECKING:` (annotations only: never executed)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            lines |= {
                n.lineno for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))
            }
    return lines


def import_graph() -> dict[str, set[str]]:
    """Module -> the vibes_eval modules it imports anywhere (top level or inside functions, or by a string name)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        skip = _type_checking_only(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and STRING_IMPORT.match(node.value):
                targets = [STRING_IMPORT.match(node.value).group(1)]  # "module:Class" (a lazy registry) or a module name
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state, stack = [], {}, []

    def visit(u: str) -> None:
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                cycles.append(stack[stack.index(v) :] + [v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_cycle():
    graph = import_graph()
    assert "vibes_eval.api" in graph["vibes_eval.cli.run"]  # the graph sees real edges
    assert "vibes_eval.adapters.hf.model" in graph["vibes_eval.adapters.registry"]  # and the registry's "module:Class" strings
    assert find_cycles(graph) == []


def _defined(tree: ast.Module) -> set[str]:
    """Names a module defines itself at top level (functions, classes, assignments; not imports)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.col_offset == 0:
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.col_offset == 0:
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def test_every_name_is_imported_from_its_home():
    """No compatibility layer: `from vibes_eval.X import name` finds `name` defined in X (or X.name is a module).

    The package's own `vibes_eval/__init__.py` is the one public facade (lazy names) and is exempt.
    """
    mods = _modules()
    defined = {m: _defined(ast.parse(p.read_text())) for m, p in mods.items()}
    wrong = []
    for path in [*PACKAGE.rglob("*.py"), *(REPO / "tests").glob("*.py"), *(REPO / "bench").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level or not (node.module or "").startswith("vibes_eval."):
                continue
            for alias in node.names:
                if node.module not in mods:
                    wrong.append(f"{path.relative_to(REPO)}:{node.lineno}: no module {node.module}")
                elif alias.name not in defined[node.module] and f"{node.module}.{alias.name}" not in mods:
                    wrong.append(f"{path.relative_to(REPO)}:{node.lineno}: {alias.name} is not defined in {node.module}")
    assert wrong == []


def test_no_module_getattr_and_no_namespace_past_the_parser():
    """Moved names are not kept alive by a module `__getattr__`; nothing past the parser reads an argparse Namespace
    with getattr (RunOptions.from_args is the one place that reads it)."""
    found = []
    for name, path in _modules().items():
        text = path.read_text()
        if name != "vibes_eval" and re.search(r"^def __getattr__", text, re.M):
            found.append(f"{name}: module __getattr__")
        if "getattr(args" in text:
            found.append(f"{name}: getattr(args, ...)")
    assert found == []


def test_commands_return_the_named_exit_codes():
    """A command's exit code is one of errors.EXIT_*, never a bare 0-3 (the codes have one home)."""
    found = []
    for name, path in _modules().items():
        if ".toy" in name:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and (node.name.endswith("_command") or node.name in ("main", "run_one")):
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Constant) and ret.value.value in (0, 1, 2, 3):
                        found.append(f"{name}.{node.name}: return {ret.value.value}")
    assert found == []


def test_long_modules_say_why_and_no_function_is_over_80_lines_outside_toy():
    too_long = []
    for name, path in _modules().items():
        text = path.read_text()
        lines = len(text.splitlines())
        doc = ast.get_docstring(ast.parse(text)) or ""
        if lines > MODULE_LINES and not any(line.startswith("Size:") for line in doc.splitlines()):
            too_long.append(f"{name}: {lines} lines and no `Size:` line in its docstring saying why it is one module")
        if ".toy" in name:  # the toy factory's training loops are exempt (issue 10)
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                too_long.append(f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert too_long == []
