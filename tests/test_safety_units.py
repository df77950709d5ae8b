"""Small rules behind the safety work: the result-URL policy, how a URL is shown, "not found" however
worded, the key-route guard's header rules, temp files of lipsync-from-frames, absolute ledger paths."""
from __future__ import annotations

import asyncio
import ipaddress
import os
import tempfile
from pathlib import Path

import pytest
import torch

from support.jobs import Runner
from support.keysafety import SENTINEL_KEY
import workflow_runs as runs
from nodes.job import pipeline
from nodes.comfy import webguard
from nodes.client.models import is_definite_failure, looks_not_found
from nodes.client.urls import URLPolicy, URLRefused, public_url, redact_text


def fake_resolver(table):
    async def resolve(host, port):
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return [ipaddress.ip_address(a) for a in table[host]]
    return resolve


RESOLVER = fake_resolver({"cdn.example.com": ["93.184.216.34"], "rebind.example.com": ["93.184.216.34", "10.0.0.5"],
                          "localhost": ["127.0.0.1"], "v6.example.com": ["2606:4700::1111"],
                          "mapped.example.com": ["::ffff:192.168.0.1"]})


@pytest.mark.parametrize("url,why", [
    ("file:///etc/passwd", "scheme is 'file'"), ("ftp://cdn.example.com/x.mp4", "scheme is 'ftp'"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254"), ("http://10.1.2.3/x.mp4", "private"),
    ("http://localhost:8080/x.mp4", "127.0.0.1"), ("http://[::1]/x.mp4", "::1"),
    ("http://rebind.example.com/x.mp4", "10.0.0.5"), ("http://mapped.example.com/x", "private address"),
    ("http://0.0.0.0/x", "0.0.0.0"), ("http://nowhere.invalid/x", "does not resolve"), ("https:///x", "no host")])
def test_url_policy_refuses(url, why):
    with pytest.raises(URLRefused) as info:
        asyncio.run(URLPolicy(allow_local=False, resolver=RESOLVER).check(url))
    assert why in str(info.value)


@pytest.mark.parametrize("url", ["https://cdn.example.com/v.mp4?sig=1", "http://v6.example.com/v.mp4"])
def test_url_policy_allows_public(url):
    asyncio.run(URLPolicy(allow_local=False, resolver=RESOLVER).check(url))


@pytest.mark.parametrize("base,local", [("http://127.0.0.1:8765/v1", True), ("http://localhost:1/v1", True),
                                        ("http://192.168.1.4/v1", True), ("https://api.runware.ai/v1", False)])
def test_local_addresses_only_with_a_local_base_url(base, local):
    assert URLPolicy.for_base_url(base).allow_local is local


def test_public_url_and_log_redaction():
    key = "rw-unit-secret-key-123456"
    shown = public_url(f"https://user:{key}@cdn.example.com:8443/{key}/v.mp4?X-Amz-Signature=abc#f",
                       lambda t: t.replace(key, "***"))
    assert shown == "https://cdn.example.com:8443/***/v.mp4"
    assert redact_text('HTTP Request: GET https://u:p@cdn.example.com/v.mp4?sig=SECRET "HTTP/1.1 200 OK"') == \
        'HTTP Request: GET https://cdn.example.com/v.mp4?… "HTTP/1.1 200 OK"'


@pytest.mark.parametrize("code,message,expected", [
    ("taskNotFound", None, True), ("TASK_NOT_FOUND", "", True), ("notFound", None, True),
    (None, "No task with taskUUID 123 was found.", True), ("", "Task does not exist", True),
    ("unknownTaskUUID", None, True), ("resourceMissing", "The requested task could not be found", True),
    ("taskFailed", "model not found upstream", False), ("invalidTaskUUID", "not found", False),
    ("serverError", "Internal error", False), (None, "Something odd", False)])
def test_not_found_however_worded(code, message, expected):
    assert looks_not_found(code, message) is expected


def test_unknown_error_codes_are_not_failures():
    assert is_definite_failure({"code": "taskFailed"}, explicit_status=False)
    assert is_definite_failure({"code": "whatever"}, explicit_status=True)
    assert not is_definite_failure({"code": "somethingOdd"}, explicit_status=False)
    assert not is_definite_failure({"message": "?"}, explicit_status=False)


def test_guard_rules_without_a_server():
    ok = {"Host": "127.0.0.1:8188", "Content-Type": "application/json; charset=utf-8", "X-PixVerse-Request": "1"}
    assert webguard.refusal("POST", ok) is None
    assert webguard.refusal("POST", {**ok, "Origin": "http://127.0.0.1:8188"}) is None
    assert webguard.refusal("POST", {**ok, "Origin": "http://127.0.0.1:8189"})[0] == 403
    assert webguard.refusal("POST", {**ok, "X-PixVerse-Request": "0"})[0] == 403
    assert webguard.refusal("GET", {"Host": "127.0.0.1:8188"}) is None
    assert webguard.refusal("GET", {"Host": "attacker.example:8188"})[0] == 403
    assert webguard.refusal("GET", {"Host": "127.0.0.1:notaport"})[0] == 403


# -- against the emulator ----------------------------------------------------------------------

# `emu`: conftest's emulator (the session's key), reset around each test


def test_lipsync_from_frames_leaves_no_temp_file(emu, request, tmp_path, monkeypatch):
    private = tmp_path / "tmp"  # this test's own temp folder: nothing else writes there meanwhile
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    runner = Runner(emu, request.node.name)
    try:
        result = runner.run(lambda client, opts: runs.lipsync(client, opts, frames=torch.rand(24, 64, 96, 3),
                                                                   frames_fps=24.0, speech_text="Hello there"))
    finally:
        runner.close()
    assert result.video_path.is_file()
    assert tempfile.gettempdir() == str(private) and list(private.iterdir()) == []


def test_local_file_is_stored_absolute(emu, request, monkeypatch):
    runner = Runner(emu, request.node.name)
    monkeypatch.chdir(runner.dir)
    try:
        result = runner.run(output_dir=Path("relative-out"))
        entry = runner.entry(result.task_uuid)
    finally:
        runner.close()
    assert os.path.isabs(entry.local_file) and Path(entry.local_file) == (runner.dir / "relative-out" /
                                                                          result.video_path.name)
    assert result.video_path.is_absolute()


# -- issue 17 item 8: non-global addresses, addresses inside addresses, the local base URL's host only --

@pytest.mark.parametrize("url,why", [
    ("http://100.100.100.200/latest/meta-data", "100.100.100.200"),      # CGNAT: cloud metadata
    ("http://100.64.0.1/x.mp4", "100.64.0.1"),
    ("http://[2002:7f00:1::]/x.mp4", "2002:7f00:1::"),                   # 6to4 of 127.0.0.1
    ("http://[2002:a9fe:a9fe::]/x.mp4", "non-public"),                   # 6to4 of 169.254.169.254
    ("http://[64:ff9b::a9fe:a9fe]/x.mp4", "64:ff9b::a9fe:a9fe"),         # NAT64 of 169.254.169.254
    ("http://[64:ff9b::6464:64c8]/x.mp4", "non-public"),                 # NAT64 of 100.100.100.200
    ("http://[64:ff9b:1::7f00:1]/x.mp4", "non-public"),                  # local-use NAT64
    ("http://[::ffff:100.100.100.200]/x.mp4", "non-public"),             # IPv4-mapped CGNAT
    ("http://[::ffff:7f00:1]/x.mp4", "non-public"),                      # IPv4-mapped loopback
    ("http://[::7f00:1]/x.mp4", "non-public"),                           # IPv4-compatible loopback
    ("http://[2001:0:5db8:d822:0:f227:80ff:fefe]/x.mp4", "non-public"),  # Teredo (client 127.0.0.1)
    ("http://[fec0::1]/x.mp4", "fec0::1"), ("http://192.0.0.8/x.mp4", "192.0.0.8"),
    ("http://224.0.0.1/x.mp4", "224.0.0.1"), ("http://198.18.0.1/x.mp4", "198.18.0.1"),
    ("http://localhost./x.mp4", "127.0.0.1"), ("http://a.localhost/x.mp4", "127.0.0.1")])
def test_url_policy_refuses_non_global_addresses(url, why):
    with pytest.raises(URLRefused) as info:
        asyncio.run(URLPolicy(resolver=RESOLVER).check(url))
    assert why in str(info.value)


@pytest.mark.parametrize("url", [
    "http://93.184.216.34/v.mp4", "http://[2002:5db8:d822::1]/v.mp4",   # 6to4 of a public address
    "http://[64:ff9b::5db8:d822]/v.mp4", "http://[::ffff:93.184.216.34]/v.mp4"])
def test_url_policy_allows_public_addresses_inside_addresses(url):
    asyncio.run(URLPolicy(resolver=RESOLVER).check(url))


@pytest.mark.parametrize("base,url,ok", [
    ("http://127.0.0.1:8765/v1", "http://127.0.0.1:8765/media/v.mp4", True),
    ("http://127.0.0.1:8765/v1", "http://127.0.0.1:9000/v.mp4", True),       # same host, other port
    ("http://127.0.0.1:8765/v1", "http://localhost:8765/v.mp4", True),       # loopback is this machine
    ("http://localhost:8765/v1", "http://[::1]:8765/v.mp4", True),
    ("http://127.0.0.1:8765/v1", "http://10.0.0.5/v.mp4", False),
    ("http://127.0.0.1:8765/v1", "http://100.100.100.200/latest/meta-data", False),
    ("http://127.0.0.1:8765/v1", "http://169.254.169.254/latest/meta-data", False),
    ("http://127.0.0.1:8765/v1", "http://rebind.example.com/v.mp4", False),
    ("http://192.168.1.4/v1", "http://192.168.1.4:8080/v.mp4", True),
    ("http://192.168.1.4/v1", "http://192.168.1.5/v.mp4", False),
    ("http://192.168.1.4/v1", "http://127.0.0.1/v.mp4", False),
    ("http://127.0.0.1:8765/v1", "https://cdn.example.com/v.mp4", True),     # public stays allowed
    ("https://api.runware.ai/v1", "http://127.0.0.1/v.mp4", False)])
def test_local_base_url_allows_its_own_host_only(base, url, ok):
    policy = URLPolicy.for_base_url(base)
    policy._resolve = RESOLVER
    if ok:
        asyncio.run(policy.check(url))
    else:
        with pytest.raises(URLRefused):
            asyncio.run(policy.check(url))


# -- issue 17 item 9: through a proxy, no local DNS is needed (the literal host is still checked) --

@pytest.mark.parametrize("url,ok", [
    ("https://cdn.nowhere-locally.invalid/v.mp4", True), ("http://93.184.216.34/v.mp4", True),
    ("http://10.1.2.3/v.mp4", False), ("http://100.100.100.200/x", False), ("http://localhost/x", False),
    ("http://[2002:7f00:1::]/x", False), ("file:///etc/passwd", False)])
def test_url_policy_through_a_proxy_checks_the_literal_host_only(url, ok):
    async def no_dns(host, port):
        raise AssertionError("local DNS asked although a proxy carries the request")
    policy = URLPolicy.for_base_url("https://api.runware.ai/v1")
    policy._resolve = no_dns
    if ok:
        asyncio.run(policy.check(url, via_proxy=True))
    else:
        with pytest.raises(URLRefused):
            asyncio.run(policy.check(url, via_proxy=True))
