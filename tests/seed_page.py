"""Reads Runware's PixVerse page (the seed) into plain Python data, for tests only.

The page is kept outside the project, in a `shared/seed/` folder beside the checkout (or wherever
PIXVERSE_SEED_PATH points); it is not part of a user's clone, so tests that need it skip (saying why)
when it is absent.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

SEED_NAME = "runware-pixverse-provider.md"


def seed_path() -> Optional[Path]:
    root = Path(__file__).resolve().parents[1]
    candidates = [os.environ.get("PIXVERSE_SEED_PATH"), root.parent / "shared" / "seed" / SEED_NAME]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def _bullets(section: str) -> list[str]:
    return re.findall(r"^\s*- `([^`]+)`", section, flags=re.M)


def _property_sections(text: str) -> dict[str, str]:
    marks = list(re.finditer(r"`providerSettings` » `pixverse` » `(\w+)`", text))
    out = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else text.index("## [Video models]")
        out[m.group(1)] = text[m.end():end]
    return out


def _model_sections(text: str) -> dict[str, str]:
    marks = list(re.finditer(r"^### \[([^\]]+)\]", text, flags=re.M))
    return {m.group(1): text[m.end():(marks[i + 1].start() if i + 1 < len(marks) else len(text))]
            for i, m in enumerate(marks)}


def _examples(section: str) -> list[tuple[str, dict]]:
    """(title, task) for each JSON example; the title is the line before the code fence."""
    out = []
    for m in re.finditer(r"([^\n]*)\n\s*```\n\s*(\{.*?\})\n\s*```", section, flags=re.S):
        out.append((m.group(1).strip() or "example", json.loads(m.group(2))))
    return out


def parse(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    props = _property_sections(text)
    intro_end = text.index("## [Video models]")
    result = {
        "styles": _bullets(props["style"]),
        "effects": _bullets(props["effect"]),
        "camera_movements": _bullets(props["cameraMovement"]),
        "motion_modes": _bullets(props["motionmode"]),
        "motion_default": re.search(r"Default: (\w+)", text[text.index("» `motionmode`"):]).group(1),
        "sound_content_range": tuple(int(x) for x in re.search(
            r"`soundEffectContent`[^\n]*Min: (\d+) Max: (\d+)", text).groups()),
        "fast_revert": re.search(r"automatically reverts to `(\w+)` when duration is set to (\d+) seconds "
                                 r"or when resolution is set to (\w+)", text).groups(),
        "property_count": int(re.search(r"(\d+) properties", text).group(1)),
        "effect_count": int(re.search(r"PixVerse offers (\d+) unique effects", text).group(1)),
        "camera_count": int(re.search(r"PixVerse offers (\d+) cinematic camera", text).group(1)),
        "intro_examples": _examples(text[:intro_end]),
        "models": {},
    }
    for title, body in _model_sections(text).items():
        model = {"title": title, "air": re.search(r"\*\*Model AIR ID\*\*: `([^`]+)`", body).group(1),
                 "workflows": re.search(r"\*\*Supported workflows\*\*: ([^\n]+)\.", body).group(1),
                 "examples": _examples(body)}
        if "LipSync" in title:
            model["voices"] = re.findall(r"`([^`]+)`", re.search(r"Available voices: ([^\n]+)", body).group(1))
            model["speech_max"] = int(re.search(r"maximum (\d+) characters", body).group(1))
            model["video_limits"] = tuple(int(x) for x in re.search(
                r"Input video requirements: Maximum (\d+) seconds duration, (\d+)MB", body).groups())
            model["audio_max_seconds"] = int(re.search(r"Audio input requirements: Maximum (\d+) seconds", body).group(1))
            model["max_videos"] = int(re.search(r"up to (\d+) video", body).group(1))
            model["max_audios"] = int(re.search(r"up to (\d+) audio", body).group(1))
        else:
            model["prompt"] = tuple(int(x) for x in re.search(r"Positive prompt: (\d+)-(\d+)", body).groups())
            model["negative_prompt"] = tuple(int(x) for x in re.search(r"Negative prompt: (\d+)-(\d+)", body).groups())
            model["sizes"] = {tier: [(int(w), int(h), ar) for w, h, ar in re.findall(r"(\d+)×(\d+) \(([\d:]+)\)", row)]
                              for tier, row in re.findall(r"\*\*(\d+p)\*\*: ([^\n]+)", body)}
            fps = re.search(r"Frame rate: ([^\n]+)", body).group(1)
            model["fps"] = [int(x) for x in re.findall(r"(\d+) FPS", fps.split("(")[0])]
            model["fps_default"] = int(re.search(r"default: (\d+) FPS", fps).group(1))
            dur = re.search(r"Duration: ([^\n]+)", body).group(1)
            model["durations"] = [int(x) for x in re.findall(r"\d+", dur.split("(")[0])]
            model["duration_default"] = int(re.search(r"default: (\d+)", dur).group(1))
            model["frame_images"] = re.findall(r"(first|last)", re.search(r"Frame images: ([^\n]+)", body).group(1))
            img = re.search(r"Width and height between (\d+)-(\d+) pixels, (\d+)MB", body).groups()
            model["input_image"] = tuple(int(x) for x in img)
            model["settings"] = re.findall(r"\[`(\w+)`\]", re.search(r"Parameters supported: ([^\n]+)", body).group(1))
        result["models"][title] = model
    return result
