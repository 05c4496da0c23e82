"""Real registries for integration tests: Debian's ``docker-registry`` on free loopback ports.

Variants: plain HTTP, htpasswd basic auth (bcrypt line made by ``htpasswd -nbB`` from
apache2-utils), bearer tokens from a small JWT token server started here (RS256, signing key and
self-signed certificate made with ``cryptography``; the registry trusts the certificate through
``rootcertbundle`` and we send it in the ``x5c`` header), and TLS with a trustme CA. Every process
and thread started here is stopped when its context ends.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REGISTRY_BINARY = "/usr/bin/docker-registry"
STARTUP_TIMEOUT = 20.0
TOKEN_SERVICE = "imageprep-test-registry"
TOKEN_ISSUER = "imageprep-test-issuer"


def registry_available() -> bool:
    return Path(REGISTRY_BINARY).exists() and shutil.which("skopeo") is not None


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningRegistry:
    """What a test needs to talk to a started registry."""

    host: str
    url: str
    root: Path
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    token_server: TokenServer | None = None

    @property
    def creds(self) -> str | None:
        """``user:pass`` for skopeo's ``--creds`` options."""
        return f"{self.username}:{self.password}" if self.username else None


# --- token server ----------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenServer:
    """Issues RS256 JWTs the registry accepts; records every token request it answered."""

    host: str
    username: str
    password: str
    cert_file: Path
    requests: list[dict[str, Any]] = field(default_factory=list)
    _key: Any = None
    _cert_der: bytes = b""

    @property
    def realm(self) -> str:
        return f"http://{self.host}/token"

    def issue(self, scopes: list[str], authenticated: bool) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if a and (authenticated or a == "pull")]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._cert_der).decode("ascii")]}
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": self.username if authenticated else "",
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def _make_signing_material(directory: Path) -> tuple[Any, bytes, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imageprep test token signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "token-signer.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert.public_bytes(serialization.Encoding.DER), cert_file


@contextmanager
def token_server(directory: Path, username: str, password: str) -> Iterator[TokenServer]:
    """A token endpoint on a free loopback port: wrong credentials get 401, anonymous gets pull only."""
    key, cert_der, cert_file = _make_signing_material(directory)
    server_state = TokenServer("", username, password, cert_file, _key=key, _cert_der=cert_der)
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parsed.query)
            authorization = self.headers.get("Authorization")
            server_state.requests.append({"query": query, "authorization": authorization is not None})
            if parsed.path != "/token" or (authorization is not None and authorization != expected):
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
                self.send_response(401)
            else:
                token = server_state.issue(query.get("scope", []), authorization is not None)
                issued = datetime.datetime.now(datetime.UTC).isoformat()
                body = json.dumps({"token": token, "expires_in": 300, "issued_at": issued}).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server_state.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- docker-registry process -------------------------------------------------------------------------


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd line (docker-registry accepts only bcrypt)."""
    result = subprocess.run(
        ["htpasswd", "-nbB", username, password], check=True, capture_output=True, text=True, timeout=30
    )
    return result.stdout.strip() + "\n"


def _config(
    root: Path,
    port: int,
    auth: dict[str, Any] | None,
    tls: tuple[Path, Path] | None,
    deletable: bool = True,
    client_ca: Path | None = None,
) -> str:
    http: dict[str, Any] = {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)}
    if tls:
        http["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
        if client_ca is not None:
            http["tls"]["clientcas"] = [str(client_ca)]  # every client must show a certificate it signed
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": deletable}},
        "http": http,
    }
    if auth:
        config["auth"] = auth
    return json.dumps(config)  # JSON is YAML


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited early: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not listen on port {port} within {STARTUP_TIMEOUT}s")


@contextmanager
def _registry_process(
    root: Path,
    auth: dict[str, Any] | None,
    tls: tuple[Path, Path] | None,
    deletable: bool = True,
    client_ca: Path | None = None,
) -> Iterator[int]:
    root.mkdir(parents=True, exist_ok=True)
    config_file = root / "config.yml"
    log = root / "registry.log"
    for _ in range(3):  # the free port may be taken between probe and bind; try a few
        port = free_port()
        config_file.write_text(_config(root, port, auth, tls, deletable, client_ca))
        with open(log, "wb") as log_handle:
            process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config_file)],
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            try:
                _wait_listening(port, process, log)
            except RuntimeError:
                if process.poll() is not None and "address already in use" in log.read_text(errors="replace"):
                    continue
                raise
            yield port
            return
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    raise RuntimeError("could not find a free port for docker-registry")


@contextmanager
def plain_registry_server(root: Path, *, deletable: bool = True) -> Iterator[RunningRegistry]:
    """A plain-HTTP registry; ``deletable`` off refuses DELETE as registries do by default."""
    with _registry_process(root, None, None, deletable) as port:
        yield RunningRegistry(f"127.0.0.1:{port}", f"http://127.0.0.1:{port}", root)


@contextmanager
def basic_auth_registry_server(
    root: Path, username: str = "alice", password: str = "s3cret-Pass"
) -> Iterator[RunningRegistry]:
    root.mkdir(parents=True, exist_ok=True)
    htpasswd = root / "htpasswd"
    htpasswd.write_text(htpasswd_line(username, password))
    auth = {"htpasswd": {"realm": "imageprep-test", "path": str(htpasswd)}}
    with _registry_process(root, auth, None) as port:
        yield RunningRegistry(f"127.0.0.1:{port}", f"http://127.0.0.1:{port}", root, username, password)


@contextmanager
def token_registry_server(
    root: Path, username: str = "bob", password: str = "t0ken-Pass"
) -> Iterator[RunningRegistry]:
    root.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        tokens = stack.enter_context(token_server(root, username, password))
        auth = {
            "token": {
                "realm": tokens.realm,
                "service": TOKEN_SERVICE,
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": str(tokens.cert_file),
            }
        }
        port = stack.enter_context(_registry_process(root, auth, None))
        yield RunningRegistry(
            f"127.0.0.1:{port}", f"http://127.0.0.1:{port}", root, username, password, token_server=tokens
        )


@contextmanager
def tls_registry_server(root: Path, *, client_certificates: bool = False) -> Iterator[RunningRegistry]:
    """A TLS registry with a CA of its own (``ca_file``); with ``client_certificates`` it refuses
    clients without a certificate of that CA, and one such pair is in ``root`` as ``client.cert``
    and ``client.key``."""
    import trustme

    root.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = root / "server.pem", root / "server.key", root / "ca.pem"
    leaf.private_key_pem.write_to_path(str(key))
    with open(cert, "wb") as handle:
        for blob in leaf.cert_chain_pems:
            handle.write(blob.bytes())
    ca.cert_pem.write_to_path(str(ca_file))
    if client_certificates:
        client = ca.issue_cert("imageprep-test-client")
        client.cert_chain_pems[0].write_to_path(str(root / "client.cert"))
        client.private_key_pem.write_to_path(str(root / "client.key"))
    with _registry_process(
        root, None, (cert, key), client_ca=ca_file if client_certificates else None
    ) as port:
        yield RunningRegistry(f"127.0.0.1:{port}", f"https://127.0.0.1:{port}", root, ca_file=ca_file)
