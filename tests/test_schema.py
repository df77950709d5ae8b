"""Runware's own schema judges each request, and models Runware adds appear (issue 24).

Everything runs against the local emulator's schema service (/registry.json, /resolve/<AIR>: built from the
spec, or told to serve another schema, an extra model or an error), read through RUNWARE_SCHEMAS_URL.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from support.jobs import CHOICES, Runner, cli_generate_args, run_cli_here
from support.keysafety import SENTINEL_KEY, artifact_dir
import workflow_runs as runs
from nodes.emulator import EmulatorServer
from nodes.errors import PixVerseInputError
from nodes.job import pipeline
from nodes.money.pricing import estimate_new
from nodes.requests import schema, schema_store
from nodes.workflows.draft import draft
from nodes.requests.tasks import GenerationChoices
from nodes.spec import load_spec, set_discovered
from nodes.spec.options import served
from synthetic_photo import photo

NEW = "pixverse:1@9"
NEW_SCHEMA = {  # what Runware might serve for a new model: stricter than the family's newest (v6)
    "type": "object",
    "properties": {
        "taskType": {"const": "videoInference"}, "model": {"const": NEW},
        "duration": {"enum": [5, 10]}, "resolution": {"enum": ["540p", "720p"]},
        "width": {"enum": [960, 540, 1280, 720]}, "height": {"enum": [540, 960, 720, 1280]},
        "settings": {"type": "object", "properties": {"style": {"enum": ["anime"]}, "audio": {"type": "boolean"}},
                     "additionalProperties": False},
    },
    "required": ["taskType", "model"],
}
# The seed's v4 examples that Runware's v4 page refuses (8 s / 1080p with a provider setting), in the
# node's terms (listed sizes, corrected enumerations: DESIGN 2.2, 2.3).
SEED_V4 = [dict(duration=8, resolution="1080p", aspect_ratio="16:9", style="3d_animation"),
           dict(duration=8, resolution="720p", aspect_ratio="16:9", style="cyberpunk", camera_movement="crane_up"),
           dict(duration=8, resolution="540p", aspect_ratio="3:4", style="comic")]


@pytest.fixture
def emu(monkeypatch, tmp_path):
    with EmulatorServer(job_seconds=0.2, api_key=SENTINEL_KEY) as server:
        monkeypatch.setenv("RUNWARE_SCHEMAS_URL", server.origin)
        store = schema_store.default_store()
        store.cache_dir = tmp_path / "schemas"  # each test its own kept copies
        yield server
    set_discovered(())  # the models a test discovered stay in that test
    schema_store.default_store().cache_dir = None


def choices(**over) -> GenerationChoices:
    """The cheap test job's choices with `over` (core choices and settings by input name)."""
    return GenerationChoices(**{**CHOICES.model_dump(exclude={"settings"}), **over})


def v4_values(**over):
    return {"model": "pixverse:1@2", "prompt": "a clay robot waving", **over}


def test_no_schema_runs_on_the_spec_and_says_so_once(emu):
    emu.schemas.configure(errors={"pixverse:1@5": 500})
    runner = Runner(emu, "schema-none")
    try:
        result = runner.run()
    finally:
        runner.close()
    said = [n for n in result.notices if n.startswith(schema.SPEC_ONLY)]
    assert said == ["checked by the pack's spec only: Runware's schema for pixverse:1@5 could not be read (HTTP 500)"]
    asked = [r["path"] for r in emu.schemas.requests if "resolve" in r["path"]]
    assert len(asked) == 1, asked  # a failed read is not tried again within 5 minutes (same process)


def test_unreachable_schema_host_costs_one_try_and_the_seed_v4_examples_go(monkeypatch):
    monkeypatch.setenv("RUNWARE_SCHEMAS_URL", "http://127.0.0.1:9")  # nothing listens there
    for over in SEED_V4:
        built = draft("text_to_video", v4_values(**over)).built
        assert any("sources disagree" in n for n in built.notices), built.notices
        assert any(n.startswith(schema.SPEC_ONLY + ": Runware's schema for pixverse:1@2") for n in built.notices)
        assert built.task["duration"] == 8


def test_schema_looser_than_a_disputed_rule_lets_the_seed_v4_example_through(emu):
    runner = Runner(emu, "schema-looser")
    try:
        result = runner.run(lambda client, opts: runs.text_to_video(
            client, choices(model="pixverse:1@2", fps=None, **SEED_V4[0]), opts))
    finally:
        runner.close()
    task = emu.video_tasks()[-1]
    assert task["duration"] == 8 and task["height"] == 1080 and task["providerSettings"]["pixverse"]["style"]
    assert not any(n.startswith(schema.SPEC_ONLY) for n in result.notices), result.notices
    assert any("Runware's schema for this model allows it" in n for n in result.notices), result.notices


def test_schema_stricter_than_the_spec_refuses_before_any_upload(emu):
    strict = json.loads(json.dumps(schema.lookup("pixverse:1@2").schema))
    strict["allOf"] = strict.get("allOf", []) + [
        {"if": {"required": ["providerSettings"]}, "then": {"properties": {"duration": {"const": 5}}}}]
    emu.schemas.configure(schemas={"pixverse:1@2": strict})
    schema_store.default_store().resolve("pixverse:1@2", refresh=True)
    with pytest.raises(PixVerseInputError) as caught:  # queue time / estimate / CLI: the draft
        draft("text_to_video", v4_values(**SEED_V4[0]))
    assert caught.value.parameter == "duration" and caught.value.value == 8 and caught.value.allowed == [5]
    assert "Runware's schema for pixverse:1@2" in str(caught.value)
    runner = Runner(emu, "schema-stricter")
    try:  # a run with an image to upload: refused before the upload
        outcome = runner.attempt(lambda client, opts: runs.image_to_video(
            client, choices(model="pixverse:1@2", fps=None, duration=8, resolution="720p", aspect_ratio="auto",
                            style="clay"), photo(640, 480), None, opts))
    finally:
        runner.close()
    assert isinstance(outcome.error, PixVerseInputError) and outcome.error.parameter == "duration", outcome.error
    stats = emu.stats()
    assert stats["uploads"] == 0 and stats["video_submissions"] == 0


def test_a_rule_the_schema_has_and_the_spec_lacks_names_the_input(emu):
    looser = json.loads(json.dumps(schema.lookup("pixverse:1@5").schema))
    looser["properties"]["providerSettings"]["properties"]["pixverse"]["properties"]["style"] = {"enum": ["anime"]}
    emu.schemas.configure(schemas={"pixverse:1@5": looser})
    schema_store.default_store().resolve("pixverse:1@5", refresh=True)  # the kept copy is under 5 minutes old
    with pytest.raises(PixVerseInputError) as caught:
        draft("text_to_video", {"model": "pixverse:1@5", "prompt": "a cat", "style": "clay"})
    err = caught.value
    assert (err.parameter, err.value, err.allowed) == ("style", "clay", ["anime"])
    assert err.wire_name == "providerSettings.pixverse.style"


def test_a_new_model_from_the_registry_runs_and_is_refused_where_its_schema_says_no(emu):
    emu.schemas.configure(extra={NEW: NEW_SCHEMA})
    found = schema.discover(refresh=True)
    assert [m.label for m in found.models] == [f"{NEW} (new on Runware)"]
    spec = load_spec()
    model = spec.model(NEW)
    assert model.label in [m.label for m in spec.models_for("text-to-video")]
    assert model.durations.all == (5, 10) and list(model.sizes) == ["540p", "720p"] and model.settings == ("style", "audio")
    web = served(spec)["text_to_video"]["models"][model.label]
    assert web["new_on_runware"] and web["options"]["duration"] == [5, 10]
    runner = Runner(emu, "schema-new-model")
    try:
        result = runner.run(lambda client, opts: runs.text_to_video(
            client, choices(model=model.label, duration=10, resolution="720p", fps=None, style="anime"), opts))
        assert emu.video_tasks()[-1]["model"] == NEW and result.video_path.exists()
        refused = runner.attempt(lambda client, opts: runs.text_to_video(
            client, choices(model=NEW, duration=5, resolution="720p", fps=None, style="clay"), opts))
    finally:
        runner.close()
    assert isinstance(refused.error, PixVerseInputError) and refused.error.parameter == "style"
    assert refused.error.allowed == ["anime"] and emu.stats()["video_submissions"] == 1
    assert estimate_new(draft("text_to_video", {"model": NEW, "prompt": "a cat", "duration": 5}).task).source \
        == "unknown"  # no price until a run teaches it


def test_a_new_model_never_runs_without_its_schema(emu):
    emu.schemas.configure(extra={NEW: NEW_SCHEMA})
    schema.discover(refresh=True)
    emu.schemas.configure(errors={NEW: 404})
    schema_store.default_store().resolve(NEW, refresh=True)
    with pytest.raises(PixVerseInputError) as caught:
        draft("text_to_video", {"model": NEW, "prompt": "a cat"})
    assert caught.value.parameter == "model" and "could not be read (HTTP 404)" in str(caught.value)
    assert "nothing was uploaded or charged" in str(caught.value)


def test_the_schema_host_never_sees_the_key(emu):
    emu.schemas.configure(extra={NEW: NEW_SCHEMA})
    schema.discover(refresh=True)
    runner = Runner(emu, "schema-key")
    try:
        runner.run()
    finally:
        runner.close()
    assert emu.schemas.requests, "the schema service was not asked"
    for seen in emu.schemas.requests:
        headers = {k.lower(): v for k, v in seen["headers"].items()}
        assert "authorization" not in headers and "cookie" not in headers
        assert SENTINEL_KEY not in json.dumps(seen)
    assert emu.stats()["video_submissions"] == 1  # the key went to the API as usual


def test_the_kept_copy_is_used_offline_and_refreshed_with_its_etag(tmp_path):
    now = [1000.0]
    with EmulatorServer() as server:
        store = schema_store.SchemaStore(server.origin, tmp_path, clock=lambda: now[0])
        assert store.registry().origin == "fetched" and store.resolve("pixverse:1@5").origin == "fetched"
        assert store.registry().origin == "fresh copy"  # within 5 minutes: not asked again
        now[0] += schema_store.FRESH_S + 1
        assert store.registry().origin == "fetched"
        etag_sent = [r["headers"].get("If-None-Match") for r in server.schemas.requests if r["path"] == "/registry.json"]
        assert etag_sent[0] is None and etag_sent[-1]  # the second read asked with the ETag (answered 304)
    now[0] += schema_store.FRESH_S + 1
    offline = schema_store.SchemaStore(server.origin, tmp_path, clock=lambda: now[0])  # a new process, offline
    doc = offline.resolve("pixverse:1@5")
    assert doc.origin == "kept copy" and "unreachable" in doc.why
    verdict = schema.check(draft("text_to_video", {"model": "pixverse:1@5", "prompt": "a cat"}, judged=False).task,
                           "pixverse:1@5", store=offline)
    assert verdict.checked and verdict.ok and not verdict.note


def test_a_copy_kept_from_another_schema_service_is_not_used(tmp_path):
    """A copy names the service it came from: after pointing RUNWARE_SCHEMAS_URL at an emulator that served
    a looser schema, the real service's reading (here: unreachable) does not fall back to that copy."""
    with EmulatorServer() as server:
        emulated = schema_store.SchemaStore(server.origin, tmp_path)
        assert emulated.resolve("pixverse:1@8").origin == "fetched"
        assert emulated.resolve("pixverse:1@8").origin == "fresh copy"
    other = schema_store.SchemaStore("http://127.0.0.1:9", tmp_path, timeout_s=0.5)  # nothing listens on port 9
    doc = other.resolve("pixverse:1@8")
    assert doc.body is None and "unreachable" in doc.why
    assert other.resolve("pixverse:1@8", kept_only=True).body is None
    again = schema_store.SchemaStore(server.origin, tmp_path)  # the emulator's own copy is still kept for it
    assert again.resolve("pixverse:1@8", kept_only=True).origin == "kept copy"


def test_options_lists_new_models_apart(emu, monkeypatch, capsys, tmp_path):
    emu.schemas.configure(extra={NEW: NEW_SCHEMA})
    schema_store.default_store().cache_dir = None  # as in a fresh process: the CLI keeps them beside its ledger
    code, out, _ = run_cli_here(emu, ["options", "--refresh", "--out", tmp_path], artifact_dir("schema-cli"),
                                "options", monkeypatch, capsys)
    assert code == 0
    described, _, apart = out.partition("new on Runware (")
    assert NEW not in described and f"{NEW} (new on Runware): text-to-video, image-to-video; its schema was read" in apart
    assert (tmp_path / schema_store.CACHE_DIRNAME / "registry.json").is_file()  # kept beside the ledger


def test_a_bad_schemas_url_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("RUNWARE_SCHEMAS_URL", "schemas.runware.ai")
    with pytest.raises(Exception) as caught:
        draft("text_to_video", {"model": "pixverse:1@5", "prompt": "a cat"})
    assert "RUNWARE_SCHEMAS_URL" in str(caught.value)


def test_every_served_schema_compiles_and_accepts_what_the_builder_makes(emu):
    spec = load_spec()
    for model in spec.generators:
        found = schema.lookup(model.air)
        assert found.readable, (model.air, found.why)
        built = draft("text_to_video", {"model": model.label, "prompt": "a lighthouse at dusk"}).built
        assert schema.first_failure(found.schema, built.task) is None, model.air


def test_the_cli_refuses_what_the_schema_refuses_before_any_upload(emu, monkeypatch, capsys, tmp_path):
    strict = json.loads(json.dumps(schema.lookup("pixverse:1@5").schema))
    strict["properties"]["providerSettings"]["properties"]["pixverse"]["properties"]["style"] = {"enum": ["anime"]}
    emu.schemas.configure(schemas={"pixverse:1@5": strict})
    schema_store.default_store().resolve("pixverse:1@5", refresh=True)
    args = cli_generate_args(tmp_path / "out", tmp_path / "ledger.sqlite3") + ["--style", "clay"]
    code, _, err = run_cli_here(emu, args, artifact_dir("schema-cli"), "generate-refused", monkeypatch, capsys)
    assert code == 2 and "style" in err and "'clay'" in err and "anime" in err, err
    assert emu.stats()["uploads"] == 0 and emu.stats()["video_submissions"] == 0
