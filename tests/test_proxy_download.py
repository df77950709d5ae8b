"""Issue 17 item 9: behind an HTTP proxy with no local DNS, a result URL is fetched through the proxy.

A real forward proxy (asyncio, on 127.0.0.1) stands in for a corporate proxy that resolves names this
machine cannot: it answers every absolute-form GET from a local "CDN" server, whatever the host name.
The result URL names a host that does not resolve here (`.invalid`). The client takes the proxy from
the environment (httpx ``trust_env``), as it would for a user; NO_PROXY is honoured."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiohttp import web

from support.keysafety import SENTINEL_KEY as KEY
from nodes import errors as E
from nodes.client import RetryPolicy, RunwareClient

BODY = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
HOST = "video.cdn-unresolvable.invalid"


async def _cdn():
    async def media(request):
        return web.Response(body=BODY, content_type="video/mp4")
    app = web.Application()
    app.router.add_get("/{name}", media)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


async def _proxy(cdn_port: int, seen: list):
    """A minimal HTTP forward proxy: reads "GET http://host/path HTTP/1.1", remembers the target,
    and relays the request to the CDN (its own "DNS" maps every name there)."""
    async def handle(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, *headers = head.decode("latin-1").split("\r\n")
            method, target, version = line.split(" ")
            seen.append(target)
            path = "/" + target.split("://", 1)[1].split("/", 1)[1] if "://" in target else target
            up_r, up_w = await asyncio.open_connection("127.0.0.1", cdn_port)
            kept = [h for h in headers if h and not h.lower().startswith(("proxy-", "connection"))]
            up_w.write(f"{method} {path} HTTP/1.1\r\n".encode() + "\r\n".join(kept).encode()
                       + b"\r\nConnection: close\r\n\r\n")
            await up_w.drain()
            writer.write(await up_r.read())
            await writer.drain()
            up_w.close()
        finally:
            writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _run(tmp_path: Path, monkeypatch, url: str, *, no_proxy: str = "", use_proxy: bool = True,
         seen: list | None = None):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
                 "http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    seen = [] if seen is None else seen

    async def main():
        cdn, cdn_port = await _cdn()
        proxy, proxy_port = await _proxy(cdn_port, seen)
        if use_proxy:
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
        if no_proxy:
            monkeypatch.setenv("NO_PROXY", no_proxy)
        try:
            async with RunwareClient(KEY, "https://api.runware.ai/v1",
                                     retry_policy=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)) as rw:
                return await rw.download(url, tmp_path / "v.mp4", attempts=2, deadline=20)
        finally:
            proxy.close()
            await cdn.cleanup()
    return asyncio.run(main()), seen


def test_unresolvable_host_is_fetched_through_the_proxy(tmp_path, monkeypatch):
    with pytest.raises(OSError):  # the premise: this machine cannot resolve it
        import socket
        socket.getaddrinfo(HOST, 80)
    path, seen = _run(tmp_path, monkeypatch, f"http://{HOST}/v.mp4?sig=abc")
    assert Path(path).read_bytes() == BODY
    assert seen == [f"http://{HOST}/v.mp4?sig=abc"]


def test_without_the_proxy_the_name_must_resolve(tmp_path, monkeypatch):
    with pytest.raises(E.RunwareDownloadError) as info:
        _run(tmp_path, monkeypatch, f"http://{HOST}/v.mp4", use_proxy=False)
    assert "does not resolve" in str(info.value)


def test_no_proxy_is_honoured(tmp_path, monkeypatch):
    with pytest.raises(E.RunwareDownloadError) as info:
        _run(tmp_path, monkeypatch, f"http://{HOST}/v.mp4", no_proxy=".invalid")
    assert "does not resolve" in str(info.value)


@pytest.mark.parametrize("url", ["http://100.100.100.200/latest/meta-data", "http://10.1.2.3/v.mp4",
                                 "http://localhost/v.mp4", "http://[2002:7f00:1::]/v.mp4"])
def test_through_the_proxy_local_literals_are_still_refused(tmp_path, monkeypatch, url):
    seen: list = []
    with pytest.raises(E.RunwareDownloadError) as info:
        _run(tmp_path, monkeypatch, url, seen=seen)
    assert "non-public" in str(info.value)
    assert seen == []  # refused before the proxy was asked
    assert not (tmp_path / "v.mp4").exists()
