"""Issue 16's measures of the code's shape, held (tests/structure.py prints the whole picture)."""
from structure import cycles, local_imports, read, unlayered, upward

PICTURE = read()


def test_no_import_cycles_and_no_arrow_back_up_the_layers():
    assert cycles(PICTURE) == []
    assert [f"{i.source}:{i.line} → {i.target}" for i in upward(PICTURE)] == []
    assert unlayered(PICTURE) == []  # every module has a layer in tests/structure.py


def test_function_local_imports_are_few_and_each_says_why():
    local = local_imports(PICTURE)
    assert len(local) <= 20, [f"{i.source}:{i.line}" for i in local]
    assert [f"{i.source}:{i.line} → {i.target}" for i in local if not i.why] == []


def test_functions_stay_short_and_the_pipeline_readable():
    long = [f for f in PICTURE.long_functions if not f[0].startswith("nodes.emulator")]
    assert len(long) <= 3, long
    assert PICTURE.lines["nodes.job.pipeline"] <= 500
