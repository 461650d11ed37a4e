import asyncio
import json
import logging
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web

from commander.tools import (
    EmailDraft,
    EmailSendError,
    EmailWebhook,
    FunctionTool,
    HistoryRow,
    Quote,
    ToolContext,
    UnknownSymbolError,
    build_tools,
    run_tool,
)

AS_OF = datetime(2025, 1, 10, 21, 0, tzinfo=UTC)


class FakeMarket:
    def __init__(self, rows: int = 30) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.rows = rows

    def latest_price(self, symbol: str) -> Quote:
        self.calls.append(("price", symbol))
        if symbol == "ZZZZ":
            raise UnknownSymbolError(symbol)
        return Quote(symbol, 123.456789, "USD", AS_OF)

    def history(self, symbol: str, period: str) -> list[HistoryRow]:
        self.calls.append(("history", symbol, period))
        if symbol == "ZZZZ":
            return []
        start = date(2020, 1, 1)
        return [
            HistoryRow(start + timedelta(days=i), i + 1.0, i + 2.0, i + 0.5, i + 1.5, 1000 + i)
            for i in range(self.rows)
        ]


class BrokenMarket(FakeMarket):
    def latest_price(self, symbol: str) -> Quote:
        raise RuntimeError("internal detail token=abc123")


class BlockingMarket(FakeMarket):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def latest_price(self, symbol: str) -> Quote:
        self.release.wait(10)  # the test sets it; the timeout is only a safety net
        return Quote(symbol, 1.0, "USD", AS_OF)


@dataclass
class Proposals:
    drafts: list[EmailDraft] = field(default_factory=list)

    async def __call__(self, draft: EmailDraft) -> str:
        self.drafts.append(draft)
        return f"pending-{len(self.drafts)}"


@pytest.fixture
def proposals() -> Proposals:
    return Proposals()


@pytest.fixture
def ctx(proposals: Proposals) -> ToolContext:
    return ToolContext(team_id="T1", user_id="U1", propose_email=proposals)


def args(**kwargs: Any) -> str:
    return json.dumps(kwargs)


# --- schemas and registry -------------------------------------------------------------


def test_stock_price_schema_matches_original() -> None:
    schema = build_tools(FakeMarket(), email_enabled=False).get("get_stock_price").schema()
    assert schema["type"] == "function"
    assert schema["name"] == "get_stock_price"
    assert schema["strict"] is True
    params = schema["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["symbol"]
    assert params["properties"] == {
        "symbol": {"type": "string", "description": "The stock symbol, e.g. MSFT"}
    }


def test_history_schema_is_non_strict_with_default_period() -> None:
    schema = build_tools(FakeMarket(), email_enabled=False).get("get_stock_history").schema()
    assert schema["strict"] is False
    period = schema["parameters"]["properties"]["period"]
    assert period["default"] == "1mo"
    assert period["enum"] == ["5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "ytd", "max"]


def test_email_tool_offered_only_when_enabled() -> None:
    names = [s["name"] for s in build_tools(FakeMarket(), email_enabled=False).schemas()]
    assert names == ["get_stock_price", "get_stock_history"]
    with_email = build_tools(FakeMarket(), email_enabled=True)
    assert [s["name"] for s in with_email.schemas()][-1] == "send_email"
    assert with_email.get("send_email").schema()["strict"] is True
    assert [s["name"] for s in build_tools(None, email_enabled=True).schemas()] == ["send_email"]
    assert build_tools(None, email_enabled=False).schemas() == []


async def test_unknown_tool(ctx: ToolContext) -> None:
    out = await build_tools(FakeMarket(), False).run("delete_everything", "{}", ctx)
    assert out.startswith("error: unknown tool")


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"MSFT"', "null"])
async def test_bad_arguments(ctx: ToolContext, raw: str) -> None:
    market = FakeMarket()
    out = await build_tools(market, False).run("get_stock_price", raw, ctx)
    assert out.startswith("error:")
    assert market.calls == []


async def test_missing_and_mistyped_argument(ctx: ToolContext) -> None:
    registry = build_tools(FakeMarket(), False)
    assert "missing required argument 'symbol'" in await registry.run("get_stock_price", "{}", ctx)
    assert "must be a string" in await registry.run("get_stock_price", args(symbol=42), ctx)


# --- stock tools ----------------------------------------------------------------------


async def test_price_json(ctx: ToolContext) -> None:
    market = FakeMarket()
    out = await build_tools(market, False).run("get_stock_price", args(symbol=" msft "), ctx)
    assert json.loads(out) == {
        "symbol": "MSFT",
        "price": 123.4568,
        "currency": "USD",
        "as_of": "2025-01-10T21:00:00+00:00",
    }
    assert market.calls == [("price", "MSFT")]


@pytest.mark.parametrize("symbol", ["BRK-B", "^GSPC", "EURUSD=X", "RDS.A", "7203.T"])
async def test_valid_symbols(ctx: ToolContext, symbol: str) -> None:
    out = await build_tools(FakeMarket(), False).run("get_stock_price", args(symbol=symbol), ctx)
    assert json.loads(out)["symbol"] == symbol


@pytest.mark.parametrize("symbol", ["", "   ", "MS FT", "A;B", "MS\nFT", "X" * 16, "ÄPPL"])
async def test_invalid_symbols(ctx: ToolContext, symbol: str) -> None:
    market = FakeMarket()
    out = await build_tools(market, False).run("get_stock_price", args(symbol=symbol), ctx)
    assert out.startswith("error: invalid stock symbol")
    assert market.calls == []


async def test_unknown_symbol(ctx: ToolContext) -> None:
    registry = build_tools(FakeMarket(), False)
    for name in ("get_stock_price", "get_stock_history"):
        out = await registry.run(name, args(symbol="zzzz"), ctx)
        assert out == "error: no market data found for symbol 'ZZZZ'; check the ticker symbol"


async def test_history_csv_default_period(ctx: ToolContext) -> None:
    market = FakeMarket(rows=3)
    out = await build_tools(market, False).run("get_stock_history", args(symbol="MSFT"), ctx)
    assert market.calls == [("history", "MSFT", "1mo")]
    assert out.splitlines() == [
        "date,open,high,low,close,volume",
        "2020-01-01,1.0,2.0,0.5,1.5,1000",
        "2020-01-02,2.0,3.0,1.5,2.5,1001",
        "2020-01-03,3.0,4.0,2.5,3.5,1002",
    ]


async def test_history_keeps_latest_400_rows(ctx: ToolContext) -> None:
    market = FakeMarket(rows=450)
    out = await build_tools(market, False).run(
        "get_stock_history", args(symbol="MSFT", period="max"), ctx
    )
    lines = out.splitlines()
    assert len(lines) == 401
    assert lines[1].startswith((date(2020, 1, 1) + timedelta(days=50)).isoformat())
    assert lines[-1].startswith((date(2020, 1, 1) + timedelta(days=449)).isoformat())


async def test_history_rejects_unknown_period(ctx: ToolContext) -> None:
    market = FakeMarket()
    out = await build_tools(market, False).run(
        "get_stock_history", args(symbol="MSFT", period="10y"), ctx
    )
    assert out.startswith("error: invalid period")
    assert market.calls == []


# --- run_tool safety ------------------------------------------------------------------


async def test_timeout_returns_error(ctx: ToolContext) -> None:
    market = BlockingMarket()
    tool = replace(build_tools(market, False).get("get_stock_price"), timeout_s=0.05)
    try:
        out = await run_tool(tool, args(symbol="MSFT"), ctx)
    finally:
        market.release.set()  # let the worker thread finish
    assert out == "error: get_stock_price timed out after 0.05s; try again later"


async def test_exception_becomes_short_error(
    ctx: ToolContext, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        out = await build_tools(BrokenMarket(), False).run(
            "get_stock_price", args(symbol="MSFT"), ctx
        )
    assert out == "error: get_stock_price failed unexpectedly (RuntimeError)"
    assert "abc123" not in out
    assert any(r.exc_info and "get_stock_price" in r.getMessage() for r in caplog.records)


async def test_cancellation_propagates(ctx: ToolContext) -> None:
    entered = asyncio.Event()

    async def hang(_: dict[str, Any], __: ToolContext) -> str:
        entered.set()
        await asyncio.Event().wait()
        return "unreachable"

    tool = FunctionTool("hang", "hangs", {"type": "object", "properties": {}}, hang)
    task = asyncio.create_task(run_tool(tool, "", ctx))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_yfinance_is_imported_lazily() -> None:
    code = (
        "import sys, commander.tools as t\n"
        "t.build_tools(t.YFinanceMarketData(), email_enabled=True).schemas()\n"
        "assert 'yfinance' not in sys.modules and 'pandas' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- send_email -----------------------------------------------------------------------


async def test_send_email_proposes_draft_without_sending(
    ctx: ToolContext, proposals: Proposals
) -> None:
    out = await build_tools(None, True).run(
        "send_email",
        args(
            to="a@example.com, B.Smith+x@mail.example.org,a@example.com",
            subject=" Hi ",
            content="Line 1\nLine 2",
        ),
        ctx,
    )
    assert proposals.drafts == [
        EmailDraft(["a@example.com", "B.Smith+x@mail.example.org"], "Hi", "Line 1\nLine 2")
    ]
    assert "pending-1" in out
    assert "NOT been sent" in out


@pytest.mark.parametrize(
    ("to", "subject", "content", "message"),
    [
        ("not-an-address", "s", "c", "invalid email address"),
        ("a@example", "s", "c", "invalid email address"),
        ("a@exa mple.com", "s", "c", "invalid email address"),
        ("a@example.com\r\nBcc: evil@example.com", "s", "c", "line breaks"),
        (" , ", "s", "c", "at least one"),
        (",".join(f"u{i}@example.com" for i in range(11)), "s", "c", "too many recipients"),
        ("a@example.com", "Hi\r\nBcc: evil@example.com", "c", "single line"),
        ("a@example.com", "x" * 201, "c", "too long"),
        ("a@example.com", "s", "  ", "must not be empty"),
        ("a@example.com", "s", "x" * 20_001, "too long"),
    ],
)
async def test_send_email_validation(
    ctx: ToolContext, proposals: Proposals, to: str, subject: str, content: str, message: str
) -> None:
    out = await build_tools(None, True).run(
        "send_email", args(to=to, subject=subject, content=content), ctx
    )
    assert out.startswith("error:")
    assert message in out
    assert proposals.drafts == []


async def test_send_email_limits_are_inclusive(ctx: ToolContext, proposals: Proposals) -> None:
    to = ",".join(f"u{i}@example.com" for i in range(10))
    out = await build_tools(None, True).run(
        "send_email", args(to=to, subject="s" * 200, content="c" * 20_000), ctx
    )
    assert "pending-1" in out
    assert len(proposals.drafts[0].to) == 10


# --- EmailWebhook ---------------------------------------------------------------------


@dataclass
class Webhook:
    base_url: str
    received: list[dict[str, Any]]
    status: list[int]


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    state = Webhook("", [], [202])

    async def handle(request: web.Request) -> web.Response:
        state.received.append({"query": dict(request.query), "json": await request.json()})
        return web.Response(status=state.status[0])

    app = web.Application()
    app.router.add_post("/workflows/email", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.base_url = f"http://{host}:{port}/workflows/email"
    try:
        yield state
    finally:
        await runner.cleanup()


DRAFT = EmailDraft(["a@example.com", "b@example.com"], "Report", "MSFT closed at 123.46")


async def test_webhook_posts_json(webhook: Webhook) -> None:
    await EmailWebhook(f"{webhook.base_url}?sig=SECRET").send(DRAFT)
    assert webhook.received == [
        {
            "query": {"sig": "SECRET"},
            "json": {
                "to": "a@example.com,b@example.com",
                "subject": "Report",
                "content": "MSFT closed at 123.46",
            },
        }
    ]


async def test_webhook_with_injected_client(webhook: Webhook) -> None:
    async with httpx.AsyncClient() as client:
        await EmailWebhook(webhook.base_url, client=client).send(DRAFT)
    assert len(webhook.received) == 1


async def test_webhook_error_status_raises_without_leaking_url(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.status[0] = 500
    with caplog.at_level(logging.DEBUG, logger="commander"), pytest.raises(EmailSendError) as err:
        await EmailWebhook(f"{webhook.base_url}?sig=SECRET").send(DRAFT)
    assert str(err.value) == "the email service returned HTTP 500"
    commander_logs = [r.getMessage() for r in caplog.records if r.name.startswith("commander")]
    assert commander_logs and all(
        "SECRET" not in m and "/workflows" not in m for m in commander_logs
    )


async def test_webhook_network_error_raises(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    url = "https://logic.example.com/workflows/x?sig=SECRET"
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with caplog.at_level(logging.DEBUG), pytest.raises(EmailSendError) as err:
            await EmailWebhook(url, client=client).send(DRAFT)
    assert "SECRET" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert "SECRET" not in caplog.text
    assert "https://logic.example.com" in caplog.text


def test_webhook_rejects_bad_url_and_hides_secret_in_repr() -> None:
    with pytest.raises(ValueError):
        EmailWebhook("ftp://example.com/x")
    assert repr(EmailWebhook("https://h.example.com/p?sig=SECRET")) == (
        "EmailWebhook(https://h.example.com)"
    )
