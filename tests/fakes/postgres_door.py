"""The front door of a PostgreSQL server that asks for a password and refuses it.

The test server trusts every login, so it can neither refuse a password nor speak SSL.
This fake answers the protocol's first steps as PostgreSQL does (protocol 3.0): the
SSLRequest ('N', or 'S' and a TLS handshake with the given certificate), the startup
message, a cleartext password request, then ErrorResponse 28P01 as a server with
`password` authentication sends it. Nothing after the login is implemented.

    with PostgresDoor() as door:            # door.port on 127.0.0.1
        ...                                  # door.passwords: what clients sent
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SSL_REQUEST = 80877103
AUTH_CLEARTEXT = 3


class PostgresDoor:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.port = 0
        self.passwords: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> PostgresDoor:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            length, code = struct.unpack("!ii", await reader.readexactly(8))
            if code == SSL_REQUEST:
                if self.tls is None:
                    writer.write(b"N")
                else:
                    writer.write(b"S")
                    await writer.drain()
                    await writer.start_tls(self.tls)
                (length,) = struct.unpack("!i", await reader.readexactly(4))
                startup = await reader.readexactly(length - 4)
            else:
                startup = await reader.readexactly(length - 8)
            user = _startup_value(startup, "user")
            writer.write(b"R" + struct.pack("!ii", 8, AUTH_CLEARTEXT))
            await writer.drain()
            kind, length = struct.unpack("!ci", await reader.readexactly(5))
            assert kind == b"p"
            self.passwords.append((await reader.readexactly(length - 4)).rstrip(b"\0").decode())
            writer.write(_error("28P01", f'password authentication failed for user "{user}"'))
            await writer.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the client gave up (e.g. it did not trust the certificate)
        finally:
            writer.close()


def _startup_value(startup: bytes, name: str) -> str:
    parts = startup[4:].split(b"\0")  # after the protocol version: key, value, …
    pairs = dict(zip(parts[::2], parts[1::2], strict=False))
    return pairs.get(name.encode(), b"").decode()


def _error(code: str, message: str) -> bytes:
    fields = b"".join(
        kind + value.encode() + b"\0"
        for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the authority that signed `cert`
    cert: Path  # for localhost and 127.0.0.1
    key: Path
    server: ssl.SSLContext  # serving `cert`


def write_certificates(folder: Path) -> Certificates:
    """A certificate authority and a certificate it signed, as PEM files in `folder`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        _builder(server_name, ca_name, key.public_key(), now)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    return Certificates(ca_path, cert_path, key_path, server)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
