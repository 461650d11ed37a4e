"""The REST API end to end: real HTTP in, the Commander on the fake OpenAI behind."""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest

from commander.api.settings import team_id
from commander.tenancy_settings import load_tenancy_settings
from commander.usage import UsageBook
from tests.api.harness import ACME_KEY, GLOBEX_KEY, PDF, Api, open_api, sse_events
from tests.fakes.openai_server import TINY_PNG, CodeInterpreterChart, FakeOpenAI, FileSearch, Text
from tests.tenancy.test_budgets import model_calls, usage_blocks

# Exactly what the original web front end sent (an Assistants-API app).
ORIGINAL_CREATE = {
    "userName": "alice",
    "name": "Math Tutor",
    "instructions": "You are a personal math tutor. Write and run code to answer math questions.",
    "fileURLs": [],
}
ORIGINAL_PROCESS = {"userName": "alice", "prompt": "I need to solve the equation `3x + 11 = 14`."}


async def test_the_original_front_ends_requests_work_unchanged(api: Api) -> None:
    body = {**ORIGINAL_CREATE, "fileURLs": [api.files.url("/a.pdf")]}
    created = await api.post("/api/create", body)
    assert created.status_code == 200, created.text
    data = created.json()
    assert set(data) >= {
        "userName", "name", "instructions", "tools", "assistant_id", "thread_id", "file_ids"
    }  # fmt: skip
    assert data["userName"] == "alice" and data["name"] == "Math Tutor"
    assert data["instructions"] == ORIGINAL_CREATE["instructions"]
    assert {t["type"] for t in data["tools"]} == {"code_interpreter", "file_search"}
    assert data["thread_id"] in api.openai.state.conversations
    assert len(data["file_ids"]) == 1
    assert api.openai.state.files[data["file_ids"][0]].bytes == len(PDF)

    api.openai.script(Text("x = 1"))
    answer = await api.post("/api/process", ORIGINAL_PROCESS)
    assert answer.status_code == 200
    assert answer.json() == [
        {
            "role": "assistant",
            "content": "x = 1",
            "imageContent": None,
            "citations": [],
            "mimeType": None,
        }
    ]

    status = await api.call("GET", "/api/status/alice")
    assert status.status_code == 200
    assert status.json()["assistant"]["assistant_id"] == data["assistant_id"]
    assert [f["name"] for f in status.json()["files"]] == ["a.pdf"]
    assert status.json()["running"] is False

    deleted = await api.call("DELETE", "/api/delete/alice")
    assert deleted.status_code == 200 and "alice" in deleted.json()["message"]
    assert data["thread_id"] not in api.openai.state.conversations
    assert data["file_ids"][0] not in api.openai.state.files
    assert (await api.call("GET", "/api/status/alice")).status_code == 404
    assert (await api.call("DELETE", "/api/delete/alice")).status_code == 404


async def test_images_come_back_as_base64_and_citations_name_files(api: Api) -> None:
    await api.create("carol", fileURLs=[api.files.url("/report.pdf")])
    api.openai.script(CodeInterpreterChart("Here is the chart", filename="prices.png"))
    messages = (await api.post("/api/process", {"userName": "carol", "prompt": "plot"})).json()
    assert messages[0]["content"].startswith("Here is the chart")
    assert "sandbox:" not in messages[0]["content"]
    assert messages[1] == {
        "role": "assistant",
        "content": "prices.png",
        "imageContent": base64.b64encode(TINY_PNG).decode(),
        "citations": [],
        "mimeType": "image/png",
    }

    api.openai.script(FileSearch("The report says hi", filename="report.pdf"))
    messages = (await api.post("/api/process", {"userName": "carol", "prompt": "and?"})).json()
    assert messages == [
        {
            "role": "assistant",
            "content": messages[0]["content"],
            "imageContent": None,
            "citations": ["report.pdf"],
            "mimeType": None,
        }
    ]


async def test_process_streams_the_same_turn_as_server_sent_events(api: Api) -> None:
    await api.create("dave")
    api.openai.script(CodeInterpreterChart("Drawn.", filename="c.png"))
    response = await api.post(
        "/api/process",
        {"userName": "dave", "prompt": "draw"},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and "delta" in kinds and "image" in kinds
    assert {"tool": "code_interpreter", "label": "running code", "status": "in_progress"} in [
        data for kind, data in events if kind == "tool"
    ]
    text = "".join(data["text"] for kind, data in events if kind == "delta")
    done = events[-1][1]
    assert done[0]["content"] == text
    image = next(data for kind, data in events if kind == "image")
    assert image == done[1] and base64.b64decode(image["imageContent"]) == TINY_PNG


async def test_streaming_refusals_still_get_their_status_code(api: Api) -> None:
    sse = {"Accept": "text/event-stream"}
    missing = await api.post("/api/process", {"userName": "nobody", "prompt": "hi"}, headers=sse)
    assert missing.status_code == 404 and "detail" in missing.json()


async def test_every_endpoint_refuses_a_missing_or_wrong_key(api: Api, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    await api.create("erin")
    calls = [
        ("POST", "/api/create", ORIGINAL_CREATE),
        ("POST", "/api/process", ORIGINAL_PROCESS),
        ("DELETE", "/api/delete/erin", None),
        ("GET", "/api/status/erin", None),
    ]
    wrong = [
        None,
        "Bearer",
        "Bearer nope",
        "Basic " + base64.b64encode(ACME_KEY.encode()).decode(),
        f"Bearer {ACME_KEY}x",
        f"Bearer {ACME_KEY[:-1]}",
        "Bearer acme:" + GLOBEX_KEY.split(":", 1)[1] + "-",
    ]
    for method, path, body in calls:
        for header in wrong:
            headers = {"Authorization": header} if header else {}
            response = await api.http.request(method, api.url + path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, header)
            assert response.json()["detail"].startswith("Missing or wrong API key")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await api.call("GET", "/api/status/erin")).status_code == 200  # nothing deleted
    logged = caplog.text
    assert ACME_KEY.split(":", 1)[1] not in logged and GLOBEX_KEY.split(":", 1)[1] not in logged


async def test_the_bare_key_works_as_well_as_the_whole_entry(api: Api) -> None:
    await api.create("fay")
    bare = {"Authorization": "Bearer " + ACME_KEY.split(":", 1)[1]}
    response = await api.http.get(api.url + "/api/status/fay", headers=bare)
    assert response.status_code == 200


async def test_tenants_are_kept_apart(api: Api) -> None:
    acme = await api.create("alice", "acme", instructions="acme's")
    globex = await api.create("alice", "globex", instructions="globex's")
    assert acme["assistant_id"] != globex["assistant_id"]
    assert acme["thread_id"] != globex["thread_id"]
    status = await api.call("GET", "/api/status/alice", "globex")
    assert status.json()["assistant"]["instructions"] == "globex's"

    await api.create("bob", "acme")
    assert (await api.call("GET", "/api/status/bob", "globex")).status_code == 404
    assert (await api.call("DELETE", "/api/delete/bob", "globex")).status_code == 404
    refused = await api.post("/api/process", {"userName": "bob", "prompt": "hi"}, "globex")
    assert refused.status_code == 404
    assert (await api.call("GET", "/api/status/bob", "acme")).status_code == 200

    assert (await api.call("DELETE", "/api/delete/alice", "acme")).status_code == 200
    assert (await api.call("GET", "/api/status/alice", "globex")).status_code == 200
    assert globex["thread_id"] in api.openai.state.conversations

    owners = {(a.team_id, a.user_id) for a in await api.commander.list_all()}
    assert owners == {("api:globex", "alice"), ("api:acme", "bob")}


async def test_error_codes_and_json_details(api: Api) -> None:
    missing = await api.post("/api/create", {"userName": "gus", "name": "x"})
    assert missing.status_code == 400
    assert "missing field instructions" in missing.json()["detail"]
    for bad in (b"not json", b"[1, 2]", b'{"userName": 5, "prompt": "x"}', b""):
        response = await api.http.post(api.url + "/api/process", content=bad, headers=api.auth())
        assert response.status_code == 400, bad
        assert "Traceback" not in response.text and response.json()["detail"]
    bad_name = await api.post("/api/create", {**ORIGINAL_CREATE, "userName": "../etc"})
    assert bad_name.status_code == 400
    empty = await api.post(
        "/api/create", {**ORIGINAL_CREATE, "userName": "gus", "instructions": " "}
    )
    assert empty.status_code == 400 and "instructions" in empty.json()["detail"]

    await api.create("gus")
    again = await api.post("/api/create", {**ORIGINAL_CREATE, "userName": "gus"})
    assert again.status_code == 409 and again.json()["detail"]
    nobody = await api.post("/api/process", {"userName": "nobody", "prompt": "hi"})
    assert nobody.status_code == 404 and nobody.json()["detail"]
    empty_prompt = await api.post("/api/process", {"userName": "gus", "prompt": "   "})
    assert empty_prompt.status_code == 400
    wrong_method = await api.call("GET", "/api/create")
    assert wrong_method.status_code == 405 and wrong_method.json()["detail"]
    too_big = await api.http.post(
        api.url + "/api/process", content=b"x" * (2 * 1024 * 1024), headers=api.auth()
    )
    assert too_big.status_code == 413 and too_big.json()["detail"]


async def test_the_turn_limit_answers_429_with_retry_after(api: Api) -> None:
    await api.create("hal")
    for _ in range(5):  # TURNS_PER_MINUTE=5
        ok = await api.post("/api/process", {"userName": "hal", "prompt": "hi"})
        assert ok.status_code == 200
    limited = await api.post("/api/process", {"userName": "hal", "prompt": "hi"})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0 and limited.json()["detail"]


async def test_status_says_running_while_a_turn_is_under_way(api: Api) -> None:
    await api.create("ivy")
    api.openai.faults.add(path="/v1/responses", delay=1.0)
    api.openai.script(Text("slow answer"))
    turn = asyncio.ensure_future(api.post("/api/process", {"userName": "ivy", "prompt": "hi"}))
    for _ in range(200):
        if (await api.call("GET", "/api/status/ivy")).json()["running"]:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("status never said running")
    assert (await turn).status_code == 200
    assert (await api.call("GET", "/api/status/ivy")).json()["running"] is False


async def test_openapi_document_is_served_without_a_key(api: Api) -> None:
    response = await api.http.get(api.url + "/api/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {
        "/api/create", "/api/process", "/api/delete/{userName}", "/api/status/{userName}"
    }  # fmt: skip


async def test_api_turns_are_metered_and_a_spent_budget_answers_429(
    fake_openai: FakeOpenAI, database_url: str
) -> None:
    """API users share the usage book and budgets of Slack users: their turns are counted
    from the provider's usage blocks, and a spent allowance refuses without a model call."""
    async for api in open_api(fake_openai, database_url, TOKENS_PER_DAY="1"):
        await api.create("ivy")
        ok = await api.post("/api/process", {"userName": "ivy", "prompt": "hi"})
        assert ok.status_code == 200
        [block] = usage_blocks(fake_openai)
        book = UsageBook(api.commander.db, load_tenancy_settings({}))
        today = await book.person_today(team_id("acme"), "ivy")
        assert (today.input_tokens, today.output_tokens) == (
            block["input_tokens"],
            block["output_tokens"],
        )
        calls = model_calls(fake_openai)
        spent = await api.post("/api/process", {"userName": "ivy", "prompt": "again"})
        assert spent.status_code == 429 and "allowance" in spent.json()["detail"]
        assert int(spent.headers["Retry-After"]) > 0
        assert model_calls(fake_openai) == calls  # no model call
        other = await api.post("/api/process", {"userName": "ivy", "prompt": "x"}, "globex")
        assert other.status_code == 404  # the other tenant's "ivy" is someone else
