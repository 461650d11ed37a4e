"""FOR BENCHMARKS AND DEMOS ONLY: a fixed-price, offline market-data source.

`MARKET_DATA=fixed` makes the stock tools answer with made-up, constant prices instead of
asking Yahoo Finance (yfinance needs the network). `python -m bench` sets it so a
benchmark measures the bot, not the internet. Never set it in production: every symbol
gets the same invented numbers. Unset (or `yfinance`) keeps the real source.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from commander.settings import ConfigError
from commander.tools import HistoryRow, MarketData, Quote

FIXED_PRICE = 100.0
_AS_OF = datetime(2026, 1, 2, 21, 0, tzinfo=UTC)


class FixedPriceMarketData:
    """Every symbol costs FIXED_PRICE USD; history is a gentle, deterministic ramp."""

    def latest_price(self, symbol: str) -> Quote:
        return Quote(symbol, FIXED_PRICE, "USD", _AS_OF)

    def history(self, symbol: str, period: str) -> list[HistoryRow]:
        start = date(2025, 12, 1)
        return [
            HistoryRow(start + timedelta(days=i), p, p + 1, p - 1, p + 0.5, 1_000_000)
            for i in range(20)
            for p in [FIXED_PRICE + i * 0.25]
        ]


def market_from_env(env: Mapping[str, str]) -> MarketData | None:
    """The benchmark/demo source when MARKET_DATA=fixed; None means the default (yfinance)."""
    choice = env.get("MARKET_DATA", "").strip().lower()
    if choice in ("", "yfinance"):
        return None
    if choice == "fixed":
        return FixedPriceMarketData()
    raise ConfigError(
        f"MARKET_DATA must be 'yfinance' (default) or 'fixed' (benchmarks/demos), got {choice!r}."
    )
