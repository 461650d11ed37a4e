"""Register every surface's listeners. Each module has `register(app, deps)`."""

from slack_bolt.async_app import AsyncApp

from handlers import actions, commands, home, lifecycle, messages
from handlers.context import Deps


def register_all(app: AsyncApp, deps: Deps) -> None:
    # home last: it ends with a catch-all event listener.
    for surface in (commands, messages, actions, lifecycle, home):
        surface.register(app, deps)
