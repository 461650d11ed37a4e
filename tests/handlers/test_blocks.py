"""The Block Kit builders: content, escaping and Slack's limits (checked by slack_sdk)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from commander.service import AddFilesResult, AssistantStatus, DeleteReport
from commander.store.models import Assistant, PendingEmail, StoredFile
from handlers import blocks, ids

ALL_TOOLS = ["code_interpreter", "file_search", "send_email"]


def valid_message(message_blocks: list[blocks.Block]) -> None:
    assert len(message_blocks) <= 50
    for block in message_blocks:
        Block.parse(block).validate_json()
        text = block.get("text")
        if block["type"] == "section" and isinstance(text, dict):
            assert len(text["text"]) <= 3000


def valid_view(view: blocks.Block) -> None:
    View(**view).validate_json()
    assert len(view["blocks"]) <= 100


def elements(view_or_blocks: blocks.Block | list[blocks.Block]) -> list[blocks.Block]:
    found = view_or_blocks["blocks"] if isinstance(view_or_blocks, dict) else view_or_blocks
    out = []
    for block in found:
        out += block.get("elements", [])
        if "accessory" in block:
            out.append(block["accessory"])
    return out


def by_action(view_or_blocks: blocks.Block | list[blocks.Block], action_id: str) -> list:
    return [e for e in elements(view_or_blocks) if e.get("action_id") == action_id]


def make_status(files: int = 0, **fields: object) -> AssistantStatus:
    values: dict[str, object] = {
        "team_id": "T1",
        "user_id": "U1",
        "name": "Helper",
        "instructions": "Be brief.",
        "model": "gpt-test",
        "tools": ["code_interpreter", "file_search"],
        "created_at": datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
    }
    values.update(fields)
    assistant = Assistant(**values)
    stored = [
        StoredFile(
            id=i + 1,
            team_id="T1",
            user_id="U1",
            original_name=f"doc{i}.pdf",
            size=2048 * (i + 1),
            sha256="0" * 64,
            attached_to=["file_search"],
        )
        for i in range(files)
    ]
    return AssistantStatus(assistant, stored, [], busy=False)


# --- text helpers ----------------------------------------------------------------------


def test_escape_and_unescape_round_trip() -> None:
    raw = "a < b && c > <@U1>"
    assert blocks.escape(raw) == "a &lt; b &amp;&amp; c &gt; &lt;@U1&gt;"
    assert blocks.unescape(blocks.escape(raw)) == raw


@pytest.mark.parametrize("limit", [1, 2, 5, 10, 17, 50])
def test_fit_never_splits_an_entity_and_keeps_the_limit(limit: int) -> None:
    fitted = blocks.fit("x<y&z>" * 20, limit)
    assert len(fitted) <= limit
    assert fitted.endswith("…")
    body = fitted.removesuffix("…")
    assert blocks.unescape(body) == ("x<y&z>" * 20)[: len(blocks.unescape(body))]
    assert body.count("&") == body.count(";")


def test_fit_leaves_short_text_whole() -> None:
    assert blocks.fit("a&b", 7) == "a&amp;b"
    assert blocks.fit("a&b", 6) == "a…"


def test_owned_values_round_trip() -> None:
    assert blocks.parse_owned_value(blocks.owned_value("U1", "abc")) == ("U1", "abc")
    assert blocks.parse_owned_value("U1") == ("U1", "")
    assert blocks.parse_owned_value("") == ("", "")


def test_slack_date_has_a_utc_fallback() -> None:
    moment = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert blocks.slack_date(moment) == (
        f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|2026-01-02 03:04 UTC>"
    )


# --- the create modal ------------------------------------------------------------------


def test_create_modal_has_every_field_and_all_tools_checked() -> None:
    view = blocks.create_modal(ALL_TOOLS, 16_000)
    valid_view(view)
    assert view["callback_id"] == ids.CREATE_MODAL
    by_id = {b["block_id"]: b for b in view["blocks"]}
    assert by_id[ids.NAME_BLOCK]["optional"] is True
    assert by_id[ids.NAME_BLOCK]["element"]["max_length"] == 80
    instructions = by_id[ids.INSTRUCTIONS_BLOCK]
    assert "optional" not in instructions
    assert instructions["element"]["multiline"] is True
    assert instructions["element"]["max_length"] == 3000
    tools = by_id[ids.TOOLS_BLOCK]["element"]
    assert [o["value"] for o in tools["options"]] == ALL_TOOLS
    assert tools["initial_options"] == tools["options"]
    files = by_id[ids.FILES_BLOCK]
    assert files["element"] == {"type": "file_input", "action_id": "value", "max_files": 10}
    assert files["optional"] is True


def test_create_modal_without_email_and_with_a_small_instruction_limit() -> None:
    view = blocks.create_modal(["code_interpreter", "file_search"], 500)
    by_id = {b["block_id"]: b for b in view["blocks"]}
    assert [o["value"] for o in by_id[ids.TOOLS_BLOCK]["element"]["options"]] == [
        "code_interpreter",
        "file_search",
    ]
    assert by_id[ids.INSTRUCTIONS_BLOCK]["element"]["max_length"] == 500


def form_values(
    name: str | None = "Bob",
    instructions: str | None = "Help me",
    tools: list[str] | None = None,
    files: list[dict] | None = None,
) -> dict:
    options = [{"value": t, "text": {"type": "plain_text", "text": t}} for t in tools or []]
    return {
        ids.NAME_BLOCK: {"value": {"type": "plain_text_input", "value": name}},
        ids.INSTRUCTIONS_BLOCK: {"value": {"type": "plain_text_input", "value": instructions}},
        ids.TOOLS_BLOCK: {"value": {"type": "checkboxes", "selected_options": options}},
        ids.FILES_BLOCK: {"value": {"type": "file_input", "files": files or []}},
    }


def test_read_create_form() -> None:
    values = form_values(" Bob ", " Help me \n", ["file_search"], [{"id": "F1", "name": "a"}])
    form = blocks.read_create_form(values)
    assert form == blocks.CreateForm("Bob", "Help me", ["file_search"], [{"id": "F1", "name": "a"}])


def test_read_create_form_tolerates_missing_fields() -> None:
    assert blocks.read_create_form({}) == blocks.CreateForm("", "", [], [])
    form = blocks.read_create_form(form_values(name=None, instructions=None))
    assert (form.name, form.instructions) == ("", "")


@pytest.mark.parametrize(
    ("values", "bad_block"),
    [
        (form_values(instructions="   "), ids.INSTRUCTIONS_BLOCK),
        (form_values(instructions="x" * 3001), ids.INSTRUCTIONS_BLOCK),
        (form_values(name="n" * 81), ids.NAME_BLOCK),
        (form_values(tools=["send_email"]), ids.TOOLS_BLOCK),
        (form_values(files=[{"id": f"F{i}"} for i in range(11)]), ids.FILES_BLOCK),
    ],
)
def test_create_form_errors(values: dict, bad_block: str) -> None:
    form = blocks.read_create_form(values)
    errors = blocks.create_form_errors(form, ["code_interpreter", "file_search"], 16_000)
    assert list(errors) == [bad_block]


def test_create_form_errors_respect_a_lower_instruction_limit() -> None:
    form = blocks.read_create_form(form_values(instructions="x" * 101))
    assert ids.INSTRUCTIONS_BLOCK in blocks.create_form_errors(form, ALL_TOOLS, 100)
    assert blocks.create_form_errors(blocks.read_create_form(form_values()), ALL_TOOLS, 100) == {}


# --- replies ---------------------------------------------------------------------------


def test_created_text_names_the_assistant_tools_and_how_to_talk() -> None:
    assistant = make_status(name="<Bob & co>", tools=ALL_TOOLS).assistant
    text = blocks.created_text(assistant)
    assert "*&lt;Bob &amp; co&gt;*" in text
    assert "Code interpreter, File search, Email" in text
    assert "direct message" in text and "@mention" in text and "assistant pane" in text
    assert "Attach files" in text


def test_files_result_text_lists_added_and_rejected() -> None:
    added = make_status(files=1).files
    text = blocks.files_result_text(AddFilesResult(added, [("x<y>.exe", "type not allowed")]))
    assert "Added 1 file(s)" in text and "doc0.pdf (File search)" in text
    assert "x&lt;y&gt;.exe: type not allowed" in text


def test_help_mentions_every_way_in() -> None:
    text = blocks.help_text(ALL_TOOLS)
    for expected in ("/assistant-create <instructions>", "/assistant-delete", "help", "threads"):
        assert expected in text


def test_delete_confirmation() -> None:
    message = blocks.delete_confirmation("U1", make_status(files=3, name="<Mine>"))
    valid_message(message)
    assert "*&lt;Mine&gt;*" in message[0]["text"]["text"]
    assert "3 file(s)" in message[0]["text"]["text"]
    [delete] = by_action(message, ids.CONFIRM_DELETE)
    assert delete["style"] == "danger" and delete["value"] == "U1"
    assert delete["confirm"]["style"] == "danger"
    [cancel] = by_action(message, ids.CANCEL_DELETE)
    assert cancel["value"] == "U1"


def test_delete_report_text() -> None:
    report = DeleteReport(
        assistant=True,
        conversation="deleted",
        vector_store="deleted",
        files_deleted=2,
        rows_deleted=4,
    )
    assert blocks.delete_report_text(report) == (
        ":wastebasket: Deleted your assistant, its conversation, its search index and 2 file(s)."
    )
    gone = DeleteReport(assistant=True, conversation="already gone", rows_deleted=1)
    assert "1 item(s) were already gone" in blocks.delete_report_text(gone)
    assert "nothing to delete" in blocks.delete_report_text(DeleteReport())


# --- email confirmation ----------------------------------------------------------------


def test_email_confirmation() -> None:
    message = blocks.email_confirmation(
        "p1", ["a@example.com", "b@example.com"], "Hi <team>", "Body & <b>", "U1"
    )
    valid_message(message)
    text = "\n".join(b["text"]["text"] for b in message if b["type"] == "section")
    assert "a@example.com, b@example.com" in text
    assert "Hi &lt;team&gt;" in text and "Body &amp; &lt;b&gt;" in text
    [send] = by_action(message, ids.EMAIL_SEND)
    [cancel] = by_action(message, ids.EMAIL_CANCEL)
    assert send["style"] == "primary"
    assert blocks.parse_owned_value(send["value"]) == ("U1", "p1")
    assert cancel["value"] == send["value"]


def test_email_confirmation_truncates_long_content_safely() -> None:
    recipients = [f"person{i}@{'x' * 200}.example.com" for i in range(10)]
    message = blocks.email_confirmation("p1", recipients, "s" * 200, "<&>" * 20_000, "U1")
    valid_message(message)
    content = message[2]["text"]["text"]
    assert content.endswith("…") and not content.removesuffix("…").endswith(("&", "&l", "&am"))


def test_email_outcome_has_no_buttons() -> None:
    outcome = blocks.email_outcome("Sent", ["a@example.com"], "Hi")
    valid_message(outcome)
    assert [b for b in outcome if b["type"] == "actions"] == []


# --- App Home --------------------------------------------------------------------------


def test_home_without_an_assistant_offers_to_create_one() -> None:
    view = blocks.home_view(None, "U1")
    valid_view(view)
    assert view["type"] == "home"
    assert by_action(view, ids.OPEN_CREATE_MODAL)
    assert not by_action(view, ids.CONFIRM_DELETE)


def test_home_with_an_assistant() -> None:
    status = make_status(files=2, instructions="Use <tags> & " + "x" * 5000)
    status.pending_emails = [PendingEmail(recipients=["a@b.c"], subject="s", content="c")]
    view = blocks.home_view(status, "U1", notice="Done & dusted")
    valid_view(view)
    text = str(view)
    assert "Helper" in text and "gpt-test" in text and "Code interpreter, File search" in text
    assert "<!date^" in text and "Use &lt;tags&gt; &amp; " in text
    assert view["blocks"][0] == blocks.context("Done & dusted")
    assert [b["value"] for b in by_action(view, ids.REMOVE_FILE)] == ["1", "2"]
    [reset] = by_action(view, ids.RESET_THREAD)
    assert reset["value"] == "U1" and "confirm" in reset
    [delete] = by_action(view, ids.CONFIRM_DELETE)
    assert delete["style"] == "danger" and "confirm" in delete and delete["value"] == "U1"
    assert "1 email(s)" in text


def test_home_lists_at_most_forty_files_and_says_how_many_more() -> None:
    view = blocks.home_view(make_status(files=55), "U1")
    valid_view(view)
    assert len(by_action(view, ids.REMOVE_FILE)) == 40
    assert "15 more file(s)" in str(view)


def test_home_with_a_huge_name_stays_within_limits() -> None:
    view = blocks.home_view(make_status(name="N" * 80, instructions="<" * 16_000), "U1")
    valid_view(view)
