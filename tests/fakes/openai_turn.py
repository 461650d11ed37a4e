"""One model turn of the fake: scripted steps -> Responses stream events -> stored state."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from typing import Any

from tests.fakes.openai_media import describe
from tests.fakes.openai_request import ParsedRequest, item_text, tokens
from tests.fakes.openai_state import (
    ContainerFileRecord,
    ContainerRecord,
    ResponseRecord,
    State,
    StoredFile,
)
from tests.fakes.openai_steps import (
    DEFAULT_CHART_CODE,
    CodeInterpreterChart,
    ErrorEvent,
    Fail,
    FileSearch,
    FunctionCall,
    Gate,
    Incomplete,
    SeeInputs,
    Step,
    Text,
    WebSearch,
)
from tests.fakes.openai_wire import ApiError, make_id, now

Event = dict[str, Any]
Events = Generator[Event, None, Any]
TERMINAL_EVENTS = ("response.completed", "response.failed", "response.incomplete", "error")


class ScriptError(ApiError):
    """The script asks for something no real model could do with this request."""

    def __init__(self, message: str) -> None:
        super().__init__(
            500,
            f"FakeOpenAI script error: {message}",
            type="fake_script_error",
            headers={"x-should-retry": "false"},
        )


def default_steps(request: ParsedRequest) -> list[Step]:
    """'Tool said: <output>' after function outputs, else 'You said: <last user text>'."""
    outputs = [i for i in request.input_items if i.get("type") == "function_call_output"]
    users = [i for i in request.context if i.get("type") == "message" and i["role"] == "user"]
    if outputs and not any(i in request.input_items for i in users):
        return [Text("Tool said: " + "; ".join(item_text(o) for o in outputs))]
    return [Text("You said: " + (item_text(users[-1]) if users else ""))]


def chunks(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


class TurnRunner:
    """Turns steps into the real event sequence; commits the response when it ends."""

    def __init__(self, request: ParsedRequest, steps: list[Step], state: State) -> None:
        self.request = request
        self.steps = steps
        self.state = state
        self.id = make_id("resp")
        self.created_at = now()
        self.output: list[dict[str, Any]] = []
        self.error: ErrorEvent | None = None
        self._container: ContainerRecord | None = None
        self._citations = {id(s): self._cited_file(s) for s in steps if isinstance(s, FileSearch)}
        self._check_steps()
        self.record = ResponseRecord(
            id=self.id,
            body=self._body("in_progress"),
            context=request.context,
            request=request.body,
            stored=request.store,
        )
        state.responses[self.id] = self.record

    def _check_steps(self) -> None:
        for step in self.steps:
            if isinstance(step, FunctionCall) and step.name not in self.request.function_names():
                raise ScriptError(f"function {step.name!r} is not among the request's tools")
            if isinstance(step, CodeInterpreterChart) and not self.request.tool("code_interpreter"):
                raise ScriptError("CodeInterpreterChart needs a code_interpreter tool")
            if isinstance(step, WebSearch) and not self.request.tool("web_search"):
                raise ScriptError("WebSearch needs a web_search tool")

    def _cited_file(self, step: FileSearch) -> StoredFile:
        tool = self.request.tool("file_search")
        if tool is None:
            raise ScriptError("FileSearch needs a file_search tool")
        candidates = [
            self.state.files[record.file_id]
            for vs_id in tool["vector_store_ids"]
            for record in self.state.vector_store(vs_id).files.values()
            if record.file_id in self.state.files and record.status != "failed"
        ]
        if step.filename is not None:
            named = [
                f for f in [*candidates, *self.state.files.values()] if f.filename == step.filename
            ]
            candidates = named[:1]
        if not candidates:
            raise ScriptError(f"no file to cite (filename={step.filename!r}) in the vector stores")
        return candidates[0]

    def events(self) -> Iterator[Event]:
        yield {"type": "response.created", "response": self.record.body}
        yield {"type": "response.in_progress", "response": self.record.body}
        for step in self.steps:
            if isinstance(step, Fail | Incomplete | ErrorEvent):
                yield from self._end(step)
                return
            yield from self._step(step)
        yield self._finish("completed")

    def _step(self, step: Step) -> Events:
        if isinstance(step, Text):
            yield from self._message(step.text, step.chunk)
        elif isinstance(step, FunctionCall):
            yield from self._function_call(step)
        elif isinstance(step, CodeInterpreterChart):
            yield from self._chart(step)
        elif isinstance(step, FileSearch):
            yield from self._file_search(step)
        elif isinstance(step, SeeInputs):
            seen = [
                describe(part)
                for item in self.request.context
                if item.get("type") == "message" and item.get("role") == "user"
                for part in item.get("content") or []
                if part.get("type") in ("input_image", "input_file")
            ]
            yield from self._message(step.prefix + ("; ".join(seen) or "nothing"), 8)
        elif isinstance(step, WebSearch):
            yield from self._web_search(step)
        elif isinstance(step, Gate):
            yield {"type": "_fake.gate", "gate": step.event}

    def _end(self, step: Fail | Incomplete | ErrorEvent) -> Events:
        if isinstance(step, Fail):
            yield self._finish("failed", error={"code": step.code, "message": step.message})
        elif isinstance(step, Incomplete):
            if step.text:
                yield from self._message(step.text, 4, status="incomplete")
            yield self._finish("incomplete", incomplete={"reason": step.reason})
        else:
            self.error = step
            self.record.body = self._body(
                "failed", error={"code": step.code, "message": step.message}
            )
            yield {"type": "error", "code": step.code, "message": step.message, "param": None}

    def _finish(
        self,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        incomplete: dict[str, Any] | None = None,
    ) -> Event:
        self.record.body = self._body(status, error=error, incomplete=incomplete)
        conversation = self.request.conversation
        if conversation is not None and status != "failed":
            conversation.items.extend(self.request.input_items + self.output)
        return {"type": f"response.{status}", "response": self.record.body}

    def _body(
        self,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        incomplete: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body, request = self.request.body, self.request
        running = status == "in_progress"
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "completed_at": now() if status == "completed" else None,
            "conversation": {"id": request.conversation.id} if request.conversation else None,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "metadata": body.get("metadata") or {},
            "model": request.model,
            "output": [] if running else list(self.output),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": None, "summary": None},
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": "default",
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": request.tool_choice,
            "tools": request.tools,
            "top_logprobs": body.get("top_logprobs", 0),
            "top_p": body.get("top_p", 1.0),
            "truncation": request.truncation,
            "usage": None if running else self._usage(),
            "user": body.get("user"),
        }

    def _usage(self) -> dict[str, Any]:
        instructions = self.request.body.get("instructions")
        seen = [item_text(i) for i in self.request.context]
        if isinstance(instructions, str):
            seen.append(instructions)
        input_tokens = sum(tokens(text) for text in seen)
        # Prompt caching: the history the provider already saw is read from its cache.
        cached = sum(tokens(item_text(i)) for i in self.request.history)
        # Reasoning models think before answering; those tokens count as output.
        reasoning = REASONING_TOKENS_PER_ITEM * len(self.output) if reasons(self.request) else 0
        output_tokens = sum(tokens(item_text(item)) for item in self.output) + reasoning
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens,
        }

    def _added(self, item: dict[str, Any]) -> Event:
        return {
            "type": "response.output_item.added",
            "output_index": len(self.output),
            "item": item,
        }

    def _done(self, item: dict[str, Any]) -> Event:
        self.output.append(item)
        return {
            "type": "response.output_item.done",
            "output_index": len(self.output) - 1,
            "item": item,
        }

    def _where(self, item_id: str) -> dict[str, Any]:
        return {"item_id": item_id, "output_index": len(self.output)}

    def _message(
        self,
        text: str,
        chunk: int,
        annotations: tuple[dict[str, Any], ...] = (),
        status: str = "completed",
    ) -> Events:
        item = {
            "id": make_id("msg"),
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        }
        where = {**self._where(item["id"]), "content_index": 0}
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        yield self._added(item)
        yield {"type": "response.content_part.added", **where, "part": part}
        for delta in chunks(text, chunk):
            yield {"type": "response.output_text.delta", **where, "delta": delta, "logprobs": []}
        for index, annotation in enumerate(annotations):
            yield {
                "type": "response.output_text.annotation.added",
                **where,
                "annotation_index": index,
                "annotation": annotation,
            }
        yield {"type": "response.output_text.done", **where, "text": text, "logprobs": []}
        part = {**part, "annotations": list(annotations), "text": text}
        yield {"type": "response.content_part.done", **where, "part": part}
        yield self._done({**item, "status": status, "content": [part]})

    def _function_call(self, step: FunctionCall) -> Events:
        arguments = json.dumps(step.arguments)
        item = {
            "id": make_id("fc"),
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": step.call_id or make_id("call"),
            "name": step.name,
        }
        where = self._where(item["id"])
        yield self._added(item)
        for delta in chunks(arguments, 8):
            yield {"type": "response.function_call_arguments.delta", **where, "delta": delta}
        yield {"type": "response.function_call_arguments.done", **where, "arguments": arguments}
        yield self._done({**item, "status": "completed", "arguments": arguments})

    def _code_container(self) -> ContainerRecord:
        tool = self.request.tool("code_interpreter")
        assert tool is not None
        spec = tool["container"]
        if isinstance(spec, str):
            return self.state.container(spec)
        if self._container is None:
            self._container = self.state.new_container(list(spec.get("file_ids") or []))
        return self._container

    def _chart(self, step: CodeInterpreterChart) -> Events:
        saved = yield from self._code_call(step, self._code_container())
        link = f"sandbox:/mnt/data/{step.filename}"
        text = f"{step.text}\n\n[{step.filename}]({link})"
        start = text.index(link)
        citation = {
            "type": "container_file_citation",
            "container_id": saved.container_id,
            "file_id": saved.id,
            "filename": step.filename,
            "start_index": start,
            "end_index": start + len(link),
        }
        yield from self._message(text, 4, (citation,))

    def _code_call(
        self, step: CodeInterpreterChart, container: ContainerRecord
    ) -> Generator[Event, None, ContainerFileRecord]:
        code = step.code or DEFAULT_CHART_CODE.format(filename=step.filename)
        item = {
            "id": make_id("ci"),
            "type": "code_interpreter_call",
            "status": "in_progress",
            "code": "",
            "container_id": container.id,
            "outputs": None,
        }
        where = self._where(item["id"])
        yield self._added(item)
        yield {"type": "response.code_interpreter_call.in_progress", **where}
        for delta in chunks(code, 16):
            yield {"type": "response.code_interpreter_call_code.delta", **where, "delta": delta}
        yield {"type": "response.code_interpreter_call_code.done", **where, "code": code}
        yield {"type": "response.code_interpreter_call.interpreting", **where}
        saved = container.add_file(step.filename, step.content, source="assistant")
        yield {"type": "response.code_interpreter_call.completed", **where}
        wants_outputs = "code_interpreter_call.outputs" in self.request.include
        outputs = [{"type": "logs", "logs": ""}] if wants_outputs else None
        yield self._done({**item, "status": "completed", "code": code, "outputs": outputs})
        return saved

    def _web_search(self, step: WebSearch) -> Events:
        users = [
            i for i in self.request.context if i.get("type") == "message" and i["role"] == "user"
        ]
        query = item_text(users[-1]) if users else step.text
        item = _web_search_item(make_id("ws"), "in_progress", query, [])
        where = self._where(item["id"])
        yield self._added(item)
        for phase in ("in_progress", "searching", "completed"):
            yield {"type": f"response.web_search_call.{phase}", **where}
        urls = [url for _title, url in step.sources]
        yield self._done(_web_search_item(item["id"], "completed", query, urls))
        text = step.text
        annotations = []
        for title, url in step.sources:
            start = len(text) + 1
            text += f" [{title}]({url})"
            annotations.append(
                {
                    "type": "url_citation",
                    "start_index": start,
                    "end_index": len(text),
                    "title": title,
                    "url": url,
                }
            )
        yield from self._message(text, 4, tuple(annotations))

    def _file_search(self, step: FileSearch) -> Events:
        cited = self._citations[id(step)]
        item = {
            "id": make_id("fs"),
            "type": "file_search_call",
            "status": "in_progress",
            "queries": [],
            "results": None,
        }
        where = self._where(item["id"])
        yield self._added(item)
        for phase in ("in_progress", "searching", "completed"):
            yield {"type": f"response.file_search_call.{phase}", **where}
        users = [
            i for i in self.request.context if i.get("type") == "message" and i["role"] == "user"
        ]
        queries = [item_text(users[-1]) if users else step.text]
        results = None
        if "file_search_call.results" in self.request.include:
            excerpt = cited.content[:200].decode("utf-8", "replace")
            results = [
                {
                    "attributes": {},
                    "file_id": cited.id,
                    "filename": cited.filename,
                    "score": 0.9,
                    "text": excerpt,
                }
            ]
        yield self._done({**item, "status": "completed", "queries": queries, "results": results})
        citation = {
            "type": "file_citation",
            "file_id": cited.id,
            "filename": cited.filename,
            "index": len(step.text),
        }
        yield from self._message(step.text, 4, (citation,))


def _web_search_item(item_id: str, status: str, query: str, urls: list[str]) -> dict[str, Any]:
    sources = [{"type": "url", "url": url} for url in urls]
    action = {"type": "search", "query": query, "queries": [query], "sources": sources}
    return {"id": item_id, "type": "web_search_call", "status": status, "action": action}


REASONING_TOKENS_PER_ITEM = 3


def reasons(request: Any) -> bool:
    """Models of the gpt-5 and o families report reasoning tokens."""
    return str(request.model).startswith(("gpt-5", "o1", "o3", "o4"))
