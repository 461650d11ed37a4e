"""The bar every multi-instance scenario must meet (issue 8, "Done means"), read from what
the fakes saw:

- 0 messages lost and 0 answered twice: each accepted message has exactly one message in
  its thread that shows the whole answer (an interrupted stream carries a note, so it
  does not count as an answer);
- 0 sent to the model twice: the message is in the model requests' input, and in the
  provider's conversation, exactly once;
- 0 per-person overlap: no two model requests on one conversation were in flight at once;
- every Slack stream that was started has been stopped.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from typing import Any

from tests.fakes.openai_server import FakeOpenAI, RecordedRequest
from tests.fakes.slack_events import message_im
from tests.fakes.slack_models import Message
from tests.fakes.slack_server import FakeSlack

Event = dict[str, Any]


def dm(user: str, text: str) -> Event:
    """A DM from `user` in their own DM channel (so every user's thread is separate)."""
    return message_im(user, text, channel=f"D{user}")


def answer_to(event: Event) -> str:
    """What the fake model answers by default."""
    return "You said: " + event["text"]


def thread(fake_slack: FakeSlack, event: Event) -> list[Message]:
    return fake_slack.bot_messages(event["channel"], event["ts"])


def answers(fake_slack: FakeSlack, event: Event) -> int:
    """How many messages in the event's thread show its whole answer."""
    expected = answer_to(event)
    return sum(m.text == expected for m in thread(fake_slack, event))


def model_calls(fake_openai: FakeOpenAI) -> list[RecordedRequest]:
    return [r for r in fake_openai.requests if r.method == "POST" and r.path == "/v1/responses"]


def input_texts(request: RecordedRequest) -> list[str]:
    texts = []
    for item in (request.json or {}).get("input") or []:
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                texts.append(content)
            for part in content if isinstance(content, list) else []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    texts.append(part["text"])
    return texts


def sent_to_model(fake_openai: FakeOpenAI, text: str) -> int:
    """How many model requests carried the user's message `text`."""
    return sum(text in input_texts(r) for r in model_calls(fake_openai))


def in_conversations(fake_openai: FakeOpenAI, text: str) -> int:
    """How many user items with this text the provider's conversations hold."""
    count = 0
    for conversation in list(fake_openai.state.conversations.values()):
        for item in conversation.items:
            if item.get("role") == "user":
                parts = item.get("content") or []
                count += "".join(p.get("text", "") for p in parts) == text
    return count


def overlaps(fake_openai: FakeOpenAI) -> list[str]:
    """Model requests on one conversation that were in flight at the same time."""
    by_conversation: dict[str, list[RecordedRequest]] = defaultdict(list)
    for request in model_calls(fake_openai):
        conversation = (request.json or {}).get("conversation")
        if isinstance(conversation, dict):
            conversation = conversation.get("id")
        if conversation:
            by_conversation[str(conversation)].append(request)
    found = []
    for conversation, requests in by_conversation.items():
        requests.sort(key=lambda r: r.started)
        for earlier, later in pairwise(requests):
            assert earlier.ended is not None, "a model request is still in flight"
            if later.started < earlier.ended:
                found.append(
                    f"{conversation}: a request started {earlier.ended - later.started:.3f} s"
                    " before the previous one ended"
                )
    return found


def open_streams(fake_slack: FakeSlack) -> list[str]:
    return [
        f"{channel}/{m.ts}"
        for channel, messages in fake_slack.messages.items()
        for m in messages
        if m.streaming and not m.stopped
    ]


def assert_bar(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, answered: list[Event], logs: str = ""
) -> None:
    """The issue's bar for the messages that must have been answered, once settled."""
    problems = []
    for event in answered:
        shown = answers(fake_slack, event)
        if shown != 1:
            texts = [m.text[:80] for m in thread(fake_slack, event)]
            problems.append(f"{event['text'][:40]!r} answered {shown} times; thread: {texts}")
        sent = sent_to_model(fake_openai, event["text"])
        if sent != 1:
            problems.append(f"{event['text'][:40]!r} sent to the model {sent} times")
    problems += overlaps(fake_openai)
    problems += [f"stream left open: {s}" for s in open_streams(fake_slack)]
    if "Traceback" in logs:
        problems.append("a traceback in the logs")
    assert not problems, "\n".join(problems)


def assert_in_conversation_once(fake_openai: FakeOpenAI, events: list[Event]) -> None:
    counts = {e["text"]: in_conversations(fake_openai, e["text"]) for e in events}
    assert counts == {e["text"]: 1 for e in events}
