"""One turn: the user's input in, typed events out.

A turn is one or more `responses.create(stream=True)` rounds on the user's thread:
function calls the model makes are run and answered in the next round, up to a bound.
Retries are decided here, not by the SDK, so that the user's message never lands in
the conversation twice.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx2
import openai

from commander.backend import CONVERSATION, ModelBackend
from commander.errors import ProviderError, TurnFailedError
from commander.events import (
    Citation,
    EmailPending,
    GeneratedFile,
    TextDelta,
    ToolProgress,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    Usage,
)
from commander.links import LinkScrubber, scrub
from commander.metrics import record_model_error
from commander.provider_errors import to_provider_error
from commander.tools.base import ToolContext, ToolRegistry, run_tool

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
MAX_RETRY_AFTER_S = 20.0  # a server asking for a longer pause gets an error, not a wait
# A stream that broke after the model accepted the request: how long to wait for that
# response to finish server-side (it then lands in the thread) rather than ask again.
RECOVER_WAIT_S = 30.0
RECOVER_POLL_MAX_S = 2.0
_TRANSPORT_ERRORS = (openai.APIError, httpx2.TransportError)
# Failures before the request left this process: nothing can have reached the model.
_UNSENT_ERRORS = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
_AIOHTTP_UNSENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
_TOOL_LABELS = {
    "file_search_call": "searching your files",
    "code_interpreter_call": "running code",
    "web_search_call": "searching the web",
}
_TOOL_NAMES = {
    "file_search_call": "file_search",
    "code_interpreter_call": "code_interpreter",
    "web_search_call": "web_search",
}


@dataclass
class ThreadState:
    strategy: str
    conversation_id: str | None
    last_response_id: str | None
    cursor: str | None  # newest conversation item we know of


@dataclass
class TurnSpec:
    model: str
    instructions: str
    tools: list[dict[str, Any]]
    input_text: str
    # input_image / input_file parts sent with the text (commander/attachments.py)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    reasoning_effort: str | None = None


@dataclass
class _Round:
    response: Any = None
    text: str = ""
    function_calls: list[Any] = field(default_factory=list)
    emitted_output: bool = False
    response_id: str | None = None  # known once the model accepted the request


class StreamCut(Exception):
    """The event stream ended without a terminal event."""


class Turn:
    def __init__(
        self,
        backend: ModelBackend,
        thread: ThreadState,
        functions: ToolRegistry,
        tool_context: ToolContext,
        *,
        max_rounds: int,
        drain_emails: Callable[[], list[EmailPending]],
        retry_base_s: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.backend = backend
        self.thread = thread
        self.functions = functions
        self.tool_context = tool_context
        self.max_rounds = max_rounds
        self.drain_emails = drain_emails
        self.retry_base_s = retry_base_s
        self.sleep = sleep
        self._seen_files: set[str] = set()
        self._seen_citations: set[str] = set()
        self._unsynced = False  # something may have landed in the thread we did not see

    async def run(self, spec: TurnSpec, *, resumed: bool = False) -> AsyncIterator[TurnEvent]:
        """`resumed`: this input may already have reached the thread before a crash."""
        content = [{"type": "input_text", "text": spec.input_text}, *spec.attachments]
        pending_input: list[dict[str, Any]] = [{"role": "user", "content": content}]
        text_parts: list[str] = []
        try:
            if resumed:
                stored = await self._stored_answer(pending_input[0])
                if stored is not None:
                    # The input is in the thread: show what the model already answered
                    # (text, charts, sources), run the function calls still waiting for
                    # their output, and send nothing the thread holds again.
                    answer, annotations, calls = stored
                    pending_input = []
                    if answer:
                        text_parts.append(answer)
                        yield TextDelta(answer)
                    for annotation in annotations:
                        async for event in self._annotation(annotation):
                            yield event
                    if calls:
                        async for event in self._run_functions(calls, pending_input):
                            yield event
                    elif answer is not None:
                        yield TurnCompleted(answer, self.thread.last_response_id or "")
                        return
            for round_no in range(self.max_rounds + 1):
                last_round = round_no == self.max_rounds
                params = self._params(spec, pending_input, allow_tools=not last_round)
                state = _Round()
                async for event in self._stream_round(params, state):
                    yield event
                text_parts.append(state.text)
                self._advance_thread(state.response)
                usage = getattr(state.response, "usage", None)
                if usage is not None:
                    yield usage_event(usage)
                if not state.function_calls:
                    yield TurnCompleted("".join(text_parts), state.response.id)
                    return
                pending_input = []
                async for event in self._run_functions(state.function_calls, pending_input):
                    yield event
            raise TurnFailedError("tool_loop")
        except ProviderError as exc:
            log.warning("turn failed: %s (%s)", exc.kind, exc.status or "-")
            record_model_error(exc.kind)
            if self._unsynced:
                await self._resync_cursor()
            yield TurnFailed(exc.user_message, exc.kind)

    async def _stored_answer(
        self, user_item: dict[str, Any]
    ) -> tuple[str | None, list[dict[str, Any]], list[Any]] | None:
        """After a crash, what the thread holds after this input: (the answer's text, or
        None when there is none yet; its annotations; function calls without output).

        None when the thread does not hold this input yet (or cannot tell): send it."""
        if self.thread.strategy != CONVERSATION or not self.thread.conversation_id:
            return None
        try:
            items = await self.backend.items_after(self.thread.conversation_id, self.thread.cursor)
        except _TRANSPORT_ERRORS:
            return None
        dumped = [item.model_dump() for item in items]
        keys = [_item_key(item) for item in dumped]
        if _item_key(user_item) not in keys:
            return None
        # The last copy: an earlier one can only be an earlier turn's (a stale cursor).
        start = len(keys) - keys[::-1].index(_item_key(user_item))
        after = dumped[start:]
        parts = [
            part
            for item in after
            if item.get("type") == "message" and item.get("role") == "assistant"
            for part in item.get("content") or []
        ]
        answered = {i.get("call_id") for i in after if i.get("type") == "function_call_output"}
        calls = [
            items[start + offset]
            for offset, item in enumerate(after)
            if item.get("type") == "function_call" and item.get("call_id") not in answered
        ]
        self.thread.cursor = dumped[-1]["id"]
        text = scrub("".join(part.get("text") or "" for part in parts)) if parts else None
        annotations = [note for part in parts for note in part.get("annotations") or []]
        return text, annotations, calls

    def _params(
        self, spec: TurnSpec, input_items: list[dict[str, Any]], *, allow_tools: bool
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": spec.model,
            "instructions": spec.instructions,
            "tools": spec.tools + self.functions.schemas(),
            "truncation": "auto",
        }
        if input_items:
            params["input"] = input_items
        if spec.reasoning_effort:
            params["reasoning"] = {"effort": spec.reasoning_effort}
        if not allow_tools:
            params["tool_choice"] = "none"
        if self.thread.strategy == CONVERSATION:
            params["conversation"] = self.thread.conversation_id
        elif self.thread.last_response_id:
            params["previous_response_id"] = self.thread.last_response_id
        return params

    def _advance_thread(self, response: Any) -> None:
        self.thread.last_response_id = response.id
        if response.output:
            self.thread.cursor = response.output[-1].id

    async def _resync_cursor(self) -> None:
        if self.thread.strategy != CONVERSATION or not self.thread.conversation_id:
            return
        try:
            self.thread.cursor = await self.backend.newest_item_id(self.thread.conversation_id)
        except _TRANSPORT_ERRORS:
            log.warning("could not re-read the conversation after a failed turn")

    # --- one round, with retries --------------------------------------------------

    async def _stream_round(
        self, params: dict[str, Any], state: _Round
    ) -> AsyncIterator[TurnEvent]:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async for event in self._stream_once(params, state):
                    yield event
                return
            except ProviderError:
                self._unsynced = True
                raise
            except (*_TRANSPORT_ERRORS, StreamCut) as exc:
                if not _never_sent(exc):
                    self._unsynced = True
                if state.emitted_output:
                    raise self._final_error(exc, True) from exc
                if state.response_id:
                    # The model has the request: its answer may still land in the thread.
                    stored = await self._recover(state.response_id)
                    if stored is _STILL_RUNNING:
                        raise ProviderError("stream_cut", _BROKE_BEFORE_ANSWER) from exc
                    if stored is not None:
                        async for event in self._use_stored(stored, state):
                            yield event
                        return
                    state.response_id = None
                pause = self._backoff(exc, attempt)
                if attempt == MAX_ATTEMPTS or pause is None:
                    raise self._final_error(exc, False) from exc
                retry_input = await self._input_to_resend(exc, params.get("input", []))
                if retry_input is None:
                    raise self._final_error(exc, False) from exc
                params = {k: v for k, v in params.items() if k != "input"}
                if retry_input:
                    params["input"] = retry_input
                log.info(
                    "retrying a turn round (attempt %d) after %s", attempt + 1, type(exc).__name__
                )
                await self.sleep(pause)
        raise AssertionError("unreachable")

    async def _recover(self, response_id: str) -> Any:
        """The response, once it ended server-side: completed or incomplete (to show),
        None when it failed or cannot be read (ask again), or _STILL_RUNNING."""
        deadline = time.monotonic() + RECOVER_WAIT_S
        pause = max(self.retry_base_s, 0.05)
        while True:
            try:
                response = await self.backend.retrieve_response(response_id)
            except _TRANSPORT_ERRORS as exc:
                log.info("could not read back a broken response: %s", type(exc).__name__)
                return None
            if response.status in ("completed", "incomplete"):
                log.info("a broken stream's response finished server-side; showing it")
                return response
            if response.status in ("failed", "cancelled"):
                return None
            if time.monotonic() + pause > deadline:
                log.warning("a broken stream's response is still running; not asking again")
                return _STILL_RUNNING
            await self.sleep(pause)
            pause = min(pause * 2, RECOVER_POLL_MAX_S)

    async def _use_stored(self, response: Any, state: _Round) -> AsyncIterator[TurnEvent]:
        """Show a response read back after its stream broke, as if it had streamed."""
        text = scrub(
            "".join(
                part.text
                for item in response.output
                if item.type == "message"
                for part in item.content or []
                if getattr(part, "type", None) == "output_text"
            )
        )
        if text:
            state.text += text
            state.emitted_output = True
            yield TextDelta(text)
        kind = "response.incomplete" if response.status == "incomplete" else "response.completed"
        event = SimpleNamespace(type=kind, response=response)
        async for out in self._translate(event, state, LinkScrubber()):
            yield out

    @staticmethod
    def _final_error(exc: Exception, mid_answer: bool) -> ProviderError:
        broken = isinstance(exc, StreamCut | httpx2.TransportError | openai.APIConnectionError)
        if broken and (mid_answer or isinstance(exc, StreamCut)):
            return ProviderError(
                "stream_cut", "The connection to the AI service broke mid-answer. Please ask again."
            )
        return to_provider_error(exc)

    def _backoff(self, exc: Exception, attempt: int) -> float | None:
        """Seconds to wait before the next attempt; None when the server wants too long."""
        if isinstance(exc, openai.APIStatusError):
            for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
                try:
                    wait = float(exc.response.headers.get(header) or "") * scale
                except ValueError:
                    continue
                if wait > MAX_RETRY_AFTER_S:
                    return None
                return max(wait, 0.0)
        return self.retry_base_s * (2 ** (attempt - 1))

    async def _input_to_resend(
        self, exc: Exception, sent: list[dict[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """What to send again so nothing lands twice; None when retrying is unsafe."""
        if _never_sent(exc):
            return sent
        if isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
            if exc.status_code in (409, 429):  # refused: nothing was taken in
                return sent
            if exc.status_code != 408:
                return None
        if self.thread.strategy != CONVERSATION:
            return sent
        try:
            landed = await self.backend.items_after(
                self.thread.conversation_id or "", self.thread.cursor
            )
        except _TRANSPORT_ERRORS:
            return None
        landed_keys = {_item_key(item.model_dump()) for item in landed}
        return [item for item in sent if _item_key(item) not in landed_keys]

    async def _stream_once(self, params: dict[str, Any], state: _Round) -> AsyncIterator[TurnEvent]:
        scrubber = LinkScrubber()
        stream = await self.backend.stream_turn(params)
        try:
            async with stream:
                async for event in stream:
                    async for out in self._translate(event, state, scrubber):
                        state.emitted_output = True
                        yield out
                    if state.response is not None:
                        break
        except Exception:
            tail = scrubber.flush()
            if tail and state.emitted_output:  # the last words received, before the error
                state.text += tail
                yield TextDelta(tail)
            raise
        tail = scrubber.flush()
        if tail:
            state.text += tail
            yield TextDelta(tail)
        if state.response is None:
            raise StreamCut()

    async def _translate(
        self, event: Any, state: _Round, scrubber: LinkScrubber
    ) -> AsyncIterator[TurnEvent]:
        kind = event.type
        if kind in ("response.created", "response.in_progress"):
            state.response_id = event.response.id
        elif kind == "response.output_text.delta":
            text = scrubber.feed(event.delta)
            if text:
                state.text += text
                yield TextDelta(text)
        elif kind == "response.output_text.annotation.added":
            async for out in self._annotation(event.annotation):
                yield out
        elif kind in ("response.output_item.added", "response.output_item.done"):
            progress = _item_progress(event.item, done=kind.endswith("done"))
            if progress:
                yield progress
        elif kind == "response.completed":
            state.response = event.response
            state.function_calls = [o for o in event.response.output if o.type == "function_call"]
            for annotation in _annotations(event.response):
                async for out in self._annotation(annotation):
                    yield out
        elif kind == "response.incomplete":
            state.response = event.response
            reason = getattr(event.response.incomplete_details, "reason", None) or "unknown"
            notice = f"\n\n_(The answer was cut short: {reason.replace('_', ' ')}.)_"
            state.text += notice
            yield TextDelta(notice)
        elif kind == "response.failed":
            error = event.response.error
            code = error.code if error else "failed"
            raise TurnFailedError(str(code))
        elif kind == "error":
            raise TurnFailedError(str(event.code or "error"))

    async def _annotation(self, annotation: Any) -> AsyncIterator[TurnEvent]:
        data = annotation if isinstance(annotation, dict) else annotation.model_dump()
        kind = data.get("type")
        if kind == "container_file_citation" and data.get("file_id") not in self._seen_files:
            self._seen_files.add(data["file_id"])
            generated = await self._fetch_generated(data)
            if generated:
                yield generated
        elif kind == "file_citation" and data.get("filename") not in self._seen_citations:
            self._seen_citations.add(data["filename"])
            yield Citation(data["filename"])
        elif kind == "url_citation" and data.get("url") not in self._seen_citations:
            self._seen_citations.add(data["url"])
            yield Citation(str(data.get("title") or data["url"]), str(data["url"]))

    async def _fetch_generated(self, data: dict[str, Any]) -> GeneratedFile | TextDelta | None:
        filename = str(data.get("filename") or "output.bin").rsplit("/", 1)[-1]
        try:
            content = await self.backend.container_file(data["container_id"], data["file_id"])
        except _TRANSPORT_ERRORS as exc:
            log.warning("could not fetch generated file %s: %s", filename, type(exc).__name__)
            return TextDelta(f"\n\n_(The file {filename} could not be retrieved.)_")
        mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return GeneratedFile(filename, mime, content)

    async def _run_functions(
        self, calls: list[Any], outputs: list[dict[str, Any]]
    ) -> AsyncIterator[TurnEvent]:
        for call in calls:
            tool = self.functions.get(call.name)
            label = f"calling {call.name}"
            output = (
                await run_tool(tool, call.arguments, self.tool_context)
                if tool
                else f"error: unknown function {call.name!r}"
            )
            for email in self.drain_emails():
                yield email
            status = "failed" if output.startswith("error:") else "completed"
            yield ToolProgress(call.name, label, status, call.call_id)
            outputs.append(
                {"type": "function_call_output", "call_id": call.call_id, "output": output}
            )


_STILL_RUNNING = object()
_BROKE_BEFORE_ANSWER = (
    "The connection to the AI service broke before it answered. Please ask again in a moment."
)


def _never_sent(exc: BaseException) -> bool:
    """True when the request failed before leaving this process (e.g. connection refused).

    The aiohttp transport maps every aiohttp connection error to httpx2.ConnectTimeout, a
    server that hung up mid-answer included: there its cause decides, and only a failure
    to connect counts. Anything else may have reached the model and is never resent."""
    cause = exc if isinstance(exc, httpx2.TransportError) else exc.__cause__
    if not isinstance(cause, _UNSENT_ERRORS):
        return False
    origin = cause.__cause__
    if isinstance(origin, aiohttp.ClientError):
        return isinstance(origin, _AIOHTTP_UNSENT)
    return True


def _item_progress(item: Any, *, done: bool) -> ToolProgress | None:
    if item.type in _TOOL_LABELS:
        status = "completed" if done else "in_progress"
        if done and getattr(item, "status", None) == "failed":
            status = "failed"
        return ToolProgress(_TOOL_NAMES[item.type], _TOOL_LABELS[item.type], status, item.id)
    if item.type == "function_call" and not done:
        return ToolProgress(item.name, f"calling {item.name}", "in_progress", item.call_id)
    return None


def _annotations(response: Any) -> list[Any]:
    found: list[Any] = []
    for item in response.output:
        for part in getattr(item, "content", None) or []:
            found.extend(getattr(part, "annotations", None) or [])
    return found


def _item_key(item: dict[str, Any]) -> tuple[str, str]:
    """Identity of an input item, comparable with what the conversation stored."""
    if item.get("type") == "function_call_output":
        return ("function_call_output", str(item.get("call_id")))
    texts = [part.get("text", "") for part in item.get("content") or [] if isinstance(part, dict)]
    return (f"message:{item.get('role')}", "".join(texts))


def usage_event(usage: Any) -> Usage:
    """The response's usage block; the cached and reasoning details where reported."""
    cached = getattr(getattr(usage, "input_tokens_details", None), "cached_tokens", 0)
    reasoning = getattr(getattr(usage, "output_tokens_details", None), "reasoning_tokens", 0)
    return Usage(
        usage.input_tokens, usage.output_tokens, usage.total_tokens, cached or 0, reasoning or 0
    )
