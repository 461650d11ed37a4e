"""The REST API over real HTTP, for tests: the Commander on the fake OpenAI, a TLS file
server standing in for the internet, and a test DNS.

The test network: `files.test` (and any name in `DNS`) resolves as the test says. The
file server listens on 127.0.0.5, which the fetcher's policy treats as public (`exempt`);
every other address is judged by the production rules, and no public address outside
the test network is ever contacted (`internet=False`)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import trustme
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from commander.api import AddressPolicy, UrlFetcher, standalone_app
from commander.api.settings import ApiSettings, parse_api_keys
from commander.runtime import build_commander, close_commander
from commander.service import Commander
from commander.settings import load_core_settings
from commander.tenancy_settings import load_tenancy_settings
from commander.usage import UsageBook
from tests.conftest import core_env, openai_client
from tests.fakes.market import FakeMarket
from tests.fakes.openai_server import FakeOpenAI

PUBLIC_IP = "127.0.0.5"
FILES_HOST = "files.test"
ACME_KEY = "acme:acme-key-0123456789abcdef"
GLOBEX_KEY = "globex:globex-key-0123456789abcdef"
API_KEYS = f"{ACME_KEY},{GLOBEX_KEY}"
KEYS = {"acme": ACME_KEY, "globex": GLOBEX_KEY}
PDF = b"%PDF-1.4\n" + b"x" * 300 + b"\n%%EOF\n"
MAX_FILE_MB = 1
FETCH_TIMEOUT_S = 1.0


class FakeDns(AbstractResolver):
    """DNS for tests. An answer is a list of addresses, or a callable giving the next
    list (so a name can change its answer between lookups, as in DNS rebinding)."""

    def __init__(self) -> None:
        self.names: dict[str, list[str] | Callable[[], list[str]]] = {}
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        answer = self.names.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = answer() if callable(answer) else answer
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


@dataclass
class FileServer:
    """HTTPS on `host`, serving test files; every request path is recorded."""

    host: str
    tls: ssl.SSLContext
    hits: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    runner: web.AppRunner | None = None

    def url(self, path: str, host: str = FILES_HOST) -> str:
        return f"https://{host}:{self.port}{path}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name:.*}", self._serve)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, 0, ssl_context=self.tls)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path_qs)
        name = request.match_info["name"]
        if name.startswith("missing"):
            raise web.HTTPNotFound()
        if name == "redirect":
            raise web.HTTPFound(request.query["to"])
        if name == "slow.pdf":  # headers, a few bytes, then nothing until the test ends
            response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
            await response.prepare(request)
            await response.write(PDF[:20])
            await self.release.wait()
            return response
        if name == "big.pdf":  # an honest Content-Length over the limit
            return web.Response(body=PDF + b"0" * (MAX_FILE_MB * 1024 * 1024))
        if name == "endless.pdf":  # no Content-Length; more bytes than the limit
            response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
            await response.prepare(request)
            await response.write(PDF)
            for _ in range(MAX_FILE_MB * 16 + 2):
                await response.write(b"0" * 65536)
            return response
        if name == "login.pdf":
            return web.Response(
                text="<!DOCTYPE html><html>sign in</html>", content_type="text/html"
            )
        if name.endswith(".pdf"):
            return web.Response(body=PDF, content_type="application/pdf")
        if name.endswith(".csv"):
            return web.Response(text="a,b\n1,2\n", content_type="text/csv")
        if name.endswith(".txt"):
            return web.Response(text="plain notes\n", content_type="text/plain")
        return web.Response(body=b"MZ\x90\x00", content_type="application/octet-stream")


@dataclass
class Api:
    url: str
    http: httpx.AsyncClient
    commander: Commander
    openai: FakeOpenAI
    files: FileServer
    internal: FileServer  # a server inside the network (loopback) the API must never reach
    dns: FakeDns

    def auth(self, tenant: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {KEYS[tenant]}"}

    async def post(self, path: str, body: Any, tenant: str | None = "acme", **kw: Any) -> Any:
        headers = {**(self.auth(tenant) if tenant else {}), **kw.pop("headers", {})}
        return await self.http.post(self.url + path, json=body, headers=headers, **kw)

    async def call(self, method: str, path: str, tenant: str | None = "acme") -> Any:
        headers = self.auth(tenant) if tenant else {}
        return await self.http.request(method, self.url + path, headers=headers)

    async def create(self, user: str, tenant: str = "acme", **fields: Any) -> Any:
        body = {"userName": user, "name": "Helper", "instructions": "Be brief.", "fileURLs": []}
        response = await self.post("/api/create", {**body, **fields}, tenant)
        assert response.status_code == 200, response.text
        return response.json()


def make_tls() -> tuple[ssl.SSLContext, ssl.SSLContext, ssl.SSLContext]:
    """(public server context, internal server context, client context trusting both)."""
    ca = trustme.CA()
    public = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(FILES_HOST, "rebind.test", PUBLIC_IP).configure_cert(public)
    internal = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("internal.test", "127.0.0.1", "localhost").configure_cert(internal)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return public, internal, client


def make_fetcher(dns: FakeDns, client_tls: ssl.SSLContext) -> UrlFetcher:
    return UrlFetcher(
        timeout_s=FETCH_TIMEOUT_S,
        policy=AddressPolicy(exempt=frozenset({ipaddress.ip_address(PUBLIC_IP)}), internet=False),
        resolver=dns,
        ssl_context=client_tls,
    )


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def open_api(fake_openai: FakeOpenAI, database_url: str, **env: str) -> AsyncIterator[Api]:
    public_tls, internal_tls, client_tls = make_tls()
    files = FileServer(PUBLIC_IP, public_tls)
    internal = FileServer("127.0.0.1", internal_tls)
    await files.start()
    await internal.start()
    dns = FakeDns()
    dns.names[FILES_HOST] = [PUBLIC_IP]
    values = core_env(fake_openai, database_url, MAX_FILE_MB=str(MAX_FILE_MB), **env)
    settings = load_core_settings(values)
    commander = await build_commander(
        settings, client=openai_client(fake_openai), market=FakeMarket()
    )
    app = standalone_app(
        commander,
        ApiSettings(parse_api_keys(API_KEYS)),
        fetcher=make_fetcher(dns, client_tls),
        usage=UsageBook(commander.db, load_tenancy_settings(values)),
    )
    runner, url = await serve(app)
    http = httpx.AsyncClient(timeout=30)
    try:
        yield Api(url, http, commander, fake_openai, files, internal, dns)
    finally:
        await http.aclose()
        await files.stop()
        await internal.stop()
        await runner.cleanup()
        await close_commander(commander)


def sse_events(body: str) -> list[tuple[str, Any]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events
