"""LipSync: a reference video (or frames) and speech — an audio clip or text-to-speech — → the video
lip-synced. No prompt; exactly one of `audio` or `speech_text`."""
from __future__ import annotations

from typing import Optional

from ..requests.tasks import BuiltTask, build_lipsync, resolve_model
from ..requests.widgets import Widget, model_options
from ..spec.kinds import workflow_of
from .protocol import BuildCall, Media, Workflow

KIND = "lipsync"


def _widgets(spec) -> list[Widget]:
    lim = spec.lipsync_limits
    workflow = workflow_of(KIND)
    return [
        Widget("model", "combo", "LipSync model.", model_options(spec, workflow), spec.default_model(workflow).label),
        Widget("video", "VIDEO", f"Reference video (at most {lim.video_max_seconds:g} s). Connect this or frames.",
               optional=True),
        Widget("frames", "IMAGE", "Reference frames instead of a video; encoded to MP4 at frames_fps.", optional=True),
        Widget("frames_fps", "float", "Frame rate of the frames input.", default=24.0, min=1.0, max=120.0, step=1.0),
        Widget("audio", "AUDIO", f"Speech to lip-sync (at most {lim.audio_max_seconds:g} s). Connect this or "
               "write a speech_text.", optional=True),
        Widget("speech_text", "text", "Text to speak instead of audio (text-to-speech, at most "
               f"{spec.text_limits['speech_text'].max} characters). Leave empty when audio is connected.",
               default=""),
        Widget("voice", "combo", "Voice for speech_text; auto lets PixVerse choose.", spec.voices.values,
               spec.voices.default),
    ]


def _model(values, spec):
    return resolve_model(spec, values.get("model") or spec.default_model(workflow_of(KIND)).air, workflow_of(KIND))


def _build(call: BuildCall, layout: Optional[str]) -> BuiltTask:
    v = call.values
    return build_lipsync(video=call.refs["video"], audio=call.refs["audio"], speech_text=v.get("speech_text") or None,
                         voice=v.get("voice"), model=_model(v, call.spec).air, spec=call.spec, layout=layout)


def _add_flags(p, spec) -> None:
    p.add_argument("--speech-text", default=None, help="text to speak instead of --audio")
    p.add_argument("--voice", default=None, help=", ".join(spec.voices.values))


WORKFLOW = Workflow(
    kind=KIND, command="lipsync",
    media=(Media("video", "video", help="reference video file (≤ 30 s)", required=True, assumed=True, frames=True,
                 purpose="the face to lip-sync"),
           Media("audio", "audio", help="audio file (≤ 30 s)", assumed=True, unless="speech_text")),
    widgets=_widgets, model=_model, build=_build, add_flags=_add_flags,
    values=lambda args: {"speech_text": args.speech_text, "voice": args.voice},
)
