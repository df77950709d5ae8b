"""A video file's own note of where it came from: a container `comment` tag, written by a stream copy.

The frames and sound are copied as they are (no re-encode); only the container is written again. A video
moved away from its provenance JSON still says, in its metadata, which task made it (`ffprobe`, VLC's
media information, or `read_comment`)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

log = logging.getLogger("pixverse")


def tag_video(path: Path, comment: str) -> bool:
    """Write `comment` into the container of `path` (stream copy into a temporary file, then an atomic
    replace). False, with the file untouched, when it cannot be done (an odd container, a full disk)."""
    import av  # PyAV: only when a video is tagged

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tagging{path.suffix}")
    try:
        with av.open(str(path)) as src:
            fmt = src.format.name.split(",")[0]
            options = {"movflags": "+faststart"} if fmt in ("mov", "mp4") else {}  # playable while it loads
            with av.open(str(tmp), "w", format="mp4" if path.suffix.lower() == ".mp4" else fmt,
                         options=options) as dst:
                _copy(src, dst, comment)
        os.replace(tmp, path)
        return True
    except Exception as exc:  # noqa: BLE001 - a note that cannot be written must not cost the video
        log.info("PixVerse: could not tag %s with its provenance (%s)", path, exc)
        tmp.unlink(missing_ok=True)
        return False


def _copy(src, dst, comment: str) -> None:
    """Every video and audio packet of `src` into `dst` as it is, with `src`'s tags and `comment`."""
    dst.metadata.update({k: v for k, v in src.metadata.items() if k != "encoder"})
    dst.metadata["comment"] = comment
    streams = {s.index: dst.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
    for packet in src.demux():
        out = streams.get(packet.stream.index)
        if out is None or packet.dts is None:
            continue
        packet.stream = out
        dst.mux(packet)


def read_comment(path: Path) -> Optional[str]:
    """The container's `comment` tag, or None."""
    import av  # PyAV: only when a video is read

    try:
        with av.open(str(path)) as src:
            return src.metadata.get("comment")
    except Exception:  # noqa: BLE001 - not a readable video: no note
        return None
