"""What ComfyUI Manager and the Comfy Registry read: pyproject.toml, LICENSE, the icon, requirements,
the web directory, the templates' thumbnails and the README's pictures."""
from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def requirement_lines(name: str) -> list[str]:
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def test_project_table_meets_the_registry_rules():
    project = PYPROJECT["project"]
    name = project["name"]
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", name)
    assert not re.search(r"[._-]{2}", name) and "comfyui" not in name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["description"] and project["urls"]["Repository"].startswith("https://")
    assert project["license"] == {"file": "LICENSE"}
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_dependencies_are_only_what_comfyui_does_not_ship():
    assert requirement_lines("requirements.txt") == ["httpx>=0.27", "jsonschema>=4.18"]  # jsonschema: issue 24
    assert PYPROJECT["project"]["dependencies"] == requirement_lines("requirements.txt")
    browser = requirement_lines("requirements-browser.txt")
    assert [re.split(r"[<>=!~ ]", line)[0] for line in browser] == ["playwright"]
    for name in ("requirements.txt", "requirements-browser.txt"):
        assert not any(re.match(r"torch\b", line) for line in requirement_lines(name)), name


def test_tool_comfy_table_and_icon():
    comfy = PYPROJECT["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"] == "PixVerse (Runware)"
    icon_url = comfy["Icon"]
    assert icon_url.startswith("https://") and icon_url.endswith("/main/web/icon.svg")
    svg = ET.parse(ROOT / "web" / "icon.svg").getroot()
    assert svg.tag.endswith("svg")
    assert int(svg.get("width")) <= 800 and int(svg.get("height")) <= 400  # the registry's limit
    assert re.fullmatch(r">=\d+\.\d+\.\d+", comfy["requires-comfyui"])


def test_web_directory_holds_the_extension():
    init = (ROOT / "__init__.py").read_text(encoding="utf-8")
    assert re.search(r'^WEB_DIRECTORY = "\./web"$', init, flags=re.M)
    js = (ROOT / "web" / "pixverse.js").read_text(encoding="utf-8")
    assert 'from "../../scripts/app.js"' in js and "registerExtension" in js
    assert "/runware/pixverse/spec" in js and "/runware/pixverse/key" in js


def test_every_template_has_a_thumbnail():
    for workflow in (ROOT / "example_workflows").glob("*.json"):
        thumb = workflow.with_suffix(".jpg")
        assert thumb.exists() and thumb.read_bytes()[:3] == b"\xff\xd8\xff", thumb.name


def test_readme_pictures_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pictures = re.findall(r"\]\((docs/[^)]+\.png)\)", readme)
    assert pictures and any("screenshot-run" in p for p in pictures)
    for picture in pictures:
        data = (ROOT / picture).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", picture


def test_description_names_every_model_family():
    """What the registry shows names each family the spec serves (v3.5 … v6, LipSync, Modify)."""
    from nodes.spec import load_spec

    description = PYPROJECT["project"]["description"]
    families = [model.name.removeprefix("PixVerse ") for model in load_spec().models]
    missing = [f for f in families if not re.search(rf"(?<![\w.]){re.escape(f)}(?!\w|\.\d)", description)]
    assert families and not missing, missing
