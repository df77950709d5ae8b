"""Command line: the nodes' jobs (text-to-video, image-to-video, lipsync, modify), same pipeline.

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
from ..requests.tasks import (build_image_to_video, build_in_any_layout, build_lipsync, build_modify, build_text_to_video,
                    resolve_model)
from ..spec import load_spec
from ..spec.options import summary_lines
from ..requests import schema, schema_store
from ..requests.tasks import GenerationChoices

OFFLINE_KEY = "offline-dry-run"
OFFLINE_STATE = "offline-emulator"  # the --offline emulator's memory: a folder beside the job ledger


def _flag(input_name: str) -> str:
    return "--" + input_name.replace("_", "-")


def _add_generation_args(p: argparse.ArgumentParser, workflow: str, *, shaped: bool = True) -> None:
    """Flags from the spec: the core choices, then one flag per setting any model of `workflow` takes.
    `shaped=False` (Modify: the source video gives shape, length and frame rate): no negative prompt,
    aspect ratio, duration or fps."""
    spec = load_spec()
    models = spec.models_for(workflow)
    default = spec.default_model(workflow)
    p.add_argument("--model", default=default.air, help="AIR id or name: " + ", ".join(m.air for m in models))
    p.add_argument("--prompt", required=True)
    p.add_argument("--resolution", default=None,
                   help=f"{', '.join(dict.fromkeys(r for m in models for r in m.resolutions))} "
                        "(default: the model's, see `options`)")
    if shaped:
        p.add_argument("--negative-prompt", default="")
        p.add_argument("--aspect-ratio", default=None,
                       help=", ".join(dict.fromkeys(a for m in models for a in m.aspect_ratios))
                       + " (default: the model's; image-to-video: auto, nearest to the first frame)")
        p.add_argument("--duration", type=int, default=None, help="seconds; each model's lengths: `options`")
        p.add_argument("--fps", type=int, default=None, help="frames per second, where the model takes it")
    p.add_argument("--seed", type=int, default=None)
    _add_setting_args(p, workflow)


def _add_setting_args(p: argparse.ArgumentParser, workflow: str) -> None:
    """One flag per setting any model of `workflow` takes, as the spec describes it."""
    spec = load_spec()
    for setting in spec.settings_for(workflow):
        takers = ", ".join(m.name for m in spec.models_taking(setting.input))
        help_text = f"{setting.tooltip} ({takers})"
        if setting.kind == "boolean":
            p.add_argument(_flag(setting.input), dest=setting.input, action="store_true", default=None,
                           help=help_text)
        elif setting.kind == "integer":
            p.add_argument(_flag(setting.input), dest=setting.input, type=int, default=None, help=help_text)
        else:
            shown = ": " + ", ".join(setting.values) if setting.kind == "enum" else ""
            p.add_argument(_flag(setting.input), dest=setting.input, default=None, help=help_text + shown)
    p.set_defaults(setting_inputs=[s.input for s in spec.settings_for(workflow)])


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
    t2v = gen.add_parser("text-to-video")
    _add_generation_args(t2v, "text-to-video")
    _add_common_args(t2v)
    i2v = gen.add_parser("image-to-video")
    i2v.add_argument("--first-frame", type=Path, required=True)
    i2v.add_argument("--last-frame", type=Path, default=None)
    _add_generation_args(i2v, "image-to-video")
    _add_common_args(i2v)
    i2v.set_defaults(aspect_ratio_default="auto")
    lip = gen.add_parser("lipsync")
    lip.add_argument("--video", type=Path, required=True, help="reference video file (≤ 30 s)")
    lip.add_argument("--audio", type=Path, default=None, help="audio file (≤ 30 s)")
    lip.add_argument("--speech-text", default=None, help="text to speak instead of --audio")
    lip.add_argument("--voice", default=None, help=", ".join(load_spec().voices.values))
    _add_common_args(lip)
    mod = gen.add_parser("modify")
    mod.add_argument("--video", type=Path, required=True, help="the video to change (≤ 30 s)")
    mod.add_argument("--reference-image", type=Path, default=None,
                     help="optional: an image the change should follow (a look, an object, a character)")
    _add_generation_args(mod, "modify", shaped=False)
    _add_common_args(mod)
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


def _choices(args) -> GenerationChoices:
    aspect = getattr(args, "aspect_ratio", None) or getattr(args, "aspect_ratio_default", None)
    settings = {name: getattr(args, name) for name in args.setting_inputs if getattr(args, name) is not None}
    return GenerationChoices(
        model=args.model, prompt=args.prompt, negative_prompt=getattr(args, "negative_prompt", ""),
        resolution=args.resolution, aspect_ratio=aspect, duration=getattr(args, "duration", None),
        fps=getattr(args, "fps", None), seed=args.seed, settings=settings)


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

    `draft`: the BuiltTask as it would be sent, with stand-ins for the uploads: every choice checked and
    the input files read, with the errors `generate` gives, before anything is uploaded or sent (the
    batch command checks every row, and estimates its cost, from it). `run(client, opts)`: the job
    through the pipeline (which loads the input files again: nothing large is held in between)."""
    from ..job import pipeline  # lazy, as in the rest of this module: `options` and `--help` start fast
    from .. import media  # lazy: imports torch

    jobs = {"text-to-video": _text_to_video_job, "image-to-video": _image_to_video_job,
            "lipsync": _lipsync_job, "modify": _modify_job}
    spec = load_spec()
    found = _schema_of(args, spec)
    built, run = jobs[args.workflow](args, schema.spec_for(spec, found), pipeline, media)
    if found is not None:  # Runware's schema judges the draft too (a refusal: before any upload)
        verdict = schema.check(built.task, built.model.air, spec=spec, found=found)
        verdict.raise_refusal()
        if verdict.note:
            built.notices.append(verdict.note)
    return built, run


def _schema_of(args, spec) -> Optional[schema.Found]:
    """Runware's schema for the model `args` choose (None: an unknown model, which the build refuses)."""
    workflow = "video-to-video" if args.workflow == "lipsync" else args.workflow
    try:
        model = resolve_model(spec, getattr(args, "model", None) or spec.default_model(workflow).air, workflow)
    except PixVerseError:
        return None
    return schema.lookup(model.air)


# generate's workflows: (args, spec, the pipeline module, the media module) → (draft, run), as build_job says

def _text_to_video_job(args, spec, pipeline, media):
    choices = _choices(args)
    model = resolve_model(spec, choices.model, args.workflow)
    draft = build_in_any_layout(model, lambda layout: build_text_to_video(choices, spec=spec, layout=layout))
    return draft, lambda client, opts: pipeline.text_to_video(client, choices, opts)


def _image_to_video_job(args, spec, pipeline, media):
    side, stand_in = spec.input_image.max_side, pipeline.PLACEHOLDER_REF  # no need to decode more than is sent

    def frames():
        return (media.load_image_file(args.first_frame, max_side=side, min_side=spec.input_image.min_side),
                media.load_image_file(args.last_frame, max_side=side, min_side=spec.input_image.min_side)
                if args.last_frame else None)
    choices, (first, last) = _choices(args), frames()
    model = resolve_model(spec, choices.model, args.workflow)
    size, last_ref = pipeline.image_size(first, "first_frame"), stand_in if last is not None else None
    draft = build_in_any_layout(model, lambda layout: build_image_to_video(
        choices, stand_in, last_ref, first_frame_size=size, spec=spec, layout=layout))
    return draft, lambda client, opts: pipeline.image_to_video(client, choices, *frames(), opts)


def _lipsync_job(args, spec, pipeline, media):
    stand_in = pipeline.PLACEHOLDER_REF
    draft = build_lipsync(video=stand_in, audio=stand_in if args.audio else None, speech_text=args.speech_text,
                          voice=args.voice, spec=spec)
    check_video_file(args.video, "video")
    if args.audio:
        media.load_audio_file(args.audio)

    async def run(client, opts):
        audio = media.load_audio_file(args.audio) if args.audio else None
        return await pipeline.lipsync(client, opts, video_path=args.video, audio=audio,
                                      speech_text=args.speech_text, voice=args.voice)
    return draft, run


def _modify_job(args, spec, pipeline, media):
    side, stand_in = spec.input_image.max_side, pipeline.PLACEHOLDER_REF

    def reference():
        return media.load_image_file(args.reference_image, max_side=side, min_side=spec.input_image.min_side) \
            if args.reference_image else None
    choices = _choices(args)
    model = resolve_model(spec, choices.model, args.workflow)
    ref_ref = stand_in if args.reference_image else None
    draft = build_in_any_layout(model, lambda layout: build_modify(choices, stand_in, ref_ref, spec=spec,
                                                                   layout=layout))
    check_video_file(args.video, "video", "modify")
    if args.reference_image:
        pipeline.image_size(reference(), "reference_image")

    async def run(client, opts):
        return await pipeline.modify(client, choices, opts, video_path=args.video, reference_image=reference())
    return draft, run


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
    if args.command == "options":
        try:
            return _print_options(args)
        except PixVerseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command == "spend":
        try:
            return _print_spend(args)
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
            os.environ.setdefault(config.SCHEMAS_URL.env or "", emu.origin)  # its schema service too, unless one is set
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
