"""chat.* handlers of the fake Slack Web API, streaming included.

Each handler takes the state and the recorded call and returns the JSON body,
or raises ``ApiError`` for Slack's ``{"ok": false}`` answers.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.fakes.slack_checks import (
    check_blocks,
    check_chunks,
    check_markdown_text,
    chunk_text,
    need,
    text_arg,
)
from tests.fakes.slack_models import ApiError, Call, JsonDict, Message
from tests.fakes.slack_state import SlackState

Handler = Callable[[SlackState, Call], JsonDict]


def _content(state: SlackState, args: JsonDict) -> tuple[str, list[JsonDict], list[JsonDict]]:
    """(text, blocks, attachments) of a postMessage/update, checked."""
    text = text_arg(args, "text")
    markdown = text_arg(args, "markdown_text")
    blocks = check_blocks(args.get("blocks"))
    attachments = args.get("attachments") or []
    if markdown is not None:
        if text is not None or blocks:
            raise ApiError("markdown_text_conflict")
        check_markdown_text(markdown)
        text = markdown
    if not text and not blocks and not attachments:
        raise ApiError("no_text")
    if text and len(text) > state.msg_too_long_at:
        raise ApiError("msg_too_long")
    return text or "", blocks, attachments


def post_message(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    channel = state.channel_id(args.get("channel"))
    text, blocks, attachments = _content(state, args)
    thread_ts = text_arg(args, "thread_ts")
    message = state.new_bot_message(
        channel,
        text=text,
        thread_ts=thread_ts,
        blocks=blocks,
        attachments=attachments,
        metadata=args.get("metadata"),
    )
    state.record_timing(channel, thread_ts, call, bool(text))
    return {
        "ok": True,
        "channel": channel,
        "ts": message.ts,
        "message": state.message_json(message),
    }


def post_ephemeral(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    channel = state.channel_id(args.get("channel"))
    need(args, "user")
    state.user_json(str(args["user"]))
    text, blocks, attachments = _content(state, args)
    message = state.new_bot_message(
        channel,
        text=text,
        thread_ts=text_arg(args, "thread_ts"),
        blocks=blocks,
        attachments=attachments,
        ephemeral_user=str(args["user"]),
    )
    return {"ok": True, "message_ts": message.ts}


def update(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    channel = state.channel_id(args.get("channel"))
    need(args, "ts")
    message = state.bot_message(channel, str(args["ts"]), "cant_update_message")
    text, blocks, attachments = _content(state, args)
    message.text, message.blocks, message.edited = text, blocks, True
    if attachments:
        message.attachments = attachments
    state.record_timing(channel, message.thread_ts, call, bool(text))
    return {
        "ok": True,
        "channel": channel,
        "ts": message.ts,
        "text": text,
        "message": state.message_json(message),
    }


def delete(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    channel = state.channel_id(args.get("channel"))
    need(args, "ts")
    message = state.bot_message(channel, str(args["ts"]), "cant_delete_message")
    state.messages[channel].remove(message)
    return {"ok": True, "channel": channel, "ts": message.ts}


def _stream_content(args: JsonDict, allow_both: bool) -> tuple[str | None, list[JsonDict]]:
    """(mode, chunks) of a stream call; markdown_text becomes a markdown chunk."""
    markdown = text_arg(args, "markdown_text")
    chunks = check_chunks(args.get("chunks"))
    if markdown is not None and chunks and not allow_both:
        raise ApiError("cannot_provide_both_markdown_text_and_chunks")
    check_markdown_text(markdown)
    if markdown is not None:
        return "markdown_text", [{"type": "markdown_text", "text": markdown}, *chunks]
    return ("chunks" if chunks else None), list(chunks)


def _extend_stream(message: Message, mode: str | None, chunks: list[JsonDict]) -> None:
    if mode and message.stream_mode and mode != message.stream_mode:
        raise ApiError("streaming_mode_mismatch")
    message.stream_mode = message.stream_mode or mode
    message.chunks.extend(chunks)
    message.text = chunk_text(message.chunks)


def _open_stream(state: SlackState, call: Call) -> Message:
    """The streaming message named by channel + ts, or the error Slack gives."""
    channel = state.channel_id(call.args.get("channel"))
    need(call.args, "ts")
    message = state.bot_message(channel, str(call.args["ts"]), "message_not_owned_by_app")
    if message.stopped_by_user:
        raise ApiError("stopped_by_user")
    if not message.streaming or message.stopped or _expired(state, message, call.at):
        raise ApiError("message_not_in_streaming_state")
    return message


def _expired(state: SlackState, message: Message, now: float) -> bool:
    lifetime = state.stream_lifetime
    return lifetime is not None and now - (message.started_at or now) >= lifetime


def start_stream(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    channel = state.channel_id(args.get("channel"))
    need(args, "thread_ts")
    if not channel.startswith("D"):
        if not args.get("recipient_user_id"):
            raise ApiError("missing_recipient_user_id")
        if not args.get("recipient_team_id"):
            raise ApiError("missing_recipient_team_id")
    mode, chunks = _stream_content(args, allow_both=True)
    thread_ts = str(args["thread_ts"])
    message = state.new_bot_message(
        channel, thread_ts=thread_ts, streaming=True, started_at=call.at
    )
    _extend_stream(message, mode, chunks)
    state.record_timing(channel, thread_ts, call, bool(chunk_text(chunks)))
    return {"ok": True, "channel": channel, "ts": message.ts}


def append_stream(state: SlackState, call: Call) -> JsonDict:
    message = _open_stream(state, call)
    mode, chunks = _stream_content(call.args, allow_both=False)
    if mode is None:
        raise ApiError("markdown_text_or_chunks_required")
    _extend_stream(message, mode, chunks)
    state.record_timing(message.channel, message.thread_ts, call, bool(chunk_text(chunks)))
    return {"ok": True, "channel": message.channel, "ts": message.ts}


def stop_stream(state: SlackState, call: Call) -> JsonDict:
    message = _open_stream(state, call)
    mode, chunks = _stream_content(call.args, allow_both=False)
    blocks = check_blocks(call.args.get("blocks"))
    _extend_stream(message, mode, chunks)
    message.blocks, message.stopped = blocks, True
    if call.args.get("metadata"):
        message.metadata = call.args["metadata"]
    state.record_timing(message.channel, message.thread_ts, call, bool(chunk_text(chunks)))
    return {
        "ok": True,
        "channel": message.channel,
        "ts": message.ts,
        "message": state.message_json(message),
    }


CHAT_METHODS: dict[str, Handler] = {
    "chat.postMessage": post_message,
    "chat.postEphemeral": post_ephemeral,
    "chat.update": update,
    "chat.delete": delete,
    "chat.startStream": start_stream,
    "chat.appendStream": append_stream,
    "chat.stopStream": stop_stream,
}
