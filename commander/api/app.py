"""The REST API as an aiohttp application: mounted at /api on the Slack HTTP app, served
on PORT beside Socket Mode, or alone by `python -m commander serve`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from commander.api.fetch import UrlFetcher
from commander.api.routes import (
    COMMANDER,
    FETCHER,
    ROUTES,
    TEAM,
    USAGE,
    ApiError,
    error_response,
)
from commander.api.settings import ApiKeys, ApiSettings, team_id
from commander.errors import (
    AssistantExists,
    CommanderError,
    InvalidInput,
    NoAssistant,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from commander.quotas import LimitReached
from commander.service import Commander
from commander.usage import BudgetExceeded, UsageBook

log = logging.getLogger(__name__)

KEYS = web.AppKey("api_keys", ApiKeys)
PUBLIC_PATHS = frozenset({"/api/openapi.json"})
DEFAULT_RETRY_AFTER_S = 60
PROVIDER_RETRY_AFTER_S = 30
Handler = Any


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes JSON `{"detail": ...}` with the right status; no traceback
    ever reaches the caller."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.detail, exc.headers)
    except web.HTTPException as exc:
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate")}
        return error_response(exc.status, exc.reason, headers)
    except NoAssistant:
        return error_response(
            404, "This userName has no assistant. Create one with POST /api/create."
        )
    except AssistantExists:
        return error_response(
            409, "This userName already has an assistant. Delete it first to make a new one."
        )
    except (LimitReached, BudgetExceeded) as exc:
        retry = int(getattr(exc, "retry_after_s", None) or DEFAULT_RETRY_AFTER_S)
        return error_response(429, exc.user_message, {"Retry-After": str(retry)})
    except (ProviderRateLimited, ProviderUnavailable) as exc:
        return error_response(503, exc.user_message, {"Retry-After": str(PROVIDER_RETRY_AFTER_S)})
    except ProviderError as exc:
        return error_response(502, exc.user_message)
    except InvalidInput as exc:
        return error_response(400, exc.user_message)
    except CommanderError as exc:
        return error_response(500, exc.user_message)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("API request %s %s failed", request.method, request.path)
        return error_response(500, "Internal error. It was logged; please try again.")


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    token = _bearer(request)
    tenant = request.app[KEYS].tenant_for(token) if token else None
    if tenant is None:
        raise ApiError(
            401,
            "Missing or wrong API key. Send Authorization: Bearer <tenant>:<key>.",
            {"WWW-Authenticate": 'Bearer realm="api"'},
        )
    request[TEAM] = team_id(tenant)
    return await handler(request)


def create_api_app(
    commander: Commander,
    settings: ApiSettings,
    *,
    fetcher: UrlFetcher | None = None,
    usage: UsageBook | None = None,
) -> web.Application:
    """The API's routes, to be mounted at /api (see `mount_api`). `usage`: where turns are
    metered and budgets checked, as for Slack users."""
    app = web.Application(middlewares=[_errors, _auth])
    app[COMMANDER] = commander
    if usage is not None:
        app[USAGE] = usage
    app[KEYS] = settings.keys
    app[FETCHER] = fetcher or UrlFetcher(timeout_s=settings.fetch_timeout_s)
    app.router.add_routes(ROUTES)

    async def close_fetcher(app: web.Application) -> AsyncIterator[None]:
        yield
        await app[FETCHER].close()

    app.cleanup_ctx.append(close_fetcher)
    return app


def mount_api(
    parent: web.Application,
    commander: Commander,
    settings: ApiSettings,
    *,
    fetcher: UrlFetcher | None = None,
    usage: UsageBook | None = None,
) -> None:
    parent.add_subapp("/api", create_api_app(commander, settings, fetcher=fetcher, usage=usage))


def standalone_app(
    commander: Commander,
    settings: ApiSettings,
    *,
    fetcher: UrlFetcher | None = None,
    usage: UsageBook | None = None,
) -> web.Application:
    """The API alone, with /healthz: for Socket Mode's PORT and `commander serve`."""
    root = web.Application()
    root.router.add_get("/healthz", _healthz)
    mount_api(root, commander, settings, fetcher=fetcher, usage=usage)
    return root


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def serve_api(app: web.Application, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve `app` until `stop` is set. No access log: it would carry no keys, but user
    names and paths are nobody's business in the logs either."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host=host, port=port)
        await site.start()
        log.info("serving the REST API on port %d", port)
        await stop.wait()
    finally:
        await runner.cleanup()
