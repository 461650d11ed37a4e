"""Fetch the files an API caller names by URL, without letting it reach inside our network.

- `https` only, on every hop.
- Every address a host name resolves to must be public. The check runs inside the
  connector's resolver, so the connection goes to exactly the addresses checked: a
  second DNS answer (DNS rebinding) never gets a say. Address literals in URLs, which
  aiohttp does not resolve, are checked before each request.
- Redirects are followed by hand, each target checked again, at most MAX_REDIRECTS.
- Size and time are bounded: Content-Length and the bytes counted, and one deadline for
  the whole fetch, redirects included.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp
from aiohttp import ClientResponse
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address

from commander.errors import InvalidInput
from commander.filetypes import safe_filename
from commander.service import IncomingFile

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 3
MAX_URL_CHARS = 2048
REDIRECTS = (301, 302, 303, 307, 308)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class FetchRefused(InvalidInput):
    """This URL is not fetched; `user_message` says why, without internal details."""


class AddressRefused(Exception):
    """Raised by the resolver; deliberately not an OSError, so aiohttp passes it through."""


def address_kind(ip: IPAddress) -> str | None:
    """Which non-public kind of address this is (IPv4 inside IPv6 included), or None."""
    candidates: list[IPAddress] = []
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.teredo:
            embedded.extend(ip.teredo)
        candidates.extend(e for e in embedded if e is not None)
    candidates.append(ip)  # after what it embeds: ::ffff:127.0.0.1 is loopback, not private
    for candidate in candidates:
        for kind, hit in (
            ("loopback", candidate.is_loopback),
            ("link-local", candidate.is_link_local),
            ("unspecified", candidate.is_unspecified),
            ("multicast", candidate.is_multicast),
            ("reserved", candidate.is_reserved),
            ("private", candidate.is_private),
            ("non-public", not candidate.is_global),
        ):
            if hit:
                return kind
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Production: public addresses only (the defaults). Tests stand in for the internet:
    `exempt` addresses count as public, and `internet=False` refuses every other public
    address, so nothing a test does can leave the machine."""

    exempt: frozenset[IPAddress] = field(default_factory=frozenset)
    internet: bool = True

    def problem(self, ip: IPAddress) -> str | None:
        if ip in self.exempt:
            return None
        kind = address_kind(ip)
        if kind:
            return f"it leads to a {kind} address, which the API does not fetch"
        if not self.internet:
            return "it leads outside the network this server may reach"
        return None


def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """Resolves with `inner`, then refuses the host if any address it gave is not allowed."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if not results:
            raise OSError(f"{host} has no address")
        for result in results:
            ip = parse_ip(result["host"])
            problem = "it leads to an unreadable address" if ip is None else self.policy.problem(ip)
            if problem:
                raise AddressRefused(problem)
        return results

    async def close(self) -> None:
        await self.inner.close()


def url_problem(url: str, policy: AddressPolicy) -> str | None:
    """What is wrong with a URL before any connection is made; None when it may be tried."""
    if len(url) > MAX_URL_CHARS:
        return f"the URL is longer than {MAX_URL_CHARS} characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme.lower() != "https":
        return "only https links are fetched"
    if not host:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "URLs with credentials in them are not fetched"
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "it is not a valid URL"
    if is_ip_address(host) or parse_ip(host) is not None:
        ip = parse_ip(host)
        if ip is None:
            return "it is not a valid address"
        return policy.problem(ip)
    return None


def name_from_url(url: str) -> str:
    path = urlsplit(url).path
    return safe_filename(unquote(path.rsplit("/", 1)[-1]))


class UrlFetcher:
    """One HTTP session for every fetch; `close()` it when done."""

    def __init__(
        self,
        *,
        timeout_s: float,
        policy: AddressPolicy | None = None,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.policy = policy or AddressPolicy()
        self._resolver = resolver
        # Production default: the system's trust store, hostname checked.
        self._ssl = ssl_context or ssl.create_default_context()
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.policy, self._resolver),
                use_dns_cache=False,  # each connection resolves, and is checked, anew
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # never through a proxy that could reach inside
                headers={"User-Agent": "assistant-commander-fetch"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def problem(self, url: str) -> str | None:
        return url_problem(url, self.policy)

    @asynccontextmanager
    async def open(self, url: str, max_bytes: int) -> AsyncIterator[IncomingFile]:
        """Follow `url` to the file and yield it, its body not yet read. The file is named
        by Content-Disposition, else by the last URL's path, as a Slack upload by its name.
        Raises FetchRefused when it cannot be had."""
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        with self._refusals():
            response = await self._follow(url, deadline, max_bytes)
        try:
            disposition = response.content_disposition
            name = (disposition.filename if disposition else None) or name_from_url(
                str(response.url)
            )
            size = response.content_length
            yield IncomingFile(safe_filename(name), self._body(response, max_bytes), size)
        finally:
            response.close()  # never back to the pool half-read

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        """Failures of the transport, as reasons a caller can read (no internal details)."""
        try:
            yield
        except AddressRefused as exc:
            raise FetchRefused(str(exc)) from None
        except TimeoutError:
            raise FetchRefused(f"fetching it took longer than {self.timeout_s:g} s") from None
        except (aiohttp.ClientSSLError, ssl.SSLError):
            raise FetchRefused("its server's TLS certificate could not be verified") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise FetchRefused(f"it could not be fetched ({type(exc).__name__})") from None

    async def _follow(self, url: str, deadline: float, max_bytes: int) -> ClientResponse:
        for _ in range(MAX_REDIRECTS + 1):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError()
            response = await self._http().get(
                url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=remaining)
            )
            if response.status in REDIRECTS and "Location" in response.headers:
                response.close()
                url = urljoin(url, response.headers["Location"])
                problem = self.problem(url)
                if problem:
                    raise FetchRefused(f"it redirects to a link that is refused: {problem}")
                continue
            problem = _response_problem(response, max_bytes)
            if problem:
                response.close()
                raise FetchRefused(problem)
            return response
        raise FetchRefused(f"it redirects more than {MAX_REDIRECTS} times")

    async def _body(self, response: ClientResponse, max_bytes: int) -> AsyncIterator[bytes]:
        size = 0
        with self._refusals():
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchRefused(_too_large(max_bytes))
                yield chunk


def _too_large(max_bytes: int) -> str:
    return f"it is larger than the {max_bytes // (1024 * 1024)} MB limit"


def _response_problem(response: ClientResponse, max_bytes: int) -> str | None:
    if response.status != 200:
        return f"its server answered {response.status}"
    if response.content_length is not None and response.content_length > max_bytes:
        return _too_large(max_bytes)
    return None
