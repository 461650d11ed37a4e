"""Three instances on one PostgreSQL database while instances die, restart and start:
a SIGKILL mid-stream, a rolling restart, a delete during a stream, a simultaneous start
on an empty database."""

from __future__ import annotations

import re
import time

from handlers import ids
from tests.cluster.checks import (
    Event,
    answers,
    assert_bar,
    assert_in_conversation_once,
    dm,
    model_calls,
    open_streams,
    sent_to_model,
    thread,
)
from tests.cluster.cluster import LEASE_S, Cluster, Instance
from tests.cluster.conftest import MakeCluster
from tests.conftest import TEAM
from tests.fakes.openai_server import FakeOpenAI, RecordedRequest
from tests.fakes.slack_server import FakeSlack
from tests.hardening.process import until

TAKEOVER_LIMIT_S = LEASE_S + 5  # the bar for a survivor to finish a dead one's job
FILLER = " ".join(f"w{i}" for i in range(40))  # ~200 characters of answer: ~50 deltas


def in_flight(fake_openai: FakeOpenAI, conversation: str) -> RecordedRequest | None:
    """The conversation's model request being answered right now, if any."""
    for request in model_calls(fake_openai):
        if (request.json or {}).get("conversation") == conversation and request.ended is None:
            return request
    return None


async def streaming_instance(
    cluster: Cluster, fake_slack: FakeSlack, event: Event, conversation: str
) -> Instance:
    """Once the answer to `event` is being streamed into Slack: the instance doing it."""

    def streaming() -> Instance | None:
        request = in_flight(cluster.fake_openai, conversation)
        shown = any(m.streaming and m.text for m in thread(fake_slack, event))
        if request is None or not shown or request.client_port is None:
            return None
        return cluster.owner_of_port(request.client_port)

    return await until(streaming, "the answer to be streaming into Slack")


async def test_sigkill_mid_stream_a_survivor_finishes_the_answer_once(
    make_cluster: MakeCluster, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """The instance streaming UA's answer is SIGKILLed with the first words in Slack.
    A survivor takes the job over once its lease has expired, with no restart: within
    lease + 5 s the answer is there once, from the conversation (the model finished it:
    no second model call), and the dead instance's open stream is closed."""
    cluster = make_cluster()
    await cluster.seed_assistants(TEAM, "UA", "UB")
    await cluster.start()
    fake_openai.tokens_per_second = 20
    victim_message, bystander = dm("UA", f"Tell me a story: {FILLER}"), dm("UB", "and me?")
    await cluster.deliver(victim_message)
    await cluster.deliver(bystander)
    conversation = await cluster.conversation_of(TEAM, "UA")
    assert conversation is not None

    victim = await streaming_instance(cluster, fake_slack, victim_message, conversation)
    cluster.kill(victim.index)
    killed_at = time.monotonic()
    await until(
        lambda: answers(fake_slack, victim_message), "a survivor's answer", TAKEOVER_LIMIT_S
    )
    taken_over_after = time.monotonic() - killed_at
    assert taken_over_after <= TAKEOVER_LIMIT_S

    await cluster.settle()
    assert_bar(fake_openai, fake_slack, [victim_message, bystander], cluster.logs())
    assert_in_conversation_once(fake_openai, [victim_message, bystander])


async def test_a_rolling_restart_loses_and_repeats_nothing(
    make_cluster: MakeCluster, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """Each instance in turn gets SIGTERM while answers are under way (it must exit 0,
    finishing or handing over its jobs) and is started again while the others are
    streaming answers (which its start must leave alone). Every message sent meanwhile
    is answered exactly once."""
    users = ("UA", "UB", "UC")
    cluster = make_cluster()
    await cluster.seed_assistants(TEAM, *users)
    await cluster.start()
    fake_openai.tokens_per_second = 50  # ~1 s an answer
    sent: list[Event] = []

    async def send_batch(label: str) -> None:
        batch = [dm(user, f"{label}, {user}: {FILLER}") for user in users]
        for event in batch:
            await cluster.deliver(event)
        sent.extend(batch)
        await until(
            lambda: any(r.ended is None for r in model_calls(fake_openai)),
            f"an answer to be under way ({label})",
        )

    for index in range(len(cluster.instances)):
        await send_batch(f"Before stopping {index}")
        await cluster.stop(index)
        await send_batch(f"While {index} is down")
        await cluster.restart(index)
    last = [dm(user, f"After the restarts, {user}") for user in users]
    for event in last:
        await cluster.deliver(event)
    sent += last

    await cluster.settle(limit_s=60)
    assert_bar(fake_openai, fake_slack, sent, cluster.logs())
    assert_in_conversation_once(fake_openai, sent)


async def test_delete_during_a_stream_waits_for_the_turn_or_stops_it(
    make_cluster: MakeCluster, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """UA's answer streams from one instance; UA asks for `/assistant-delete` on a second
    and confirms on the third. The delete either waits for the turn (the answer is
    complete before the conversation is deleted) or stops it cleanly (the stream is
    closed, short of the answer); either way nothing is left at the provider, nothing
    reaches the model after the delete, and the message is not answered again."""
    cluster = make_cluster()
    await cluster.seed_assistants(TEAM, "UA")
    await cluster.start()
    fake_openai.tokens_per_second = 20
    question = dm("UA", f"Tell me a long story: {FILLER}")
    await cluster.deliver(question)
    conversation = await cluster.conversation_of(TEAM, "UA")
    assert conversation is not None
    streaming = await streaming_instance(cluster, fake_slack, question, conversation)

    asking, confirming = [i.index for i in cluster.instances if i is not streaming]
    response = await cluster.command(
        "/assistant-delete", "", "UA", fake_slack.response_url("offer"), to=asking
    )
    assert response.status_code == 200
    await until(lambda: fake_slack.response_posts["offer"], "the delete confirmation")
    response = await cluster.press("UA", ids.CONFIRM_DELETE, "UA", "confirm", to=confirming)
    assert response.status_code == 200
    await until(lambda: fake_slack.response_posts["confirm"], "the delete report")
    await cluster.settle()

    [report] = fake_slack.response_posts["confirm"]
    assert "Deleted your assistant" in report["text"], report["text"]
    assert fake_openai.state.conversations == {}
    assert fake_openai.state.vector_stores == {}
    assert await cluster.conversation_of(TEAM, "UA") is None
    [deleted] = [
        r
        for r in fake_openai.requests
        if r.method == "DELETE" and r.path == f"/v1/conversations/{conversation}"
    ]
    [turn] = [r for r in model_calls(fake_openai)]
    assert sent_to_model(fake_openai, question["text"]) == 1
    shown = answers(fake_slack, question)
    if shown:  # the delete waited for the turn
        assert shown == 1
        assert turn.ended is not None and turn.ended <= deleted.started, "deleted mid-turn"
    else:  # the turn was stopped: its stream is closed
        texts = [(m.text[:60], m.streaming, m.stopped) for m in thread(fake_slack, question)]
        assert any(m.streaming and m.stopped for m in thread(fake_slack, question)), texts
    assert open_streams(fake_slack) == []
    assert "Traceback" not in cluster.logs()


async def test_three_instances_started_at_once_on_an_empty_database(
    make_cluster: MakeCluster, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """All three become healthy; the schema is migrated once (each migration ran in
    exactly one instance); then they serve as one."""
    cluster = make_cluster()
    await cluster.start()
    assert all(instance.alive for instance in cluster.instances)
    versions = await cluster.fetch("SELECT version_num FROM alembic_version")
    assert len(versions) == 1
    upgrades = re.findall(r"Running upgrade (\S*) -> (\S+)", cluster.logs())
    targets = [target.rstrip(",") for _, target in upgrades]
    assert targets and len(targets) == len(set(targets)), upgrades
    assert targets[-1] == versions[0]["version_num"]

    response = await cluster.command(
        "/assistant-create", "Be brief.", "UA", fake_slack.response_url("create")
    )
    assert response.status_code == 200
    await until(lambda: fake_slack.response_posts["create"], "the create reply")
    questions = [dm("UA", f"question {n}") for n in range(3)]
    for event in questions:
        await cluster.deliver(event)
    await cluster.settle()
    assert_bar(fake_openai, fake_slack, questions, cluster.logs())
    assert_in_conversation_once(fake_openai, questions)
