"""The inference function's ``url`` input cannot reach the environment itself, and every download is bounded.

The servers here listen on 127.0.0.1 only and stop by themselves. Loopback is refused by the downloader,
so tests reach them through ``ALLOWED_URL_HOSTS`` (exact host:port pairs); the Runtime API's own address
stays refused even then.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.unit.test_inference_handler import IMAGE, app, good, model_dir  # noqa: F401 (app, model_dir: fixtures)

DOWNLOAD = Path(__file__).resolve().parents[2] / "functions" / "inference" / "download.py"


@pytest.fixture(scope="module")
def dl():
    spec = importlib.util.spec_from_file_location("inference_download", DOWNLOAD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("ALLOWED_URL_HOSTS", "ALLOW_PRIVATE_URLS", "AWS_LAMBDA_RUNTIME_API"):
        monkeypatch.delenv(name, raising=False)


class RawServer:
    """A TCP server on 127.0.0.1 that runs ``behaviour(conn)`` per connection and counts connections."""

    def __init__(self, behaviour):
        self.behaviour, self.connections = behaviour, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        deadline = time.monotonic() + 30  # stops by itself
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()
        self.sock.close()

    def _run(self, conn):
        try:
            with conn:
                conn.settimeout(10)
                self.behaviour(conn)
        except OSError:
            pass  # the downloader hung up, as it should

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.stop.set()


def _read_request(conn) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def serve_image(conn):
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(IMAGE) + IMAGE)


def trickle_headers(conn):  # one header line every 0.3 s, for up to 12 s
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for i in range(40):
        time.sleep(0.3)
        conn.sendall(b"X-Slow-%d: 1\r\n" % i)


def never_answer(conn):
    _read_request(conn)
    time.sleep(8)


def not_http(conn):
    _read_request(conn)
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


def reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


@pytest.fixture
def server(request):
    servers = []

    def start(behaviour):
        servers.append(RawServer(behaviour))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def allow(monkeypatch, *servers):
    monkeypatch.setenv("ALLOWED_URL_HOSTS", ",".join(f"127.0.0.1:{s.port}" for s in servers))


@pytest.mark.parametrize(
    ("address", "refused_without", "refused_with_private"),
    [
        ("127.0.0.1", True, True),
        ("127.8.9.10", True, True),
        ("::1", True, True),
        ("::ffff:127.0.0.1", True, True),  # IPv4-mapped loopback
        ("64:ff9b::7f00:1", True, True),  # NAT64 of 127.0.0.1
        ("169.254.169.254", True, True),  # instance metadata
        ("fe80::1", True, True),
        ("0.0.0.0", True, True),
        ("224.0.0.1", True, True),
        ("10.1.2.3", True, False),
        ("172.16.0.1", True, False),
        ("192.168.1.1", True, False),
        ("100.64.0.1", True, False),  # carrier-grade NAT
        ("fd00::1", True, False),  # unique local
        ("240.0.0.1", True, False),  # reserved
        ("93.184.216.34", False, False),
        ("2606:4700::1111", False, False),
    ],
)
def test_address_classes(dl, address, refused_without, refused_with_private):
    assert (dl.address_refusal(address, allow_private=False) is not None) is refused_without
    assert (dl.address_refusal(address, allow_private=True) is not None) is refused_with_private


def test_loopback_is_refused_before_connecting_even_with_private_urls_allowed(dl, server, monkeypatch):
    target = server(serve_image)
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "1")
    for url in (
        f"{target.url}/a.jpg",
        f"http://localhost:{target.port}/a.jpg",
        f"http://[::1]:{target.port}/",
    ):
        with pytest.raises(dl.DownloadError) as refused:
            dl.fetch(url, max_bytes=10**7, timeout=2)
        assert refused.value.status == 403 and refused.value.kind == "UrlNotAllowed"
        assert "loopback" in refused.value.message
    assert target.connections == 0


def test_the_runtime_api_stays_refused_even_when_the_test_allowance_names_it(dl, server, monkeypatch):
    runtime = server(serve_image)  # stands for Lambda's Runtime API
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", f"127.0.0.1:{runtime.port}")
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "1")
    allow(monkeypatch, runtime)
    for host in ("127.0.0.1", "127.0.0.2", "localhost"):
        with pytest.raises(dl.DownloadError, match="Runtime API|loopback"):
            dl.fetch(
                f"http://{host}:{runtime.port}/2018-06-01/runtime/invocation/next", max_bytes=10**7, timeout=2
            )
    assert runtime.connections == 0


def test_an_allowed_test_server_is_reached_and_its_body_returned(dl, server, monkeypatch):
    target = server(serve_image)
    allow(monkeypatch, target)
    assert dl.fetch(f"{target.url}/a.jpg", max_bytes=10**7, timeout=5) == IMAGE


def test_the_socket_connects_to_the_address_that_was_checked(dl, server, monkeypatch):
    """DNS rebinding: the name is resolved once; http.client never resolves it again."""
    target = server(serve_image)
    monkeypatch.setenv("ALLOWED_URL_HOSTS", f"images.test:{target.port}")
    real, lookups = socket.getaddrinfo, []

    def rebinding(host, port, *args, **kwargs):
        lookups.append(host)
        if host == "images.test":  # first answer: the allowed server; any later one would be elsewhere
            return real("127.0.0.1" if lookups.count(host) == 1 else "169.254.169.254", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    assert dl.fetch(f"http://images.test:{target.port}/a.jpg", max_bytes=10**7, timeout=5) == IMAGE
    assert lookups.count("images.test") == 1 and target.connections == 1


def test_a_name_that_resolves_to_a_public_and_a_private_address_is_refused(dl, monkeypatch):
    def mixed(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    with pytest.raises(dl.DownloadError, match="private or reserved.*ALLOW_PRIVATE_URLS=1"):
        dl.fetch("http://images.example/a.jpg", max_bytes=10**7, timeout=2)


def test_every_redirect_is_checked_again(dl, server, monkeypatch):
    inner = server(serve_image)

    def to(location):
        def redirect(conn):
            _read_request(conn)
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % location.encode()
            )

        return redirect

    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", f"127.0.0.1:{inner.port}")
    hop_to_runtime = server(to(f"{inner.url}/2018-06-01/runtime/invocation/next"))
    hop_to_metadata = server(to("http://169.254.169.254/latest/meta-data/"))
    allow(monkeypatch, hop_to_runtime, hop_to_metadata, inner)
    for hop in (hop_to_runtime, hop_to_metadata):
        with pytest.raises(dl.DownloadError) as refused:
            dl.fetch(f"{hop.url}/a.jpg", max_bytes=10**7, timeout=3)
        assert refused.value.kind == "UrlNotAllowed" and hop.connections == 1
    assert inner.connections == 0


def test_a_server_that_trickles_its_headers_is_stopped_at_the_download_deadline(dl, server, monkeypatch):
    slow = server(trickle_headers)
    allow(monkeypatch, slow)
    started = time.monotonic()
    with pytest.raises(dl.DownloadError) as stopped:
        dl.fetch(f"{slow.url}/a.jpg", max_bytes=10**7, timeout=1.0)
    assert stopped.value.status == 408 and stopped.value.kind == "DownloadTimeout"
    # Stopped at the 1 s deadline, not after the 12 s the headers trickle for (each line comes well within
    # any per-read timeout); the upper bound leaves room for a loaded machine.
    assert 0.9 < time.monotonic() - started < 6


def test_a_server_that_never_answers_and_a_slow_dns_are_stopped_at_the_deadline(dl, server, monkeypatch):
    silent = server(never_answer)
    allow(monkeypatch, silent)
    started = time.monotonic()
    with pytest.raises(dl.DownloadError, match="within 0.8 s"):
        dl.fetch(f"{silent.url}/a.jpg", max_bytes=10**7, timeout=0.8)
    assert time.monotonic() - started < 5  # the deadline, not the 8 s the server stays silent

    def slow_dns(*args, **kwargs):
        time.sleep(3)
        raise OSError("late")

    monkeypatch.setattr(socket, "getaddrinfo", slow_dns)
    started = time.monotonic()
    with pytest.raises(dl.DownloadError, match="within 0.5 s"):
        dl.fetch("http://images.example/a.jpg", max_bytes=10**7, timeout=0.5)
    assert time.monotonic() - started < 2.5  # the deadline, not the 3 s the resolver takes


def test_closed_refusing_and_non_http_ports_get_the_same_message(dl, server, monkeypatch):
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connection refused
    garbage, resetting = server(not_http), server(reset)
    monkeypatch.setenv(
        "ALLOWED_URL_HOSTS", f"127.0.0.1:{closed_port},127.0.0.1:{garbage.port},127.0.0.1:{resetting.port}"
    )
    messages = set()
    for port in (closed_port, garbage.port, resetting.port):
        url = f"http://127.0.0.1:{port}/a.jpg"
        with pytest.raises(dl.DownloadError) as failed:
            dl.fetch(url, max_bytes=10**7, timeout=3)
        assert (failed.value.status, failed.value.kind) == (400, "DownloadFailed")
        messages.add(failed.value.message.replace(url, "URL"))
    assert len(messages) == 1, messages


def test_the_runtime_api_attack_through_the_handler_is_refused_and_the_next_request_works(
    request, server, monkeypatch
):
    handler_app = request.getfixturevalue("app")
    runtime = server(never_answer)
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", f"127.0.0.1:{runtime.port}")
    result = handler_app.handler(
        {"url": f"http://127.0.0.1:{runtime.port}/2018-06-01/runtime/invocation/next"}, None
    )
    assert result["statusCode"] == 403 and result["error"]["type"] == "UrlNotAllowed"
    assert runtime.connections == 0
    good(handler_app)


@pytest.mark.parametrize("host", ["2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1", "[::ffff:7f00:1]"])
def test_other_spellings_of_loopback_are_refused_after_resolution(dl, server, host):
    target = server(serve_image)
    with pytest.raises(dl.DownloadError) as refused:
        dl.fetch(f"http://{host}:{target.port}/a.jpg", max_bytes=10**7, timeout=2)
    assert refused.value.kind in ("UrlNotAllowed", "DownloadFailed") and target.connections == 0


def _certificate(tmp_path, name: str):
    """A self-signed certificate for ``name`` (key and cert files)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return tmp_path / "key.pem", tmp_path / "cert.pem"


def test_https_connects_to_the_checked_address_and_verifies_the_certificate_against_the_name(
    dl, server, monkeypatch, tmp_path
):
    import ssl

    key, cert = _certificate(tmp_path, "images.test")
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)

    def tls_image(conn):
        with served.wrap_socket(conn, server_side=True) as tls:
            serve_image(tls)

    target = server(tls_image)
    trusting = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(dl, "_TLS", trusting)
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: real("127.0.0.1" if host.endswith(".test") else host, port, *a, **k),
    )
    monkeypatch.setenv("ALLOWED_URL_HOSTS", f"images.test:{target.port},other.test:{target.port}")
    assert dl.fetch(f"https://images.test:{target.port}/a.jpg", max_bytes=10**7, timeout=5) == IMAGE
    with pytest.raises(dl.DownloadError, match="no web server answered it properly"):  # wrong name: refused
        dl.fetch(f"https://other.test:{target.port}/a.jpg", max_bytes=10**7, timeout=5)
