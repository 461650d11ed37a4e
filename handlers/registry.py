"""Register every surface's listeners. Each module has `register(app, deps)`."""

from slack_bolt.async_app import AsyncApp

from handlers import actions, commands, feedback, home, home_settings, lifecycle, messages
from handlers.context import Deps


def register_all(app: AsyncApp, deps: Deps) -> None:
    # actions and home end with catch-alls: they register last.
    for surface in (commands, messages, feedback, home_settings, lifecycle, actions, home):
        surface.register(app, deps)
