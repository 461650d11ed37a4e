"""Storage behind the fake Slack Web API (overview in ``tests.fakes.slack_server``)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from tests.fakes.slack_faults import Faults
from tests.fakes.slack_models import (
    ApiError,
    AssistantThread,
    Call,
    JsonDict,
    Message,
    PendingUpload,
    StoredFile,
    Timing,
    TsClock,
    Upload,
    ts_key,
)
from tests.fakes.slack_oauth import OAuthState, Workspace

CHANNEL_PREFIXES = ("C", "D", "G")
USER_PREFIXES = ("U", "W")


@dataclass
class Identity:
    """Who the fake says the bot is (auth.test)."""

    bot_token: str = "xoxb-test"
    team_id: str = "T1"
    bot_user_id: str = "UBOT"
    bot_id: str = "BBOT"
    app_id: str = "A1"
    team_name: str = "Fake Workspace"
    bot_name: str = "commander"


class SlackState:
    """Everything the fake remembers; handlers mutate it under ``lock``."""

    def __init__(self, identity: Identity, msg_too_long_at: int, stream_lifetime: float | None):
        self.identity = identity
        self.msg_too_long_at = msg_too_long_at
        self.stream_lifetime = stream_lifetime
        self.base_url = ""
        self.lock = threading.RLock()
        self.clock = TsClock()
        self.faults = Faults()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls: list[Call] = []
            self.users: dict[str, JsonDict] = {}
            self.channels: dict[str, JsonDict] = {}
            self.messages: defaultdict[str, list[Message]] = defaultdict(list)
            self.files: dict[str, StoredFile] = {}
            self.pending_uploads: dict[str, PendingUpload] = {}
            self.uploads: list[Upload] = []
            self.views: dict[str, JsonDict] = {}
            self.home_views: dict[str, str] = {}
            self.assistant_threads: defaultdict[tuple[str, str | None], AssistantThread] = (
                defaultdict(AssistantThread)
            )
            self.response_posts: defaultdict[str, list[JsonDict]] = defaultdict(list)
            self.timings: dict[tuple[str, str | None], Timing] = {}
            self.faults.clear()
            ident = self.identity
            self.oauth = OAuthState()
            self.oauth.add(
                Workspace(
                    ident.bot_token,
                    ident.team_id,
                    ident.bot_user_id,
                    ident.bot_id,
                    ident.app_id,
                    ident.team_name,
                    ident.bot_name,
                )
            )

    # ----- messages

    def add_message(self, message: Message) -> Message:
        with self.lock:
            self.messages[message.channel].append(message)
        return message

    def find_message(self, channel: str, ts: str) -> Message:
        """A non-ephemeral message, else message_not_found."""
        for message in self.messages.get(channel, []):
            if message.ts == ts and message.ephemeral_user is None:
                return message
        raise ApiError("message_not_found")

    def bot_message(self, channel: str, ts: str, error: str) -> Message:
        """A message this bot posted; ``error`` when it belongs to someone else."""
        message = self.find_message(channel, ts)
        if message.bot_id != self.identity.bot_id:
            raise ApiError(error)
        return message

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        found = [
            m
            for m in self.messages.get(channel, [])
            if m.ephemeral_user is None and (m.ts == thread_ts or m.thread_ts == thread_ts)
        ]
        return sorted(found, key=lambda m: ts_key(m.ts))

    def new_bot_message(self, channel: str, **fields: object) -> Message:
        message = Message(
            channel=channel,
            ts=self.clock.next(),
            user=self.identity.bot_user_id,
            bot_id=self.identity.bot_id,
            **fields,  # type: ignore[arg-type]
        )
        return self.add_message(message)

    def message_json(self, message: Message) -> JsonDict:
        data = message.to_json(self.identity.team_id)
        if message.bot_id == self.identity.bot_id:
            data["app_id"] = self.identity.app_id
            data["bot_profile"] = {
                "id": self.identity.bot_id,
                "app_id": self.identity.app_id,
                "name": self.identity.bot_name,
                "deleted": False,
                "team_id": self.identity.team_id,
            }
        return data

    # ----- timings (benchmarks)

    def record_timing(
        self, channel: str, thread_ts: str | None, call: Call, has_text: bool
    ) -> None:
        key = (channel, thread_ts)
        timing = self.timings.get(key)
        if timing is None:
            timing = self.timings[key] = Timing(channel, thread_ts, first_call_at=call.at)
        if has_text:
            if timing.first_text_at is None:
                timing.first_text_at = call.at
                timing.first_text_method = call.method
            timing.last_text_at = call.at

    # ----- users, channels, files

    def channel_id(self, channel: object) -> str:
        """Resolve a conversation id; user ids post into the bot's DM with them."""
        value = str(channel or "")
        if value.startswith(USER_PREFIXES) and len(value) > 1:
            return "D" + value
        if value in self.channels or (value.startswith(CHANNEL_PREFIXES) and len(value) > 1):
            return value
        raise ApiError("channel_not_found")

    def user_json(self, user_id: str) -> JsonDict:
        if user_id in self.users:
            return self.users[user_id]
        if not user_id.startswith(USER_PREFIXES) or len(user_id) < 2:
            raise ApiError("user_not_found")
        return default_user(user_id, self.identity)

    def channel_json(self, channel_id: str) -> JsonDict:
        if channel_id in self.channels:
            return self.channels[channel_id]
        return default_channel(self.channel_id(channel_id), self.identity)

    def file_json(self, stored: StoredFile) -> JsonDict:
        base, team = self.base_url, self.identity.team_id
        prefix = f"{base}/files-pri/{team}-{stored.id}"
        return {
            "id": stored.id,
            "created": stored.created,
            "timestamp": stored.created,
            "name": stored.name,
            "title": stored.title,
            "mimetype": stored.mimetype,
            "filetype": stored.filetype,
            "pretty_type": stored.filetype.upper(),
            "user": stored.user,
            "user_team": team,
            "editable": False,
            "size": stored.size,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{prefix}/{stored.name}",
            "url_private_download": f"{prefix}/download/{stored.name}",
            "permalink": f"{base}/files/{stored.user}/{stored.id}/{stored.name}",
            "permalink_public": f"{base}/{team}-{stored.id}-public",
            "has_rich_preview": False,
            "file_access": "visible",
        }


def default_user(user_id: str, identity: Identity) -> JsonDict:
    """A plausible users.info ``user`` for any U/W id."""
    is_bot = user_id == identity.bot_user_id
    name = identity.bot_name if is_bot else f"user-{user_id.lower()}"
    return {
        "id": user_id,
        "team_id": identity.team_id,
        "name": name,
        "deleted": False,
        "real_name": name.title(),
        "tz": "Europe/London",
        "tz_label": "Greenwich Mean Time",
        "tz_offset": 0,
        "profile": {
            "real_name": name.title(),
            "display_name": name,
            "email": None if is_bot else f"{name}@example.com",
            "team": identity.team_id,
            "image_48": "https://a.slack-edge.com/avatar-48.png",
        },
        "is_admin": False,
        "is_owner": False,
        "is_bot": is_bot,
        "is_app_user": False,
        "updated": int(time.time()),
    }


def default_channel(channel_id: str, identity: Identity) -> JsonDict:
    """A plausible conversations.info ``channel``."""
    is_im = channel_id.startswith("D")
    data: JsonDict = {
        "id": channel_id,
        "created": 1_700_000_000,
        "is_archived": False,
        "is_channel": channel_id.startswith("C"),
        "is_group": channel_id.startswith("G"),
        "is_im": is_im,
        "is_mpim": False,
        "is_private": not channel_id.startswith("C"),
        "is_member": True,
        "is_ext_shared": False,
        "is_org_shared": False,
        "is_shared": False,
        "context_team_id": identity.team_id,
    }
    if is_im:
        data["user"] = channel_id[1:] if channel_id[1:2] in USER_PREFIXES else "U1"
    else:
        data.update(
            name=f"channel-{channel_id.lower()}",
            topic={"value": "", "creator": "", "last_set": 0},
            purpose={"value": "", "creator": "", "last_set": 0},
        )
    return data
