"""Register every surface's listeners. Each module has `register(app, deps)`."""

from slack_bolt.async_app import AsyncApp

from handlers import actions, commands, home, messages
from handlers.context import Deps


def register_all(app: AsyncApp, deps: Deps) -> None:
    for surface in (commands, messages, actions, home):
        surface.register(app, deps)
