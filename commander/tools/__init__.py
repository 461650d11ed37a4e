"""Function tools the model may call (stock data, email drafts). No Slack imports here."""

from commander.tools.base import (
    EmailDraft,
    FunctionTool,
    ToolContext,
    ToolError,
    ToolRegistry,
    run_tool,
)
from commander.tools.email import EmailSendError, EmailWebhook, build_draft, send_email_tool
from commander.tools.stocks import (
    HistoryRow,
    MarketData,
    Quote,
    UnknownSymbolError,
    YFinanceMarketData,
    stock_tools,
)

__all__ = [
    "EmailDraft",
    "EmailSendError",
    "EmailWebhook",
    "FunctionTool",
    "HistoryRow",
    "MarketData",
    "Quote",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "UnknownSymbolError",
    "YFinanceMarketData",
    "build_draft",
    "build_tools",
    "run_tool",
    "send_email_tool",
    "stock_tools",
]


def build_tools(market: MarketData | None, email_enabled: bool) -> ToolRegistry:
    """The tools offered to the model: stocks when a market source is set, email if enabled."""
    tools = stock_tools(market) if market is not None else []
    if email_enabled:
        tools.append(send_email_tool())
    return ToolRegistry(tools)
