"""Where the API runs: beside /slack/events in HTTP mode, alone on PORT in Socket Mode,
alone under `python -m commander serve` (no Slack settings at all), and never without
API_KEYS. Also how API_KEYS is read."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from commander.api.settings import load_api_settings, parse_api_keys
from commander.settings import ConfigError
from tests.api.harness import ACME_KEY, API_KEYS, GLOBEX_KEY
from tests.conftest import API_KEY, BotHarness, start_bot
from tests.fakes.market import FakeMarket
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_events import message_im
from tests.fakes.slack_server import FakeSlack
from tests.spawn import Spawned, spawn_bot
from tests.test_bot_process import ROOT, free_port, wait_healthy
from tests.test_operations import APP_TOKEN

AUTH = {"Authorization": f"Bearer {ACME_KEY}"}


async def test_http_mode_serves_the_api_beside_slack_events(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str
) -> None:
    bot = await start_bot(fake_openai, fake_slack, database_url, FakeMarket(), API_KEYS=API_KEYS)
    try:
        async with httpx.AsyncClient(base_url=bot.url) as http:
            body = {"userName": "U1", "name": "n", "instructions": "i", "fileURLs": []}
            assert (await http.post("/api/create", json=body, headers=AUTH)).status_code == 200
            assert (await http.get("/api/status/U1", headers=AUTH)).status_code == 200
            assert (await http.get("/api/status/U1")).status_code == 401
        # The Slack user U1 of workspace T1 is someone else than the API user U1.
        assert await bot.commander.get("T1", "U1") is None
        forged = await bot.send.event(message_im("U1", "x"), signature="v0=" + "0" * 64)
        assert forged.status_code == 401
        assert (await bot.send.event(message_im("U1", "hello"))).status_code == 200
        await bot.idle()
    finally:
        await bot.stop()


async def test_without_api_keys_there_is_no_api(bot: BotHarness) -> None:
    assert bot.bot.settings.api is None
    async with httpx.AsyncClient(base_url=bot.url) as http:
        assert (await http.get("/api/openapi.json")).status_code == 404
        assert (await http.get("/api/status/U1", headers=AUTH)).status_code == 404


@pytest.fixture
def socket_mode_with_api(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path, database_url: str
) -> Iterator[Spawned]:
    """`python -m bot` in Socket Mode (Slack does not let it connect; the API needs not)."""
    with spawn_bot(
        fake_openai,
        fake_slack,
        tmp_path,
        database_url,
        SLACK_APP_TOKEN=APP_TOKEN,
        API_KEYS=API_KEYS,
    ) as spawned:
        yield spawned


async def test_socket_mode_serves_the_api_on_port_beside_the_probes(
    socket_mode_with_api: Spawned,
) -> None:
    process, url = socket_mode_with_api
    await wait_healthy(process, url)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        body = {"userName": "alice", "name": "n", "instructions": "i", "fileURLs": []}
        assert (await http.post("/api/create", json=body, headers=AUTH)).status_code == 200
        assert (await http.get("/api/status/alice", headers=AUTH)).status_code == 200
        assert (await http.get("/api/status/alice")).status_code == 401
        assert (await http.get("/slack/events")).status_code == 404
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0


def serve_env(fake_openai: FakeOpenAI, database_url: str, port: int) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        PYTHONPATH=str(ROOT),
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=fake_openai.base_url,
        DATABASE_URL=database_url,
        API_KEYS=API_KEYS,
        PORT=str(port),
        HOST="127.0.0.1",
    )
    return env


@pytest.fixture
def serve_process(
    fake_openai: FakeOpenAI, tmp_path: Path, database_url: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "commander", "serve"],
        cwd=tmp_path,
        env=serve_env(fake_openai, database_url, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def test_commander_serve_runs_the_api_without_any_slack_setting(
    serve_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = serve_process
    await wait_healthy(process, url)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        body = {"userName": "alice", "name": "n", "instructions": "i", "fileURLs": []}
        assert (await http.post("/api/create", json=body, headers=AUTH)).status_code == 200
        answer = await http.post(
            "/api/process", json={"userName": "alice", "prompt": "hi"}, headers=AUTH
        )
        assert answer.json()[0]["content"] == "You said: hi"
        wrong = {"Authorization": f"Bearer {ACME_KEY}-wrong"}
        assert (await http.get("/api/status/alice", headers=wrong)).status_code == 401
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    output = process.stdout.read() if process.stdout else ""
    assert "Traceback" not in output and "REST API" in output
    for secret in (ACME_KEY, ACME_KEY.split(":")[1], API_KEY):
        assert secret not in output


def test_commander_serve_without_api_keys_is_a_plain_error(
    fake_openai: FakeOpenAI, tmp_path: Path, database_url: str
) -> None:
    env = serve_env(fake_openai, database_url, free_port())
    del env["API_KEYS"]
    done = subprocess.run(
        [sys.executable, "-m", "commander", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "API_KEYS" in done.stderr and "Traceback" not in done.stderr


def test_api_keys_name_their_tenant_and_are_matched_exactly() -> None:
    keys = parse_api_keys(f" {ACME_KEY}, {GLOBEX_KEY}\nacme:second-acme-key-00000 ")
    assert keys.tenants == {"acme", "globex"}
    assert keys.tenant_for(ACME_KEY) == "acme"
    assert keys.tenant_for(GLOBEX_KEY.split(":", 1)[1]) == "globex"
    assert keys.tenant_for("acme:second-acme-key-00000") == "acme"
    for wrong in ("", "acme", "acme:", ACME_KEY + " ", ACME_KEY.upper(), "globex:" + ACME_KEY):
        assert keys.tenant_for(wrong) is None
    assert "key-0123" not in repr(keys)


@pytest.mark.parametrize(
    "raw",
    [
        "no-colon-here-0123456789",
        "acme:short",
        ":key-without-tenant-0123",
        "bad tenant!:0123456789abcdef",
        "acme:dup-key-0123456789,globex:dup-key-0123456789",
        "a" * 29 + ":0123456789abcdef",
    ],
)
def test_bad_api_keys_stop_the_start_without_showing_a_key(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_api_keys(raw)
    for part in raw.replace(",", ":").split(":")[1:]:
        if len(part) >= 8:
            assert part not in str(caught.value)


def test_api_settings_only_when_api_keys_is_set() -> None:
    assert load_api_settings({}) is None
    assert load_api_settings({"API_KEYS": "  "}) is None
    settings = load_api_settings({"API_KEYS": API_KEYS, "API_FETCH_TIMEOUT_S": "5"})
    assert settings is not None and settings.fetch_timeout_s == 5
    with pytest.raises(ConfigError):
        load_api_settings({"API_KEYS": API_KEYS, "API_FETCH_TIMEOUT_S": "soon"})
