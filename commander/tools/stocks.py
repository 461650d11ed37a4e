"""Stock-price tools backed by a pluggable MarketData source (yfinance in production)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from commander.tools.base import FunctionTool, ToolContext, ToolError, str_arg

if TYPE_CHECKING:
    import pandas as pd

PERIODS = ("5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "ytd", "max")
DEFAULT_PERIOD = "1mo"
MAX_HISTORY_ROWS = 400
_SYMBOL_RE = re.compile(r"[A-Z0-9.^=-]{1,15}")
# Coarser bars for long periods so the row cap still spans the whole period.
_YF_INTERVALS = {"2y": "1wk", "5y": "1wk", "max": "1mo"}


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: float
    currency: str | None
    as_of: datetime


@dataclass(frozen=True)
class HistoryRow:
    date: date
    open: float
    high: float
    low: float
    close: float
    volume: int


class UnknownSymbolError(LookupError):
    """The market data source has no data for the symbol."""


class MarketData(Protocol):
    """Blocking market-data source; the tools call it from a worker thread."""

    def latest_price(self, symbol: str) -> Quote:
        """Latest price; raises UnknownSymbolError when there is no data."""
        ...

    def history(self, symbol: str, period: str) -> list[HistoryRow]:
        """Price bars for a period, oldest first (empty or UnknownSymbolError if none)."""
        ...


class YFinanceMarketData:
    """MarketData from Yahoo Finance. yfinance (and pandas) is imported on first use only."""

    def latest_price(self, symbol: str) -> Quote:
        ticker, frame = self._fetch(symbol, "5d", "1d")
        last = frame.iloc[-1]
        currency = (ticker.history_metadata or {}).get("currency")
        return Quote(
            symbol=symbol,
            price=float(last["Close"]),
            currency=currency if isinstance(currency, str) else None,
            as_of=frame.index[-1].to_pydatetime(),
        )

    def history(self, symbol: str, period: str) -> list[HistoryRow]:
        _, frame = self._fetch(symbol, period, _YF_INTERVALS.get(period, "1d"))
        return [
            HistoryRow(
                date=ts.date(),
                open=float(row["Open"]),
                high=float(row["High"]),
                low=float(row["Low"]),
                close=float(row["Close"]),
                volume=0 if math.isnan(row["Volume"]) else int(row["Volume"]),
            )
            for ts, row in frame.iterrows()
        ]

    @staticmethod
    def _fetch(symbol: str, period: str, interval: str) -> tuple[Any, pd.DataFrame]:
        import yfinance as yf
        from yfinance.exceptions import YFPricesMissingError, YFTickerMissingError

        ticker = yf.Ticker(symbol)
        try:
            frame = ticker.history(period=period, interval=interval)
        except (YFPricesMissingError, YFTickerMissingError) as exc:
            raise UnknownSymbolError(symbol) from exc
        # yfinance normally reports unknown symbols as an empty frame, not an exception.
        frame = frame.dropna(subset=["Close"]) if not frame.empty else frame
        if frame.empty:
            raise UnknownSymbolError(symbol)
        return ticker, frame


def normalize_symbol(raw: str) -> str:
    symbol = raw.strip().upper()
    if not _SYMBOL_RE.fullmatch(symbol):
        raise ToolError(
            f"invalid stock symbol {raw[:40]!r}: use 1-15 characters A-Z, 0-9, '.', '^', '=', '-'"
            " (e.g. MSFT, BRK-B, ^GSPC)"
        )
    return symbol


def _no_data(symbol: str) -> ToolError:
    return ToolError(f"no market data found for symbol '{symbol}'; check the ticker symbol")


def stock_tools(market: MarketData) -> list[FunctionTool]:
    async def get_stock_price(args: dict[str, Any], ctx: ToolContext) -> str:
        symbol = normalize_symbol(str_arg(args, "symbol"))
        try:
            quote = await asyncio.to_thread(market.latest_price, symbol)
        except UnknownSymbolError:
            raise _no_data(symbol) from None
        return json.dumps(
            {
                "symbol": quote.symbol,
                "price": round(quote.price, 4),
                "currency": quote.currency,
                "as_of": quote.as_of.isoformat(),
            }
        )

    async def get_stock_history(args: dict[str, Any], ctx: ToolContext) -> str:
        symbol = normalize_symbol(str_arg(args, "symbol"))
        period = str_arg(args, "period", DEFAULT_PERIOD)
        if period not in PERIODS:
            raise ToolError(f"invalid period {period[:20]!r}; use one of {', '.join(PERIODS)}")
        try:
            rows = await asyncio.to_thread(market.history, symbol, period)
        except UnknownSymbolError:
            raise _no_data(symbol) from None
        if not rows:
            raise _no_data(symbol)
        return history_csv(rows[-MAX_HISTORY_ROWS:])

    return [
        FunctionTool(
            name="get_stock_price",
            description="Retrieve the latest closing price of a stock using its ticker symbol.",
            parameters={
                "type": "object",
                "properties": {
                    "symbol": {"type": "string", "description": "The stock symbol, e.g. MSFT"},
                },
                "required": ["symbol"],
                "additionalProperties": False,
            },
            handler=get_stock_price,
        ),
        FunctionTool(
            name="get_stock_history",
            description=(
                "Get a stock's price history as CSV (date,open,high,low,close,volume), oldest "
                "first: daily bars up to 1y and ytd, weekly for 2y/5y, monthly for max; at most "
                f"the {MAX_HISTORY_ROWS} most recent rows. Load it in the code interpreter to "
                "chart or analyse it."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "symbol": {"type": "string", "description": "The stock symbol, e.g. MSFT"},
                    "period": {
                        "type": "string",
                        "enum": list(PERIODS),
                        "default": DEFAULT_PERIOD,
                        "description": "How far back to go (default 1mo).",
                    },
                },
                "required": ["symbol"],
                "additionalProperties": False,
            },
            handler=get_stock_history,
        ),
    ]


def history_csv(rows: list[HistoryRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "open", "high", "low", "close", "volume"])
    for r in rows:
        writer.writerow(
            [
                r.date.isoformat(),
                round(r.open, 4),
                round(r.high, 4),
                round(r.low, 4),
                round(r.close, 4),
                r.volume,
            ]
        )
    return out.getvalue()
