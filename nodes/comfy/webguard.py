"""Which HTTP requests may reach the pack's key routes: refusing other sites without help from ComfyUI.

ComfyUI's own origin check compares Origin and Host only when Host is a loopback address, so on a
LAN address, with ``--enable-cors-header``, or through DNS rebinding, a web page could POST its own
key (a ``text/plain`` form POST needs no CORS preflight). The key routes therefore check, themselves:

1. **Host**: a loopback name (``localhost``, ``*.localhost``) or an IP literal; any other name is
   refused unless listed in the variable ``config.ALLOWED_HOSTS`` names (comma-separated names, ``.suffix``
   for a domain and its subdomains, ``*`` for any). A rebinding attack needs a DNS name that points
   at this machine, so it fails here (as Jupyter's and webpack-dev-server's host checks do).
2. **Origin**: when a browser sends one, it must name the same host and port as Host, whatever the
   Host is (``null`` included). ``Sec-Fetch-Site: cross-site`` is refused too.
3. **State-changing requests** (POST, PUT, PATCH, DELETE) need ``Content-Type: application/json``
   and the custom header ``X-PixVerse-Request: 1``: neither can be sent cross-site without a CORS
   preflight, which this server does not grant.

Rules 1 and 2 guard the read-only routes too (``/spend``, ``/estimate``: spend, limits and the ledger's
path are nobody else's business): `read_refusal`. `refused_response` wraps either for an aiohttp handler.

Plain functions over a headers mapping, so they are tested without a server.
"""
from __future__ import annotations

import ipaddress
from typing import Mapping, Optional
from urllib.parse import urlsplit

from .. import config

HEADER = "X-PixVerse-Request"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _split_host(value: str) -> tuple[str, Optional[int]]:
    value = value.strip().lower()
    if value.startswith("["):  # [v6]:port
        end = value.find("]")
        host, rest = value[1:end], value[end + 1:]
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    try:
        return host.rstrip("."), int(port) if port else None
    except ValueError:
        return host.rstrip("."), -1


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
        return True
    except ValueError:
        return False


def host_allowed(host: str, allowed: Optional[str] = None) -> bool:
    host = host.lower().rstrip(".")
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost") or _is_ip(host):
        return True
    entries = config.read_one(config.ALLOWED_HOSTS)[0] if allowed is None else \
        config.parse(config.ALLOWED_HOSTS, allowed, "allowed hosts")
    for entry in entries:
        if entry == "*" or entry == host or (entry.startswith(".") and (host.endswith(entry) or host == entry[1:])):
            return True
    return False


def _netloc(host: str, port: Optional[int], scheme: str = "") -> str:
    default = {"http": 80, "https": 443}.get(scheme)
    port = None if port == default else port
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


KEY_SETTINGS = "the PixVerse key settings"


def read_refusal(headers: Mapping[str, str], what: str = KEY_SETTINGS) -> Optional[tuple[int, str]]:
    """Rules 1 and 2 (Host, Origin, Sec-Fetch-Site), for any route: None when the request may
    proceed; else (HTTP status, why). `what` names what the route guards, in the message."""
    host_header = headers.get("Host", "")
    host, port = _split_host(host_header)
    if port == -1 or not host_allowed(host):
        return 403, (f"Host {host_header!r} is not allowed for {what}: use ComfyUI through "
                     f"localhost or an IP address, or list this name in {config.ALLOWED_HOSTS.env} (comma-separated) in "
                     f"ComfyUI's environment.")
    origin = headers.get("Origin")
    if origin is not None:
        try:
            o = urlsplit(origin.strip())
            same = (o.scheme in ("http", "https") and o.hostname is not None and
                    _netloc(o.hostname, o.port, o.scheme) == _netloc(host, port, o.scheme))
        except ValueError:
            same = False
        if not same:
            return 403, f"Requests from other sites may not read or change {what}."
    if headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return 403, f"Requests from other sites may not read or change {what}."
    return None


def refused_response(request, what: str = KEY_SETTINGS, *, reads_only: bool = True):
    """For an aiohttp handler: None when `request` may proceed, else the 403 JSON response to return
    (logged). `reads_only`: the route changes nothing (Host/Origin rules only; a POST that only
    computes, as the estimate, needs no custom header); else the key routes' full `refusal`."""
    why = read_refusal(request.headers, what) if reads_only else \
        refusal(request.method, request.headers, request.scheme)
    if why is None:
        return None
    import logging

    from aiohttp import web

    status, message = why
    logging.getLogger("pixverse").warning(
        "PixVerse: refused %s %s (Host %r, Origin %r): %s", request.method, request.path,
        request.headers.get("Host"), request.headers.get("Origin"), message)
    return web.json_response({"error": message}, status=status, headers={"Cache-Control": "no-store"})


def refusal(method: str, headers: Mapping[str, str], scheme: str = "http") -> Optional[tuple[int, str]]:
    """None when the request may proceed; else (HTTP status, why) to answer with."""
    read = read_refusal(headers, KEY_SETTINGS)
    if read is not None:
        return read
    if method.upper() in STATE_CHANGING:
        ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json" or headers.get(HEADER, "").strip() != "1":
            return 403, (f"Changing the PixVerse key needs Content-Type: application/json and the header "
                         f"{HEADER}: 1 (sent by the pack's settings page).")
    return None
