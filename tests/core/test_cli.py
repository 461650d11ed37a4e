"""The admin CLI, driven in-process against the fake OpenAI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from commander.cli import run
from commander.runtime import build_commander, close_commander
from commander.settings import load_core_settings
from tests.conftest import core_env, openai_client
from tests.fakes.market import FakeMarket
from tests.fakes.openai_server import FakeOpenAI

PDF = b"%PDF-1.7 test"


@pytest.fixture
def env(
    fake_openai: FakeOpenAI, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    values = core_env(fake_openai, database_url)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return values


async def cli(fake: FakeOpenAI, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await run(list(argv), out, client=openai_client(fake), market=FakeMarket())
    return code, out.getvalue()


async def seed(fake: FakeOpenAI, env: dict[str, str]) -> None:
    from commander.service import IncomingFile

    async def chunks():
        yield PDF

    commander = await build_commander(
        load_core_settings(env), client=openai_client(fake), market=FakeMarket()
    )
    try:
        await commander.create("T1", "U1", instructions="Be brief.", name="Ada")
        await commander.add_files("T1", "U1", [IncomingFile("r.pdf", chunks())])
    finally:
        await close_commander(commander)


async def test_list_show_delete(fake_openai: FakeOpenAI, env: dict[str, str]) -> None:
    await seed(fake_openai, env)
    code, out = await cli(fake_openai, "list")
    assert code == 0 and "T1\tU1\tAda" in out and "1 assistant(s)" in out
    code, out = await cli(fake_openai, "show", "--team", "T1", "--user", "U1")
    assert code == 0 and "name: Ada" in out and "r.pdf" in out and "conversation conv_" in out
    code, out = await cli(fake_openai, "delete", "--team", "T1", "--user", "U1")
    assert code == 0 and "conversation: deleted" in out and "files deleted: 1" in out
    assert fake_openai.state.files == {} and fake_openai.state.conversations == {}
    code, out = await cli(fake_openai, "show", "--team", "T1", "--user", "U1")
    assert code == 1 and "No assistant" in out


async def test_prune_finds_and_deletes_orphans(
    fake_openai: FakeOpenAI, env: dict[str, str]
) -> None:
    await seed(fake_openai, env)
    client = openai_client(fake_openai)
    orphan = await client.files.create(file=("lost.txt", b"x"), purpose="assistants")
    orphan_store = await client.vector_stores.create(name="lost")
    code, out = await cli(fake_openai, "prune")
    assert code == 0
    assert f"orphan file: {orphan.id}" in out and f"orphan vector store: {orphan_store.id}" in out
    assert "2 orphan(s) found" in out
    assert orphan.id in fake_openai.state.files
    code, out = await cli(fake_openai, "prune", "--delete")
    assert "2 orphan(s) deleted" in out
    assert orphan.id not in fake_openai.state.files
    assert len(fake_openai.state.files) == 1  # the seeded file is kept


async def test_doctor_reports_ok_and_bad_credentials(
    fake_openai: FakeOpenAI, env: dict[str, str]
) -> None:
    code, out = await cli(fake_openai, "doctor")
    assert code == 0 and "credentials accepted" in out and "threads: conversations" in out
    out_buffer = io.StringIO()
    from openai import AsyncOpenAI

    bad = AsyncOpenAI(base_url=fake_openai.base_url, api_key="sk-wrong")
    code = await run(["doctor"], out_buffer, client=bad, market=FakeMarket())
    assert code == 1 and "FAILED" in out_buffer.getvalue()
    assert "sk-wrong" not in out_buffer.getvalue()


async def test_chat_creates_and_talks(
    fake_openai: FakeOpenAI, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\nsecond\n\n"))
    code, out = await cli(fake_openai, "chat", "--team", "T1", "--user", "U9")
    assert code == 0
    assert "Created an assistant" in out
    assert "You said: hello" in out and "You said: second" in out


async def test_missing_settings_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "OPENAI_KEY"):
        monkeypatch.delenv(key, raising=False)
    assert await run(["list"], io.StringIO()) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err


async def test_jobs_shows_state_owner_lease_age_and_attempts(
    fake_openai: FakeOpenAI, env: dict[str, str]
) -> None:
    from commander.jobs import JobStore

    settings = load_core_settings(env)
    service = await build_commander(settings, client=openai_client(fake_openai))
    try:
        store = JobStore(service.db, "host-a:42:abc", lease_s=30)
        await store.enqueue("k1", "T1", "U1", "message", {"text": "secret words"})
        await store.enqueue("k2", "T1", "U2", "message", {})
        running = await store.claim_next("T1", "U1")
        await store.start(running)
    finally:
        await close_commander(service)
    code, out = await cli(fake_openai, "jobs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split("\t") == ["id", "state", "owner", "lease", "age", "attempts", "person"]
    first, second = (line.split("\t") for line in lines[1:3])
    assert first[1:3] == ["running", "host-a:42:abc"] and first[3].endswith("s left")
    assert first[5:] == ["1", "T1/U1"]
    assert second[1:4] == ["queued", "-", "-"] and second[5:] == ["0", "T1/U2"]
    assert lines[-1].startswith("2 unfinished job(s); oldest queued")
    assert "secret words" not in out  # message text is never shown
