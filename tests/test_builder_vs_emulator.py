"""Our builders and the emulator's Runware-side validation agree on every choice a user can make.

The builders are what stops a bad request before it is billed; the emulator stands in for Runware.
Walking every model × listed size × duration × fps × motion choice, a task the builder accepts must
be accepted by the emulator, and a choice the builder refuses must also be refused there.
"""
import itertools

import pytest

from nodes.emulator.validate import TaskError, validate_video_task
from nodes.errors import PixVerseInputError
from nodes.requests import GenerationChoices, build_text_to_video


def emulator_accepts(task, spec) -> bool:
    try:
        validate_video_task({**task, "deliveryMethod": "async", "includeCost": True}, spec, {}, {})
        return True
    except TaskError:
        return False


def test_every_listed_combination_is_accepted_by_both(spec):
    checked = 0
    for model in spec.generators:
        for (w, h), duration, fps in itertools.product(model.all_sizes(), model.duration.values, model.fps.values):
            for effect, camera in [(None, None), (spec.enums.effect.values[0], None),
                                   (None, spec.enums.cameraMovement.values[-1])]:
                choices = GenerationChoices(model=model.air, prompt="a paper boat on a stream", width=w, height=h,
                                            duration=duration, fps=fps, effect=effect, camera_movement=camera,
                                            motion_mode="fast", style=spec.enums.style.values[checked % 5])
                try:
                    task = build_text_to_video(choices, spec=spec).task
                except PixVerseInputError as exc:
                    assert camera and not model.supports("cameraMovement"), exc
                    bad = {**build_text_to_video(choices.model_copy(update={"camera_movement": None}),
                                                 spec=spec).task}
                    bad["providerSettings"]["pixverse"]["cameraMovement"] = camera
                    assert not emulator_accepts(bad, spec)
                    continue
                assert emulator_accepts(task, spec), task
                checked += 1
    assert checked == 2 * 20 * 2 * 2 * 2 + 2 * 20 * 2 * 2 * 3


@pytest.mark.parametrize("field,value", [("width", 202), ("duration", 6), ("fps", 30)])
def test_refusals_agree(spec, field, value):
    task = build_text_to_video(GenerationChoices(model="pixverse:1@2", prompt="a kite"), spec=spec).task
    task[field] = value
    assert not emulator_accepts(task, spec)
    kw = {"width": task["width"], "height": task["height"], field: value} if field == "width" else {field: value}
    with pytest.raises(PixVerseInputError):
        build_text_to_video(GenerationChoices(model="pixverse:1@2", prompt="a kite", **kw), spec=spec)
