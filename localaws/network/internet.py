"""What "the internet" is for an execution environment here: hosts published on purpose, nothing else.

This machine may have no internet at all, and an environment must never reach this machine's own
services by accident. So the only internet destinations are the ones the operator publishes: a host name
and port seen by functions, relayed by the server to a server listening on this machine's loopback
(a web server a test or a learner starts, for example ``python -m http.server 8123``). Whether a
function may open a connection to a published host is decided as AWS decides it for a public address:
always outside a VPC, and inside one only through a NAT gateway route and an egress rule for the port
(:mod:`.reachability`; https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html).

The setting, read once at server start::

    LOCALAWS_INTERNET_HOSTS="images.example=127.0.0.1:8123, files.example:443=127.0.0.1:8443"

Each item is ``<name>[:<port>]=<loopback address>:<port>``; the port functions dial defaults to 80.
Published hosts get addresses in 192.88.99.0/24, in the order of their names, from .10 on. That block
(RFC 7526's retired 6to4 relay anycast) is routed nowhere today, yet Python 3.11's ``ipaddress`` counts
it as global, so code that refuses private addresses (the workshop's ``download.py`` does) accepts
these URLs as it would a real public host; 203.0.113.0/24 and 198.18.0.0/15 would be refused.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

SETTING = "LOCALAWS_INTERNET_HOSTS"
NETWORK = ipaddress.ip_network("192.88.99.0/24")
FIRST_HOST = 10
DEFAULT_PORT = 80
MAX_HOSTS = 200  # addresses .10 to .209 of the block

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")


class InternetHostsError(ValueError):
    """The internet-hosts setting cannot be used; the message names the item and the fix."""


@dataclass(frozen=True)
class InternetHost:
    """A published host: functions dial ``name`` (``address``) on ``port``; the server relays the
    connection to ``target`` on this machine."""

    name: str
    port: int
    address: str
    target: tuple[str, int]

    @property
    def listener_name(self) -> str:
        return f"internet:{self.name}:{self.port}"


def _port(text: str, item: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InternetHostsError(
            f"{SETTING}: {item!r} has port {text!r}; a port is a number from 1 to 65535."
        )
    return int(text)


def _parse_item(item: str) -> tuple[str, int, tuple[str, int]]:
    seen, sep, target = item.partition("=")
    if not sep:
        raise InternetHostsError(
            f"{SETTING}: {item!r} is not <name>[:<port>]=<address>:<port>, e.g. images.example=127.0.0.1:8123."
        )
    name, _, port_text = seen.strip().lower().partition(":")
    if not _NAME.match(name):
        raise InternetHostsError(
            f"{SETTING}: {name!r} is not a host name with a dot (letters, digits and hyphens), e.g. images.example."
        )
    port = _port(port_text, item) if port_text else DEFAULT_PORT
    host, _, target_port = target.strip().rpartition(":")
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InternetHostsError(
            f"{SETTING}: {item!r} relays to {host or target!r}; an internet host here must be a server on this "
            "machine's loopback (127.0.0.1 or ::1), so that no function reaches another machine through it."
        )
    return name, port, (host.strip("[]"), _port(target_port, item))


def parse(setting: str | None) -> tuple[InternetHost, ...]:
    """The published hosts of a setting's value (empty or None: none); InternetHostsError if malformed."""
    items = [item for item in (setting or "").replace(";", ",").split(",") if item.strip()]
    parsed: dict[tuple[str, int], tuple[str, int]] = {}
    for item in items:
        name, port, target = _parse_item(item)
        if (name, port) in parsed:
            raise InternetHostsError(f"{SETTING}: {name}:{port} is published twice.")
        parsed[(name, port)] = target
    names = sorted({name for name, _ in parsed})
    if len(names) > MAX_HOSTS:
        raise InternetHostsError(f"{SETTING}: {len(names)} host names; at most {MAX_HOSTS} can be published.")
    addresses = {name: str(NETWORK[FIRST_HOST + i]) for i, name in enumerate(names)}
    return tuple(
        InternetHost(name, port, addresses[name], target) for (name, port), target in sorted(parsed.items())
    )


def from_environment(environ: dict) -> tuple[InternetHost, ...]:
    """The published hosts of the server's environment (``LOCALAWS_INTERNET_HOSTS``)."""
    return parse(environ.get(SETTING))
