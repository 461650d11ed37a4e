"""A local fake of the OpenAI HTTP API (Responses, Conversations, Files, Vector stores,
Containers), served by aiohttp on 127.0.0.1 and driven by the official SDK.

    with FakeOpenAI(api_key="sk-test") as fake:
        client = AsyncOpenAI(base_url=fake.base_url, api_key="sk-test")
        fake.script(Text("Hello!"), [FunctionCall("lookup", {"q": "x"})])
        ...
        fake.requests        # RecordedRequest(method, path, query, json, form, headers,
                             #   started, ended, client_port), in arrival order
        fake.state           # files, vector_stores, conversations, responses, containers
        fake.timings         # {response_id: {"first_delta": t, "last_delta": t}} (streams)
        fake.wait_idle()     # blocks until no request is in flight

Constructor: FakeOpenAI(api_key="sk-test" (None = no auth), *, conversations_enabled=True
(False: every /v1/conversations path answers Azure's 404), ttft_ms=0, tokens_per_second=0
(pauses before the first text delta and between deltas; 0 = none), port=0,
context_window=200_000 (tokens, four characters each)). start()/stop() are idempotent; the
server runs on its own event loop in a background thread. reset() forgets everything.

Script: each POST /v1/responses takes the next queued turn (a step, a list of steps, or
a callable request_json -> steps); with none queued the model says "You said: <last user
text>", or "Tool said: <output>" after function outputs. Steps (openai_steps): Text,
FunctionCall, CodeInterpreterChart, FileSearch, Fail, Incomplete, ErrorEvent. A step
the request makes impossible (a function or tool it does not offer) answers HTTP 500
with type "fake_script_error".

Faults (openai_faults), each firing `times` times (default 1) on requests whose path and
method match the fnmatch patterns `path` / `method`:
    fake.faults.add(path="/v1/responses", status=429, retry_after=1.5)  # error answer
    fake.faults.add(path="/v1/files", method="GET", status=503, times=2)
    fake.faults.add(path="/v1/responses", delay=2.0)  # latency; dropped if the client left
    fake.faults.add(cut_after_deltas=3)       # next stream closes abruptly after 3 deltas
    fake.faults.add(cut_after_deltas=0, finish_after_cut=True)  # ...yet the turn lands
    fake.faults.add(vector_store_file_fails=True, message="bad pdf", code="invalid_file")
    fake.faults.add(path="/v1/containers/*", status=500)   # container content 500
    fake.faults.pending / fake.faults.clear()

Standalone, for benchmarks:
    python -m tests.fakes.openai_server --port 8099 [--ttft-ms 0 --tokens-per-second 0
        --api-key sk-test --no-conversations]
prints "READY http://127.0.0.1:PORT/v1" once listening. Control routes (no auth):
POST /_fake/script (JSON list of turns; a turn is a step object such as
{"type": "text", "text": "hi"} or a list of them), POST /_fake/faults (Fault fields, or
a list), GET /_fake/requests, GET /_fake/timings, POST /_fake/reset.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import json
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from tests.fakes.openai_faults import Fault, Faults
from tests.fakes.openai_routes import FAKE, ROUTES
from tests.fakes.openai_state import State
from tests.fakes.openai_steps import (
    TINY_PNG,
    CodeInterpreterChart,
    ErrorEvent,
    Fail,
    FileSearch,
    FunctionCall,
    Incomplete,
    Step,
    Text,
    Turn,
    resolve_turn,
    turn_from_json,
)
from tests.fakes.openai_wire import (
    JSON_BODY,
    RECORDED,
    ApiError,
    RecordedRequest,
    json_response,
    make_id,
)

__all__ = [
    "TINY_PNG",
    "CodeInterpreterChart",
    "ErrorEvent",
    "Fail",
    "FakeOpenAI",
    "Fault",
    "Faults",
    "FileSearch",
    "FunctionCall",
    "Incomplete",
    "RecordedRequest",
    "State",
    "Step",
    "Text",
    "Turn",
]

log = logging.getLogger(__name__)

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
    "(with blank username) if you're accessing the API from your browser and are prompted for "
    "a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)
_AZURE_NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}


class ClientGone(Exception):
    """The client left while a delay fault held its request: the request is dropped."""


def _mask(key: str) -> str:
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


class FakeOpenAI:
    """The fake server; see the module docstring."""

    def __init__(
        self,
        api_key: str | None = "sk-test",
        *,
        conversations_enabled: bool = True,
        ttft_ms: float = 0,
        tokens_per_second: float = 0,
        port: int = 0,
        context_window: int = 200_000,
    ) -> None:
        self.api_key = api_key
        self.conversations_enabled = conversations_enabled
        self.ttft_ms = ttft_ms
        self.tokens_per_second = tokens_per_second
        self.context_window = context_window
        self.host = "127.0.0.1"
        self.port = port
        self.state = State()
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.timings: dict[str, dict[str, float]] = {}
        self.client_left: list[str] = []  # responses whose client closed the stream at a Gate
        self._turns: deque[Turn] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._in_flight = 0

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._thread is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self.port}/v1"

    def start(self, port: int | None = None) -> FakeOpenAI:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[web.AppRunner] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._serve,
            args=(loop, self.port if port is None else port, started),
            name="fake-openai",
            daemon=True,
        )
        thread.start()
        runner = started.result(timeout=30)
        self.port = runner.addresses[0][1]
        self._loop, self._thread = loop, thread
        return self

    def _serve(
        self,
        loop: asyncio.AbstractEventLoop,
        port: int,
        started: concurrent.futures.Future[web.AppRunner],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            runner = loop.run_until_complete(self._listen(port))
        except BaseException as error:
            loop.close()
            started.set_exception(error)
            return
        started.set_result(runner)
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    async def _listen(self, port: int) -> web.AppRunner:
        runner = web.AppRunner(
            self._app(), access_log=None, shutdown_timeout=1.0, handler_cancellation=False
        )
        await runner.setup()
        await web.TCPSite(runner, self.host, port).start()
        return runner

    def stop(self) -> None:
        """Stops serving and forgets the state (spilled uploads are deleted)."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = self._loop = None
        self.state.clear()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- test controls ----------------------------------------------------------------------

    def script(self, *turns: Turn) -> None:
        """Queues turns; each POST /v1/responses takes one."""
        self._turns.extend(turns)

    def next_turn(self, request_json: dict[str, Any]) -> list[Step] | None:
        try:
            turn = self._turns.popleft()
        except IndexError:
            return None
        return resolve_turn(turn, request_json)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Blocks until no /v1 request is being handled (e.g. a stream the client left)."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError(f"{self._in_flight} request(s) still in flight")

    def reset(self) -> None:
        self.state.clear()
        self._turns.clear()
        self.faults.clear()
        self.requests.clear()
        self.timings.clear()
        self.client_left.clear()

    # --- the app ------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app[FAKE] = self
        for method, path, handler in ROUTES:
            app.router.add_route(method, path, handler)
            # Azure OpenAI's v1 API serves the same routes under /openai/v1/.
            app.router.add_route(method, "/openai" + path, handler)
        app.router.add_post("/_fake/script", self._control_script)
        app.router.add_post("/_fake/faults", self._control_faults)
        app.router.add_get("/_fake/requests", self._control_requests)
        app.router.add_get("/_fake/timings", self._control_timings)
        app.router.add_post("/_fake/reset", self._control_reset)
        app.on_response_prepare.append(self._add_request_id)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.removeprefix("/openai").startswith("/v1/"):
            return await handler(request)
        self._record(request)
        with self._idle:
            self._in_flight += 1
        try:
            return await self._answer(request, handler)
        finally:
            request[RECORDED].ended = time.time()
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _record(self, request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            json=None,
            form=None,
            headers=dict(request.headers),
            started=time.time(),
            client_port=peer[1] if peer else None,
        )
        self.requests.append(recorded)
        request[RECORDED] = recorded

    async def _answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            self._authenticate(request)
            if not self.conversations_enabled and request.path.removeprefix("/openai").startswith(
                "/v1/conversations"
            ):
                return json_response(_AZURE_NOT_FOUND, status=404)
            request[RECORDED].json = await self._read_json(request)
            await self._http_fault(request)
            return await handler(request)
        except ApiError as error:
            return error.response()
        except ClientGone:
            return web.Response(status=499)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            return ApiError(404, f"Invalid URL ({request.method} {request.path})").response()
        except Exception as error:
            log.exception("FakeOpenAI failed on %s %s", request.method, request.path)
            headers = {"x-should-retry": "false"}
            bug = ApiError(500, f"FakeOpenAI bug: {error!r}", type="server_error", headers=headers)
            return bug.response()

    def _authenticate(self, request: web.Request) -> None:
        if self.api_key is None:
            return
        authorization = request.headers.get("Authorization", "")
        key = authorization.removeprefix("Bearer ").strip() or request.headers.get("api-key")
        if not key:
            raise ApiError(401, _NO_KEY)
        if key != self.api_key:
            raise ApiError(
                401,
                f"Incorrect API key provided: {_mask(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    @staticmethod
    async def _read_json(request: web.Request) -> Any:
        if request.content_type != "application/json" or not request.body_exists:
            return None
        try:
            body = json.loads(await request.read())
        except ValueError:
            raise ApiError(400, _BAD_JSON) from None
        request[JSON_BODY] = body
        return body

    async def _http_fault(self, request: web.Request) -> None:
        fault = self.faults.take(request.method, request.path, "http")
        if fault is None:
            return
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
            if request.transport is None or request.transport.is_closing():
                raise ClientGone()
        if fault.status is not None:
            raise fault.error()

    @staticmethod
    async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/v1/"):
            response.headers.setdefault("x-request-id", make_id("req"))
            response.headers.setdefault("openai-version", "2020-10-01")

    # --- control routes -------------------------------------------------------------------

    async def _control_script(self, request: web.Request) -> web.Response:
        turns = await request.json()
        if not isinstance(turns, list):
            turns = [turns]
        try:
            self.script(*[turn_from_json(turn) for turn in turns])
        except (TypeError, ValueError) as error:
            return json_response({"error": str(error)}, status=400)
        return json_response({"queued": len(self._turns)})

    async def _control_faults(self, request: web.Request) -> web.Response:
        specs = await request.json()
        try:
            for spec in specs if isinstance(specs, list) else [specs]:
                self.faults.add(Fault(**spec))
        except (TypeError, ValueError) as error:
            return json_response({"error": str(error)}, status=400)
        return json_response({"pending": [fault.to_json() for fault in self.faults.pending]})

    async def _control_requests(self, request: web.Request) -> web.Response:
        return json_response([dataclasses.asdict(r) for r in self.requests])

    async def _control_timings(self, request: web.Request) -> web.Response:
        return json_response(self.timings)

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return json_response({"reset": True})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.openai_server", description="Fake OpenAI API server."
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=0)
    parser.add_argument("--tokens-per-second", type=float, default=0)
    parser.add_argument("--api-key", default="sk-test")
    parser.add_argument("--no-conversations", action="store_true")
    parser.add_argument("--context-window", type=int, default=200_000)
    args = parser.parse_args(argv)
    fake = FakeOpenAI(
        api_key=args.api_key,
        conversations_enabled=not args.no_conversations,
        ttft_ms=args.ttft_ms,
        tokens_per_second=args.tokens_per_second,
        port=args.port,
        context_window=args.context_window,
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with fake:
        print(f"READY {fake.base_url}", flush=True)
        stopping.wait()


if __name__ == "__main__":
    main()
