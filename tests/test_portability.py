"""What differs on Windows, checked on any system: every text file the product opens names its encoding
(Windows would otherwise use its code page, cp1252 and the like, where × → ≤ do not exist)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _mode(call: ast.Call, position: int) -> str | None:
    for kw in call.keywords:
        if kw.arg == "mode" and isinstance(kw.value, ast.Constant):
            return kw.value.value
    if len(call.args) > position and isinstance(call.args[position], ast.Constant):
        return call.args[position].value
    return None if len(call.args) > position or any(kw.arg == "mode" for kw in call.keywords) else "r"


def text_opens_without_encoding(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        named = {kw.arg for kw in node.keywords}
        where = f"{name}:{node.lineno}"
        if isinstance(func, ast.Name) and func.id == "open" or (
                isinstance(func, ast.Attribute) and func.attr == "fdopen"):
            mode = _mode(node, 1)
            if mode is not None and "b" not in mode and "encoding" not in named:
                found.append(f"{where}: {ast.unparse(node)[:80]}")
        elif isinstance(func, ast.Attribute) and func.attr in ("read_text", "write_text"):
            needed = 0 if func.attr == "read_text" else 1  # the encoding's position
            if "encoding" not in named and len(node.args) <= needed:
                found.append(f"{where}: {ast.unparse(node)[:80]}")
    return found


def test_every_text_file_the_product_opens_names_its_encoding():
    found = []
    for path in sorted((ROOT / "nodes").rglob("*.py")):
        found += text_opens_without_encoding(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == []


def test_the_check_sees_what_it_looks_for():
    bad = "open(p)\nopen(p, 'w')\nos.fdopen(fd, 'w')\nPath(p).read_text()\nPath(p).write_text(t)\n"
    good = ("open(p, 'rb')\nopen(p, 'w', encoding='utf-8')\nos.fdopen(fd, 'wb')\nPath(p).read_text('utf-8')\n"
            "Path(p).write_text(t, encoding='utf-8')\nav.open(p)\n")
    assert len(text_opens_without_encoding(bad, "bad")) == 5
    assert text_opens_without_encoding(good, "good") == []
