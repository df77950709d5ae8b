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
