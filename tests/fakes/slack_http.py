"""aiohttp routes of the fake Slack: Web API, upload URL, file downloads, response_url."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

from aiohttp import BodyPartReader, web

from tests.fakes.slack_api import METHODS
from tests.fakes.slack_checks import decode_json_fields
from tests.fakes.slack_faults import Fault
from tests.fakes.slack_models import (
    CHUNK_SIZE,
    DOWNLOAD,
    RESPONSE_URL,
    UPLOAD,
    ApiError,
    Call,
    JsonDict,
    PendingUpload,
    StoredFile,
)
from tests.fakes.slack_state import SlackState

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Slack</title></head>
<body><h1>Sign in to your workspace</h1>
<form action="/signin" method="post"><input name="domain" placeholder="your-workspace">
<button type="submit">Continue</button></form></body></html>
"""


def bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value[7:].strip() if value.startswith("Bearer ") else None


async def read_args(request: web.Request) -> JsonDict:
    """Query string, form fields and JSON body merged; JSON strings decoded."""
    args: JsonDict = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return decode_json_fields(args)
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("JSON body is not an object")
        args.update(body)
    else:
        form = await request.post()
        for key, value in form.items():
            args[key] = value.file.read() if isinstance(value, web.FileField) else value
    return decode_json_fields(args)


def fault_response(call: Call, fault: Fault) -> web.Response:
    body = {"ok": False, "error": fault.error_code()}
    call.status, call.response = fault.status, body
    return web.json_response(body, status=fault.status, headers=fault.headers())


# Methods authenticated by client_id and client_secret instead of a token.
CLIENT_AUTHED = ("oauth.v2.access",)


class SlackRoutes:
    """Request handlers bound to one ``SlackState``."""

    def __init__(self, state: SlackState, response_url_max_posts: int = 5) -> None:
        self.state = state
        self.response_url_max_posts = response_url_max_posts

    def add_to(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self.api)
        app.router.add_post("/upload/v1/{ticket}", self.upload)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self.download)
        app.router.add_get("/files-pri/{team_file}/{name}", self.download)
        app.router.add_post("/_response/{key}", self.response_url)
        app.router.add_get("/oauth/v2/authorize", self.authorize)

    def record(self, call: Call) -> Call:
        with self.state.lock:
            self.state.calls.append(call)
        return call

    async def take_fault(self, call: Call) -> Fault | None:
        """The fault for this call, after its delay; None when none is queued."""
        fault = self.state.faults.take(call.method, call.args)
        if fault is not None:
            call.fault = fault.describe()
            if fault.delay:
                await asyncio.sleep(fault.delay)
        return fault

    # ----- Web API

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        invalid: JsonDict | None = None
        try:
            args = await read_args(request)
        except ValueError:
            args, invalid = {}, {"ok": False, "error": "invalid_json"}
        form_token = args.pop("token", None)
        token = bearer(request) or (str(form_token) if form_token else None)
        call = self.record(
            Call(method, args, token, dict(request.headers), http_method=request.method)
        )
        early = invalid or self.preflight(call)
        if early is not None:
            return self.answer(call, early)
        fault = await self.take_fault(call)
        if fault is not None and fault.fails and not fault.apply:
            return fault_response(call, fault)
        body = self.run(call)
        if fault is not None and fault.fails:
            return fault_response(call, fault)
        return self.answer(call, body)

    def preflight(self, call: Call) -> JsonDict | None:
        if call.method not in METHODS:
            return {"ok": False, "error": "unknown_method", "req_method": call.method}
        if call.method in CLIENT_AUTHED:
            return None
        if not call.token:
            return {"ok": False, "error": "not_authed"}
        try:
            self.state.oauth.check(call.token)
        except ApiError as error:
            return error.body()
        return None

    def run(self, call: Call) -> JsonDict:
        try:
            with self.state.lock:
                return METHODS[call.method](self.state, call)
        except ApiError as error:
            return error.body()

    @staticmethod
    def answer(call: Call, body: JsonDict) -> web.Response:
        call.response = body
        return web.json_response(body)

    async def authorize(self, request: web.Request) -> web.Response:
        return await self.state.oauth.authorize(request)

    # ----- upload URL (files.getUploadURLExternal)

    async def upload(self, request: web.Request) -> web.Response:
        data = await read_upload(request)
        pending = self.pending_for(request.match_info["ticket"])
        file_id = pending.file_id if pending else None
        call = self.record(
            Call(UPLOAD, {"file_id": file_id, "length": len(data)}, None, dict(request.headers))
        )
        if pending is None:
            call.status = 404
            return web.Response(status=404, text="invalid_upload_url", content_type="text/plain")
        fault = await self.take_fault(call)
        if fault is not None and fault.fails and not fault.apply:
            call.status = fault.status
            return web.Response(status=fault.status, text=fault.error_code())
        with self.state.lock:
            pending.data, pending.posts = data, pending.posts + 1
        if fault is not None and fault.fails:
            call.status = fault.status
            return web.Response(status=fault.status, text=fault.error_code())
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    def pending_for(self, ticket: str) -> PendingUpload | None:
        with self.state.lock:
            found = [p for p in self.state.pending_uploads.values() if p.ticket == ticket]
        return found[0] if found else None

    # ----- file downloads (url_private / url_private_download)

    async def download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["team_file"].rpartition("-")[2]
        try:
            authorized = self.state.oauth.check(bearer(request)) is not None
        except ApiError:
            authorized = False
        call = self.record(
            Call(
                DOWNLOAD,
                {"file_id": file_id, "authorized": authorized},
                bearer(request),
                dict(request.headers),
                http_method="GET",
            )
        )
        fault = await self.take_fault(call)
        if fault is not None and fault.fails:
            call.status = fault.status
            return web.Response(status=fault.status, text=fault.error_code())
        if not authorized:
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        stored = self.state.files.get(file_id)
        if stored is None:
            call.status = 404
            return web.Response(
                status=404, text="<h1>File not found</h1>", content_type="text/html"
            )
        attachment = request.path.rsplit("/", 2)[-2] == "download"
        return await stream_file(request, stored, attachment)

    # ----- response_url

    async def response_url(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        body = await read_response_body(request)
        call = self.record(Call(RESPONSE_URL, {"key": key, **body}, None, dict(request.headers)))
        fault = await self.take_fault(call)
        if fault is not None and fault.fails:
            call.status = fault.status
            return web.Response(status=fault.status, text=fault.error_code())
        with self.state.lock:
            posts = self.state.response_posts[key]
            if len(posts) >= self.response_url_max_posts:
                call.status = 404
                return web.Response(status=404, text="used_url", content_type="text/plain")
            posts.append(body)
        return web.json_response({"ok": True})


async def read_upload(request: web.Request) -> bytes:
    """The uploaded bytes: a raw body (what slack_sdk sends) or a multipart ``file``."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and (part.filename or part.name == "file"):
                return bytes(await part.read())
        return b""
    buffer = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK_SIZE):
        buffer.extend(chunk)
    return bytes(buffer)


async def read_response_body(request: web.Request) -> JsonDict:
    raw = await request.text()
    if request.content_type == "application/json":
        loaded = json.loads(raw or "{}")
        return loaded if isinstance(loaded, dict) else {"body": loaded}
    form = {k: v[0] for k, v in parse_qs(raw).items()}
    if "payload" in form:
        return json.loads(form["payload"])
    return form


async def stream_file(
    request: web.Request, stored: StoredFile, attachment: bool
) -> web.StreamResponse:
    """Serve a file chunk by chunk; generated content is never held whole."""
    response = web.StreamResponse()
    response.content_type = stored.mimetype
    response.content_length = stored.size
    if attachment:
        response.headers["Content-Disposition"] = f'attachment; filename="{stored.name}"'
    await response.prepare(request)
    for chunk in stored.iter_bytes():
        await response.write(chunk)
    await response.write_eof()
    return response
