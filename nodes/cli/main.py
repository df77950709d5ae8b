"""Command line: the nodes' jobs (one `generate` subcommand per workflow of nodes/workflows/), same pipeline.

    python -m nodes generate text-to-video --prompt "a red fox in snow" --offline
    python -m nodes generate image-to-video --first-frame cat.png --prompt "the cat yawns"
    python -m nodes generate lipsync --video talk.mp4 --speech-text "Hello there" --voice Emily
    python -m nodes generate modify --video walk.mp4 --prompt "make it snow" --reference-image snow.png
    python -m nodes recover 6ba7b810-9dad-41d1-80b4-00c04fd430c8
    python -m nodes options            # what each model takes, from the capability spec
    python -m nodes spend              # what the ledger recorded: today, this month, per model

`--offline` starts the local Runware emulator in this process (no key, no charge); it remembers its
tasks in a folder beside the ledger, so the same command again resumes or reuses as against Runware.

Every job is written to a job ledger (`<out>/pixverse-ledger.sqlite3` unless `--ledger` says
otherwise) before it is submitted: the same command run again reuses the finished video, or resumes
the unfinished task, instead of paying for a new one. `--new` submits a new task anyway.

The configuration (nodes/config.py; `python -m nodes options --config` lists it) is read once from the
environment: the spending limits (counted in the ledger used; the per-prompt limit counts one command), the
balance floor, a forced request layout and the unavailable window apply here as in ComfyUI.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Optional
from uuid import uuid4

from . import batch
from .. import config
from ..money.balance import add_cli_parser, cli_balance
from ..client import RunwareClient
from ..client.urls import redact_text
from ..errors import PixVerseError, RunwareInterrupted, RunwareTimeoutError
from ..money.ledger import LEDGER_FILENAME, Ledger
from ..money.limits import format_spend, policy_of, spend_summary
from ..job import provenance
from ..job.preflight import check_video_file
from ..workflows.draft import draft
from ..spec import load_spec
from ..spec.options import summary_lines
from ..requests import schema, schema_store
from ..workflows import WORKFLOWS, by_command

OFFLINE_KEY = "offline-dry-run"
OFFLINE_STATE = "offline-emulator"  # the --offline emulator's memory: a folder beside the job ledger


def _add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("pixverse-output"), help="folder for the MP4")
    p.add_argument("--offline", action="store_true",
                   help="start the local Runware emulator in-process: no key, no charge")
    p.add_argument("--deadline", type=float, default=20 * 60, help="seconds to wait for the result")
    p.add_argument("--job-seconds", type=float, default=2.0, help="with --offline: how long a job takes")
    _add_ledger_arg(p)
    p.add_argument("--new", action="store_true",
                   help="submit a new (billed) task even when the ledger already has this exact request")


def _add_ledger_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ledger", type=Path, default=None,
                   help=f"job ledger file (default: <out>/{LEDGER_FILENAME}); remembers every task so a "
                        "finished video is reused and an unfinished task resumed, never paid twice")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nodes", description="PixVerse video through Runware")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="make a video").add_subparsers(dest="workflow", required=True)
    spec = load_spec()
    for workflow in WORKFLOWS.values():  # one subcommand per workflow: its media files, then its own flags
        p = gen.add_parser(workflow.command)
        for media in workflow.media:
            p.add_argument("--" + media.name.replace("_", "-"), type=Path, required=media.required,
                           default=None, help=media.help or None)
        workflow.add_flags(p, spec)
        _add_common_args(p)
    rec = sub.add_parser("recover", help="fetch a submitted task's video by taskUUID (or its provenance .json)")
    rec.add_argument("task_uuid", help="a taskUUID, the pixverse_<taskUUID>.json kept beside a video, or the video")
    rec.add_argument("--out", type=Path, default=Path("pixverse-output"))
    rec.add_argument("--deadline", type=float, default=20 * 60)
    _add_ledger_arg(rec)
    opt = sub.add_parser("options", help="list models and their choices")
    opt.add_argument("--refresh", action="store_true",
                     help="read Runware's model registry now (models Runware added since this release appear)")
    opt.add_argument("--out", type=Path, default=Path("pixverse-output"), help="where the ledger (and the kept "
                     "copies of Runware's schemas beside it) live")
    _add_ledger_arg(opt)
    opt.add_argument("--config", action="store_true",
                     help="list every environment variable and ComfyUI setting instead (a Markdown table)")
    spend = sub.add_parser("spend", help="what the job ledger recorded: today, this month, per model")
    spend.add_argument("--out", type=Path, default=Path("pixverse-output"))
    spend.add_argument("--json", action="store_true", help="print the figures as JSON")
    _add_ledger_arg(spend)
    batch.add_arguments(sub.add_parser("batch", help="many jobs from a JSON Lines or CSV file, several at once"))
    add_cli_parser(sub)  # `python -m nodes balance`
    return parser


# taskUUIDs whose submit went out in this command (reported from the "submitting" phase on): only then may
# an error say that a task submitted above is not lost.
_SENT: list[str] = []


def _progress(event) -> None:
    if event.task_uuid and event.phase != "uploading" and event.task_uuid not in _SENT:
        _SENT.append(event.task_uuid)
    uuid = f" [{event.task_uuid}]" if event.task_uuid else ""
    print(f"  {event.message}{uuid}", file=sys.stderr, flush=True)


async def _job(client, args, opts):
    from ..job import pipeline  # torch and PyAV: loaded only for a job (options and spend start fast)

    if args.command == "recover":
        return await pipeline.recover(client, args.task_uuid, opts, getattr(args, "model", "") or "")
    _draft, run = build_job(args)
    return await run(client, opts)


def build_job(args):
    """generate's options (parsed `generate WORKFLOW` arguments) → (draft, run).

    `draft`: the one draft request (nodes/workflows/draft.py) as it would be sent, with stand-ins for the
    uploads: every choice checked and the input files read, with the errors `generate` gives, before
    anything is uploaded or sent (the batch command checks every row, and estimates its cost, from it).
    `run(client, opts)`: the job through the pipeline (which loads the input files again: nothing large is
    held in between)."""
    from ..job import pipeline  # lazy, as in the rest of this module: `options` and `--help` start fast
    from .. import media  # lazy: imports torch

    workflow, spec = by_command(args.workflow), load_spec()
    values = workflow.values(args)
    side = spec.input_image.max_side  # no need to decode more than is sent

    def files() -> dict:
        """The media files as the pipeline takes them: images and audio loaded, videos as paths."""
        loaded = {}
        for m in workflow.media:
            path = getattr(args, m.name)
            if path is None or m.kind == "video":
                loaded[m.name] = path
            elif m.kind == "image":
                loaded[m.name] = media.load_image_file(path, max_side=side, min_side=spec.input_image.min_side)
            else:
                loaded[m.name] = media.load_audio_file(path)
        return loaded
    given = files()
    sizes = {m.name: pipeline.image_size(given[m.name], m.name) for m in workflow.media
             if m.kind == "image" and given[m.name] is not None}
    drafted = draft(workflow.kind, {**values, **given}, sizes=sizes, spec=spec, known=True)
    for m in workflow.media:
        if m.kind == "video" and given[m.name] is not None:
            check_video_file(given[m.name], m.name, m.purpose)
    del given  # nothing large is held until the run
    return drafted, lambda client, opts: pipeline.run(client, workflow.kind, {**values, **files()}, opts)


def ledger_path(args) -> Path:
    return args.ledger if args.ledger is not None else Path(args.out) / LEDGER_FILENAME


async def _run(args, base_url: Optional[str], api_key: Optional[str]) -> int:
    from ..job import pipeline  # torch and PyAV: loaded only for a job (options and spend start fast)

    if args.command == "recover":  # a taskUUID, or the provenance JSON / tagged video of one
        args.task_uuid, args.model = provenance.task_of(args.task_uuid)
    # the environment, once; a value not allowed is refused before the ledger opens (recover sends nothing new)
    read = config.Config() if args.command == "recover" else config.load()
    try:
        ledger = Ledger(ledger_path(args))
    except (OSError, sqlite3.Error) as exc:
        raise PixVerseError(f"cannot open the job ledger {ledger_path(args)}: {exc}; choose another file "
                            "with --ledger") from None
    print(f"ledger: {ledger.path}", file=sys.stderr, flush=True)
    opts = pipeline.JobOptions(config=read, prompt_id=f"cli:{uuid4()}", output_dir=args.out,
                               deadline_s=args.deadline, on_progress=_progress,
                               decode_frames=False, decode_audio=False, ledger=ledger,
                               fresh=getattr(args, "new", False))
    try:
        result = await pipeline.recover_local(args.task_uuid, opts) if args.command == "recover" else None
        if result is None:  # not served from the ledger: this needs Runware (and the key)
            async with RunwareClient(api_key=api_key, base_url=base_url) as client:
                result = await _job(client, args, opts)
    finally:
        ledger.close()
    info = result.info
    provenance.note_input_files(result.video_path, provenance.files_of(args))
    if result.origin == "reused":
        print(f"reused finished task {result.task_uuid} from the ledger (no network, no new charge"
              + ("; --new submits a new task)" if args.command == "generate" else ")"))
    elif result.origin == "resumed":
        print(f"resumed task {result.task_uuid} from the ledger (submitted by an earlier run; not submitted again)")
    print(f"taskUUID: {info['taskUUID']}")
    print(f"cost: {info['cost']}")
    if (getattr(result.video, "raw", None) or {}).get("dryRun"):  # the endpoint said so itself
        print("billed: nothing (a dry run: the endpoint bills nothing; `python -m nodes spend` does not count it)")
    print(f"output: {info['file']}")
    print(f"video: {info['width']}x{info['height']}, {info['fps']:g} fps, {info['duration']:.2f} s, "
          f"{info['frames']} frames, audio: {'yes' if info['has_audio'] else 'no'}")
    for notice in info["notices"]:
        print(f"notice: {notice}")
    return 0


def read_registry(args, *, refresh: bool = False) -> schema.Discovery:
    """Runware's model registry (its kept copy beside the ledger while under 5 minutes old, else read now,
    at most ~3 s): PixVerse models the spec does not describe become choosable (`load_spec()`)."""
    schema_store.keep_beside(ledger_path(args) if hasattr(args, "out") else None)
    return schema.discover(refresh=refresh)


def _print_options(args) -> int:
    if args.config:  # the configuration table (the README's, between its config-table markers)
        print(config.markdown_table())
        return 0
    found = read_registry(args, refresh=args.refresh)
    spec = load_spec(described_only=True)
    for line in summary_lines(spec):
        print(line)
    for setting in spec.settings:
        if setting.kind == "enum":
            print(f"{setting.input}: {', '.join(setting.values)}")
    print(f"voice: {', '.join(spec.voices.values)}")
    print("new on Runware (in its registry, not described by this pack; the choices of the newest model of its "
          "family narrowed by its schema; price unknown until a run):" if found.models else
          "new on Runware: none" + (f" (the registry could not be read: {found.why})" if found.why else ""))
    for model in found.models:
        read = found.schemas.get(model.air)
        print(f"  {model.label}: {', '.join(model.workflows)}; " + (
            "its schema was read" if read and read.readable
            else f"its schema could not be read ({read.why if read else 'not asked'}): it will not run"))
        for line in summary_lines(spec.model_copy(update={"models": (model,)}))[1:]:
            print(f"  {line}")
    return 0


def _print_spend(args) -> int:
    path = ledger_path(args)
    if not path.is_file():
        print(f"no job ledger at {path}: nothing was spent through it (choose one with --ledger)", file=sys.stderr)
        return 1
    try:
        with Ledger(path) as ledger:
            summary = spend_summary(ledger)
        policy = policy_of(config.load())
    except (OSError, sqlite3.Error) as exc:
        raise PixVerseError(f"cannot read the job ledger {path}: {exc}") from None
    if args.json:
        print(json.dumps({**summary, "limits": policy.to_json(), "ledger": str(path)}, indent=2))
    else:
        print(f"ledger: {path}")
        print(format_spend(summary, policy))
    return 0


def _after_unexpected() -> str:
    """What an unexpected error means for the bill: a task was submitted (then it is not lost), or none was."""
    if not _SENT:
        return "No task was submitted to Runware by this command, so nothing was charged"
    uuid = _SENT[-1]
    return (f"Task {uuid} submitted above is not lost: `python -m nodes recover {uuid}` fetches it, and the same "
            f"command again resumes it from the ledger")


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    local = {"options": _print_options, "spend": _print_spend}.get(args.command)  # no client, no job
    if local is not None:
        try:
            return local(args)
        except PixVerseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    with ExitStack() as stack:
        base_url = os.environ.get(config.BASE_URL.env or "")
        api_key = os.environ.get(config.API_KEY.env or "")
        if getattr(args, "offline", False):
            from ..emulator import EmulatorServer  # an aiohttp server rendering with PyAV: only for --offline

            # it remembers its tasks beside the ledger, as Runware does (a balance query has no ledger)
            state = None if args.command == "balance" else str(ledger_path(args).parent / OFFLINE_STATE)
            emu = stack.enter_context(EmulatorServer(job_seconds=args.job_seconds, state_dir=state))
            emu.dry_run = True  # a user's dry run: it says in its replies that it bills nothing
            base_url, api_key = emu.base_url, OFFLINE_KEY
            stack.enter_context(schema_store.served_by(emu.origin))  # its schema service too, unless one is set
            print(f"offline: local Runware emulator at {base_url}", file=sys.stderr)
        if args.command == "balance":
            return asyncio.run(cli_balance(args, base_url, api_key))
        try:
            read_registry(args)
        except PixVerseError as exc:  # a bad RUNWARE_SCHEMAS_URL
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.command == "batch":
            return batch.main(args, base_url=base_url, api_key=api_key, parser=build_parser(), build_job=build_job,
                              endpoint=None)
        try:
            return asyncio.run(_run(args, base_url, api_key))
        except (RunwareInterrupted, RunwareTimeoutError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        except PixVerseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # noqa: BLE001 - never a traceback for the user; the log has the details
            logging.getLogger("pixverse").debug("unexpected error", exc_info=True)
            print(f"error: unexpected {type(exc).__name__}: {redact_text(str(exc))}. {_after_unexpected()}",
                  file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted: a submitted task may still finish; the same command again resumes it from "
                  "the ledger, and `python -m nodes recover <taskUUID>` fetches it (the taskUUID is printed "
                  "above)", file=sys.stderr)
            return 130
