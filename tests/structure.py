"""The house picture of `nodes/`: import cycles, imports no layer declares, function-local imports,
long functions. `python tests/structure.py` prints it; tests/test_structure.py holds the limits (issues
16 and 23). Plain `ast`: nothing is imported or run.

The layer table is not written here: each unit of `nodes/` (a sub-package, or a top-level module such as
`config.py`) declares in its docstring the line `May import: a, b, c.` (the other units it may import),
and `declared()` reads those lines. An import from one unit into another that its line does not name is
reported, as is a unit without such a line; the root package `nodes` (its `__version__`) is open to all.
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nodes"
EMULATOR = "nodes.emulator"
LONG_FUNCTION = 60
MAY_IMPORT = re.compile(r"^May import:\s*(?P<list>.*?)\.?\s*$", re.M)


def unit_of(module: str) -> str:
    """`nodes.job.pipeline` → `job`; `nodes.config` → `config`; `nodes` → `nodes`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def declared(package: Path = PACKAGE) -> dict[str, set[str] | None]:
    """Each unit → the units its docstring's `May import:` line names (None: no such line)."""
    out: dict[str, set[str] | None] = {}
    for path in sorted(package.iterdir()):
        if path.is_dir() and (path / "__init__.py").is_file():
            unit, doc_file = path.name, path / "__init__.py"
        elif path.suffix == ".py" and path.name != "__init__.py":
            unit, doc_file = path.stem, path
        else:
            continue
        doc = ast.get_docstring(ast.parse(doc_file.read_text(encoding="utf-8"))) or ""
        m = MAY_IMPORT.search(doc)
        if not m:
            out[unit] = None
            continue
        names = re.sub(r"\(.*?\)", "", m["list"])  # a reason in parentheses is not a unit
        out[unit] = {w.strip() for w in names.split(",") if re.fullmatch(r"[a-z_]+", w.strip())}
    return out


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return None if best is None else best[1]


@dataclass
class Import:
    source: str
    target: str
    line: int
    local: bool  # inside a function
    why: str = ""  # the comment on the import's line


@dataclass
class Picture:
    modules: list[str] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    long_functions: list[tuple[str, str, int]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    if not prefix.startswith("nodes"):
        return []
    # `from . import x` may name submodules
    return [f"{prefix}.{a.name}" for a in node.names] + [prefix]


def read(package: Path = PACKAGE) -> Picture:
    pic = Picture()
    files = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    known = {module_name(p) for p in files}
    pic.modules = sorted(known)
    for path in files:
        module = module_name(path)
        text = path.read_text(encoding="utf-8")
        source_lines = text.splitlines()
        pic.lines[module] = len(source_lines)
        tree = ast.parse(text)
        is_package = path.name == "__init__.py"
        funcs: list[ast.AST] = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.append(node)
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONG_FUNCTION:
                    pic.long_functions.append((module, node.name, length))
        local_lines = {n.lineno for f in funcs for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                candidates = _resolve(module, is_package, node)
                # the most specific known module per imported name
                named = [c for c in candidates[:-1] if c in known]
                targets = named or ([candidates[-1]] if candidates and candidates[-1] in known else [])
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("nodes") and a.name in known]
            if not targets:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and not (node.module or "").startswith("nodes"):
                continue
            line_text = source_lines[node.lineno - 1]
            why = line_text.split("#", 1)[1].strip() if "#" in line_text else ""
            for target in targets:
                if target != module:
                    pic.imports.append(Import(module, target, node.lineno, node.lineno in local_lines, why))
    return pic


def cycles(pic: Picture) -> list[list[str]]:
    """Strongly connected components of more than one module (local imports count: they still run)."""
    graph: dict[str, set[str]] = {m: set() for m in pic.modules}
    for imp in pic.imports:
        # a package's __init__ is imported by every submodule; it only counts when it imports back
        graph[imp.source].add(imp.target)
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return out


def undeclared(pic: Picture, package: Path = PACKAGE) -> list[Import]:
    """Imports from one unit into another that the importing unit's `May import:` line does not name."""
    allowed = declared(package)
    found = []
    for imp in pic.imports:
        a, b = unit_of(imp.source), unit_of(imp.target)
        if a == b or b == "nodes":
            continue
        if b not in (allowed.get(a) or set()):
            found.append(imp)
    return found


def undeclared_units(package: Path = PACKAGE) -> list[str]:
    """Units of `nodes/` whose docstring has no `May import:` line."""
    return [u for u, names in declared(package).items() if names is None]


def local_imports(pic: Picture, *, include_emulator: bool = False) -> list[Import]:
    return [i for i in pic.imports if i.local and (include_emulator or not i.source.startswith(EMULATOR))]


def report(pic: Picture) -> str:
    out = []
    cyc = cycles(pic)
    up = undeclared(pic)
    local = local_imports(pic)
    longs = [f for f in pic.long_functions if not f[0].startswith(EMULATOR)]
    out.append(f"modules: {len(pic.modules)}; import cycles: {len(cyc)}; undeclared imports: {len(up)}; "
               f"function-local relative imports (outside the emulator): {len(local)} "
               f"({len(local_imports(pic, include_emulator=True))} with it); functions over {LONG_FUNCTION} "
               f"lines (outside the emulator): {len(longs)}; pipeline.py: {pic.lines.get('nodes.job.pipeline', 0)} lines")
    for c in cyc:
        out.append("  cycle: " + " ↔ ".join(c))
    for i in up:
        out.append(f"  undeclared: {i.source}:{i.line} → {i.target}")
    for m in undeclared_units():
        out.append(f"  no `May import:` line: {m}")
    for i in local:
        out.append(f"  local: {i.source}:{i.line} → {i.target}" + (f"  # {i.why}" if i.why else "  (no reason given)"))
    for m, name, n in sorted(longs, key=lambda f: -f[2]):
        out.append(f"  long: {m}.{name} {n} lines")
    return "\n".join(out)


if __name__ == "__main__":
    print(report(read(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE)))
