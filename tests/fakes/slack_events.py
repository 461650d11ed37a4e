"""Builders of realistic Slack event payloads (the ``event`` inside an event_callback).

Shapes follow Slack's Events API docs and bolt-python's own scenario tests.
"""

from __future__ import annotations

import secrets
import uuid

from tests.fakes.slack_models import JsonDict, TsClock

_clock = TsClock()


def new_ts() -> str:
    """A fresh, unique Slack message timestamp."""
    return _clock.next()


def channel_type_of(channel: str) -> str:
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


def channel_name_of(channel: str) -> str:
    return "directmessage" if channel[:1] == "D" else f"channel-{channel.lower()}"


def _rich_text(text: str) -> list[JsonDict]:
    section = {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
    return [{"type": "rich_text", "block_id": secrets.token_hex(2), "elements": [section]}]


# ----- event builders


def _user_message(
    user: str,
    text: str,
    channel: str,
    ts: str | None,
    thread_ts: str | None,
    files: list[JsonDict] | None,
    team: str,
) -> JsonDict:
    ts = ts or new_ts()
    event: JsonDict = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "channel_type": channel_type_of(channel),
        "team": team,
        "client_msg_id": str(uuid.uuid4()),
        "blocks": _rich_text(text),
    }
    if thread_ts:
        event.update(thread_ts=thread_ts, parent_user_id=user)
    if files:
        event.update(subtype="file_share", files=files, upload=False, display_as_bot=False)
    return event


def message_im(
    user: str,
    text: str,
    channel: str = "D1",
    ts: str | None = None,
    files: list[JsonDict] | None = None,
    thread_ts: str | None = None,
    *,
    team: str = "T1",
) -> JsonDict:
    """A user's DM to the bot (``message.im``); ``files`` makes it a file_share."""
    return _user_message(user, text, channel, ts, thread_ts, files, team)


def channel_message(
    user: str,
    text: str,
    channel: str = "C1",
    ts: str | None = None,
    files: list[JsonDict] | None = None,
    thread_ts: str | None = None,
    *,
    team: str = "T1",
) -> JsonDict:
    """A user's message in a channel (``message.channels``)."""
    return _user_message(user, text, channel, ts, thread_ts, files, team)


def app_mention(
    user: str,
    text: str,
    channel: str = "C1",
    ts: str | None = None,
    thread_ts: str | None = None,
    *,
    team: str = "T1",
    bot_user_id: str = "UBOT",
    files: list[JsonDict] | None = None,
) -> JsonDict:
    """An ``app_mention``; ``<@bot>`` is prefixed when the text lacks it."""
    mention = f"<@{bot_user_id}>"
    full = text if mention in text else f"{mention} {text}"
    event = _user_message(user, full, channel, ts, thread_ts, files, team)
    event["type"] = "app_mention"
    for key in ("channel_type", "subtype", "upload", "display_as_bot"):
        event.pop(key, None)
    return event


def assistant_thread_started(
    user: str,
    channel: str = "D1",
    thread_ts: str | None = None,
    *,
    context_channel_id: str | None = None,
    team: str = "T1",
) -> JsonDict:
    """The user opened the assistant container (``assistant_thread_started``)."""
    return _assistant_event(
        "assistant_thread_started", user, channel, thread_ts, context_channel_id, team
    )


def assistant_thread_context_changed(
    user: str,
    channel: str,
    thread_ts: str,
    *,
    context_channel_id: str | None = None,
    team: str = "T1",
) -> JsonDict:
    return _assistant_event(
        "assistant_thread_context_changed", user, channel, thread_ts, context_channel_id, team
    )


def _assistant_event(
    kind: str, user: str, channel: str, thread_ts: str | None, context: str | None, team: str
) -> JsonDict:
    context_json = (
        {"channel_id": context, "team_id": team, "enterprise_id": None} if context else {}
    )
    return {
        "type": kind,
        "assistant_thread": {
            "user_id": user,
            "context": context_json,
            "channel_id": channel,
            "thread_ts": thread_ts or new_ts(),
        },
        "event_ts": new_ts(),
    }


def message_changed(
    channel: str,
    ts: str,
    text: str,
    user: str,
    previous_text: str = "",
    thread_ts: str | None = None,
) -> JsonDict:
    """A user edited message ``ts`` (subtype ``message_changed``)."""
    now = new_ts()
    base: JsonDict = {"type": "message", "user": user, "ts": ts}
    if thread_ts:
        base["thread_ts"] = thread_ts
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": {**base, "text": text, "edited": {"user": user, "ts": now}},
        "previous_message": {**base, "text": previous_text},
        "channel": channel,
        "hidden": True,
        "ts": now,
        "event_ts": now,
        "channel_type": channel_type_of(channel),
    }


def message_deleted(
    channel: str,
    ts: str,
    user: str,
    previous_text: str = "",
    thread_ts: str | None = None,
) -> JsonDict:
    """Message ``ts`` was deleted (subtype ``message_deleted``)."""
    now = new_ts()
    previous: JsonDict = {"type": "message", "user": user, "text": previous_text, "ts": ts}
    if thread_ts:
        previous["thread_ts"] = thread_ts
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "deleted_ts": ts,
        "channel": channel,
        "previous_message": previous,
        "ts": now,
        "event_ts": now,
        "channel_type": channel_type_of(channel),
    }


def bot_message(
    text: str,
    channel: str = "D1",
    ts: str | None = None,
    thread_ts: str | None = None,
    *,
    bot_id: str = "BBOT",
    user: str | None = "UBOT",
    app_id: str = "A1",
    legacy: bool = False,
) -> JsonDict:
    """A message posted by an app (the bot itself by default).

    Apps posting with chat.postMessage produce events with ``bot_id`` + ``user``
    and no subtype; ``legacy=True`` gives the old ``subtype: bot_message`` form.
    """
    ts = ts or new_ts()
    event: JsonDict = {
        "type": "message",
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "channel_type": channel_type_of(channel),
        "bot_id": bot_id,
        "app_id": app_id,
        "bot_profile": {"id": bot_id, "app_id": app_id, "name": "bot", "deleted": False},
    }
    if legacy:
        event.update(subtype="bot_message", username="bot")
    elif user:
        event["user"] = user
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event
