"""The README's two fresh-machine commands exist, and .ci/run is the test one."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def block(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {name} -->\n```bash\n(.+?)\n```\n<!-- /{name} -->", text, flags=re.S)
    assert m, f"README has no {name} block"
    return m.group(1)


def test_readme_commands():
    main, tests = block("main-command"), block("test-command")
    assert "generate text-to-video --offline" in main
    assert "pytest" in tests
    assert "test-command" in (ROOT / ".ci" / "run").read_text()


def test_requirements_never_list_torch():
    for name in ("requirements.txt", "requirements-dev.txt"):
        lines = [l.split("#")[0].strip() for l in (ROOT / name).read_text().splitlines()]
        assert not any(re.match(r"torch\b", l) for l in lines), name


def test_the_configuration_table_lists_exactly_the_declared_variables_and_settings():
    """README's table between its config-table markers is the declaration's (nodes/config.py), and names every
    declared variable and setting and nothing else."""
    from nodes import config

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- config-table -->\n(.+?)\n<!-- /config-table -->", text, flags=re.S)
    assert m, "README has no config-table block"
    table = m.group(1)
    assert table == config.markdown_table(), "regenerate it: python -m nodes options --config"
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [re.match(r"\| `([A-Z_]+)`", r).group(1) for r in rows] == [o.env for o in config.OPTIONS]
    assert set(re.findall(r"Runware\.PixVerse\.\w+", table)) == {o.setting for o in config.SETTINGS}
