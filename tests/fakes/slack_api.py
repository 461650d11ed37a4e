"""Non-chat handlers of the fake Slack Web API and the method registry."""

from __future__ import annotations

import secrets
import time

from tests.fakes.slack_chat import CHAT_METHODS, Handler
from tests.fakes.slack_checks import check_view, need, text_arg
from tests.fakes.slack_models import (
    ApiError,
    Call,
    JsonDict,
    PendingUpload,
    StoredFile,
    Upload,
    filetype_for,
    mimetype_for,
    random_id,
)
from tests.fakes.slack_state import SlackState

MAX_PROMPTS = 4


def auth_test(state: SlackState, call: Call) -> JsonDict:
    """Who the calling token is (each OAuth install has its own)."""
    ident = state.oauth.check(call.token)
    home = ident.team_id or ident.enterprise_id or "org"
    answer: JsonDict = {
        "ok": True,
        "url": f"https://{home.lower()}.slack.com/",
        "team": ident.team_name,
        "user": ident.bot_name,
        "team_id": ident.team_id or ident.enterprise_id,
        "user_id": ident.bot_user_id,
        "bot_id": ident.bot_id,
        "is_enterprise_install": ident.is_enterprise_install,
    }
    if ident.enterprise_id:
        answer["enterprise_id"] = ident.enterprise_id
    return answer


def oauth_v2_access(state: SlackState, call: Call) -> JsonDict:
    return state.oauth.access(call)


# ----- assistant.threads.*


def set_status(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    need(args, "channel_id", "thread_ts")
    if args.get("status") is None:
        raise ApiError("invalid_arguments", "[ERROR] missing required field: status")
    thread = state.assistant_threads[(str(args["channel_id"]), str(args["thread_ts"]))]
    thread.status = str(args["status"])
    thread.loading_messages = list(args.get("loading_messages") or [])
    thread.status_history.append(thread.status)
    return {"ok": True}


def set_suggested_prompts(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    need(args, "channel_id", "prompts")
    prompts = args["prompts"]
    valid = isinstance(prompts, list) and all(
        isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts
    )
    if not valid or len(prompts) > MAX_PROMPTS:
        raise ApiError("invalid_arguments", "[ERROR] prompts: 1-4 items with title and message")
    thread = state.assistant_threads[(str(args["channel_id"]), text_arg(args, "thread_ts"))]
    thread.prompts, thread.prompts_title = prompts, text_arg(args, "title")
    return {"ok": True}


def set_title(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    need(args, "channel_id", "thread_ts", "title")
    state.assistant_threads[(str(args["channel_id"]), str(args["thread_ts"]))].title = str(
        args["title"]
    )
    return {"ok": True}


# ----- views.*


def _view_hash() -> str:
    return f"{int(time.time())}.{secrets.token_hex(4)}"


def _store_view(state: SlackState, view: JsonDict, view_id: str, **extra: object) -> JsonDict:
    ident = state.identity
    stored: JsonDict = {
        "id": view_id,
        "team_id": ident.team_id,
        "type": view["type"],
        "blocks": view.get("blocks", []),
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "state": {"values": {}},
        "hash": _view_hash(),
        "title": view.get("title"),
        "clear_on_close": bool(view.get("clear_on_close", False)),
        "notify_on_close": bool(view.get("notify_on_close", False)),
        "close": view.get("close"),
        "submit": view.get("submit"),
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": ident.app_id,
        "external_id": view.get("external_id", ""),
        "app_installed_team_id": ident.team_id,
        "bot_id": ident.bot_id,
    }
    stored.update(extra)
    state.views[view_id] = stored
    return stored


def views_open(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    if not args.get("trigger_id") and not args.get("interactivity_pointer"):
        raise ApiError("invalid_arguments", "[ERROR] missing required field: trigger_id")
    need(args, "view")
    view = check_view(args["view"], ("modal",))
    return {"ok": True, "view": _store_view(state, view, random_id("V"))}


def views_publish(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    need(args, "user_id", "view")
    state.user_json(str(args["user_id"]))
    view = check_view(args["view"], ("home",))
    user_id = str(args["user_id"])
    current = state.views.get(state.home_views.get(user_id, ""))
    if current and args.get("hash") and args["hash"] != current["hash"]:
        raise ApiError("hash_conflict")
    view_id = current["id"] if current else random_id("V")
    state.home_views[user_id] = view_id
    return {"ok": True, "view": _store_view(state, view, view_id)}


def views_update(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    need(args, "view")
    current = _find_view(state, args)
    if args.get("hash") and args["hash"] != current["hash"]:
        raise ApiError("hash_conflict")
    view = check_view(args["view"], ("modal", "home"))
    keep = {k: current[k] for k in ("previous_view_id", "root_view_id") if k in current}
    return {"ok": True, "view": _store_view(state, view, current["id"], **keep)}


def _find_view(state: SlackState, args: JsonDict) -> JsonDict:
    if args.get("view_id"):
        found = state.views.get(str(args["view_id"]))
    elif args.get("external_id"):
        found = next(
            (v for v in state.views.values() if v["external_id"] == args["external_id"]), None
        )
    else:
        raise ApiError("invalid_arguments", "[ERROR] view_id or external_id is required")
    if found is None:
        raise ApiError("not_found")
    return found


# ----- users, conversations, reactions


def users_info(state: SlackState, call: Call) -> JsonDict:
    if not call.args.get("user"):
        raise ApiError("user_not_found")
    return {"ok": True, "user": state.user_json(str(call.args["user"]))}


def conversations_info(state: SlackState, call: Call) -> JsonDict:
    return {"ok": True, "channel": state.channel_json(str(call.args.get("channel") or ""))}


def _page(messages: list[JsonDict], limit: object) -> JsonDict:
    count = int(str(limit)) if limit else 100
    return {
        "ok": True,
        "messages": messages[:count],
        "has_more": len(messages) > count,
        "response_metadata": {"next_cursor": ""},
    }


def conversations_replies(state: SlackState, call: Call) -> JsonDict:
    channel = state.channel_id(call.args.get("channel"))
    need(call.args, "ts")
    thread = state.thread(channel, str(call.args["ts"]))
    if not thread:
        raise ApiError("thread_not_found")
    return _page([state.message_json(m) for m in thread], call.args.get("limit"))


def conversations_history(state: SlackState, call: Call) -> JsonDict:
    channel = state.channel_id(call.args.get("channel"))
    top = [
        m
        for m in state.messages.get(channel, [])
        if m.ephemeral_user is None and m.thread_ts in (None, m.ts)
    ]
    newest_first = [state.message_json(m) for m in reversed(top)]
    return _page(newest_first, call.args.get("limit"))


def reactions_add(state: SlackState, call: Call) -> JsonDict:
    channel = state.channel_id(call.args.get("channel"))
    need(call.args, "timestamp", "name")
    message = state.find_message(channel, str(call.args["timestamp"]))
    users = message.reactions.setdefault(str(call.args["name"]), [])
    if state.identity.bot_user_id in users:
        raise ApiError("already_reacted")
    users.append(state.identity.bot_user_id)
    return {"ok": True}


def reactions_remove(state: SlackState, call: Call) -> JsonDict:
    channel = state.channel_id(call.args.get("channel"))
    need(call.args, "timestamp", "name")
    message = state.find_message(channel, str(call.args["timestamp"]))
    users = message.reactions.get(str(call.args["name"]), [])
    if state.identity.bot_user_id not in users:
        raise ApiError("no_reaction")
    users.remove(state.identity.bot_user_id)
    if not users:
        del message.reactions[str(call.args["name"])]
    return {"ok": True}


# ----- files


def files_info(state: SlackState, call: Call) -> JsonDict:
    stored = state.files.get(str(call.args.get("file") or ""))
    if stored is None:
        raise ApiError("file_not_found")
    return {
        "ok": True,
        "file": state.file_json(stored),
        "comments": [],
        "response_metadata": {"next_cursor": ""},
    }


def get_upload_url(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    need(args, "filename")
    length = int(str(args.get("length") or 0))
    if length <= 0:
        raise ApiError("missing_argument")
    pending = PendingUpload(
        file_id=random_id("F"),
        filename=str(args["filename"]),
        length=length,
        ticket=secrets.token_urlsafe(12),
        alt_txt=text_arg(args, "alt_txt"),
        snippet_type=text_arg(args, "snippet_type"),
    )
    state.pending_uploads[pending.file_id] = pending
    upload_url = f"{state.base_url}/upload/v1/{pending.ticket}"
    return {"ok": True, "upload_url": upload_url, "file_id": pending.file_id}


def complete_upload(state: SlackState, call: Call) -> JsonDict:
    args = call.args
    need(args, "files")
    entries = args["files"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ApiError("invalid_arguments", "[ERROR] files must be a JSON array")
    channel = state.channel_id(args["channel_id"]) if args.get("channel_id") else None
    pending = [_uploaded(state, str(e.get("id"))) for e in entries]
    stored = [_publish(state, p, e, channel, args) for p, e in zip(pending, entries, strict=True)]
    files = [state.file_json(s) for s in stored]
    if channel:
        state.new_bot_message(
            channel,
            text=str(args.get("initial_comment") or ""),
            thread_ts=text_arg(args, "thread_ts"),
            files=files,
        )
    return {"ok": True, "files": files}


def _uploaded(state: SlackState, file_id: str) -> PendingUpload:
    pending = state.pending_uploads.get(file_id)
    if pending is None or pending.data is None:
        raise ApiError("file_not_found")
    return pending


def _publish(
    state: SlackState, pending: PendingUpload, entry: JsonDict, channel: str | None, args: JsonDict
) -> StoredFile:
    del state.pending_uploads[pending.file_id]
    data = pending.data or b""
    title = str(entry.get("title") or pending.filename)
    stored = StoredFile(
        id=pending.file_id,
        name=pending.filename,
        title=title,
        mimetype=mimetype_for(pending.filename),
        filetype=pending.snippet_type or filetype_for(pending.filename),
        size=len(data),
        user=state.identity.bot_user_id,
        data=data,
    )
    state.files[stored.id] = stored
    state.uploads.append(
        Upload(
            file_id=stored.id,
            filename=stored.name,
            title=title,
            data=data,
            channel=channel,
            thread_ts=text_arg(args, "thread_ts"),
            initial_comment=text_arg(args, "initial_comment"),
            mimetype=stored.mimetype,
        )
    )
    return stored


METHODS: dict[str, Handler] = {
    **CHAT_METHODS,
    "auth.test": auth_test,
    "oauth.v2.access": oauth_v2_access,
    "assistant.threads.setStatus": set_status,
    "assistant.threads.setSuggestedPrompts": set_suggested_prompts,
    "assistant.threads.setTitle": set_title,
    "views.open": views_open,
    "views.push": views_open,
    "views.publish": views_publish,
    "views.update": views_update,
    "users.info": users_info,
    "conversations.info": conversations_info,
    "conversations.replies": conversations_replies,
    "conversations.history": conversations_history,
    "reactions.add": reactions_add,
    "reactions.remove": reactions_remove,
    "files.info": files_info,
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
}
