"""Paid tasks that no run waits for any more, followed to the end in the background.

A task Runware accepted is billed. When the run that sent it stops before the video is on disk —
ComfyUI cancelled the node because another node of the prompt failed, the user pressed Cancel, the
process was killed — the task is still Runware's and the video still comes. These functions fetch
it anyway: polled by its taskUUID (never sent again), downloaded to the output folder, its ledger row
`finished`, so the video is there and a re-run of the same request reuses it for free.

- `orphans(ledger, endpoint)`: the accepted rows of this endpoint whose run is gone (a dead process,
  or no live coroutine of this one); rows still `preparing` (nothing was sent) are settled
  `abandoned`, which releases their reservation.
- `follow(client, task_uuids, opts)`: each task polled, downloaded and recorded; never decoded.

No ComfyUI import: the ComfyUI layer runs these on its server's event loop.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Iterable, Optional

from . import pipeline
from ..errors import PixVerseError
from ..money.ledger import PREPARING, SUBMITTED, SUBMITTING, SUCCEEDED, FINISHED, Ledger

log = logging.getLogger("pixverse")

FOLLOWED = (SUBMITTING, SUBMITTED, SUCCEEDED, FINISHED)  # FINISHED: only when its file is gone


def orphans(ledger: Ledger, endpoint: str) -> list[str]:
    """taskUUIDs of this endpoint's accepted tasks that no live run follows (see the module docstring)."""
    found = []
    for entry in ledger.entries():
        if entry.endpoint != endpoint or entry.owner_alive():
            continue
        if entry.status == PREPARING:
            ledger.settle(entry.task_uuid, "abandoned", "the run that claimed it ended before sending it")
        elif entry.status in FOLLOWED and not entry.reusable():
            found.append(entry.task_uuid)
    return found


async def follow(client, task_uuids: Iterable[str], opts: pipeline.JobOptions) -> dict[str, Optional[str]]:
    """Fetch each task's video (no decoding). {taskUUID: None when it is on disk, else why not}."""
    quiet = replace(opts, decode_frames=False, decode_audio=False, on_progress=None, cancel_check=None)

    async def one(task_uuid: str) -> Optional[str]:
        try:
            result = await pipeline.recover(client, task_uuid, quiet)
            log.info("PixVerse: task %s, followed in the background, is on disk: %s", task_uuid, result.video_path)
            return None
        except PixVerseError as exc:
            log.warning("PixVerse: task %s could not be fetched in the background: %s", task_uuid, exc)
            return str(exc)

    uuids = list(dict.fromkeys(task_uuids))
    outcomes = await asyncio.gather(*(one(u) for u in uuids))
    return dict(zip(uuids, outcomes))
