"""The node layer's ComfyUI-free half: inputs from the spec, widget values → builder choices."""
import pytest

from input_order import input_order, not_appended, snapshot
from nodes.requests import widgets
from nodes.errors import PixVerseInputError
from nodes.requests.tasks import build_image_to_video, build_lipsync, build_text_to_video
from nodes.spec import load_spec
from nodes.spec.kinds import NODE_IDS


def by_name(ws):
    return {w.name: w for w in ws}


def test_generator_inputs_come_from_the_spec(spec):
    t2v = by_name(widgets.generation_widgets(spec))
    models = spec.models_for("text-to-video")
    assert list(t2v["model"].options) == [m.label for m in models]
    assert t2v["model"].default == spec.default_model("text-to-video").label
    assert list(t2v["style"].options) == ["none", *spec.setting("style").values]
    assert list(t2v["aspect_ratio"].options) == list(dict.fromkeys(a for m in models for a in m.aspect_ratios))
    assert list(t2v["resolution"].options) == list(dict.fromkeys(r for m in models for r in m.resolutions))
    # the union of every model's lengths and rates
    assert list(t2v["duration"].options) == sorted({d for m in models for d in m.durations.all})
    assert set(t2v["fps"].options) >= {f for m in models if m.fps for f in m.fps.all}
    assert list(t2v["motion_mode"].options) == list(spec.setting("motion_mode").values)
    assert t2v["seed"].control_after_generate and t2v["seed"].max == spec.seed.max
    i2v = by_name(widgets.generation_widgets(spec, image_to_video=True))
    assert i2v["aspect_ratio"].options[0] == "auto" and i2v["aspect_ratio"].default == "auto"
    assert i2v["first_frame"].kind == "IMAGE" and i2v["last_frame"].optional
    assert all(w.tooltip for w in [*t2v.values(), *i2v.values(), *widgets.lipsync_widgets(spec)])


def test_input_names_are_the_public_ones():
    """Node ids never change; inputs are only ever appended (saved workflows store widget values by
    position and links by slot), so the current order starts with the committed snapshot's."""
    assert NODE_IDS == {"text_to_video": "RunwarePixVerseTextToVideo",
                                "image_to_video": "RunwarePixVerseImageToVideo",
                                "lipsync": "RunwarePixVerseLipSync", "effect": "RunwarePixVerseEffect",
                                "camera": "RunwarePixVerseCamera", "recover": "RunwarePixVerseRecover",
                                "modify": "RunwarePixVerseModify"}
    assert set(input_order()) == set(snapshot()) == set(NODE_IDS.values())
    assert not_appended(input_order(), snapshot()) == []
    # the rule catches what breaks saved workflows: an input inserted, or one removed
    t2v = snapshot()["RunwarePixVerseTextToVideo"]["widgets"]
    assert not_appended({"RunwarePixVerseTextToVideo": {"widgets": ["new", *t2v], "sockets": ["motion"]}},
                        {"RunwarePixVerseTextToVideo": snapshot()["RunwarePixVerseTextToVideo"]})
    assert not_appended({"RunwarePixVerseTextToVideo": {"widgets": t2v[1:], "sockets": ["motion"]}},
                        {"RunwarePixVerseTextToVideo": snapshot()["RunwarePixVerseTextToVideo"]})


def defaults(image_to_video=False, **over):
    values = {w.name: w.default for w in widgets.generation_widgets(image_to_video=image_to_video)
              if w.kind not in ("IMAGE", "motion")}
    values["prompt"] = "a quiet harbour at dusk"
    values.update(over)
    return values


@pytest.mark.parametrize("model", [m.label for m in load_spec().generators])
def test_the_defaults_are_valid_for_every_model(model):
    built = build_text_to_video(widgets.generation_choices(defaults(model=model)))
    assert model == load_spec().model(built.task["model"]).label  # exactly this model's AIR, not a prefix of it
    built = build_image_to_video(widgets.generation_choices(defaults(True, model=model)), "ref",
                                 first_frame_size=(640, 480), layout="seed")
    assert (built.task["width"], built.task["height"]) in [(960, 720)]  # 4:3 at the default 720p
    built = build_image_to_video(widgets.generation_choices(defaults(True, model=model)), "ref",
                                 first_frame_size=(640, 480), layout="current")
    assert built.task["resolution"] == "720p" and "width" not in built.task


def test_widget_values_map_to_the_wire(spec):
    values = defaults(model=spec.model("pixverse:1@3").label, style="clay", seed=42, duration=8, fps=24,
                      aspect_ratio="9:16", resolution="540p", motion_mode="fast",
                      motion=widgets.motion_value(camera_movement="whip_pan"),
                      sound_effects=True, sound_effect_content="rain on a tin roof")
    built = build_text_to_video(widgets.generation_choices(values), layout="seed")  # fps 24 needs the seed layout
    t = built.task
    assert (t["model"], t["width"], t["height"], t["duration"], t["fps"], t["seed"]) == \
        ("pixverse:1@3", 540, 960, 8, 24, 42)  # v4.5: v4 takes provider settings only at 5 s
    assert t["providerSettings"]["pixverse"] == {"style": "clay", "cameraMovement": "whip_pan",
                                                 "motionMode": "fast", "soundEffectSwitch": True,
                                                 "soundEffectContent": "rain on a tin roof"}
    assert built.notices and "8 s" in built.notices[0]
    built = build_text_to_video(widgets.generation_choices(defaults(model=spec.model("v5").label,
                                                                    motion=widgets.motion_value(effect="kiss kiss"))))
    assert built.task["providerSettings"]["pixverse"]["effect"] == "kiss kiss"
    assert "style" not in built.task["providerSettings"]["pixverse"]  # "none" is left out


def test_a_foreign_motion_value_is_refused():
    with pytest.raises(PixVerseInputError) as caught:
        widgets.generation_choices(defaults(motion={"zoom": 3}))
    assert caught.value.parameter == "motion"


def test_lipsync_widget_defaults_build(spec):
    lip = by_name(widgets.lipsync_widgets(spec))
    built = build_lipsync(video="v", speech_text="hello", voice=lip["voice"].default, model=lip["model"].default)
    assert built.task["model"] == "pixverse:lipsync@1" and built.task["speech"]["voice"] == "auto"


def test_wired_outputs_reads_links_from_the_api_prompt():
    prompt = {"5": {"class_type": "RunwarePixVerseTextToVideo", "inputs": {}},
              "6": {"class_type": "SaveVideo", "inputs": {"video": ["5", 0]}},
              "7": {"class_type": "PreviewAny", "inputs": {"source": ["5", 4]}},
              "8": {"class_type": "Other", "inputs": {"x": ["9", 1]}}}
    assert widgets.wired_outputs(prompt, "5") == {"video", "info"}
    assert widgets.wired_outputs(None, "5") is None
