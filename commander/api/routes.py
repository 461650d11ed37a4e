"""The API's handlers: parse with the models, call the Commander service, answer JSON
(or server-sent events). Per-user serialisation and limits are the service's."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from commander.api.fetch import FetchRefused, UrlFetcher
from commander.api.models import (
    USER_NAME_PATTERN,
    AssistantInfo,
    CreateRequest,
    CreateResponse,
    DeleteResponse,
    Message,
    ProcessRequest,
    RefusedFile,
    StatusResponse,
    StoredFileInfo,
    Tool,
)
from commander.api.openapi import openapi_document
from commander.errors import NoAssistant
from commander.events import (
    Citation,
    GeneratedFile,
    TextDelta,
    ToolProgress,
    TurnEvent,
    TurnFailed,
)
from commander.filetypes import CODE_INTERPRETER, FILE_SEARCH
from commander.service import Commander
from commander.store.models import Assistant
from commander.usage import TurnUsage, UsageBook

COMMANDER = web.AppKey("commander", Commander)
FETCHER = web.AppKey("fetcher", UrlFetcher)
TEAM = web.RequestKey("api_team", str)
USAGE = web.AppKey("usage", UsageBook)
API_TOOLS = [CODE_INTERPRETER, FILE_SEARCH]  # no email: the API has no way to confirm one
_PROVIDER_BUSY = frozenset({"rate_limited", "timeout", "connection", "server_error"})
_USER_NAME = re.compile(USER_NAME_PATTERN)
M = TypeVar("M", bound=BaseModel)

ROUTES = web.RouteTableDef()


class ApiError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers)


def _ok(model: BaseModel | list[Any]) -> web.Response:
    if isinstance(model, list):
        return web.json_response([m.model_dump(mode="json") for m in model])
    return web.json_response(model.model_dump(mode="json"))


async def _parse(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise ApiError(400, _describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        if error["type"] == "missing":
            problems.append(f"missing field {where}")
        elif error["type"] == "json_invalid":
            problems.append("the body is not valid JSON")
        elif error["type"] == "model_type":
            problems.append("the body must be a JSON object")
        else:
            problems.append(f"{where}: {error['msg']}")
    return "Invalid request: " + "; ".join(problems) + "."


def _path_user(request: web.Request) -> str:
    user = request.match_info["userName"]
    if not _USER_NAME.fullmatch(user):
        raise ApiError(400, "Invalid request: userName has characters or a length not allowed.")
    return user


def _tools(assistant: Assistant) -> list[Tool]:
    return [Tool(type=name) for name in assistant.tools]


def _thread(assistant: Assistant) -> str | None:
    return assistant.conversation_id or assistant.last_response_id


@ROUTES.get("/openapi.json")
async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


@ROUTES.post("/create")
async def create(request: web.Request) -> web.Response:
    body = await _parse(request, CreateRequest)
    commander, team = request.app[COMMANDER], request[TEAM]
    if len(body.fileURLs) > commander.limits.max_files_per_message:
        raise ApiError(
            400, f"Invalid request: at most {commander.limits.max_files_per_message} fileURLs."
        )
    assistant = await commander.create(
        team, body.userName, instructions=body.instructions, name=body.name, tools=API_TOOLS
    )
    fetcher = request.app[FETCHER]
    file_ids: list[str] = []
    refused: list[RefusedFile] = []
    for url in body.fileURLs:
        problem = fetcher.problem(url)
        if problem is None:
            try:
                async with fetcher.open(url, commander.limits.max_file_bytes) as incoming:
                    result = await commander.add_files(team, body.userName, [incoming])
            except FetchRefused as exc:
                problem = exc.user_message
            else:
                file_ids.extend(f.provider_file_id for f in result.added if f.provider_file_id)
                problem = result.rejected[0][1] if result.rejected else None
        if problem:
            refused.append(RefusedFile(url=url, reason=problem))
    return _ok(
        CreateResponse(
            userName=body.userName,
            name=assistant.name,
            instructions=assistant.instructions,
            tools=_tools(assistant),
            assistant_id=str(assistant.id),
            thread_id=_thread(assistant),
            file_ids=file_ids,
            refused=refused,
        )
    )


class _Answer:
    """One turn's events gathered into the original API's messages."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.citations: list[str] = []
        self.files: list[Message] = []
        self.failed: TurnFailed | None = None

    def add(self, event: TurnEvent) -> tuple[str, Any] | None:
        """Take one event; returns the server-sent event to stream for it, if any."""
        if isinstance(event, TextDelta):
            self.text.append(event.text)
            return "delta", {"text": event.text}
        if isinstance(event, ToolProgress):
            return "tool", {"tool": event.tool, "label": event.label, "status": event.status}
        if isinstance(event, Citation):
            if event.filename in self.citations:
                return None
            self.citations.append(event.filename)
            return "citation", {"filename": event.filename}
        if isinstance(event, GeneratedFile):
            message = Message(
                role="assistant",
                content=event.filename,
                imageContent=base64.b64encode(event.content).decode("ascii"),
                citations=[],
                mimeType=event.mime_type,
            )
            self.files.append(message)
            return "image", message.model_dump(mode="json")
        if isinstance(event, TurnFailed):
            self.failed = event
        return None

    def messages(self) -> list[Message]:
        text = Message(
            role="assistant",
            content="".join(self.text),
            imageContent=None,
            citations=list(self.citations),
        )
        return [text, *self.files]

    def error(self) -> ApiError:
        assert self.failed is not None
        if self.failed.kind in _PROVIDER_BUSY:
            return ApiError(503, self.failed.user_message, {"Retry-After": "30"})
        return ApiError(502, self.failed.user_message)


def _sse(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@ROUTES.post("/process")
async def process(request: web.Request) -> web.StreamResponse:
    body = await _parse(request, ProcessRequest)
    commander, team = request.app[COMMANDER], request[TEAM]
    streaming = "text/event-stream" in request.headers.get("Accept", "")
    answer = _Answer()
    usage = request.app.get(USAGE)
    if usage is not None:  # over a budget: 429, and no model call
        await usage.check(team, body.userName)
    turn = commander.ask(team, body.userName, body.prompt)
    async with aclosing(_metered(turn, usage, commander, team, body.userName)) as events:
        # The first event comes after the checks (limits, the assistant exists), so a
        # refusal still gets its status code, even when streaming.
        first = await anext(events, None)
        if not streaming:
            if first is not None:
                answer.add(first)
            async for event in events:
                answer.add(event)
            if answer.failed:
                raise answer.error()
            return _ok(answer.messages())
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if first is not None:
            await _send(response, answer, first)
        async for event in events:
            await _send(response, answer, event)
        if answer.failed:
            await response.write(_sse("error", {"detail": answer.failed.user_message}))
        else:
            done = [m.model_dump(mode="json") for m in answer.messages()]
            await response.write(_sse("done", done))
        await response.write_eof()
        return response


async def _metered(
    events: AsyncIterator[TurnEvent],
    usage: UsageBook | None,
    commander: Commander,
    team: str,
    user: str,
) -> AsyncIterator[TurnEvent]:
    """The turn's events, counted into the same usage book as Slack users' turns."""
    meter = TurnUsage()
    try:
        async with aclosing(events):  # type: ignore[type-var]
            async for event in events:
                meter.turns = 1  # the checks passed: the model was asked
                meter.see(event)
                yield event
    finally:
        if usage is not None and meter.turns:
            assistant = await commander.get(team, user)
            await usage.record(team, team, user, assistant.model if assistant else "", meter)


async def _send(response: web.StreamResponse, answer: _Answer, event: TurnEvent) -> None:
    sse = answer.add(event)
    if sse is not None:
        await response.write(_sse(*sse))


@ROUTES.delete("/delete/{userName}")
async def delete(request: web.Request) -> web.Response:
    user = _path_user(request)
    commander, team = request.app[COMMANDER], request[TEAM]
    if await commander.get(team, user) is None:
        raise NoAssistant()
    report = await commander.delete(team, user)
    files = report.files_deleted + report.files_already_gone
    return _ok(
        DeleteResponse(
            message=f"Deleted the assistant of {user}, its conversation and {files} file(s)."
        )
    )


@ROUTES.get("/status/{userName}")
async def status(request: web.Request) -> web.Response:
    user = _path_user(request)
    commander, team = request.app[COMMANDER], request[TEAM]
    found = await commander.status(team, user)
    if found is None:
        raise NoAssistant()
    a = found.assistant
    return _ok(
        StatusResponse(
            userName=user,
            assistant=AssistantInfo(
                assistant_id=str(a.id),
                name=a.name,
                instructions=a.instructions,
                model=a.model,
                tools=_tools(a),
                thread_id=_thread(a),
                created_at=a.created_at.isoformat(),
            ),
            files=[
                StoredFileInfo(
                    file_id=f.provider_file_id,
                    name=f.original_name,
                    size=f.size,
                    tools=list(f.attached_to),
                    error=f.error,
                )
                for f in found.files
            ],
            # The person's lock: held, on any instance, while a turn (or a change) runs.
            running=found.busy,
        )
    )
