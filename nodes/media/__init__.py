"""Media codecs: IMAGE/AUDIO/video tensors ↔ upload-ready bytes and files (torch, numpy, PIL, PyAV).

No ComfyUI imports here. PIL and PyAV are imported inside the functions that use them.
Size and length limits are arguments; callers read them from `nodes.spec.load_spec()`.

May import: errors.
"""
from .audio import EncodedAudio, audio_duration, check_audio, encode_wav, load_audio_file, silence
from .images import (EncodedImage, data_uri, encode_image_for_upload, fit_image_size, image_to_uint8,
                     load_image_file)
from .render import render_test_video, sine_tone
from .video import DecodedVideo, VideoInfo, decode_video, encode_frames_mp4, probe_video, reencode_to_fit

__all__ = [
    "EncodedAudio", "audio_duration", "check_audio", "encode_wav", "load_audio_file", "silence",
    "EncodedImage", "data_uri", "encode_image_for_upload", "fit_image_size", "image_to_uint8",
    "load_image_file",
    "render_test_video", "sine_tone",
    "DecodedVideo", "VideoInfo", "decode_video", "encode_frames_mp4", "probe_video", "reencode_to_fit",
]
