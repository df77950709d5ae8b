"""Video files ↔ tensors with PyAV: probe, decode (into a preallocated tensor), encode, shrink.

Every PyAV/FFmpeg failure is turned into a `MediaError` naming the file, so a node shows a
readable message instead of a raw `av` exception.
"""
from __future__ import annotations

import math
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
import torch

from ..errors import MediaError
from .audio import AudioCollector, check_audio, silence, stream_seconds, waveform_to_float32

PathLike = Union[str, Path]

# A file whose demuxed/decoded frame count falls this far below its declared count is truncated.
_TRUNCATION_SLACK_FRAMES = 2
_TRUNCATION_SLACK_RATIO = 0.02


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    has_audio: bool
    size_bytes: int
    codec: str = ""


@dataclass
class DecodedVideo:
    frames: Optional[torch.Tensor]   # [N,H,W,3] float32 0..1, or None when not asked for
    audio: Optional[dict]            # AUDIO [1,C,T] float32, or None when not asked for
    fps: float
    width: int
    height: int
    frame_count: int
    duration: float


# -- helpers ---------------------------------------------------------------------------------

@contextmanager
def _reading(path: PathLike, what: str = "read") -> Iterator:
    """Open a media file; any FFmpeg/OS failure inside the block → MediaError with the path."""
    import av

    if not os.path.isfile(path):
        raise MediaError(f"video file not found: {path}")
    try:
        with av.open(str(path), mode="r") as container:
            yield container
    except MediaError:
        raise
    except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
        raise MediaError(f"cannot {what} video file {path} (corrupt, truncated or not a video?): {exc}") from exc


# Refused before decoding: 8K is 33 MP; a stream declaring more is broken or hostile.
MAX_VIDEO_PIXELS = 8192 * 8192


def _video_stream(container, path: PathLike):
    if not container.streams.video:
        raise MediaError(f"{path}: the file has no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    if width * height > MAX_VIDEO_PIXELS:
        raise MediaError(f"{path}: the video declares {width}x{height} frames ({width * height / 1e6:.0f} "
                         f"megapixels); over {MAX_VIDEO_PIXELS / 1e6:.0f} megapixels it is refused before decoding")
    return stream


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if 0 < value < 1000:
                return value
    return 0.0


def _stream_duration(stream, container) -> Optional[float]:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _check_not_truncated(path: PathLike, declared: int, got: int, what: str) -> None:
    if declared > 0 and got < declared - max(_TRUNCATION_SLACK_FRAMES, declared * _TRUNCATION_SLACK_RATIO):
        raise MediaError(f"{path}: truncated or corrupt video: the file declares {declared} frames "
                         f"but only {got} could be {what}")


def _fps_fraction(fps: float) -> Fraction:
    if not (fps > 0 and math.isfinite(fps)):
        raise MediaError(f"fps must be a positive number, got {fps}")
    # 1001 covers NTSC rates (30000/1001, 24000/1001); exact for integer and x.5 rates.
    return Fraction(fps).limit_denominator(1001)


# -- probe -----------------------------------------------------------------------------------

def probe_video(path: PathLike) -> VideoInfo:
    """Metadata of a video file. Demuxes (without decoding) to count frames and catch truncation."""
    with _reading(path, "probe") as container:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        declared = stream.frames or 0
        counted = 0
        last_end = 0.0
        # Packets only: cheap (reads the file, no decoding), and a cut-off file shows up as
        # missing or corrupt packets even when its index (moov) is intact.
        for packet in container.demux(stream):
            if packet.size == 0 and packet.pts is None:
                continue  # the demuxer's end-of-stream flush packet
            if packet.is_corrupt:
                raise MediaError(f"{path}: truncated or corrupt video (damaged packet at frame {counted})")
            counted += 1
            if packet.pts is not None and packet.time_base:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                last_end = max(last_end, end)
        if counted == 0:
            raise MediaError(f"{path}: the video stream holds no frames")
        _check_not_truncated(path, declared, counted, "read")
        duration = _stream_duration(stream, container) or last_end or (counted / fps if fps else 0.0)
        width = stream.codec_context.width
        height = stream.codec_context.height
        return VideoInfo(width=width, height=height, fps=fps, frame_count=counted, duration=duration,
                         has_audio=bool(container.streams.audio), size_bytes=os.path.getsize(path),
                         codec=stream.codec_context.name or "")


# -- decode ----------------------------------------------------------------------------------

class _FrameBuffer:
    """A preallocated float32 [cap,H,W,3] tensor filled in place; grows (rarely) when the
    frame-count estimate was short. `result()` is a view narrowed to the frames written.

    `store(i, rgb)` may run in several threads at once, each on its own slot; `ensure(n)` (growth)
    must not overlap with any `store`."""

    def __init__(self, capacity: int, height: int, width: int):
        self.h, self.w = height, width
        # torch.empty does not touch the pages: over-estimating costs address space, not RAM.
        self.data = torch.empty((max(1, capacity), height, width, 3), dtype=torch.float32)
        self.n = 0

    @property
    def capacity(self) -> int:
        return self.data.shape[0]

    def ensure(self, count: int) -> None:
        cap = self.data.shape[0]
        if count > cap:
            # A new tensor and one copy (what resize_ would do too; resize_ is refused once numpy
            # has viewed the storage). Rare: MP4 declares its frame count.
            grown = torch.empty((max(count, cap + max(16, cap // 2)), self.h, self.w, 3), dtype=torch.float32)
            grown.narrow(0, 0, cap).copy_(self.data)
            self.data = grown

    def store(self, index: int, rgb: np.ndarray) -> None:
        """uint8 RGB [H,W,3] → slot `index` as float32 0..1, in one pass and without a temporary.

        numpy, not torch: a single-threaded loop that releases the GIL, so several converter
        threads run side by side without waking torch's OpenMP pool (whose spinning workers
        steal the cores from the video decoder). x / 255 in float32, bit-identical to
        ComfyUI's `torch.from_numpy(rgb) / 255.0`."""
        np.divide(rgb, _U8_MAX, out=self.data[index].numpy(), dtype=np.float32)

    def add(self, rgb: np.ndarray) -> None:
        self.ensure(self.n + 1)
        self.store(self.n, rgb)
        self.n += 1

    def result(self) -> torch.Tensor:
        return self.data.narrow(0, 0, self.n)


_U8_MAX = np.float32(255.0)


def _converter_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 2
    # Two already overlap conversion with decoding on a 2-core machine; more help on big ones,
    # where first-touch page faults of the output (the largest cost) spread over more cores.
    return max(2, min(8, cpus // 2))


class _Converter:
    """Decoded frames → the frame buffer, on worker threads, while the caller keeps demuxing and
    decoding: yuv → rgb24 (swscale, one thread each) → float32 / 255 straight into the frame's
    slot. PyAV's decode, swscale and numpy all release the GIL, so the stages really overlap.

    The queue is bounded (a few decoded frames, a few MB each): memory stays at the output
    tensor plus O(threads) frames."""

    def __init__(self, buffer: _FrameBuffer, width: int, height: int, threads: int):
        import queue
        import threading

        self.buffer = buffer
        self.width, self.height = width, height
        self.queue: "queue.Queue" = queue.Queue(maxsize=2 * threads + 2)
        self.error: Optional[BaseException] = None
        self.count = 0
        self._stop = False
        self.threads = [threading.Thread(target=self._work, name=f"pixverse-decode-{k}", daemon=True)
                        for k in range(threads)]
        for t in self.threads:
            t.start()

    def _work(self) -> None:
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()  # one swscale context per thread, reused for every frame
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if self._stop or self.error is not None:
                    continue
                index, frame = item
                # width/height pin every frame to the first frame's size (streams can change size).
                rgb = reformatter.reformat(frame, format="rgb24", width=self.width, height=self.height,
                                           threads=1).to_ndarray()
                self.buffer.store(index, rgb)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the decoding thread
                self.error = exc
            finally:
                self.queue.task_done()

    def put(self, frame) -> None:
        if self.error is not None:
            raise self.error
        index = self.count
        if index >= self.buffer.capacity:
            self.queue.join()  # no store() in flight while the buffer grows
            self.buffer.ensure(index + 1)
        self.queue.put((index, frame))
        self.count += 1

    def finish(self) -> None:
        """Wait for every queued frame; raise the first conversion error."""
        self.queue.join()
        self.close()
        if self.error is not None:
            raise self.error
        self.buffer.n = self.count

    def close(self) -> None:
        """Stop the workers (queued frames are dropped if this is an abort)."""
        self._stop = True
        for _ in self.threads:
            self.queue.put(None)
        for t in self.threads:
            t.join()
        self.threads = []


def _estimate_frames(stream, container, fps: float) -> int:
    if stream.frames:
        return stream.frames + 1
    duration = _stream_duration(stream, container)
    if duration and fps:
        return int(math.ceil(duration * fps * 1.02)) + 2
    return 64


def decode_video(path: PathLike, *, want_frames: bool = True, want_audio: bool = True) -> DecodedVideo:
    """Decode frames (into one preallocated float32 tensor) and audio in a single demux pass.

    The calling thread demuxes and decodes (FFmpeg's own frame threads); worker threads convert
    each frame to RGB and write it, as float32, straight into its slot of the output tensor.
    Peak memory is the output tensor plus a few frames. A file without an audio track gives
    silence of the video's length when `want_audio`.
    """
    with _reading(path, "decode") as container:
        vstream = _video_stream(container, path)
        vstream.thread_type = "AUTO"  # frame + slice threads in FFmpeg's decoder
        astream = container.streams.audio[0] if (want_audio and container.streams.audio) else None
        if astream is not None:
            astream.thread_type = "AUTO"
        fps = _stream_fps(vstream)
        width, height = vstream.codec_context.width, vstream.codec_context.height
        declared = vstream.frames or 0

        estimate = _estimate_frames(vstream, container, fps)
        buffer: Optional[_FrameBuffer] = None  # allocated at the first frame (its size is sure then)
        converter: Optional[_Converter] = None
        collector = AudioCollector() if astream is not None else None
        video_packets = 0

        streams = [vstream] + ([astream] if astream is not None else [])
        try:
            for packet in container.demux(*streams):
                if packet.stream.type == "video":
                    if packet.size == 0 and packet.pts is None and not want_frames:
                        continue
                    if packet.size:
                        video_packets += 1
                    if packet.is_corrupt:
                        raise MediaError(f"{path}: truncated or corrupt video (damaged packet near frame {video_packets})")
                    if not want_frames:
                        continue  # count packets, skip decoding
                    for frame in packet.decode():
                        if converter is None:
                            width, height = width or frame.width, height or frame.height
                            buffer = _FrameBuffer(estimate, height, width)
                            converter = _Converter(buffer, width, height, _converter_threads())
                        converter.put(frame)
                else:
                    for frame in packet.decode():
                        collector.add(frame)
            if converter is not None:
                converter.finish()
        finally:
            if converter is not None and converter.threads:
                converter.close()

        frame_count = (buffer.n if buffer is not None else 0) if want_frames else video_packets
        _check_not_truncated(path, declared, frame_count, "decoded" if want_frames else "read")
        if frame_count == 0:
            raise MediaError(f"{path}: the video stream holds no frames")
        duration = _stream_duration(vstream, container) or (frame_count / fps if fps else 0.0)
        if buffer is not None and fps:
            duration = frame_count / fps  # the frames we return are what the duration describes
        audio_seconds = stream_seconds(astream) if astream is not None else None

    audio = None
    if want_audio:
        audio = collector.finish(declared_seconds=audio_seconds) if collector is not None else None
        if audio is None:
            audio = silence(duration)
    return DecodedVideo(frames=buffer.result() if buffer is not None else None, audio=audio, fps=fps,
                        width=width, height=height, frame_count=frame_count, duration=duration)


# -- encode ----------------------------------------------------------------------------------

class _Rgb24Frames:
    """IMAGE frames ([H',W',C] float 0..1, or uint8) → uint8 RGB [h,w,3] (cropped, or padded with
    black, to h×w), one at a time. NaN/inf → 0, values clamped, alpha dropped, grey expanded.

    Two buffers (a float32 scratch and the uint8 frame) are reused for every frame: a fresh 11 MB
    float copy per 720p frame costs more in first-touch page faults than the arithmetic. numpy,
    not torch: torch's OpenMP workers spin between the small per-frame ops and take the cores
    from x264's threads (measured: up to 2x slower encodes)."""

    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        self.u8 = np.zeros((h, w, 3), dtype=np.uint8)  # never written outside the frame: black pad
        self.scratch: Optional[np.ndarray] = None

    def __call__(self, frame: torch.Tensor) -> np.ndarray:
        f = frame.detach().cpu()[: self.h, : self.w]  # crop first: the rest is per element
        if f.shape[-1] == 4:
            f = f[..., :3]
        fh, fw, c = f.shape
        dst = self.u8[:fh, :fw]
        if f.dtype == torch.uint8:
            src = f.numpy()
        else:
            if self.scratch is None or self.scratch.shape != (fh, fw, c):
                self.scratch = np.empty((fh, fw, c), dtype=np.float32)
            src = self.scratch
            if f.dtype == torch.float32:
                np.copyto(src, f.numpy())
            else:  # float16, bfloat16, float64, bool, ints: torch knows them all
                torch.from_numpy(src).copy_(f)
            np.nan_to_num(src, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            np.clip(src, 0.0, 1.0, out=src)
            np.multiply(src, np.float32(255.0), out=src)
            np.rint(src, out=src)  # half to even, as torch.round
        dst[...] = src if c == 3 else np.broadcast_to(src, (fh, fw, 3))  # exact: whole numbers 0..255
        return self.u8


def _even(n: int) -> int:
    # Crop odd sides by one pixel (H.264 4:2:0 needs even sides); a 1-px side is padded to 2.
    return max(2, n - (n % 2))


class _AudioWriter:
    """Feeds a float32 [C,T] clip to an AAC stream in chunks, interleaved with video by time."""

    CHUNK = 1024

    def __init__(self, container, clip: np.ndarray, sample_rate: int, bit_rate: int = 128_000):
        import av

        if clip.shape[0] > 2:  # AAC handles 5.1, but speech references only need mono
            clip = clip.mean(axis=0, keepdims=True)
        self.av = av
        self.clip = np.ascontiguousarray(clip, dtype=np.float32)
        self.layout = "mono" if self.clip.shape[0] == 1 else "stereo"
        self.rate = sample_rate
        self.stream = container.add_stream("aac", rate=sample_rate, layout=self.layout)
        self.stream.bit_rate = bit_rate
        self.container = container
        self.pos = 0

    def write_until(self, seconds: Optional[float]) -> None:
        end = self.clip.shape[1] if seconds is None else min(self.clip.shape[1], int(seconds * self.rate))
        while self.pos < end:
            n = min(self.CHUNK, end - self.pos)
            frame = self.av.AudioFrame.from_ndarray(self.clip[:, self.pos:self.pos + n], format="fltp",
                                                    layout=self.layout)
            frame.sample_rate = self.rate
            frame.pts = self.pos
            frame.time_base = Fraction(1, self.rate)
            self.container.mux(self.stream.encode(frame))
            self.pos += n

    def close(self) -> None:
        self.write_until(None)
        self.container.mux(self.stream.encode(None))


def _open_writer(path: PathLike, faststart: bool = True):
    import av

    # faststart: the index (moov) goes to the front so a player can start before the end arrives.
    options = {"movflags": "+faststart"} if faststart else {}
    try:
        return av.open(str(path), mode="w", format="mp4", options=options)
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot write video file {path}: {exc}") from exc


def _add_h264(container, width: int, height: int, rate: Fraction, *, crf: Optional[int] = None,
              bit_rate: Optional[int] = None, preset: str = "veryfast"):
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    options = {"preset": preset}
    if crf is not None:
        options["crf"] = str(crf)
    if bit_rate is not None:
        stream.bit_rate = bit_rate
        # A VBV cap makes x264's single-pass ABR land near the target instead of overshooting.
        options["maxrate"] = str(int(bit_rate * 1.2))
        options["bufsize"] = str(int(bit_rate * 2))
    stream.options = options
    stream.thread_type = "AUTO"
    return stream


def frames_size(width: int, height: int, max_side: Optional[int] = None) -> tuple[int, int]:
    """The encoded size of frames of `width`×`height`: even sides (H.264 4:2:0), and with
    `max_side`, scaled down (same aspect) so the long side is at most `max_side`."""
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        return _even(max(2, round(width * scale))), _even(max(2, round(height * scale)))
    return _even(width), _even(height)


def encode_frames_mp4(frames: torch.Tensor, fps: float, path: PathLike, *, audio: Optional[dict] = None,
                      crf: int = 23, preset: str = "veryfast", max_side: Optional[int] = None) -> VideoInfo:
    """IMAGE frames [N,H,W,3] float 0..1 (+ optional AUDIO) → H.264 yuv420p MP4 (+ AAC).

    `max_side`: frames with a longer side are scaled down (area filter, same aspect) to it: the
    caller passes the largest size the model makes, more would be uploaded and never used."""
    import av

    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4):
        shape = list(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise MediaError(f"frames: expected an IMAGE tensor [frames, height, width, 3], got {shape}")
    n, h, w, _ = frames.shape
    if n == 0 or h == 0 or w == 0:
        raise MediaError(f"frames: no frames to encode (shape {list(frames.shape)})")
    rate = _fps_fraction(fps)
    clip = sample_rate = None
    if audio is not None:
        waveform, sample_rate = check_audio(audio)
        clip = waveform_to_float32(waveform[0])

    ew, eh = _even(w), _even(h)
    to_rgb24 = _Rgb24Frames(eh, ew)
    tw, th = frames_size(w, h, max_side)
    # One frame at a time: memory stays at one frame whatever N is (from_ndarray copies).
    pictures = (av.VideoFrame.from_ndarray(to_rgb24(frames[i]), format="rgb24") for i in range(n))
    if (tw, th) != (ew, eh):
        pictures = (p.reformat(width=tw, height=th, interpolation="AREA") for p in pictures)
    audio_track = (clip, sample_rate, 128_000) if clip is not None else None
    return write_h264_mp4(path, pictures, tw, th, rate, crf=crf, preset=preset, audio=audio_track,
                          what="encode video file")


def write_h264_mp4(path: PathLike, pictures, width: int, height: int, rate: Fraction, *, crf: int,
                   preset: str, audio=None, faststart: bool = True, what: str = "write video file") -> VideoInfo:
    """Mux av.VideoFrames (and an optional (clip [C,T], sample_rate, bit_rate) AAC track,
    interleaved by time) into an H.264 MP4; return what was written."""
    import av

    container = _open_writer(path, faststart)
    try:
        vstream = _add_h264(container, width, height, rate, crf=crf, preset=preset)
        writer = _AudioWriter(container, audio[0], audio[1], bit_rate=audio[2]) if audio is not None else None
        for i, picture in enumerate(pictures):
            picture.pts = i
            container.mux(vstream.encode(picture))
            if writer is not None:
                writer.write_until((i + 1) / float(rate))
        container.mux(vstream.encode(None))
        if writer is not None:
            writer.close()
    except av.FFmpegError as exc:
        container.close()
        raise MediaError(f"cannot {what} {path}: {exc}") from exc
    container.close()
    return probe_video(path)


def reencode_to_fit(path: PathLike, max_bytes: int, out_path: PathLike, *, max_attempts: int = 4) -> VideoInfo:
    """Re-encode `path` (H.264 + AAC) at lower bitrates until the file is at most `max_bytes`.

    A file already small enough is copied unchanged. Raises MediaError if it cannot get there.
    """
    info = probe_video(path)
    if info.size_bytes <= max_bytes:
        if os.path.abspath(path) != os.path.abspath(out_path):
            shutil.copyfile(path, out_path)
        return probe_video(out_path)

    duration = max(info.duration, 1e-3)
    audio_bps = 96_000 if info.has_audio else 0
    # 90 % of the budget: headroom for the MP4 index and x264's rate-control error.
    video_bps = int(max_bytes * 8 * 0.9 / duration) - audio_bps
    attempt_info = None
    for attempt in range(max_attempts):
        if video_bps < 50_000:
            break
        scale = 1.0
        # Below ~0.03 bits per pixel x264 output is mush; halve the resolution instead.
        bpp = video_bps / max(1.0, info.width * info.height * max(info.fps, 1.0))
        if bpp < 0.03:
            scale = max(0.25, math.sqrt(bpp / 0.03))
        attempt_info = _transcode(path, out_path, info, video_bps, audio_bps, scale)
        if attempt_info.size_bytes <= max_bytes:
            return attempt_info
        # Overshot: aim lower in proportion, with margin.
        video_bps = int(video_bps * max_bytes / attempt_info.size_bytes * 0.9)
    got = f"; the smallest attempt was {attempt_info.size_bytes} bytes" if attempt_info else ""
    raise MediaError(f"{path}: cannot re-encode a {info.duration:.1f} s video under {max_bytes} bytes{got}")


def _transcode(src: PathLike, dst: PathLike, info: VideoInfo, video_bps: int, audio_bps: int,
               scale: float) -> VideoInfo:
    import av

    width, height = _even(round(info.width * scale)), _even(round(info.height * scale))
    rate = _fps_fraction(info.fps or 24.0)
    out = _open_writer(dst)
    try:
        with _reading(src, "re-encode") as inp:
            vin = _video_stream(inp, src)
            vin.thread_type = "AUTO"
            ain = inp.streams.audio[0] if (audio_bps and inp.streams.audio) else None
            vout = _add_h264(out, width, height, rate, bit_rate=video_bps, preset="medium")
            aout = resampler = None
            if ain is not None:
                # Every stream must exist before the first packet is muxed (the header is written then).
                layout = "mono" if ain.codec_context.channels == 1 else "stereo"
                aout = out.add_stream("aac", rate=ain.codec_context.sample_rate, layout=layout)
                aout.bit_rate = audio_bps
                resampler = av.AudioResampler(format="fltp", layout=layout, rate=ain.codec_context.sample_rate)
            apos = 0
            index = 0
            for packet in inp.demux(*([vin] + ([ain] if ain is not None else []))):
                for frame in packet.decode():
                    if packet.stream.type == "video":
                        # Constant frame rate, numbered in order: duration = frames / fps as probed.
                        vf = frame.reformat(width=width, height=height, format="yuv420p")
                        vf.pts = index
                        vf.time_base = Fraction(1) / rate
                        index += 1
                        out.mux(vout.encode(vf))
                    else:
                        frame.pts = None  # resampler output is re-stamped by sample count below
                        for af in resampler.resample(frame):
                            af.pts = apos
                            af.time_base = Fraction(1, af.sample_rate)
                            apos += af.samples
                            out.mux(aout.encode(af))
            out.mux(vout.encode(None))
            if aout is not None:
                for af in resampler.resample(None):
                    af.pts = apos
                    apos += af.samples
                    out.mux(aout.encode(af))
                out.mux(aout.encode(None))
    except av.FFmpegError as exc:
        out.close()
        raise MediaError(f"cannot re-encode {src}: {exc}") from exc
    except BaseException:
        out.close()
        raise
    out.close()
    return probe_video(dst)
