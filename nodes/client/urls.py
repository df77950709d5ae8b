"""Which result URLs may be fetched, and how a URL may be shown.

A `videoURL` comes from the server, so it is untrusted input:

- only ``http``/``https`` (a ``file://`` or ``ftp://`` URL is refused, also as a redirect target);
- no request to an address that is not globally routable (`ipaddress`'s ``is_global``, and not
  multicast): loopback, link-local, private, CGNAT 100.64.0.0/10 (cloud metadata lives at
  100.100.100.200), reserved, unspecified; an IPv6 address that carries an IPv4 one (IPv4-mapped,
  IPv4-compatible, 6to4 2002::/16, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, Teredo) is judged by that
  IPv4 address too. The host is resolved first, and every address it resolves to must be public;
- when the configured base URL is itself local (the emulator, a LAN gateway), result URLs on that
  same host are allowed (any port): the server is local anyway. Other local hosts stay refused;
- when an HTTP(S) proxy carries the request (httpx ``trust_env``: HTTP(S)_PROXY / ALL_PROXY, with
  NO_PROXY honoured), the proxy resolves the name, not this machine: local DNS is not asked (it may
  not exist, and would not say where the proxy connects); only the literal host is checked (an IP
  literal must be public, ``localhost`` names are refused);
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


_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Not global although Python 3.11's `is_global` says so (fixed in later Pythons): IETF protocol
# assignments, the discard-only block, site-local IPv6.
_NOT_GLOBAL = (ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv6Network("100::/64"),
               ipaddress.IPv6Network("fec0::/10"))


def embedded_ipv4(addr: ipaddress._BaseAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo)."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return []
    out: list[ipaddress.IPv4Address] = []
    if addr.ipv4_mapped is not None:
        out.append(addr.ipv4_mapped)
    if addr.sixtofour is not None:
        out.append(addr.sixtofour)
    if addr.teredo is not None:
        out.extend(addr.teredo)  # (server, client)
    if any(addr in net for net in _NAT64) or (addr in _IPV4_COMPATIBLE and int(addr) > 1):
        out.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return out


def _global(addr: ipaddress._BaseAddress) -> bool:
    if not addr.is_global or addr.is_multicast or addr.is_unspecified or addr.is_reserved:
        return False
    return not any(addr.version == net.version and addr in net for net in _NOT_GLOBAL)


def is_public_address(addr: ipaddress._BaseAddress) -> bool:
    """Globally routable, and so is every IPv4 address it carries."""
    inner = embedded_ipv4(addr)
    if isinstance(addr, ipaddress.IPv6Address) and (
            addr.ipv4_mapped is not None or any(addr in net for net in _NAT64)):
        # ::ffff:a.b.c.d is a.b.c.d on the wire; a NAT64 gateway connects to the IPv4 address it
        # carries (Python counts 64:ff9b::/96 as reserved, as inside ::/8): that address decides.
        return all(_global(a) for a in inner)
    return _global(addr) and all(_global(a) for a in inner)


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


_LOCAL_NAMES = ("localhost", "localhost.localdomain")


def _is_local_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host in _LOCAL_NAMES or host.endswith(".localhost")


def host_is_local(host: str) -> bool:
    """Whether a base URL's host names a non-public address without asking DNS (an IP literal or
    localhost). Names that need DNS count as public: only they can be rebound."""
    if _is_local_name(host):
        return True
    addr = _address(host)
    return addr is not None and not is_public_address(addr)


def _is_loopback_host(host: str) -> bool:
    if _is_local_name(host):
        return True
    addr = _address(host)
    if addr is None:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def same_host(a: str, b: str) -> bool:
    """One machine: equal names or addresses; every loopback spelling is this machine."""
    a, b = a.lower().strip("[]").rstrip("."), b.lower().strip("[]").rstrip(".")
    if a == b:
        return True
    x, y = _address(a), _address(b)
    if x is not None and y is not None and x == y:
        return True
    return _is_loopback_host(a) and _is_loopback_host(b)


def proxied(http: object, url: str) -> bool:
    """Whether `http` (an httpx client) sends a request for `url` through a proxy: the env proxies
    it mounted with ``trust_env`` (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY; NO_PROXY honoured) or one it
    was given. Asks the client itself, so the answer is the route the request will take."""
    import httpx
    try:
        chosen = http._transport_for_url(httpx.URL(url))  # type: ignore[attr-defined]
        default = http._transport  # type: ignore[attr-defined]
    except (AttributeError, httpx.InvalidURL, ValueError, TypeError):
        return False
    return chosen is not default


class URLPolicy:
    """Checks result URLs before each request (the first and every redirect)."""

    def __init__(self, allow_local: bool = False,
                 resolver: Optional[Callable[[str, int], "asyncio.Future"]] = None,
                 local_host: Optional[str] = None):
        # allow_local=True without a host allows every local address (tests, explicit opt-in);
        # `for_base_url` gives the base URL's host instead, and only that host is allowed.
        self._allow_any_local = bool(allow_local) and not local_host
        self.local_host = local_host or None
        self._resolve = resolver or resolve

    @property
    def allow_local(self) -> bool:
        return self._allow_any_local or self.local_host is not None

    @classmethod
    def for_base_url(cls, base_url: str) -> "URLPolicy":
        """Local addresses are allowed only when the configured Runware base URL is itself local,
        and then only on its host."""
        try:
            host = urlsplit(base_url).hostname or ""
        except ValueError:
            host = ""
        return cls(local_host=host if host and host_is_local(host) else None)

    async def check(self, url: str, via_proxy: bool = False) -> None:
        """Refuse `url` (URLRefused) unless it may be fetched. `via_proxy`: a proxy carries the
        request, so the literal host is checked and local DNS is not asked."""
        try:
            parts = urlsplit(str(url))
            scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
        except ValueError:
            raise URLRefused("the URL cannot be parsed") from None
        if scheme not in ALLOWED_SCHEMES:
            raise URLRefused(f"its scheme is {scheme or 'missing'!r}; only http and https URLs are fetched")
        if not host:
            raise URLRefused("it names no host")
        if self._allow_any_local or (self.local_host is not None and same_host(host, self.local_host)):
            return
        literal = _address(host)
        if literal is None and _is_local_name(host):
            literal = ipaddress.ip_address("127.0.0.1")
        if literal is not None:
            addresses = [literal]
        elif via_proxy:
            return  # the proxy resolves it; a name is all there is to check here
        else:
            try:
                addresses = await self._resolve(host, port or (443 if scheme == "https" else 80))
            except OSError as exc:
                raise URLRefused(f"its host {host} does not resolve ({exc.strerror or exc})") from None
        if not addresses:
            raise URLRefused(f"its host {host} does not resolve")
        for addr in addresses:
            if not is_public_address(addr):
                where = (f"only the base URL's own host {self.local_host} may be local"
                         if self.local_host else "unless the Runware base URL is itself local, as the emulator is")
                raise URLRefused(f"its host {host} is a loopback, link-local, private address or another non-public "
                                 f"address ({addr}); result URLs are fetched only from public addresses "
                                 f"({where})")


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
