"""Three instances on one PostgreSQL database, deliveries round-robin: bursts, Slack's
retries, per-minute limits and `/assistant-create` behave as with one instance."""

from __future__ import annotations

import asyncio

from commander.errors import AssistantExists
from tests.cluster.checks import (
    answers,
    assert_bar,
    assert_in_conversation_once,
    dm,
    in_conversations,
    model_calls,
    thread,
)
from tests.cluster.conftest import MakeCluster
from tests.conftest import TEAM
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.hardening.process import until


async def test_a_burst_from_one_person_is_answered_once_each_in_order(
    make_cluster: MakeCluster, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """4 DMs from UA in quick succession, each to the next instance (with 2 from UB in
    between): every message answered once, one model request at a time per person, and
    UA's messages reach the model in the order they were sent."""
    cluster = make_cluster()
    await cluster.seed_assistants(TEAM, "UA", "UB")
    await cluster.start()
    fake_openai.tokens_per_second = 100  # each turn takes a while: overlaps would show
    burst = [dm("UA", f"burst question {n}") for n in range(4)]
    other = [dm("UB", f"other question {n}") for n in range(2)]
    for event in (burst[0], other[0], burst[1], burst[2], other[1], burst[3]):
        await cluster.deliver(event)

    await cluster.settle()
    assert_bar(fake_openai, fake_slack, burst + other, cluster.logs())
    assert_in_conversation_once(fake_openai, burst + other)
    conversation = await cluster.conversation_of(TEAM, "UA")
    assert conversation is not None
    user_items = [
        item["content"][0]["text"]
        for item in fake_openai.state.conversations[conversation].items
        if item.get("role") == "user"
    ]
    assert user_items == [e["text"] for e in burst]


async def test_slack_retries_to_other_instances_add_nothing(
    make_cluster: MakeCluster, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """Slack re-sends a delivery it thinks unacknowledged (same body, X-Slack-Retry-Num);
    behind a load balancer the retries land on other instances. While the first is being
    answered, and after it was: one answer, one model request, each time."""
    cluster = make_cluster()
    await cluster.seed_assistants(TEAM, "UA")
    await cluster.start()
    fake_openai.tokens_per_second = 50
    during, after = dm("UA", "retried while answering"), dm("UA", "retried after answering")

    body = cluster.envelope(during)
    first = await cluster.deliver(during, body=body)
    await until(lambda: model_calls(fake_openai), "the model call of the first delivery")
    second = await cluster.retry(body, 1, avoid=first.index)
    await cluster.retry(body, 2, avoid=second.index)

    body = cluster.envelope(after)
    first = await cluster.deliver(after, body=body)
    await until(lambda: answers(fake_slack, after), "the answer to the first delivery")
    await cluster.settle()
    second = await cluster.retry(body, 1, avoid=first.index)
    await cluster.retry(body, 2, avoid=second.index)

    await cluster.settle()
    assert_bar(fake_openai, fake_slack, [during, after], cluster.logs())
    assert_in_conversation_once(fake_openai, [during, after])


async def test_the_per_minute_limit_holds_across_instances(
    make_cluster: MakeCluster, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """TURNS_PER_MINUTE=2 and 4 DMs spread over 3 instances: the first 2 are answered,
    the other 2 refused with the limit's message, and only 2 reach the model."""
    cluster = make_cluster(TURNS_PER_MINUTE="2")
    await cluster.seed_assistants(TEAM, "UA")
    await cluster.start()
    events = [dm("UA", f"limited question {n}") for n in range(4)]
    for event in events:
        await cluster.deliver(event)

    await cluster.settle()
    assert_bar(fake_openai, fake_slack, events[:2], cluster.logs())
    for event in events[2:]:
        texts = [m.text for m in thread(fake_slack, event)]
        assert len(texts) == 1 and "2 messages in the last minute" in texts[0], texts
    assert len(model_calls(fake_openai)) == 2
    assert_in_conversation_once(fake_openai, events[:2])
    assert sum(in_conversations(fake_openai, e["text"]) for e in events[2:]) == 0


async def test_concurrent_create_on_three_instances_makes_one_assistant(
    make_cluster: MakeCluster, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """The same person's `/assistant-create` reaches all three instances at once: one
    assistant and one conversation at the provider (none leaked), one "Created" reply,
    two replies saying one exists, and no "Something went wrong"."""
    cluster = make_cluster()
    await cluster.start()
    keys = [f"create{i}" for i in range(3)]
    responses = await asyncio.gather(
        *(
            cluster.command(
                "/assistant-create", "Answer briefly.", "UA", fake_slack.response_url(key), to=i
            )
            for i, key in enumerate(keys)
        )
    )
    assert [r.status_code for r in responses] == [200, 200, 200]
    await until(lambda: all(fake_slack.response_posts[k] for k in keys), "three replies")

    replies = sorted(post["text"] for key in keys for post in fake_slack.response_posts[key])
    assert len(replies) == 3, replies
    assert sum("Created your assistant" in text for text in replies) == 1, replies
    assert replies.count(AssistantExists.user_message) == 2, replies
    conversation = await cluster.conversation_of(TEAM, "UA")
    assert list(fake_openai.state.conversations) == [conversation]
    rows = await cluster.fetch("SELECT count(*) AS n FROM assistants WHERE user_id = 'UA'")
    assert rows[0]["n"] == 1

    question = dm("UA", "are you there?")
    await cluster.deliver(question)
    await cluster.settle()
    assert_bar(fake_openai, fake_slack, [question], cluster.logs())
    assert_in_conversation_once(fake_openai, [question])
