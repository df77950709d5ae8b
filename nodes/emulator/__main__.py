"""Run the Runware emulator: ``python -m nodes.emulator --port 8765 [--job-seconds 5] [--api-key K] [--layout current|seed]
[--max-concurrent N [--busy-retry-after S]]``.

Point the pack at it with ``RUNWARE_BASE_URL=<printed base URL>``. Stop with Ctrl-C (or SIGTERM).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import EmulatorServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.emulator",
                                     description="Local Runware emulator (PixVerse models).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--job-seconds", type=float, default=2.0,
                        help="how long a video job stays 'processing' (default 2.0)")
    parser.add_argument("--api-key", default=None,
                        help="accept only this key (default: any non-empty Bearer key)")
    parser.add_argument("--layout", default="both",
                        help="request layouts accepted: both (default), or only one of them (current, seed: "
                             "fields of the other layout are refused as unknown parameters)")
    parser.add_argument("--media-dir", default=None,
                        help="where rendered videos are cached (default: a temp dir, removed on exit)")
    parser.add_argument("--max-concurrent", type=int, default=None, metavar="N",
                        help="the account renders at most N videos at once: a submit past it is refused with HTTP "
                             "429 rateLimitExceeded (too many concurrent generations; nothing billed)")
    parser.add_argument("--busy-retry-after", type=float, default=None, metavar="S",
                        help="with --max-concurrent: the Retry-After (seconds) of such a refusal")
    parser.add_argument("--state-dir", default=None,
                        help="remember tasks and results in this folder across restarts, as Runware does")
    args = parser.parse_args(argv)
    from ..spec import load_spec

    layouts = tuple(load_spec().layouts)
    if args.layout != "both" and args.layout not in layouts:
        parser.error(f"--layout {args.layout}: choose both or one of {', '.join(layouts)}")

    stop = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    emu = EmulatorServer(host=args.host, port=args.port, job_seconds=args.job_seconds,
                         api_key=args.api_key, media_dir=args.media_dir, state_dir=args.state_dir,
                         layouts=None if args.layout == "both" else (args.layout,))
    if args.max_concurrent is not None and args.max_concurrent < 1:
        parser.error(f"--max-concurrent {args.max_concurrent}: at least 1")
    emu.max_concurrent, emu.busy_retry_after = args.max_concurrent, args.busy_retry_after
    emu.dry_run = True  # a user's dry run: it says in its replies that it bills nothing
    emu.start()
    print(f"Runware emulator listening: {emu.base_url}", flush=True)
    print(f"  export RUNWARE_BASE_URL={emu.base_url}", flush=True)
    print(f"  control: {emu.origin}/_emulator/stats  (Ctrl-C to stop)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
        print("Runware emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
