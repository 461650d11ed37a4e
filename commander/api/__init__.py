"""The original web app's REST API, served by the same Commander service (no Slack)."""

from commander.api.app import create_api_app, mount_api, serve_api, standalone_app
from commander.api.fetch import AddressPolicy, UrlFetcher
from commander.api.settings import ApiSettings, load_api_settings

__all__ = [
    "AddressPolicy",
    "ApiSettings",
    "UrlFetcher",
    "create_api_app",
    "load_api_settings",
    "mount_api",
    "serve_api",
    "standalone_app",
]
