"""Deterministic market data for tests: no network."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from commander.tools import HistoryRow, Quote, UnknownSymbolError

PRICES = {"MSFT": 420.5, "AAPL": 190.25}


class FakeMarket:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def latest_price(self, symbol: str) -> Quote:
        self.calls.append(("price", symbol))
        if symbol not in PRICES:
            raise UnknownSymbolError(symbol)
        return Quote(symbol, PRICES[symbol], "USD", datetime(2026, 11, 27, tzinfo=UTC))

    def history(self, symbol: str, period: str) -> list[HistoryRow]:
        self.calls.append(("history", symbol))
        if symbol not in PRICES:
            raise UnknownSymbolError(symbol)
        start = date(2026, 11, 1)
        return [
            HistoryRow(start + timedelta(days=i), 1.0 + i, 2.0 + i, 0.5 + i, 1.5 + i, 1000 + i)
            for i in range(5)
        ]
