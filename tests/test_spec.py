"""The capability spec holds every list and number of Runware's PixVerse page."""
import json

import pytest

from nodes.spec import CapabilitySpec, SPEC_PATH


def test_enumerations_match_the_seed(seed, spec):
    assert list(spec.setting("style").values) == seed["styles"]
    assert list(spec.setting("effect").values) == seed["effects"]
    assert len(spec.setting("effect").values) == seed["effect_count"] == 20
    assert list(spec.setting("camera_movement").values) == seed["camera_movements"]
    assert len(spec.setting("camera_movement").values) == seed["camera_count"] == 21
    assert list(spec.setting("motion_mode").values) == seed["motion_modes"]
    assert spec.setting("motion_mode").default == seed["motion_default"]


def test_fast_motion_rule_and_sound_limits(seed, spec):
    reverts_to, duration, resolution = seed["fast_revert"]
    notices = [r for r in spec.rules if r.notice and r.when.get("motion_mode") == ("fast",)]
    assert {r.when.get("duration", (None,))[0] for r in notices} >= {int(duration)}
    assert {r.when.get("resolution", (None,))[0] for r in notices} >= {resolution}
    assert all(f"'{reverts_to}'" in r.notice for r in notices)
    content = spec.setting("sound_effect_content")
    assert (content.min, content.max) == seed["sound_content_range"]


@pytest.mark.parametrize("title", ["PixVerse v3.5", "PixVerse v4", "PixVerse v4.5", "PixVerse v5"])
def test_generation_model_matches_the_seed(seed, spec, title):
    page = seed["models"][title]
    model = spec.model(page["air"])
    assert model.name == title
    assert set(model.workflows) == {w.strip().lower() for w in page["workflows"].split(",")}
    assert (spec.text_limits["prompt"].min, spec.text_limits["prompt"].max) == page["prompt"]
    assert (spec.text_limits["negative_prompt"].min, spec.text_limits["negative_prompt"].max) == page["negative_prompt"]
    table = {tier: [(w, h, ar) for ar, (w, h) in row.items()] for tier, row in model.sizes.items()}
    assert table == page["sizes"]
    assert len(model.all_sizes()) == 20
    assert list(model.fps.values) == page["fps"] and model.fps.default == page["fps_default"]
    assert list(model.durations.all) == page["durations"] and model.durations.default == page["duration_default"]
    assert list(model.frame_images) == page["frame_images"]
    lo, hi, mb = page["input_image"]
    assert (spec.input_image.min_side, spec.input_image.max_side) == (lo, hi)
    assert spec.input_image.max_bytes == mb * 1024 * 1024
    # Every setting the page names is accepted; camera only where the page names it (DESIGN §2.1);
    # sound on every generator (DESIGN §2.7).
    wires = {s.wire: s.input for s in spec.settings_of(model)}
    assert model.settings_at == "providerSettings.pixverse"
    assert set(page["settings"]) <= set(wires)
    camera = spec.setting("camera_movement")
    assert model.supports(camera.input) == (camera.wire in page["settings"])
    assert model.supports("sound_effects") and model.supports("sound_effect_content")


def test_lipsync_matches_the_seed(seed, spec):
    page = seed["models"]["PixVerse LipSync"]
    model = spec.model(page["air"])
    assert model.workflows == ("video-to-video",)
    assert list(spec.voices.values) == page["voices"]
    assert spec.text_limits["speech_text"].max == page["speech_max"]
    limits = spec.lipsync_limits
    assert (limits.video_max_seconds, limits.video_max_bytes) == (page["video_limits"][0], page["video_limits"][1] * 1024 * 1024)
    assert limits.audio_max_seconds == page["audio_max_seconds"]
    assert (limits.max_reference_videos, limits.max_input_audios) == (page["max_videos"], page["max_audios"])


def test_v35_three_by_four_row_differs(spec):
    assert spec.model("pixverse:1@1").size("720p", "3:4") == (540, 720)
    assert spec.model("pixverse:1@2").size("720p", "3:4") == (720, 960)


def test_nearest_aspect_ratio(spec):
    v4 = spec.model("v4")
    assert v4.nearest_aspect_ratio("720p", 1920, 1080) == "16:9"
    assert v4.nearest_aspect_ratio("720p", 1000, 1010) == "1:1"
    assert v4.nearest_aspect_ratio("1080p", 600, 1100) == "9:16"
    assert v4.nearest_aspect_ratio("540p", 700, 900) == "3:4"


def _setting(raw, name):
    return next(s for s in raw["settings"] if s["input"] == name)


def test_spec_loader_refuses_broken_data():
    raw = json.loads(SPEC_PATH.read_text())
    _setting(raw, "motion_mode")["default"] = "slow"
    with pytest.raises(ValueError, match="slow"):
        CapabilitySpec.from_raw(raw)
    raw = json.loads(SPEC_PATH.read_text())
    raw["models"][0]["sizes"] = "v9"
    with pytest.raises(ValueError, match="v9"):
        CapabilitySpec.from_raw(raw)
    raw = json.loads(SPEC_PATH.read_text())
    raw["models"][1]["settings"] = ["style", "watermark"]
    with pytest.raises(ValueError, match="watermark"):
        CapabilitySpec.from_raw(raw)
    raw = json.loads(SPEC_PATH.read_text())
    raw["rules"].append({"when": {"duration": [8]}, "forbid": {"style": ["anime"]}})
    with pytest.raises(ValueError, match="why"):
        CapabilitySpec.from_raw(raw)
    raw = json.loads(SPEC_PATH.read_text())
    raw["default_models"]["text-to-video"] = "lipsync"
    with pytest.raises(ValueError, match="default model"):
        CapabilitySpec.from_raw(raw)


def test_a_new_model_is_one_edit():
    raw = json.loads(SPEC_PATH.read_text())
    raw["models"].append({"key": "vX", "name": "PixVerse vX", "air": "pixverse:1@99",
                          "workflows": ["text-to-video"], "sizes": "v4+"})
    spec = CapabilitySpec.from_raw(raw)
    v6 = spec.model("pixverse:1@99")
    assert v6.fps.default == 16 and v6.size("1080p", "9:16") == (1080, 1920)
    assert v6 in spec.generators
