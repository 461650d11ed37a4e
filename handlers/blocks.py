"""Block Kit payloads and the texts around them. Pure functions: no I/O, no Slack client.

Every piece of user-supplied text goes through `fit`, which escapes it for mrkdwn and
keeps it within Slack's limits without cutting an entity in half.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from commander.filetypes import CODE_INTERPRETER, FILE_SEARCH
from commander.model_choice import REASONING_EFFORTS, ModelChoice
from commander.service import (
    OPT_IN_TOOLS,
    SEND_EMAIL,
    WEB_SEARCH,
    AddFilesResult,
    AssistantStatus,
    DeleteReport,
)
from commander.store.models import Assistant, StoredFile
from handlers import ids, settings_blocks

Block = dict[str, Any]

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
BUTTON_LIMIT = 75
OPTION_LIMIT = 75
MODAL_TITLE_LIMIT = 24
CONFIRM_TITLE_LIMIT = 100
CONFIRM_TEXT_LIMIT = 300
INPUT_MAX_LENGTH = 3000
MAX_MODAL_FILES = 10
MAX_HOME_FILES = 40
HOME_INSTRUCTIONS_LIMIT = 1500
EMAIL_CONTENT_LIMIT = 2500

INPUT = "value"
ELLIPSIS = "…"
VALUE_SEPARATOR = ":"

TOOL_LABELS = {
    CODE_INTERPRETER: "Code interpreter",
    FILE_SEARCH: "File search",
    SEND_EMAIL: "Email",
    WEB_SEARCH: "Web search",
}
TOOL_HINTS = {
    CODE_INTERPRETER: "Runs Python to analyse data and draw charts",
    FILE_SEARCH: "Searches the documents you give it",
    SEND_EMAIL: "Drafts emails that you confirm before they are sent",
    WEB_SEARCH: "Searches the web and cites its sources",
}
COMMAND = "/assistant-create"
HOW_TO_TALK = (
    "Talk to it in a direct message with me, by @mentioning me in a channel, or in the "
    "assistant pane (the ✨ button at the top of Slack). Attach files to a message to "
    "give it documents to work with."
)

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


# --- text ------------------------------------------------------------------------------


def escape(text: str) -> str:
    return "".join(_ESCAPES.get(char, char) for char in text)


def unescape(text: str) -> str:
    """Undo Slack's escaping of &, < and > in slash-command text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def fit(text: str, limit: int) -> str:
    """`text` escaped for mrkdwn, at most `limit` characters, never splitting an entity."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 0
    for char in text:
        piece = _ESCAPES.get(char, char)
        if used + len(piece) > limit - len(ELLIPSIS):
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + ELLIPSIS


def tool_list(tools: Iterable[str]) -> str:
    labels = [TOOL_LABELS.get(tool, tool) for tool in tools]
    return ", ".join(labels) if labels else "none"


def slack_date(moment: datetime) -> str:
    """Shown in the reader's own time zone; the fallback is UTC."""
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def size_label(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


# --- button values -----------------------------------------------------------------------


def owned_value(owner_user_id: str, object_id: str) -> str:
    return f"{owner_user_id}{VALUE_SEPARATOR}{object_id}"


def parse_owned_value(value: str) -> tuple[str, str]:
    owner, _, object_id = (value or "").partition(VALUE_SEPARATOR)
    return owner, object_id


# --- elements ----------------------------------------------------------------------------


def plain(text: str, limit: int = BUTTON_LIMIT) -> Block:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text}


def section(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(truncate(text, SECTION_LIMIT))}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, HEADER_LIMIT)}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(truncate(text, SECTION_LIMIT))]}


def divider() -> Block:
    return {"type": "divider"}


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)}
    if block_id:
        block["block_id"] = block_id
    return block


def confirm_dialog(title: str, text: str, confirm: str, *, danger: bool = False) -> Block:
    dialog: Block = {
        "title": plain(title, CONFIRM_TITLE_LIMIT),
        "text": mrkdwn(truncate(text, CONFIRM_TEXT_LIMIT)),
        "confirm": plain(confirm, 30),
        "deny": plain("Cancel", 30),
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: Block | None = None,
) -> Block:
    element: Block = {
        "type": "button",
        "text": plain(text),
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def message(text: str, blocks: list[Block] | None = None) -> dict[str, Any]:
    """Keyword arguments for respond/chat.update: a fallback text plus optional blocks."""
    return {"text": truncate(text, SECTION_LIMIT), "blocks": blocks or [section(text)]}


# --- create modal ------------------------------------------------------------------------


def tool_option(tool: str) -> Block:
    return {
        "text": plain(TOOL_LABELS.get(tool, tool), OPTION_LIMIT),
        "description": plain(TOOL_HINTS.get(tool, ""), OPTION_LIMIT),
        "value": tool,
    }


def create_modal(
    available_tools: Sequence[str],
    max_instructions_chars: int,
    choices: Sequence[ModelChoice] = (),
) -> Block:
    options = [tool_option(tool) for tool in available_tools]
    initial = [option for option in options if option["value"] not in OPT_IN_TOOLS]
    blocks: list[Block] = [
        {
            "type": "input",
            "block_id": ids.NAME_BLOCK,
            "optional": True,
            "label": plain("Name"),
            "hint": plain("Leave empty for “My assistant”.", 150),
            "element": {
                "type": "plain_text_input",
                "action_id": INPUT,
                "max_length": 80,
                "placeholder": plain("e.g. Research helper", 150),
            },
        },
        {
            "type": "input",
            "block_id": ids.INSTRUCTIONS_BLOCK,
            "label": plain("Instructions"),
            "hint": plain("How should your assistant behave? What is it for?", 150),
            "element": {
                "type": "plain_text_input",
                "action_id": INPUT,
                "multiline": True,
                "max_length": min(max_instructions_chars, INPUT_MAX_LENGTH),
                "placeholder": plain("You are a concise analyst who…", 150),
            },
        },
    ]
    if options:
        blocks.append(
            {
                "type": "input",
                "block_id": ids.TOOLS_BLOCK,
                "optional": True,
                "label": plain("Tools"),
                "element": {
                    "type": "checkboxes",
                    "action_id": INPUT,
                    "options": options,
                    **({"initial_options": initial} if initial else {}),
                },
            }
        )
    blocks += settings_blocks.create_form_pickers(choices)
    blocks.append(
        {
            "type": "input",
            "block_id": ids.FILES_BLOCK,
            "optional": True,
            "label": plain("Files"),
            "hint": plain("Documents for file search, data for the code interpreter.", 150),
            "element": {"type": "file_input", "action_id": INPUT, "max_files": MAX_MODAL_FILES},
        }
    )
    return {
        "type": "modal",
        "callback_id": ids.CREATE_MODAL,
        "title": plain("Create assistant", MODAL_TITLE_LIMIT),
        "submit": plain("Create", MODAL_TITLE_LIMIT),
        "close": plain("Cancel", MODAL_TITLE_LIMIT),
        "blocks": blocks,
    }


def notice_modal(text: str) -> Block:
    return {
        "type": "modal",
        "callback_id": ids.CREATE_MODAL,
        "title": plain("Create assistant", MODAL_TITLE_LIMIT),
        "close": plain("Close", MODAL_TITLE_LIMIT),
        "blocks": [section(fit(text, SECTION_LIMIT))],
    }


@dataclass
class CreateForm:
    name: str
    instructions: str
    tools: list[str]
    files: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    effort: str = ""


def _field(values: dict[str, Any], block_id: str) -> dict[str, Any]:
    element = (values.get(block_id) or {}).get(INPUT)
    return element if isinstance(element, dict) else {}


def read_create_form(values: dict[str, Any]) -> CreateForm:
    """The create modal's submitted state (`view.state.values`)."""
    tools_field = _field(values, ids.TOOLS_BLOCK)
    selected = tools_field.get("selected_options") or []
    return CreateForm(
        name=(_field(values, ids.NAME_BLOCK).get("value") or "").strip(),
        instructions=(_field(values, ids.INSTRUCTIONS_BLOCK).get("value") or "").strip(),
        tools=[str(option.get("value")) for option in selected if isinstance(option, dict)],
        files=[f for f in _field(values, ids.FILES_BLOCK).get("files") or [] if f.get("id")],
        model=settings_blocks.selected(values, ids.MODEL_BLOCK),
        effort=settings_blocks.selected(values, ids.EFFORT_BLOCK),
    )


def create_form_errors(
    form: CreateForm,
    available_tools: Sequence[str],
    max_instructions_chars: int,
    choices: Sequence[ModelChoice] = (),
) -> dict[str, str]:
    """Field errors for `response_action: errors`, keyed by block id; empty when valid."""
    errors: dict[str, str] = {}
    limit = min(max_instructions_chars, INPUT_MAX_LENGTH)
    if len(form.name) > 80:
        errors[ids.NAME_BLOCK] = "Please use at most 80 characters."
    if not form.instructions:
        errors[ids.INSTRUCTIONS_BLOCK] = "Please give your assistant some instructions."
    elif len(form.instructions) > limit:
        errors[ids.INSTRUCTIONS_BLOCK] = f"Please use at most {limit:,} characters."
    unknown = sorted(set(form.tools) - set(available_tools))
    if unknown:
        errors[ids.TOOLS_BLOCK] = f"Not available here: {', '.join(unknown)}."
    if len(form.files) > MAX_MODAL_FILES:
        errors[ids.FILES_BLOCK] = f"Please attach at most {MAX_MODAL_FILES} files."
    if form.model and form.model not in [c.name for c in choices]:
        errors[ids.MODEL_BLOCK] = "That model is not offered here. Please pick one from the list."
    if form.effort and form.effort not in (settings_blocks.DEFAULT_EFFORT, *REASONING_EFFORTS):
        errors[ids.EFFORT_BLOCK] = "Please pick an effort from the list."
    return errors


# --- replies -----------------------------------------------------------------------------


def help_text(available_tools: Sequence[str]) -> str:
    return "\n".join(
        [
            "*Your own AI assistant in Slack*",
            f"• `{COMMAND} <instructions>` creates it at once with those instructions "
            f"and every tool ({tool_list(available_tools)}).",
            f"• `{COMMAND}` on its own opens a form to pick a name, tools and files.",
            "• `/assistant-delete` deletes it with its conversation and files.",
            f"• `{COMMAND} help` shows this message.",
            "The App Home tab shows your assistant, its files and a reset button. "
            "Slash commands do not work inside threads: use them in a channel or DM.",
            HOW_TO_TALK,
        ]
    )


def created_text(assistant: Assistant) -> str:
    return (
        f":white_check_mark: Created your assistant *{fit(assistant.name, 80)}* "
        f"(model {fit(assistant.model, 100)}, tools: {tool_list(assistant.tools)}).\n"
        f"{HOW_TO_TALK}"
    )


def files_result_text(result: AddFilesResult) -> str:
    lines: list[str] = []
    if result.added:
        lines.append(f"Added {len(result.added)} file(s):")
        lines += [
            f"• {fit(f.original_name, 120)} ({tool_list(f.attached_to)})" for f in result.added
        ]
    if result.rejected:
        lines.append(f"Could not add {len(result.rejected)} file(s):")
        lines += [f"• {fit(name, 120)}: {fit(reason, 200)}" for name, reason in result.rejected]
    return "\n".join(lines)


def delete_confirmation(user_id: str, status: AssistantStatus) -> list[Block]:
    name = fit(status.assistant.name, 80)
    count = len(status.files)
    what = f"its conversation and {count} file(s)" if count else "its conversation"
    return [
        section(f":warning: Delete your assistant *{name}* with {what}? This cannot be undone."),
        actions(
            button(
                "Delete",
                ids.CONFIRM_DELETE,
                user_id,
                style="danger",
                confirm=delete_dialog(),
            ),
            button("Cancel", ids.CANCEL_DELETE, user_id),
            block_id="delete_assistant",
        ),
    ]


def delete_dialog() -> Block:
    return confirm_dialog(
        "Delete your assistant?",
        "Its conversation, files and search index are removed for good.",
        "Delete",
        danger=True,
    )


def delete_report_text(report: DeleteReport) -> str:
    if not report.assistant and not report.files_deleted and not report.rows_deleted:
        return "There was nothing to delete: you have no assistant."
    removed = ["your assistant"] if report.assistant else []
    if report.conversation == "deleted":
        removed.append("its conversation")
    if report.vector_store == "deleted":
        removed.append("its search index")
    if report.files_deleted:
        removed.append(f"{report.files_deleted} file(s)")
    text = f":wastebasket: Deleted {_join(removed) or 'your data'}."
    gone = report.files_already_gone + (report.conversation == "already gone")
    gone += report.vector_store == "already gone"
    if gone:
        text += f" {gone} item(s) were already gone at the AI service."
    return text


def _join(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + f" and {items[-1]}"


# --- email confirmation ----------------------------------------------------------------


def email_summary(to: Sequence[str], subject: str) -> str:
    return f"*To:* {fit(', '.join(to), 1000)}\n*Subject:* {fit(subject, 250)}"


def email_confirmation(
    pending_id: str, to: Sequence[str], subject: str, content: str, owner_user_id: str
) -> list[Block]:
    value = owned_value(owner_user_id, pending_id)
    return [
        section(":email: *Your assistant wants to send this email:*"),
        section(email_summary(to, subject)),
        section(f"*Message:*\n{fit(content, EMAIL_CONTENT_LIMIT)}"),
        actions(
            button("Send", ids.EMAIL_SEND, value, style="primary"),
            button("Cancel", ids.EMAIL_CANCEL, value),
            block_id=f"email_{pending_id}"[:255],
        ),
        context(f"Only <@{owner_user_id}> can send or cancel it. Nothing is sent until then."),
    ]


def email_outcome(summary: str, to: Sequence[str], subject: str) -> list[Block]:
    return [section(summary), context(email_summary(to, subject))]


# --- App Home ----------------------------------------------------------------------------


def home_view(
    status: AssistantStatus | None,
    user_id: str,
    *,
    notice: str | None = None,
    choices: Sequence[ModelChoice] = (),
    available_tools: Sequence[str] = (),
) -> Block:
    blocks = [context(notice)] if notice else []
    blocks += _home_assistant(status, user_id) if status else _home_intro()
    if status and (choices or available_tools):
        assistant = status.assistant
        settings = settings_blocks.home_settings(
            choices,
            assistant.model,
            assistant.reasoning_effort,
            assistant.tools,
            available_tools,
            TOOL_LABELS,
        )
        blocks[-1:-1] = [*settings, divider()]
    return {"type": "home", "blocks": blocks}


def _home_intro() -> list[Block]:
    return [
        header("Your AI assistant"),
        section(
            "Get an assistant of your own: give it instructions, documents and tools, "
            "then talk to it in a DM, by @mentioning me, or in the assistant pane."
        ),
        actions(button("Create assistant", ids.OPEN_CREATE_MODAL, "create", style="primary")),
        context(f"Or type `{COMMAND} <instructions>` in any channel."),
    ]


def _home_assistant(status: AssistantStatus, user_id: str) -> list[Block]:
    assistant = status.assistant
    blocks: list[Block] = [
        header(assistant.name),
        section(f"*Instructions*\n{fit(assistant.instructions, HOME_INSTRUCTIONS_LIMIT)}"),
        {
            "type": "section",
            "fields": [
                mrkdwn(f"*Model*\n{fit(_model_label(assistant), 130)}"),
                mrkdwn(f"*Tools*\n{tool_list(assistant.tools)}"),
                mrkdwn(f"*Created*\n{slack_date(assistant.created_at)}"),
                mrkdwn(f"*Files*\n{len(status.files)}"),
            ],
        },
    ]
    if status.busy:
        blocks.append(context(":hourglass_flowing_sand: Working on an answer right now."))
    if status.pending_emails:
        blocks.append(context(f":email: {len(status.pending_emails)} email(s) await your OK."))
    blocks += [divider(), section("*Files*"), *_home_files(status.files)]
    blocks += [divider(), _home_controls(user_id)]
    return blocks


def _home_files(files: Sequence[StoredFile]) -> list[Block]:
    if not files:
        return [context("No files yet. Attach files to a message to me to add them.")]
    shown = [_file_row(stored) for stored in files[:MAX_HOME_FILES]]
    hidden = len(files) - len(shown)
    return shown + ([context(f"…and {hidden} more file(s) not shown.")] if hidden else [])


def _file_row(stored: StoredFile) -> Block:
    detail = f"{size_label(stored.size)} · {tool_list(stored.attached_to)}"
    if stored.error:
        detail += f" · {fit(stored.error, 200)}"
    remove = button(
        "Remove",
        ids.REMOVE_FILE,
        str(stored.id),
        confirm=confirm_dialog(
            "Remove this file?",
            f"{fit(stored.original_name, 120)} is deleted from your assistant.",
            "Remove",
            danger=True,
        ),
    )
    return section(f"*{fit(stored.original_name, 255)}*\n{detail}", accessory=remove)


def _home_controls(user_id: str) -> Block:
    reset = button(
        "Reset conversation",
        ids.RESET_THREAD,
        user_id,
        confirm=confirm_dialog(
            "Reset the conversation?",
            "Your assistant forgets what you talked about. Files and settings stay.",
            "Reset",
        ),
    )
    delete = button(
        "Delete assistant", ids.CONFIRM_DELETE, user_id, style="danger", confirm=delete_dialog()
    )
    return actions(reset, delete, block_id="assistant_controls")


def _model_label(assistant: Assistant) -> str:
    effort = assistant.reasoning_effort
    return f"{assistant.model} (reasoning: {effort})" if effort else assistant.model
