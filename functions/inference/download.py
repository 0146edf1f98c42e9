"""Download an image for the inference handler without letting the URL reach the environment itself.

The ``url`` input comes from anyone who can call the public HTTP API, so the download is guarded:

- **Where it may connect.** The host name is resolved once, every address is checked, and the socket
  connects to the checked address itself (TLS still verifies the certificate against the host name),
  so a DNS answer that changes between the check and the connect (DNS rebinding) cannot slip through.
  Loopback, link-local (169.254.0.0/16: the instance metadata range), unspecified and multicast
  addresses are always refused: Lambda's Runtime API listens on loopback (``AWS_LAMBDA_RUNTIME_API``,
  https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), and a download that reached it would
  become a second ``/next`` waiter that swallows the next invocation. Private, unique-local, shared
  (100.64/10) and reserved addresses are refused too unless ``ALLOW_PRIVATE_URLS=1`` is set on the
  function (for an image server inside the VPC). Every redirect is checked the same way.
- **Tests only:** ``ALLOWED_URL_HOSTS`` (comma-separated ``host:port``) lets a test reach its own
  server on 127.0.0.1; the Runtime API's own address and port stay refused even then.
- **How long it may take.** One deadline for the whole download (DNS, connect, TLS, headers, body and
  every redirect): each socket operation waits at most the time left, and a watchdog shuts the socket
  at the deadline, so a server that trickles one header line every few seconds is cut off on time.
- **What it reveals.** A refused address is refused before any connection, by the kind of address
  only; every connection-level failure (refused, reset, not HTTP) gets the same message, so the
  errors cannot be used to scan ports.

Standard library only (the handler's runtime has no requests or urllib3).
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
import urllib.parse

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # embeds an IPv4 address (RFC 6052)
_TLS = ssl.create_default_context()


class DownloadError(Exception):
    """A download the handler refuses or could not finish: HTTP status, error type, message."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _allowed_hosts() -> set[tuple[str, int]]:
    """``ALLOWED_URL_HOSTS`` as {(host, port)}: exact host and port pairs a test may reach."""
    pairs = set()
    for item in os.environ.get("ALLOWED_URL_HOSTS", "").split(","):
        host, _, port = item.strip().rpartition(":")
        if host and port.isdigit():
            pairs.add((host.strip("[]").lower(), int(port)))
    return pairs


def _runtime_api() -> tuple[str, int] | None:
    """(host, port) of Lambda's Runtime API in this environment, if any."""
    host, _, port = os.environ.get("AWS_LAMBDA_RUNTIME_API", "").rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None


def address_refusal(address: str, allow_private: bool) -> str | None:
    """Why the function must not connect to ``address`` (an IP literal), or None when it may."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:
            ip = embedded
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (the instance metadata range)"
    if ip.is_unspecified or ip.is_multicast:
        return "an unspecified or multicast address"
    if not allow_private and not ip.is_global:
        return "a private or reserved address (set ALLOW_PRIVATE_URLS=1 on the function to allow them)"
    return None


def _resolve(host: str, port: int, deadline: float) -> list[str]:
    """The host's addresses, resolved under the deadline (getaddrinfo has no timeout of its own)."""
    answer: dict = {}

    def lookup() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            answer["error"] = exc

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise TimeoutError("name resolution")
    if "error" in answer:
        raise DownloadError(400, "DownloadFailed", f"The host name {host[:100]} does not resolve.")
    return list(dict.fromkeys(info[4][0] for info in answer["infos"]))


def _checked_addresses(host: str, port: int, deadline: float) -> list[str]:
    """The addresses the download may connect to; DownloadError when the URL must not be fetched."""
    allow_private = os.environ.get("ALLOW_PRIVATE_URLS", "") == "1"
    test_allowance = (host.lower(), port) in _allowed_hosts()
    runtime = _runtime_api()
    runtime_ips = set(_resolve(runtime[0], runtime[1], deadline)) if runtime else set()
    addresses = _resolve(host, port, deadline)
    allowed, reasons = [], []
    for address in addresses:
        reason = address_refusal(address, allow_private)
        if runtime and port == runtime[1] and (address in runtime_ips or reason == "a loopback address"):
            reason = "Lambda's Runtime API"
        elif test_allowance and reason is not None:
            reason = None
        (reasons.append(reason) if reason else allowed.append(address))
    if reasons:  # any refused address refuses the host: its answers could alternate (rebinding)
        raise DownloadError(
            403,
            "UrlNotAllowed",
            f"The URL's host {host[:100]} resolves to {reasons[0]}, which the function does not fetch: "
            "send a public http(s) URL, or the image itself as base64.",
        )
    return allowed


def _connect(scheme: str, host: str, port: int, address: str, deadline: float) -> socket.socket:
    sock = socket.create_connection((address, port), timeout=max(0.001, deadline - time.monotonic()))
    if scheme == "https":
        sock = _TLS.wrap_socket(sock, server_hostname=host)  # verified against the name, not the address
    return sock


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path?query) of an http(s) URL; DownloadError otherwise."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DownloadError(400, "InvalidUrl", f"{url[:100]!r} is not a URL: {exc}.") from exc
    if parts.scheme not in ("http", "https"):
        raise DownloadError(
            400,
            "InvalidUrl",
            f"Only http(s) URLs are fetched, not {parts.scheme or 'no scheme'}: {url[:100]}",
        )
    if not parts.hostname:
        raise DownloadError(400, "InvalidUrl", f"{url[:100]!r} has no host name: send a full http(s) URL.")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), target


def fetch(url: str, *, max_bytes: int, timeout: float) -> bytes:
    """The body at ``url`` (following up to MAX_REDIRECTS redirects), within ``timeout`` s and ``max_bytes``."""
    deadline = time.monotonic() + timeout
    too_slow = DownloadError(
        408, "DownloadTimeout", f"The download did not finish within {timeout:g} s: use a faster server."
    )
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = _get(url, max_bytes, deadline)
            if status not in REDIRECTS:
                return body
            url = urllib.parse.urljoin(url, location)
    except TimeoutError as exc:
        raise too_slow from exc
    raise DownloadError(400, "DownloadFailed", f"The URL redirects more than {MAX_REDIRECTS} times.")


def _get(url: str, max_bytes: int, deadline: float) -> tuple[int, str, bytes]:
    """One GET: (status, Location, body); the body only for a 200."""
    scheme, host, port, target = _split(url)
    address = _checked_addresses(host, port, deadline)[0]
    expired = threading.Event()
    sock = None

    def cut_off() -> None:  # the deadline passed while a read was waiting: end it now
        expired.set()
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the OS socket, under any TLS wrapper
            except OSError:
                pass

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), cut_off)
    watchdog.daemon = True
    watchdog.start()
    try:
        sock = _connect(scheme, host, port, address, deadline)
        if expired.is_set():
            raise TimeoutError("deadline")
        conn = http.client.HTTPConnection(host, port)
        conn.sock = sock  # already connected to the checked address: http.client never resolves again
        conn.request("GET", target, headers={"User-Agent": "lambda-efs-workshop", "Accept": "image/*"})
        response = conn.getresponse()
        if response.status in REDIRECTS:
            location = response.getheader("Location", "")
            if urllib.parse.urlsplit(location).scheme not in ("", "http", "https"):
                raise DownloadError(
                    400, "InvalidUrl", f"The URL redirects to {location[:100]}, which is not http(s)."
                )
            return response.status, location, b""
        if response.status != 200:
            raise DownloadError(
                400,
                "DownloadFailed",
                f"The server answered {response.status} {response.reason[:60]} for {url[:100]}: check the URL.",
            )
        declared = response.getheader("Content-Length", "")
        too_large = DownloadError(
            413,
            "ImageTooLarge",
            f"The download exceeds {max_bytes} bytes: resize or recompress the image (a JPEG of a few hundred "
            "KB is plenty for a 224x224 model).",
        )
        if declared.isdigit() and int(declared) > max_bytes:
            raise too_large
        chunks, size = [], 0
        while chunk := response.read1(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            chunks.append(chunk)
        if expired.is_set():  # the watchdog's shutdown looks like the end of the body
            raise TimeoutError("deadline")
        if declared.isdigit() and size != int(declared):
            raise DownloadError(
                400, "DownloadFailed", f"The server sent {size} of {declared} bytes: try again."
            )
        return 200, "", b"".join(chunks)
    except DownloadError:
        raise
    except TimeoutError as exc:
        raise TimeoutError("deadline") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set():
            raise TimeoutError("deadline") from exc
        log.info("download of %s failed: %r", url[:100], exc)
        # One message for refused, reset, closed and not-HTTP alike: nothing to learn about ports.
        raise DownloadError(
            400, "DownloadFailed", f"Could not download {url[:100]}: no web server answered it properly."
        ) from exc
    finally:
        watchdog.cancel()
        if sock is not None:
            sock.close()
