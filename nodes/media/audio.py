"""ComfyUI AUDIO ({"waveform": [B,C,T] float, "sample_rate": int}) ↔ WAV bytes and audio files.

Limits (max seconds) are arguments; callers take them from `load_spec().lipsync_limits`.
"""
from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..errors import MediaError


@dataclass
class EncodedAudio:
    data: bytes          # a complete WAV file, PCM 16-bit little-endian
    sample_rate: int
    channels: int
    duration: float      # seconds
    notes: list[str] = field(default_factory=list)

    mime: str = "audio/wav"


MAX_SAMPLE_RATE = 768_000  # the highest rate audio tools commonly write


def check_audio(audio, *, parameter: str = "audio") -> tuple[torch.Tensor, int]:
    """Validate an AUDIO dict; return (waveform [B,C,T], sample_rate)."""
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        got = sorted(audio) if isinstance(audio, dict) else type(audio).__name__
        raise MediaError(f"{parameter}: expected an AUDIO dict with 'waveform' and 'sample_rate', got {got}")
    waveform = audio["waveform"]
    if not isinstance(waveform, torch.Tensor):
        try:
            waveform = torch.as_tensor(np.asarray(waveform))
        except Exception as exc:  # noqa: BLE001
            raise MediaError(f"{parameter}: waveform is not a tensor ({type(waveform).__name__})") from exc
    if waveform.ndim != 3:
        raise MediaError(f"{parameter}: waveform must be [batch, channels, samples], got shape {list(waveform.shape)}")
    try:
        sample_rate = int(audio["sample_rate"])
    except (TypeError, ValueError, OverflowError) as exc:
        raise MediaError(f"{parameter}: sample_rate {audio['sample_rate']!r} is not an integer") from exc
    if not 0 < sample_rate <= MAX_SAMPLE_RATE:  # WAV headers hold the byte rate in 32 bits
        raise MediaError(f"{parameter}: sample_rate {sample_rate} is outside 1-{MAX_SAMPLE_RATE} Hz")
    b, c, t = waveform.shape
    if b == 0 or c == 0 or t == 0:
        raise MediaError(f"{parameter}: the audio is empty (waveform shape {list(waveform.shape)})")
    return waveform, sample_rate


def audio_duration(audio, *, parameter: str = "audio") -> float:
    waveform, sample_rate = check_audio(audio, parameter=parameter)
    return waveform.shape[-1] / sample_rate


def waveform_to_float32(waveform: torch.Tensor) -> np.ndarray:
    """One clip [C,T] of any dtype → float32 numpy [C,T], NaN/inf → 0, clamped to [-1, 1]."""
    w = waveform.detach().cpu().to(torch.float32, copy=True)
    torch.nan_to_num_(w, nan=0.0, posinf=0.0, neginf=0.0)
    w.clamp_(-1.0, 1.0)
    return w.numpy()


def encode_wav(audio, *, max_seconds: Optional[float] = None, parameter: str = "audio") -> EncodedAudio:
    """AUDIO (batch 0) → a PCM16 WAV file in memory."""
    waveform, sample_rate = check_audio(audio, parameter=parameter)
    notes: list[str] = []
    b, channels, samples = waveform.shape
    duration = samples / sample_rate
    if max_seconds is not None and duration > max_seconds:
        raise MediaError(f"{parameter}: the audio is {duration:.2f} s long; the limit is {max_seconds:g} s. "
                         f"Trim it to {max_seconds:g} s or less.")
    if b > 1:
        notes.append(f"batch of {b}: used the first clip")
    clip = waveform_to_float32(waveform[0])
    # Interleave to [T, C] for WAV; round to nearest rather than truncate.
    pcm = np.rint(clip.T * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return EncodedAudio(buf.getvalue(), sample_rate, channels, duration, notes)


def silence(seconds: float, sample_rate: int = 44100, channels: int = 1) -> dict:
    """An AUDIO of zeros, `seconds` long."""
    samples = max(0, round(seconds * sample_rate))
    return {"waveform": torch.zeros((1, channels, samples), dtype=torch.float32), "sample_rate": int(sample_rate)}


class AudioCollector:
    """Gathers decoded PyAV audio frames as float32 planar chunks → AUDIO [1,C,T].

    Audio is small next to video, so a list of chunks and one concatenate is fine here.
    """

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._resampler = None
        self.sample_rate: Optional[int] = None
        self.channels: Optional[int] = None

    def add(self, frame) -> None:
        if self.sample_rate is None:
            self.sample_rate = frame.sample_rate
            self.channels = frame.layout.nb_channels
        if frame.format.name == "fltp" and frame.sample_rate == self.sample_rate \
                and frame.layout.nb_channels == self.channels and self._resampler is None:
            self._chunks.append(frame.to_ndarray())
            return
        if self._resampler is None:
            import av
            layout = "mono" if self.channels == 1 else ("stereo" if self.channels == 2 else frame.layout.name)
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.sample_rate)
        for out in self._resampler.resample(frame):
            self._chunks.append(out.to_ndarray())

    def finish(self, declared_seconds: Optional[float] = None) -> Optional[dict]:
        """The AUDIO gathered so far. `declared_seconds` (the stream's own duration, e.g. from an
        MP4 edit list) trims the encoder's end padding, which FFmpeg's decoder leaves in: an
        AAC track of 1.000 s otherwise decodes to ~1.02 s."""
        if self._resampler is not None:
            for out in self._resampler.resample(None):
                self._chunks.append(out.to_ndarray())
        if not self._chunks:
            return None
        data = np.concatenate(self._chunks, axis=1) if len(self._chunks) > 1 else self._chunks[0]
        if declared_seconds:
            keep = round(declared_seconds * self.sample_rate)
            if 0 < keep < data.shape[1]:
                data = data[:, :keep]
        self._chunks = []
        waveform = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).unsqueeze(0)
        return {"waveform": waveform, "sample_rate": int(self.sample_rate)}


def stream_seconds(stream) -> Optional[float]:
    """A stream's declared duration in seconds, if the container records one."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def load_audio_file(path: Union[str, Path]) -> dict:
    """Any audio (or video-with-audio) file PyAV can read → AUDIO float32 [1,C,T]."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path}: has no audio stream")
            stream = container.streams.audio[0]
            stream.thread_type = "AUTO"
            collector = AudioCollector()
            for packet in container.demux(stream):
                for frame in packet.decode():
                    collector.add(frame)
    except av.FFmpegError as exc:
        raise MediaError(f"cannot read audio file {path}: {exc}") from exc
    except OSError as exc:
        raise MediaError(f"cannot read audio file {path}: {exc}") from exc
    audio = collector.finish(declared_seconds=stream_seconds(stream))
    if audio is None:
        raise MediaError(f"{path}: the audio stream holds no samples")
    return audio
