"""Which result URLs may be fetched, and how a URL may be shown.

A `videoURL` comes from the server, so it is untrusted input:

- only ``http``/``https`` (a ``file://`` or ``ftp://`` URL is refused, also as a redirect target);
- no request to a loopback, link-local, private, multicast, reserved or unspecified address
  (the host is resolved first, and every address it resolves to must be public), unless the
  configured base URL itself is on such an address (the local emulator, a LAN gateway): then the
  server is local anyway, and its result URLs are too;
- shown (logs, errors, the job ledger, the node's info) without userinfo and without the query
  string: signed CDN URLs carry their tokens there (see `public_url`).

The check resolves the name and then lets httpx connect, which resolves again: a DNS answer that
changes in between (rebinding within the TTL) is not caught. The redirect targets are checked the
same way, hop by hop.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import threading
from typing import Callable, Optional
from urllib.parse import urlsplit

ALLOWED_SCHEMES = ("http", "https")


class URLRefused(Exception):
    """The URL may not be fetched; the message says why (it never carries the query or userinfo)."""


def public_url(url: str, scrub: Callable[[str], str] = lambda s: s) -> str:
    """scheme://host[:port]/path: no userinfo, no query, no fragment; `scrub` removes secrets
    from what is left (a key a hostile server put into the path)."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        shown = f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else parts.path
    except ValueError:
        return "<unparseable URL>"
    return scrub(shown)


def _address(host: str) -> Optional[ipaddress._BaseAddress]:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def is_public_address(addr: ipaddress._BaseAddress) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bad = (addr.is_loopback or addr.is_link_local or addr.is_private or addr.is_multicast
           or addr.is_reserved or addr.is_unspecified)
    if isinstance(addr, ipaddress.IPv6Address):
        bad = bad or addr.is_site_local
    return not bad


async def resolve(host: str, port: int) -> list[ipaddress._BaseAddress]:
    literal = _address(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out = []
    for info in infos:
        addr = _address(str(info[4][0]))
        if addr is not None:
            out.append(addr)
    return out


def host_is_local(host: str) -> bool:
    """Whether a base URL's host names a non-public address without asking DNS (an IP literal or
    localhost). Names that need DNS count as public: only they can be rebound."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    addr = _address(host)
    return addr is not None and not is_public_address(addr)


class URLPolicy:
    """Checks result URLs before each request (the first and every redirect)."""

    def __init__(self, allow_local: bool = False,
                 resolver: Optional[Callable[[str, int], "asyncio.Future"]] = None):
        self.allow_local = allow_local
        self._resolve = resolver or resolve

    @classmethod
    def for_base_url(cls, base_url: str) -> "URLPolicy":
        """Local addresses are allowed only when the configured Runware base URL is itself local."""
        try:
            host = urlsplit(base_url).hostname or ""
        except ValueError:
            host = ""
        return cls(allow_local=host_is_local(host))

    async def check(self, url: str) -> None:
        try:
            parts = urlsplit(str(url))
            scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
        except ValueError:
            raise URLRefused("the URL cannot be parsed") from None
        if scheme not in ALLOWED_SCHEMES:
            raise URLRefused(f"its scheme is {scheme or 'missing'!r}; only http and https URLs are fetched")
        if not host:
            raise URLRefused("it names no host")
        if self.allow_local:
            return
        literal = _address(host)
        try:
            addresses = [literal] if literal is not None else \
                await self._resolve(host, port or (443 if scheme == "https" else 80))
        except OSError as exc:
            raise URLRefused(f"its host {host} does not resolve ({exc.strerror or exc})") from None
        if not addresses:
            raise URLRefused(f"its host {host} does not resolve")
        for addr in addresses:
            if not is_public_address(addr):
                raise URLRefused(f"its host {host} is a loopback, link-local or private address ({addr}); "
                                 "result URLs are fetched only from public addresses (unless the Runware "
                                 "base URL is itself local, as the emulator is)")


# -- third-party log records --------------------------------------------------------------------
# httpx logs every request's full URL at INFO ("HTTP Request: GET https://cdn/…?signature=…") and
# httpcore at DEBUG. This filter, on those loggers, drops query strings and userinfo from the URLs
# in such records and masks the keys clients registered (a hostile server may echo one in a path).

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_URL_IN_TEXT = re.compile(r"(https?://)([^/\s\"'@]*@)?([^\s\"'?#]*)(\?[^\s\"'#]*)?")


def register_secret(secret: str) -> None:
    if secret and len(secret) >= 8:
        with _SECRETS_LOCK:
            _SECRETS.add(secret)


def redact_text(text: str) -> str:
    text = _URL_IN_TEXT.sub(lambda m: m.group(1) + m.group(3) + ("?…" if m.group(4) else ""), text)
    with _SECRETS_LOCK:
        secrets = list(_SECRETS)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot format is left as it is
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    for name in ("httpx", "httpcore", "httpcore.http11", "httpcore.connection", "httpcore.http2"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
