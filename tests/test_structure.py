"""Issues 16 and 23: the measures of the code's shape, held (tests/structure.py prints the whole picture)."""
from structure import (PACKAGE, cycles, declared, local_imports, naming_files, read, undeclared, undeclared_units,
                       workflow_kinds)

PICTURE = read()


def test_no_import_cycles_and_every_import_declared_by_its_layer():
    assert cycles(PICTURE) == []
    assert [f"{i.source}:{i.line} → {i.target}" for i in undeclared(PICTURE)] == []
    assert undeclared_units() == []  # every unit's docstring says `May import: …`


def test_the_declared_layers_have_no_cycle_and_name_real_units():
    allowed = declared()
    assert set(allowed) >= {"spec", "requests", "client", "media", "money", "job", "cli", "comfy", "emulator"}
    for unit, names in allowed.items():
        assert names is not None and names <= set(allowed), (unit, names)
    seen: dict[str, int] = {}

    def depth(unit: str, path: tuple[str, ...] = ()) -> int:
        assert unit not in path, f"the declared layers loop: {' → '.join(path + (unit,))}"
        if unit not in seen:
            seen[unit] = 1 + max((depth(u, path + (unit,)) for u in allowed[unit] or ()), default=0)
        return seen[unit]
    for unit in allowed:
        depth(unit)


def test_nodes_top_level_has_at_most_ten_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 10, modules


def test_function_local_imports_are_few_and_each_says_why():
    local = local_imports(PICTURE)
    assert len(local) <= 20, [f"{i.source}:{i.line}" for i in local]
    assert [f"{i.source}:{i.line} → {i.target}" for i in local if not i.why] == []


def test_functions_stay_short_and_the_pipeline_readable():
    long = [f for f in PICTURE.long_functions if not f[0].startswith("nodes.emulator")]
    assert len(long) <= 3, long
    assert PICTURE.lines["nodes.job.pipeline"] <= 500


def test_each_workflow_is_named_in_its_slice_and_at_most_two_other_product_files():
    """Issue 23: a workflow is one slice (nodes/workflows/); the nodes, draft, pipeline, CLI, batch, start-ahead
    and the estimate iterate the workflow table. Outside nodes/spec/ and its own slice, a kind may be named
    only where its one builder is (nodes/requests/tasks.py) and in one more file."""
    kinds = workflow_kinds()
    assert set(kinds) >= {"text_to_video", "image_to_video", "lipsync", "modify"}, kinds
    over = {}
    for kind in kinds:
        others = {m: lines for m, lines in naming_files(kind).items() if m != f"nodes.workflows.{kind}"}
        if len(others) > 2:
            over[kind] = others
    assert over == {}


def test_each_variable_and_setting_is_spelled_in_one_product_file():
    """Issue 23: every RUNWARE_PIXVERSE_* variable and every setting the server reads is named in nodes/config.py
    only; the rest of the product (and web/, which gets them from the spec route) refers to the declaration."""
    import re

    from structure import ROOT

    from nodes import config
    product = [p for p in sorted((ROOT / "nodes").rglob("*.py")) + sorted((ROOT / "web").rglob("*.js"))
               if "__pycache__" not in p.parts]
    spelled: dict[str, set[str]] = {}
    for path in product:
        text = path.read_text(encoding="utf-8")
        for name in set(re.findall(r"RUNWARE_PIXVERSE_[A-Z_]+", text)):
            spelled.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
        for option in config.SETTINGS:
            if option.setting in text:
                spelled.setdefault(option.setting, set()).add(path.relative_to(ROOT).as_posix())
    declared = {o.env for o in config.OPTIONS if o.env and o.env.startswith("RUNWARE_PIXVERSE_")}
    assert set(spelled) == declared | {o.setting for o in config.SETTINGS}, "a variable read but not declared"
    assert {name: files for name, files in spelled.items() if files != {"nodes/config.py"}} == {}
