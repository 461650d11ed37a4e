"""HTTP handlers of the fake OpenAI server, one per real endpoint."""

from __future__ import annotations

import asyncio
import mimetypes
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from tests.fakes.openai_faults import Fault
from tests.fakes.openai_request import normalize_item, parse_request
from tests.fakes.openai_state import (
    DEFAULT_CHUNKING,
    ConversationRecord,
    FileSink,
    VectorStoreFileRecord,
    VectorStoreRecord,
)
from tests.fakes.openai_turn import TERMINAL_EVENTS, TurnRunner, default_steps
from tests.fakes.openai_wire import (
    JSON_BODY,
    RECORDED,
    ApiError,
    invalid_type,
    invalid_value,
    json_response,
    list_body,
    make_id,
    missing,
    not_found,
    page,
    sse,
)

if TYPE_CHECKING:
    from tests.fakes.openai_server import FakeOpenAI

FAKE = web.AppKey("fake", "FakeOpenAI")
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data")
MAX_ITEMS_PER_CALL = 20


def _fake(request: web.Request) -> FakeOpenAI:
    return request.app[FAKE]


def _json(request: web.Request) -> dict[str, Any]:
    body = request.get(JSON_BODY)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    return body


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise invalid_type("metadata", "an object", metadata)
    if len(metadata) > 16:
        raise ApiError(400, "Invalid 'metadata': too many properties.", param="metadata")
    return metadata


# --- models -------------------------------------------------------------------------------


def _model_json(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "system"}


async def retrieve_model(request: web.Request) -> web.Response:
    return json_response(_model_json(request.match_info["model"]))


async def list_models(request: web.Request) -> web.Response:
    models = ["gpt-4.1", "gpt-4.1-mini", "gpt-5", "gpt-5-mini"]
    return json_response({"object": "list", "data": [_model_json(m) for m in models]})


# --- files --------------------------------------------------------------------------------


async def create_file(request: web.Request) -> web.Response:
    fake = _fake(request)
    fields, upload = await _read_upload(request, fake.state.upload_dir)
    filename, sink = upload or ("", None)
    purpose = fields.get("purpose")
    try:
        _check_upload(sink, purpose)
    except ApiError:
        if sink is not None:
            sink.discard()
        raise
    assert sink is not None and purpose is not None
    stored = sink.finish(make_id("file"), filename, purpose)
    fake.state.files[stored.id] = stored
    recorded = request.get(RECORDED)
    if recorded is not None:
        upload_info = {"filename": filename, "bytes": stored.bytes, "sha256": stored.sha256}
        recorded.form = {**fields, "file": upload_info}
    return json_response(stored.to_json())


async def _read_upload(
    request: web.Request, directory: Path
) -> tuple[dict[str, str], tuple[str, FileSink] | None]:
    """The form's text fields, and the file part streamed into a sink, if any."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(
            400,
            f"Invalid Content-Type header ({request.content_type}), expected multipart/form-data.",
        )
    fields: dict[str, str] = {}
    upload = None
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader):
            continue
        if part.name != "file":
            fields[part.name or ""] = await part.text()
            continue
        sink = FileSink(directory)
        while chunk := await part.read_chunk(1 << 20):
            sink.write(chunk)
        upload = (part.filename or "upload", sink)
    return fields, upload


def _check_upload(sink: FileSink | None, purpose: str | None) -> None:
    if sink is None:
        raise missing("file")
    if purpose is None:
        raise missing("purpose")
    if purpose not in UPLOAD_PURPOSES:
        raise invalid_value("purpose", purpose, UPLOAD_PURPOSES)


async def list_files(request: web.Request) -> web.Response:
    files = list(_fake(request).state.files.values())
    if "purpose" in request.query:
        files = [f for f in files if f.purpose == request.query["purpose"]]
    data, has_more = page(
        files, request.query, key=lambda f: f.id, default_limit=10_000, max_limit=10_000
    )
    return json_response(list_body([f.to_json() for f in data], has_more))


async def retrieve_file(request: web.Request) -> web.Response:
    return json_response(_fake(request).state.file(request.match_info["file_id"]).to_json())


async def delete_file(request: web.Request) -> web.Response:
    state = _fake(request).state
    file_id = state.file(request.match_info["file_id"]).id
    state.delete_file(file_id)
    return json_response({"id": file_id, "object": "file", "deleted": True})


# --- vector stores --------------------------------------------------------------------------


def _attach(fake: FakeOpenAI, store: VectorStoreRecord, body: dict[str, Any], path: str) -> None:
    stored = fake.state.file(body["file_id"])
    fault = fake.faults.take("POST", path, "vector_store_file")
    failure = None
    if fault is not None:
        failure = {
            "code": fault.code or "server_error",
            "message": fault.message or "The file could not be processed.",
        }
    store.files[stored.id] = VectorStoreFileRecord(
        file_id=stored.id,
        vector_store_id=store.id,
        size=stored.bytes,
        attributes=body.get("attributes") or {},
        chunking_strategy=body.get("chunking_strategy") or DEFAULT_CHUNKING,
        failure=failure,
    )


async def create_vector_store(request: web.Request) -> web.Response:
    fake, body = _fake(request), _json(request)
    file_ids = body.get("file_ids") or []
    for file_id in file_ids:
        fake.state.file(file_id)
    store = VectorStoreRecord(
        id=make_id("vs"),
        name=str(body.get("name") or ""),
        metadata=_metadata(body),
        expires_after=body.get("expires_after"),
    )
    for file_id in file_ids:
        _attach(fake, store, {"file_id": file_id}, f"/v1/vector_stores/{store.id}/files")
    fake.state.vector_stores[store.id] = store
    return json_response(store.to_json())


async def list_vector_stores(request: web.Request) -> web.Response:
    stores = list(_fake(request).state.vector_stores.values())
    data, has_more = page(
        stores, request.query, key=lambda s: s.id, default_limit=20, max_limit=100
    )
    return json_response(list_body([s.to_json() for s in data], has_more))


def _settled_store(request: web.Request) -> VectorStoreRecord:
    store = _fake(request).state.vector_store(request.match_info["vs_id"])
    for record in store.files.values():
        record.settle()
    return store


async def retrieve_vector_store(request: web.Request) -> web.Response:
    return json_response(_settled_store(request).to_json())


async def delete_vector_store(request: web.Request) -> web.Response:
    state = _fake(request).state
    store = state.vector_store(request.match_info["vs_id"])
    del state.vector_stores[store.id]
    return json_response({"id": store.id, "object": "vector_store.deleted", "deleted": True})


async def create_vector_store_file(request: web.Request) -> web.Response:
    fake, body = _fake(request), _json(request)
    store = fake.state.vector_store(request.match_info["vs_id"])
    if not body.get("file_id"):
        raise missing("file_id")
    _attach(fake, store, body, request.path)
    return json_response(store.files[body["file_id"]].to_json())


async def list_vector_store_files(request: web.Request) -> web.Response:
    records = list(_settled_store(request).files.values())
    if "filter" in request.query:
        records = [r for r in records if r.status == request.query["filter"]]
    data, has_more = page(
        records, request.query, key=lambda r: r.file_id, default_limit=20, max_limit=100
    )
    return json_response(list_body([r.to_json() for r in data], has_more))


def _vector_store_file(request: web.Request) -> tuple[VectorStoreRecord, VectorStoreFileRecord]:
    store = _fake(request).state.vector_store(request.match_info["vs_id"])
    file_id = request.match_info["file_id"]
    if file_id not in store.files:
        raise not_found(f"No file found with id '{file_id}' in vector store '{store.id}'.")
    return store, store.files[file_id]


async def retrieve_vector_store_file(request: web.Request) -> web.Response:
    _, record = _vector_store_file(request)
    record.settle()
    return json_response(record.to_json())


async def delete_vector_store_file(request: web.Request) -> web.Response:
    store, record = _vector_store_file(request)
    del store.files[record.file_id]
    return json_response(
        {"id": record.file_id, "object": "vector_store.file.deleted", "deleted": True}
    )


# --- conversations ------------------------------------------------------------------------


def _items(body: dict[str, Any], *, required: bool) -> list[dict[str, Any]]:
    raw = body.get("items")
    if raw is None:
        if required:
            raise missing("items")
        return []
    if not isinstance(raw, list):
        raise invalid_type("items", "an array", raw)
    if len(raw) > MAX_ITEMS_PER_CALL:
        raise ApiError(
            400,
            f"Invalid 'items': array too long. Expected an array with maximum length "
            f"{MAX_ITEMS_PER_CALL}, but got an array with length {len(raw)} instead.",
            param="items",
            code="array_above_max_length",
        )
    return [normalize_item(item, f"items[{index}]") for index, item in enumerate(raw)]


async def create_conversation(request: web.Request) -> web.Response:
    fake, body = _fake(request), _json(request)
    conversation = ConversationRecord(id=make_id("conv"), metadata=_metadata(body))
    conversation.items.extend(_items(body, required=False))
    fake.state.conversations[conversation.id] = conversation
    return json_response(conversation.to_json())


def _conversation(request: web.Request) -> ConversationRecord:
    return _fake(request).state.conversation(request.match_info["conv_id"])


async def retrieve_conversation(request: web.Request) -> web.Response:
    return json_response(_conversation(request).to_json())


async def delete_conversation(request: web.Request) -> web.Response:
    conversation = _conversation(request)
    del _fake(request).state.conversations[conversation.id]
    return json_response({"id": conversation.id, "object": "conversation.deleted", "deleted": True})


async def create_conversation_items(request: web.Request) -> web.Response:
    conversation = _conversation(request)
    items = _items(_json(request), required=True)
    conversation.items.extend(items)
    return json_response(list_body(items, False))


async def list_conversation_items(request: web.Request) -> web.Response:
    conversation = _conversation(request)
    data, has_more = page(
        conversation.items, request.query, key=lambda i: i["id"], default_limit=20, max_limit=100
    )
    return json_response(list_body(data, has_more))


# --- containers -----------------------------------------------------------------------------


async def container_file_content(request: web.Request) -> web.Response:
    container = _fake(request).state.container(request.match_info["container_id"])
    file_id = request.match_info["file_id"]
    if file_id not in container.files:
        raise not_found(f"Container file with id '{file_id}' not found.")
    record = container.files[file_id]
    mime = mimetypes.guess_type(record.filename)[0] or "application/octet-stream"
    return web.Response(body=record.content, content_type=mime)


# --- responses ----------------------------------------------------------------------------


class Pacer:
    """Waits `ttft_ms` before the first text delta and 1/tokens_per_second between deltas."""

    def __init__(self, ttft_ms: float, tokens_per_second: float) -> None:
        self._first = ttft_ms / 1000
        self._between = 1 / tokens_per_second if tokens_per_second > 0 else 0.0
        self._started = False

    async def wait(self) -> None:
        pause = self._between if self._started else self._first
        self._started = True
        if pause > 0:
            await asyncio.sleep(pause)


async def create_response(request: web.Request) -> web.StreamResponse:
    fake = _fake(request)
    body = _json(request)
    parsed = parse_request(body, fake.state, fake.context_window)
    steps = fake.next_turn(body) or default_steps(parsed)
    runner = TurnRunner(parsed, steps, fake.state)
    if parsed.stream:
        cut = fake.faults.take(request.method, request.path, "cut")
        return await _stream(request, runner, cut)
    pacer = Pacer(fake.ttft_ms, fake.tokens_per_second)
    for event in runner.events():
        if event["type"] == "response.output_text.delta":
            await pacer.wait()
        elif event["type"] == "_fake.gate":
            await asyncio.to_thread(event["gate"].wait, 30)
    if runner.error is not None:
        raise ApiError(500, runner.error.message, type="server_error", code=runner.error.code)
    return json_response(runner.record.body)


async def _stream(
    request: web.Request, runner: TurnRunner, cut: Fault | None
) -> web.StreamResponse:
    """Writes the SSE stream. If the client goes away the turn still completes (and lands in
    the conversation), as a model keeps generating; a cut fault ends it unless
    `finish_after_cut` is set."""
    fake = _fake(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    pacer = Pacer(fake.ttft_ms, fake.tokens_per_second)
    events = enumerate(runner.events())
    deltas = 0
    for number, event in events:
        if event["type"] == "_fake.gate":
            if not await _pass_gate(request, event["gate"]):
                fake.client_left.append(runner.id)
                deque(events, maxlen=0)
                return response
            continue
        is_delta = event["type"] == "response.output_text.delta"
        if cut is not None and _cuts_before(cut, event["type"], deltas):
            if request.transport is not None:
                request.transport.close()
            if cut.finish_after_cut:
                deque(events, maxlen=0)
            return response
        if is_delta:
            await pacer.wait()
        try:
            await response.write(sse({**event, "sequence_number": number}))
        except ConnectionResetError:
            deque(events, maxlen=0)
            return response
        if is_delta:
            deltas += 1
            _record_delta(fake, runner.id)
    await response.write_eof()
    return response


async def _pass_gate(request: web.Request, gate: Any) -> bool:
    """Wait for the test to open the gate; False when the client left first."""
    while not gate.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return False
        await asyncio.sleep(0.002)
    return True


def _cuts_before(cut: Fault, event_type: str, deltas_written: int) -> bool:
    if event_type in TERMINAL_EVENTS:
        return True
    return event_type == "response.output_text.delta" and deltas_written == cut.cut_after_deltas


def _record_delta(fake: FakeOpenAI, response_id: str) -> None:
    moment = time.time()
    timing = fake.timings.setdefault(response_id, {"first_delta": moment, "last_delta": moment})
    timing["last_delta"] = moment


async def retrieve_response(request: web.Request) -> web.Response:
    record = _fake(request).state.stored_response(request.match_info["response_id"])
    return json_response(record.body)


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/models", list_models),
    ("GET", "/v1/models/{model}", retrieve_model),
    ("POST", "/v1/files", create_file),
    ("GET", "/v1/files", list_files),
    ("GET", "/v1/files/{file_id}", retrieve_file),
    ("DELETE", "/v1/files/{file_id}", delete_file),
    ("POST", "/v1/vector_stores", create_vector_store),
    ("GET", "/v1/vector_stores", list_vector_stores),
    ("GET", "/v1/vector_stores/{vs_id}", retrieve_vector_store),
    ("DELETE", "/v1/vector_stores/{vs_id}", delete_vector_store),
    ("POST", "/v1/vector_stores/{vs_id}/files", create_vector_store_file),
    ("GET", "/v1/vector_stores/{vs_id}/files", list_vector_store_files),
    ("GET", "/v1/vector_stores/{vs_id}/files/{file_id}", retrieve_vector_store_file),
    ("DELETE", "/v1/vector_stores/{vs_id}/files/{file_id}", delete_vector_store_file),
    ("POST", "/v1/conversations", create_conversation),
    ("GET", "/v1/conversations/{conv_id}", retrieve_conversation),
    ("DELETE", "/v1/conversations/{conv_id}", delete_conversation),
    ("POST", "/v1/conversations/{conv_id}/items", create_conversation_items),
    ("GET", "/v1/conversations/{conv_id}/items", list_conversation_items),
    ("GET", "/v1/containers/{container_id}/files/{file_id}/content", container_file_content),
    ("POST", "/v1/responses", create_response),
    ("GET", "/v1/responses/{response_id}", retrieve_response),
]
