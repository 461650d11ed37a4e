"""The core end to end: the real AsyncOpenAI client over HTTP against the fake OpenAI."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from commander.backend import ModelBackend
from commander.errors import (
    AssistantExists,
    InvalidInput,
    NoAssistant,
    ProviderAuthError,
)
from commander.events import (
    Citation,
    GeneratedFile,
    TextDelta,
    ToolProgress,
    TurnCompleted,
    TurnFailed,
    Usage,
)
from commander.runtime import build_commander, close_commander
from commander.service import Commander, IncomingFile, Resume
from commander.settings import load_core_settings
from tests.conftest import core_env, openai_client
from tests.fakes.market import FakeMarket
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import (
    TINY_PNG,
    CodeInterpreterChart,
    ErrorEvent,
    Fail,
    FileSearch,
    FunctionCall,
    Incomplete,
    Text,
)

T, U, V = "T1", "U1", "U2"
PDF = b"%PDF-1.7\n" + b"x" * 100


async def chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def incoming(name: str, data: bytes) -> IncomingFile:
    return IncomingFile(name, chunks(data))


async def collect(commander: Commander, text: str, user: str = U) -> list[Any]:
    return [event async for event in commander.ask(T, user, text)]


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def response_posts(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.method == "POST" and r.path == "/v1/responses"]


def user_items(fake: FakeOpenAI, conversation_id: str) -> list[dict[str, Any]]:
    items = fake.state.conversations[conversation_id].items
    return [i for i in items if i.get("role") == "user"]


# --- create, ask, reset --------------------------------------------------------------


async def test_create_makes_a_conversation_and_refuses_a_second(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    assistant = await commander.create(T, U, instructions="Be brief.", name="Ada")
    assert assistant.conversation_id in fake_openai.state.conversations
    assert assistant.tools == ["code_interpreter", "file_search"]
    with pytest.raises(AssistantExists):
        await commander.create(T, U, instructions="again")
    other = await commander.create("T2", U, instructions="Same user id, other workspace.")
    assert other.id != assistant.id


async def test_ask_streams_text_with_model_instructions_and_tools(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    assistant = await commander.create(T, U, instructions="Answer in French.")
    events = await collect(commander, "hello")
    assert text_of(events) == "You said: hello"
    assert isinstance(events[-1], TurnCompleted)
    assert any(isinstance(e, Usage) for e in events)
    sent = response_posts(fake_openai)[0]
    assert sent["conversation"] == assistant.conversation_id
    assert sent["instructions"] == "Answer in French."
    assert sent["truncation"] == "auto" and sent["stream"] is True
    assert sent["model"] == commander.settings.model
    tool_types = [t["type"] for t in sent["tools"]]
    assert "code_interpreter" in tool_types
    assert {"get_stock_price", "get_stock_history"} <= {t.get("name") for t in sent["tools"]}
    assert "send_email" not in {t.get("name") for t in sent["tools"]}


async def test_thread_persists_across_turns_and_reset_starts_a_new_one(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    first = await commander.create(T, U, instructions="x")
    await collect(commander, "one")
    await collect(commander, "two")
    assert [i["content"][0]["text"] for i in user_items(fake_openai, first.conversation_id)] == [
        "one",
        "two",
    ]
    reset = await commander.reset_thread(T, U)
    assert reset.conversation_id != first.conversation_id
    assert first.conversation_id not in fake_openai.state.conversations
    assert (reset.name, reset.instructions) == (first.name, first.instructions)


async def test_bad_input_is_refused_and_nothing_is_lost(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    with pytest.raises(NoAssistant):
        await collect(commander, "hi")
    with pytest.raises(InvalidInput):
        await commander.create(T, U, instructions="   ")
    with pytest.raises(InvalidInput):
        await commander.create(T, U, instructions="x" * 20_000)
    with pytest.raises(InvalidInput):
        await commander.create(T, U, instructions="x", tools=["web_browser"])
    await commander.create(T, U, instructions="kept")
    with pytest.raises(InvalidInput):
        await collect(commander, "  \n ")
    with pytest.raises(InvalidInput):
        await collect(commander, "x" * 100_000)
    assert response_posts(fake_openai) == []
    assert (await commander.require(T, U)).instructions == "kept"


# --- tools -----------------------------------------------------------------------------


async def test_function_call_round_trip(
    commander: Commander, fake_openai: FakeOpenAI, market: FakeMarket
) -> None:
    await commander.create(T, U, instructions="x")
    fake_openai.script(FunctionCall("get_stock_price", {"symbol": "MSFT"}))
    events = await collect(commander, "MSFT?")
    assert market.calls == [("price", "MSFT")]
    progress = [e for e in events if isinstance(e, ToolProgress)]
    assert [(p.label, p.status) for p in progress] == [
        ("calling get_stock_price", "in_progress"),
        ("calling get_stock_price", "completed"),
    ]
    second = response_posts(fake_openai)[1]
    assert second["input"][0]["type"] == "function_call_output"
    assert "420.5" in second["input"][0]["output"]
    assert "420.5" in text_of(events)


async def test_function_call_loop_is_bounded(commander: Commander, fake_openai: FakeOpenAI) -> None:
    await commander.create(T, U, instructions="x")
    rounds = commander.limits.max_tool_rounds
    fake_openai.script(
        *[FunctionCall("get_stock_price", {"symbol": "MSFT"}) for _ in range(rounds)],
        Text("Enough tools."),
    )
    events = await collect(commander, "loop")
    posts = response_posts(fake_openai)
    assert len(posts) == rounds + 1
    assert posts[-1]["tool_choice"] == "none"
    assert text_of(events).endswith("Enough tools.")


async def test_tool_failure_becomes_tool_output(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    await commander.create(T, U, instructions="x")
    fake_openai.script(FunctionCall("get_stock_price", {"symbol": "NOPE"}))
    events = await collect(commander, "NOPE?")
    assert isinstance(events[-1], TurnCompleted)
    assert "error:" in response_posts(fake_openai)[1]["input"][0]["output"]


async def test_chart_bytes_come_back_as_a_file_event_and_sandbox_links_are_hidden(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    await commander.create(T, U, instructions="x")
    fake_openai.script(CodeInterpreterChart("Here is the chart", filename="prices.png"))
    events = await collect(commander, "chart it")
    files = [e for e in events if isinstance(e, GeneratedFile)]
    assert [(f.filename, f.mime_type, f.content) for f in files] == [
        ("prices.png", "image/png", TINY_PNG)
    ]
    assert "sandbox:" not in text_of(events)
    assert ("code_interpreter", "running code") in {
        (e.tool, e.label) for e in events if isinstance(e, ToolProgress)
    }


async def test_container_download_failure_is_reported_not_fatal(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    await commander.create(T, U, instructions="x")
    fake_openai.faults.add(path="/v1/containers/*", status=500, times=5)
    fake_openai.script(CodeInterpreterChart("Chart"))
    events = await collect(commander, "chart")
    assert isinstance(events[-1], TurnCompleted)
    assert "could not be retrieved" in text_of(events)


# --- files -----------------------------------------------------------------------------


async def test_files_land_in_the_vector_store_and_the_container(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    await commander.create(T, U, instructions="x")
    result = await commander.add_files(
        T,
        U,
        [
            incoming("report.pdf", PDF),
            incoming("data.csv", b"a,b\n1,2\n"),
            incoming("tool.exe", b"MZ..."),
            incoming("empty.txt", b""),
            incoming("fake.png", b"<!DOCTYPE html><html>login</html>"),
        ],
    )
    assert [(f.original_name, f.attached_to) for f in result.added] == [
        ("report.pdf", ["file_search", "code_interpreter"]),
        ("data.csv", ["code_interpreter"]),
    ]
    assert {name for name, _ in result.rejected} == {"tool.exe", "empty.txt", "fake.png"}
    assistant = await commander.require(T, U)
    store = fake_openai.state.vector_stores[assistant.vector_store_id]
    pdf_id = result.added[0].provider_file_id
    assert list(store.files) == [pdf_id]
    assert fake_openai.state.files[pdf_id].bytes == len(PDF)
    assert result.added[0].sha256 and result.added[0].size == len(PDF)

    fake_openai.script(FileSearch("Found it", filename="report.pdf"))
    events = await collect(commander, "what does the report say?")
    assert Citation("report.pdf") in events
    tools = {t["type"]: t for t in response_posts(fake_openai)[-1]["tools"]}
    assert tools["file_search"]["vector_store_ids"] == [assistant.vector_store_id]
    assert set(tools["code_interpreter"]["container"]["file_ids"]) == {
        f.provider_file_id for f in result.added
    }


async def test_oversized_files_are_refused_without_reaching_the_provider(
    fake_openai: FakeOpenAI, database_url: str
) -> None:
    settings = load_core_settings(core_env(fake_openai, database_url, MAX_FILE_MB="1"))
    commander = await build_commander(
        settings, client=openai_client(fake_openai), market=FakeMarket()
    )
    try:
        await commander.create(T, U, instructions="x")
        big = IncomingFile("big.txt", chunks(b"a" * (1024 * 1024 + 1), 65536))
        declared = IncomingFile("declared.txt", chunks(b"a"), declared_size=5 * 1024 * 1024)
        result = await commander.add_files(T, U, [big, declared])
        assert result.added == []
        assert all("1 MB limit" in reason for _, reason in result.rejected)
        assert fake_openai.state.files == {}
    finally:
        await close_commander(commander)


async def test_failed_indexing_keeps_the_file_for_code_only(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    await commander.create(T, U, instructions="x")
    fake_openai.faults.add(vector_store_file_fails=True, message="bad pdf", code="invalid_file")
    result = await commander.add_files(T, U, [incoming("r.pdf", PDF)])
    assert result.added[0].attached_to == ["code_interpreter"]
    assert "failed" in (result.added[0].error or "")


async def test_remove_file_only_for_its_owner(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    await commander.create(T, U, instructions="x")
    await commander.create(T, V, instructions="y")
    added = (await commander.add_files(T, U, [incoming("a.csv", b"a\n1\n")])).added[0]
    with pytest.raises(InvalidInput):
        await commander.remove_file(T, V, added.id)
    assert added.provider_file_id in fake_openai.state.files
    await commander.remove_file(T, U, added.id)
    assert added.provider_file_id not in fake_openai.state.files
    assert (await commander.status(T, U)).files == []


# --- delete ------------------------------------------------------------------------------


async def test_delete_removes_every_remote_object_and_tolerates_missing_ones(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    assistant = await commander.create(T, U, instructions="x")
    await commander.add_files(T, U, [incoming("a.pdf", PDF), incoming("b.csv", b"a\n1\n")])
    assistant = await commander.require(T, U)
    other = await commander.create(T, V, instructions="stays")
    # One object is already gone at the provider.
    first_file = next(iter(fake_openai.state.files))
    del fake_openai.state.files[first_file]

    report = await commander.delete(T, U)
    assert report.conversation == "deleted" and report.vector_store == "deleted"
    assert (report.files_deleted, report.files_already_gone) == (1, 1)
    assert assistant.conversation_id not in fake_openai.state.conversations
    assert assistant.vector_store_id not in fake_openai.state.vector_stores
    assert fake_openai.state.files == {}
    assert await commander.get(T, U) is None
    assert await commander.get(T, V) is not None
    assert other.conversation_id in fake_openai.state.conversations

    again = await commander.delete(T, U)
    assert not again.assistant and again.rows_deleted == 0
    recreated = await commander.create(T, U, instructions="fresh")
    assert recreated.conversation_id != assistant.conversation_id


# --- thread strategies -------------------------------------------------------------------


async def test_previous_response_fallback_is_detected_remembered_and_logged(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeOpenAI(api_key="sk-test-secret-key", conversations_enabled=False) as fake:
        settings = load_core_settings(core_env(fake, database_url))
        commander = await build_commander(settings, client=openai_client(fake), market=FakeMarket())
        try:
            with caplog.at_level("WARNING"):
                assistant = await commander.create(T, U, instructions="x")
            assert assistant.thread_strategy == "previous_response"
            assert "previous_response_id" in caplog.text
            first = await collect(commander, "one")
            await collect(commander, "two")
            posts = response_posts(fake)
            assert "previous_response_id" not in posts[0]
            assert posts[1]["previous_response_id"] == first[-1].response_id
            assert "conversation" not in posts[1]
            # A fresh backend remembers the fact from the database: no new probe.
            probes = len([r for r in fake.requests if r.path.startswith("/v1/conversations")])
            backend = ModelBackend(
                openai_client(fake), commander.db, str(commander.backend.client.base_url)
            )
            assert await backend.new_thread(T, V) == ("previous_response", None)
            assert (
                len([r for r in fake.requests if r.path.startswith("/v1/conversations")]) == probes
            )
        finally:
            await close_commander(commander)


# --- concurrency -------------------------------------------------------------------------


async def test_same_user_asks_are_serialised(commander: Commander, fake_openai: FakeOpenAI) -> None:
    await commander.create(T, U, instructions="x")
    order: list[str] = []

    async def run(label: str) -> None:
        async for event in commander.ask(T, U, label):
            order.append(label)
            if isinstance(event, TextDelta):
                await asyncio.sleep(0)  # give the other ask every chance to interleave

    await asyncio.gather(run("first"), run("second"))
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches == 1


async def test_different_users_run_in_parallel(commander: Commander) -> None:
    await commander.create(T, U, instructions="x")
    await commander.create(T, V, instructions="y")
    paused = commander.ask(T, U, "slow")
    first = await anext(paused)  # U's turn is in flight, holding U's lock
    assert first is not None
    events = await collect(commander, "fast", user=V)  # V is not blocked by U
    assert isinstance(events[-1], TurnCompleted)
    rest = [e async for e in paused]
    assert isinstance(rest[-1], TurnCompleted)


# --- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retried_without_duplicating_the_message(
    commander: Commander, fake_openai: FakeOpenAI, status: int
) -> None:
    assistant = await commander.create(T, U, instructions="x")
    commander.retry_base_s = 0
    fake_openai.faults.add(path="/v1/responses", method="POST", status=status)
    events = await collect(commander, "hello")
    assert text_of(events) == "You said: hello"
    assert len(user_items(fake_openai, assistant.conversation_id)) == 1


async def test_rate_limit_honours_retry_after(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    await commander.create(T, U, instructions="x")
    fake_openai.faults.add(path="/v1/responses", method="POST", status=429, retry_after=0)
    events = await collect(commander, "hello")
    assert isinstance(events[-1], TurnCompleted)


async def test_persistent_rate_limit_ends_in_a_clear_error(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    await commander.create(T, U, instructions="x")
    fake_openai.faults.add(path="/v1/responses", method="POST", status=429, retry_after=0, times=5)
    events = await collect(commander, "hello")
    assert isinstance(events[-1], TurnFailed)
    assert "busy" in events[-1].user_message


async def test_stream_cut_ends_in_a_clear_error_and_the_next_turn_works(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    assistant = await commander.create(T, U, instructions="x")
    fake_openai.faults.add(cut_after_deltas=2)
    events = await collect(commander, "a long answer please")
    assert isinstance(events[-1], TurnFailed)
    assert "broke" in events[-1].user_message
    events = await collect(commander, "again")
    assert text_of(events) == "You said: again"
    texts = [i["content"][0]["text"] for i in user_items(fake_openai, assistant.conversation_id)]
    assert texts.count("again") == 1


@pytest.mark.parametrize("step", [Fail(), ErrorEvent()], ids=["response.failed", "error-event"])
async def test_failed_responses_end_in_one_clear_error(
    commander: Commander, fake_openai: FakeOpenAI, step: Any
) -> None:
    await commander.create(T, U, instructions="x")
    fake_openai.script(step)
    events = await collect(commander, "hi")
    assert [type(e) for e in events].count(TurnFailed) == 1
    assert isinstance(events[-1], TurnFailed)


async def test_incomplete_response_says_it_was_cut_short(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    await commander.create(T, U, instructions="x")
    fake_openai.script(Incomplete(text="Partial answer"))
    events = await collect(commander, "hi")
    assert isinstance(events[-1], TurnCompleted)
    assert "cut short" in text_of(events)


async def test_provider_401_is_a_typed_error(fake_openai: FakeOpenAI, database_url: str) -> None:
    settings = load_core_settings(core_env(fake_openai, database_url))
    from openai import AsyncOpenAI

    bad = AsyncOpenAI(base_url=fake_openai.base_url, api_key="sk-wrong")
    commander = await build_commander(settings, client=bad, market=FakeMarket())
    try:
        with pytest.raises(ProviderAuthError) as caught:
            await commander.create(T, U, instructions="x")
        assert "credentials" in caught.value.user_message
        assert await commander.get(T, U) is None
    finally:
        await close_commander(commander)


async def test_provider_404_on_a_lost_conversation_is_a_clear_error(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    assistant = await commander.create(T, U, instructions="x")
    del fake_openai.state.conversations[assistant.conversation_id]
    events = await collect(commander, "hi")
    assert isinstance(events[-1], TurnFailed)
    assert (await commander.require(T, U)).instructions == "x"


# --- resuming after a crash ------------------------------------------------------------


async def test_resumed_turn_shows_an_answer_already_stored(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    assistant = await commander.create(T, U, instructions="x")
    fake_openai.script(Text("The stored answer."))
    await collect(commander, "question")
    events = [e async for e in commander.ask(T, U, "question", resume=Resume(None))]
    assert text_of(events) == "The stored answer."
    assert len(response_posts(fake_openai)) == 1
    assert len(user_items(fake_openai, assistant.conversation_id)) == 1


async def test_resumed_turn_does_not_resend_a_message_that_landed(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    assistant = await commander.create(T, U, instructions="x")
    await commander.backend.client.conversations.items.create(
        assistant.conversation_id,
        items=[{"type": "message", "role": "user", "content": "question"}],
    )
    fake_openai.script(Text("Fresh answer."))
    events = [e async for e in commander.ask(T, U, "question", resume=Resume(None))]
    assert text_of(events) == "Fresh answer."
    assert "input" not in response_posts(fake_openai)[0]
    assert len(user_items(fake_openai, assistant.conversation_id)) == 1


async def test_resumed_turn_sends_a_message_that_never_landed(
    commander: Commander, fake_openai: FakeOpenAI
) -> None:
    assistant = await commander.create(T, U, instructions="x")
    events = [e async for e in commander.ask(T, U, "question", resume=Resume(None))]
    assert text_of(events) == "You said: question"
    assert len(user_items(fake_openai, assistant.conversation_id)) == 1


async def test_a_re_proposed_email_draft_reuses_the_pending_one(
    fake_openai: FakeOpenAI, database_url: str
) -> None:
    env = core_env(fake_openai, database_url, EMAIL_URI="http://127.0.0.1:9/never-called")
    commander = await build_commander(
        load_core_settings(env), client=openai_client(fake_openai), market=FakeMarket()
    )
    try:
        await commander.create(T, U, instructions="x")
        args = {"to": "a@example.com", "subject": "Hi", "content": "Hello there"}
        fake_openai.script(FunctionCall("send_email", args), Text("Drafted."))
        fake_openai.script(FunctionCall("send_email", args), Text("Drafted again."))
        first = [
            e for e in await collect(commander, "mail a") if type(e).__name__ == "EmailPending"
        ]
        again = [
            e for e in await collect(commander, "mail a") if type(e).__name__ == "EmailPending"
        ]
        assert first[0].pending_id == again[0].pending_id
        assert len((await commander.status(T, U)).pending_emails) == 1
    finally:
        await close_commander(commander)
