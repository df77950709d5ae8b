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


def test_readme_is_for_users_and_short():
    """Issue 23 item 7: a README for users, at most 300 lines; the rest lives in docs/."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines"


def test_readme_points_to_the_docs_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", readme))
    assert {"docs/development.md", "docs/architecture.md", "docs/benchmarks.md"} <= linked
    for doc in linked:
        assert (ROOT / doc).is_file(), doc


def test_quick_tier_command_in_development_docs():
    """The quick command (no ComfyUI, no browser) for a change in progress, beside the full one."""
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    quick = re.findall(r"^\S*python -m pytest .*-m \"not comfyui and not browser\".*$", text, flags=re.M)
    assert quick, "docs/development.md has no quick-tier command"
    assert block("test-command").splitlines()[-1].split("&& ")[-1].split(" -m pytest")[0] in text


def test_every_named_module_exists():
    """Issue 23 item 8: the README, docs/, web/, the pack's and the tests' own text name only files that are
    there (`nodes/…py`, `nodes/…json`), so a move that leaves a stale path behind fails here."""
    sources = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "web").rglob("*.js"),
               *(ROOT / "nodes").rglob("*.py"), *(ROOT / "tests").glob("*.py")]
    named = {(source.relative_to(ROOT).as_posix(), path)
             for source in sources
             for path in re.findall(r"\bnodes/[A-Za-z_/]+\.(?:py|json)\b", source.read_text(encoding="utf-8"))}
    assert named
    missing = sorted(f"{source}: {path}" for source, path in named if not (ROOT / path).is_file())
    assert not missing, missing


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
