"""The service API every front end drives: Slack handlers, the admin CLI and tests.

No Slack types here: callers pass plain team/user ids, text and byte streams.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from commander.backend import CONVERSATION, ModelBackend
from commander.errors import (
    AssistantExists,
    CommanderError,
    InvalidInput,
    NoAssistant,
    PendingEmailNotFound,
)
from commander.events import EmailPending, Notice, TurnCompleted, TurnEvent, TurnFailed
from commander.feedback import Answers
from commander.filetypes import CODE_INTERPRETER, FILE_SEARCH, content_problem, route, safe_filename
from commander.leases import PersonLocks
from commander.model_choice import pick
from commander.quotas import Quotas
from commander.settings import CoreSettings
from commander.spool import TooLarge, spool
from commander.store.answer_models import Answer, FeedbackVote
from commander.store.db import Database
from commander.store.models import Assistant, Job, PendingEmail, StoredFile, TurnRecord, utcnow
from commander.store.prepared import Write, bound, values_of
from commander.tools.base import EmailDraft, ToolContext, ToolRegistry
from commander.tools.email import EmailSendError, EmailWebhook
from commander.turn import ThreadState, Turn, TurnSpec

log = logging.getLogger(__name__)

DEFAULT_NAME = "My assistant"
SEND_EMAIL = "send_email"
WEB_SEARCH = "web_search"
# Web search sends the user's questions to a search engine: on only when picked.
OPT_IN_TOOLS = frozenset({WEB_SEARCH})
WEB_SEARCH_OFF = (
    "Web search is not available on this AI service, so I turned it off for your "
    "assistant. Your question is answered without it."
)
MAX_NAME_CHARS = 80
MAX_CONTAINER_FILES = 20


@dataclass(frozen=True)
class IncomingFile:
    name: str
    chunks: AsyncIterator[bytes]
    declared_size: int | None = None


@dataclass(frozen=True)
class Resume:
    """Where the thread stood before the interrupted turn began."""

    cursor: str | None


@dataclass
class AddFilesResult:
    added: list[StoredFile] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class DeleteReport:
    assistant: bool = False
    conversation: str = "none"  # "deleted" | "already gone" | "none"
    vector_store: str = "none"
    files_deleted: int = 0
    files_already_gone: int = 0
    rows_deleted: int = 0


@dataclass
class AssistantStatus:
    assistant: Assistant
    files: list[StoredFile]
    pending_emails: list[PendingEmail]
    busy: bool


class Commander:
    def __init__(
        self,
        settings: CoreSettings,
        db: Database,
        backend: ModelBackend,
        functions: ToolRegistry,
        email: EmailWebhook | None = None,
        locks: PersonLocks | None = None,
    ) -> None:
        self.settings = settings
        self.limits = settings.limits
        self.db = db
        self.backend = backend
        self.functions = functions
        self.email = email
        # Per person, cluster-wide: create, delete, reset, files and turns never overlap.
        self.locks = locks or PersonLocks(db, "local")
        self.quotas = Quotas(settings.limits, db)
        self.answers = Answers(db)
        self.retry_base_s = 0.5

    @property
    def available_tools(self) -> list[str]:
        tools = [CODE_INTERPRETER, FILE_SEARCH, WEB_SEARCH]
        return [*tools, SEND_EMAIL] if self.email else tools

    @property
    def default_tools(self) -> list[str]:
        return [tool for tool in self.available_tools if tool not in OPT_IN_TOOLS]

    # --- reading ------------------------------------------------------------------

    async def get(self, team_id: str, user_id: str) -> Assistant | None:
        assistant, _files = await self._read_owned(team_id, user_id, with_files=False)
        return assistant

    async def _read_owned(
        self, team_id: str, user_id: str, *, with_files: bool
    ) -> tuple[Assistant | None, list[StoredFile]]:
        """The person's assistant (and files), read in one hop (see Database.run_read)."""

        person = {"team_id": team_id, "user_id": user_id}

        def read(conn: Connection) -> tuple[Assistant | None, list[StoredFile]]:
            with Session(conn) as session:  # closing detaches the rows, loaded
                assistant = session.scalars(_ASSISTANT, person).one_or_none()
                if assistant is None or not with_files:
                    return assistant, []
                return assistant, list(session.scalars(_FILES, person))

        return await self.db.run_read(read)

    async def require(self, team_id: str, user_id: str) -> Assistant:
        assistant = await self.get(team_id, user_id)
        if assistant is None:
            raise NoAssistant()
        return assistant

    async def status(self, team_id: str, user_id: str) -> AssistantStatus | None:
        async with self.db.session() as session:
            assistant = await self._assistant(session, team_id, user_id)
            if assistant is None:
                return None
            files = await self._files(session, team_id, user_id)
            emails = (
                (
                    await session.execute(
                        select(PendingEmail).where(
                            PendingEmail.team_id == team_id,
                            PendingEmail.user_id == user_id,
                            PendingEmail.status == "pending",
                        )
                    )
                )
                .scalars()
                .all()
            )
        busy = await self.locks.busy(team_id, user_id)
        return AssistantStatus(assistant, files, list(emails), busy)

    async def list_all(self) -> list[Assistant]:
        async with self.db.session() as session:
            rows = await session.execute(select(Assistant).order_by(Assistant.created_at))
            return list(rows.scalars().all())

    # --- create / reset / delete ----------------------------------------------------

    async def create(
        self,
        team_id: str,
        user_id: str,
        *,
        instructions: str,
        name: str | None = None,
        tools: list[str] | None = None,
        model: str | None = None,
        reasoning_effort: str | None = None,
    ) -> Assistant:
        instructions = self._valid_instructions(instructions)
        name = (name or "").strip()[:MAX_NAME_CHARS] or DEFAULT_NAME
        chosen = self.default_tools if tools is None else tools
        self._check_tools(chosen)
        model, reasoning_effort = pick(self.settings.model_choices, model, reasoning_effort)
        async with self.locks.hold(team_id, user_id):
            if await self.get(team_id, user_id) is not None:
                raise AssistantExists()
            strategy, conversation_id = await self.backend.new_thread(team_id, user_id)
            assistant = Assistant(
                team_id=team_id,
                user_id=user_id,
                name=name,
                instructions=instructions,
                model=model,
                reasoning_effort=reasoning_effort,
                tools=[t for t in self.available_tools if t in chosen],
                thread_strategy=strategy,
                conversation_id=conversation_id,
            )
            try:
                async with self.db.transaction() as session:
                    session.add(assistant)
            except IntegrityError:  # created meanwhile by a holder whose lock had expired
                if conversation_id:
                    await self._forget(self.backend.delete_conversation, conversation_id)
                raise AssistantExists() from None
        log.info("assistant created for %s/%s (thread: %s)", team_id, user_id, strategy)
        return assistant

    def _check_tools(self, chosen: list[str]) -> None:
        unknown = set(chosen) - set(self.available_tools)
        if unknown:
            raise InvalidInput(f"Unknown or unavailable tools: {', '.join(sorted(unknown))}.")

    async def configure(
        self,
        team_id: str,
        user_id: str,
        *,
        tools: list[str] | None = None,
        model: str | None = None,
        reasoning_effort: str | None = None,
        clear_effort: bool = False,
    ) -> Assistant:
        """Change the assistant's tools, model or reasoning effort (App Home)."""
        async with self.locks.hold(team_id, user_id):
            assistant = await self.require(team_id, user_id)
            values: dict[str, Any] = {}
            if tools is not None:
                self._check_tools(tools)
                values["tools"] = [t for t in self.available_tools if t in tools]
            if model is not None or reasoning_effort is not None or clear_effort:
                effort = None if clear_effort else reasoning_effort or assistant.reasoning_effort
                chosen = model or assistant.model
                choice = next((c for c in self.settings.model_choices if c.name == chosen), None)
                if model is not None and choice is not None and not choice.reasoning:
                    effort = None  # a new model without reasoning drops the old effort
                values["model"], values["reasoning_effort"] = pick(
                    self.settings.model_choices, chosen, effort
                )
            if values:
                async with self.db.transaction() as session:
                    await session.execute(
                        update(Assistant).where(Assistant.id == assistant.id).values(**values)
                    )
            return await self.require(team_id, user_id)

    async def reset_thread(self, team_id: str, user_id: str) -> Assistant:
        async with self.locks.hold(team_id, user_id):
            assistant = await self.require(team_id, user_id)
            strategy, conversation_id = await self.backend.new_thread(team_id, user_id)
            old = assistant.conversation_id
            async with self.db.transaction() as session:
                await session.execute(_new_thread(assistant.id, strategy, conversation_id))
            if old:
                await self._forget(self.backend.delete_conversation, old)
            return await self.require(team_id, user_id)

    async def delete(self, team_id: str, user_id: str) -> DeleteReport:
        """Remove everything the user owns, remotely and locally. Safe to repeat."""
        asked_at = utcnow()
        report = DeleteReport()
        async with self.locks.hold(team_id, user_id):
            async with self.db.session() as session:
                assistant = await self._assistant(session, team_id, user_id)
                files = await self._files(session, team_id, user_id)
            if assistant:
                await self._delete_remote(
                    assistant.conversation_id, assistant.vector_store_id, files, report
                )
            else:
                await self._delete_remote(None, None, files, report)
            async with self.db.transaction() as session:
                for table in (StoredFile, PendingEmail, Job, TurnRecord, Answer, Assistant):
                    query = delete(table).where(table.team_id == team_id, table.user_id == user_id)
                    if table is Job:
                        # A message that came while the delete ran still gets its answer
                        # (the hint that there is no assistant); all older ones go.
                        query = query.where(Job.created_at < asked_at)
                    result = await session.execute(query)
                    report.rows_deleted += result.rowcount or 0
                result = await session.execute(
                    delete(FeedbackVote).where(
                        FeedbackVote.voter_team == team_id, FeedbackVote.voter_user == user_id
                    )
                )
                report.rows_deleted += result.rowcount or 0
            report.assistant = assistant is not None
        log.info("deleted everything of %s/%s: %s", team_id, user_id, report)
        return report

    async def clear_stored_data(self, team_id: str, user_id: str) -> DeleteReport:
        """Retention: delete the conversation, vector store and files (at the provider and
        their rows) but keep the assistant's settings; it continues on a new, empty thread."""
        report = DeleteReport()
        async with self.locks.hold(team_id, user_id):
            async with self.db.session() as session:
                assistant = await self._assistant(session, team_id, user_id)
                files = await self._files(session, team_id, user_id)
            if assistant is None:
                return report
            strategy, conversation_id = await self.backend.new_thread(team_id, user_id)
            async with self.db.transaction() as session:
                await session.execute(
                    _new_thread(assistant.id, strategy, conversation_id, vector_store_id=None)
                )
                result = await session.execute(
                    delete(StoredFile).where(
                        StoredFile.team_id == team_id, StoredFile.user_id == user_id
                    )
                )
                report.rows_deleted = result.rowcount or 0
            # The rows no longer name them: a crash from here on leaves orphans for `prune`.
            await self._delete_remote(
                assistant.conversation_id, assistant.vector_store_id, files, report
            )
            report.assistant = True
        log.info("cleared the stored data of %s/%s: %s", team_id, user_id, report)
        return report

    async def _delete_remote(
        self,
        conversation_id: str | None,
        vector_store_id: str | None,
        files: list[StoredFile],
        report: DeleteReport,
    ) -> None:
        if conversation_id:
            gone = await self.backend.delete_conversation(conversation_id)
            report.conversation = "deleted" if gone else "already gone"
        if vector_store_id:
            gone = await self.backend.delete_vector_store(vector_store_id)
            report.vector_store = "deleted" if gone else "already gone"
        for stored in files:
            if stored.provider_file_id:
                if await self.backend.delete_file(stored.provider_file_id):
                    report.files_deleted += 1
                else:
                    report.files_already_gone += 1

    # --- files ---------------------------------------------------------------------

    async def add_files(
        self, team_id: str, user_id: str, files: list[IncomingFile]
    ) -> AddFilesResult:
        result = AddFilesResult()
        if len(files) > self.limits.max_files_per_message:
            raise InvalidInput(
                f"Please attach at most {self.limits.max_files_per_message} files at once."
            )
        async with self.locks.hold(team_id, user_id):
            assistant = await self.require(team_id, user_id)
            for incoming in files:
                name = safe_filename(incoming.name)
                try:
                    result.added.append(await self._add_one(assistant, name, incoming))
                except CommanderError as exc:
                    result.rejected.append((name, exc.user_message))
        return result

    async def _add_one(self, assistant: Assistant, name: str, incoming: IncomingFile) -> StoredFile:
        targets, reason = route(name, assistant.tools)
        if reason:
            raise InvalidInput(reason)
        limit = self.limits.max_file_bytes
        if incoming.declared_size is not None and incoming.declared_size > limit:
            raise InvalidInput(f"it is larger than the {limit // (1024 * 1024)} MB limit")
        await self.quotas.check_file(assistant.team_id, assistant.user_id, incoming.declared_size)
        try:
            spooled = await spool(incoming.chunks, limit)
        except TooLarge:
            raise InvalidInput(f"it is larger than the {limit // (1024 * 1024)} MB limit") from None
        try:
            if spooled.size == 0:
                raise InvalidInput("it is empty")
            problem = content_problem(name, spooled.head)
            if problem:
                raise InvalidInput(problem)
            await self.quotas.check_file(assistant.team_id, assistant.user_id, spooled.size)
            file_id = await self.backend.upload_file(name, spooled.file)
        finally:
            spooled.close()
        stored = StoredFile(
            team_id=assistant.team_id,
            user_id=assistant.user_id,
            original_name=name,
            size=spooled.size,
            sha256=spooled.sha256,
            provider_file_id=file_id,
            attached_to=targets,
        )
        if FILE_SEARCH in targets:
            error = await self._index(assistant, file_id)
            if error:
                stored.attached_to = [t for t in targets if t != FILE_SEARCH]
                stored.error = error
                if not stored.attached_to:
                    await self._forget(self.backend.delete_file, file_id)
                    raise InvalidInput("the file could not be indexed for search")
        async with self.db.transaction() as session:
            session.add(stored)
        return stored

    async def _index(self, assistant: Assistant, file_id: str) -> str | None:
        if not assistant.vector_store_id:
            vector_store_id = await self.backend.create_vector_store(
                f"commander {assistant.team_id}/{assistant.user_id}"
            )
            async with self.db.transaction() as session:
                await session.execute(
                    update(Assistant)
                    .where(Assistant.id == assistant.id)
                    .values(vector_store_id=vector_store_id)
                )
            assistant.vector_store_id = vector_store_id
        return await self.backend.index_file(assistant.vector_store_id, file_id)

    async def remove_file(self, team_id: str, user_id: str, file_row_id: int) -> StoredFile:
        async with self.locks.hold(team_id, user_id):
            async with self.db.session() as session:
                stored = await session.get(StoredFile, file_row_id)
            if stored is None or (stored.team_id, stored.user_id) != (team_id, user_id):
                raise InvalidInput("That file is not one of yours, or it was already removed.")
            if stored.provider_file_id:
                await self.backend.delete_file(stored.provider_file_id)
            async with self.db.transaction() as session:
                await session.execute(delete(StoredFile).where(StoredFile.id == stored.id))
            return stored

    # --- asking --------------------------------------------------------------------

    async def ask(
        self,
        team_id: str,
        user_id: str,
        text: str,
        *,
        resume: Resume | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> AsyncIterator[TurnEvent]:
        """Run one turn; same-user turns queue behind each other.

        `resume`: this turn is retried after a crash; what already reached the thread
        since `resume.cursor` is not sent again, and a stored answer is shown, not redone."""
        text = self._valid_prompt(text)
        # Counted as the person's lock is taken (one write), so instances cannot both take
        # the last turn; a refused turn leaves the lock untaken.
        taker = self.quotas.turn_taker(team_id, user_id)
        async with self.locks.hold(team_id, user_id, on_taking=taker):
            assistant, files = await self._read_owned(team_id, user_id, with_files=True)
            if assistant is None:
                raise NoAssistant()
            emails: list[EmailPending] = []
            thread = ThreadState(
                assistant.thread_strategy,
                assistant.conversation_id,
                assistant.last_response_id,
                resume.cursor if resume else assistant.last_item_id,
            )
            turn = Turn(
                self.backend,
                thread,
                self.functions.only(self._function_names(assistant)),
                ToolContext(team_id, user_id, self._email_proposer(team_id, user_id, emails)),
                max_rounds=self.limits.max_tool_rounds,
                drain_emails=lambda: [emails.pop(0) for _ in range(len(emails))],
                retry_base_s=self.retry_base_s,
            )
            model, effort = self._model_of(assistant)
            spec = TurnSpec(
                model,
                assistant.instructions,
                self._tools(assistant, files),
                text,
                attachments=list(attachments or []),
                reasoning_effort=effort,
            )
            try:
                async for event in turn.run(spec, resumed=resume is not None):
                    if isinstance(event, TurnFailed) and event.kind == "web_search_unsupported":
                        # Refused before anything reached the thread: turn the tool off for
                        # this assistant, say so once, and answer without it.
                        await self._turn_off(assistant, WEB_SEARCH)
                        yield Notice(WEB_SEARCH_OFF)
                        spec.tools = [t for t in spec.tools if t["type"] != WEB_SEARCH]
                        async for retried in turn.run(spec):
                            yield retried
                            if isinstance(retried, TurnCompleted):
                                break
                        break
                    yield event
                    if isinstance(event, TurnCompleted):
                        break
            finally:
                await self._save_thread(assistant.id, thread)

    def _model_of(self, assistant: Assistant) -> tuple[str, str | None]:
        """The assistant's model, or the default when the admin no longer allows it."""
        choices = self.settings.model_choices
        choice = next((c for c in choices if c.name == assistant.model), None)
        if choice is None:
            return choices[0].name, None
        return choice.name, assistant.reasoning_effort if choice.reasoning else None

    async def _turn_off(self, assistant: Assistant, tool: str) -> None:
        log.warning("the endpoint lacks %s; turned off for %s", tool, assistant.user_id)
        assistant.tools = [t for t in assistant.tools if t != tool]
        async with self.db.transaction() as session:
            await session.execute(
                update(Assistant).where(Assistant.id == assistant.id).values(tools=assistant.tools)
            )

    async def _save_thread(self, assistant_id: int, thread: ThreadState) -> None:
        place = {"last_response_id": thread.last_response_id, "last_item_id": thread.cursor}
        await self.db.execute(Write(_SAVE_THREAD, {"assistant_id": assistant_id} | bound(place)))

    def _function_names(self, assistant: Assistant) -> list[str]:
        names = [n for n in self.functions.names() if n != SEND_EMAIL]
        return [*names, SEND_EMAIL] if SEND_EMAIL in assistant.tools and self.email else names

    def _tools(self, assistant: Assistant, files: list[StoredFile]) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        if WEB_SEARCH in assistant.tools:
            tools.append({"type": "web_search"})
        if FILE_SEARCH in assistant.tools and assistant.vector_store_id:
            tools.append({"type": "file_search", "vector_store_ids": [assistant.vector_store_id]})
        if CODE_INTERPRETER in assistant.tools:
            file_ids = [
                f.provider_file_id
                for f in files
                if CODE_INTERPRETER in f.attached_to and f.provider_file_id
            ][-MAX_CONTAINER_FILES:]
            tools.append(
                {"type": "code_interpreter", "container": {"type": "auto", "file_ids": file_ids}}
            )
        return tools

    # --- email confirmation -----------------------------------------------------------

    def _email_proposer(self, team_id: str, user_id: str, sink: list[EmailPending]) -> Any:
        async def propose(draft: EmailDraft) -> str:
            # A turn re-run after a crash proposes the same draft again: reuse it.
            same = await self._same_pending_email(team_id, user_id, draft)
            if same is not None:
                sink.append(EmailPending(same, tuple(draft.to), draft.subject, draft.content))
                return same
            pending = PendingEmail(
                team_id=team_id,
                user_id=user_id,
                recipients=list(draft.to),
                subject=draft.subject,
                content=draft.content,
            )
            async with self.db.transaction() as session:
                session.add(pending)
            sink.append(EmailPending(pending.id, tuple(draft.to), draft.subject, draft.content))
            return pending.id

        return propose

    async def _same_pending_email(
        self, team_id: str, user_id: str, draft: EmailDraft
    ) -> str | None:
        async with self.db.session() as session:
            rows = await session.execute(
                select(PendingEmail.id, PendingEmail.recipients).where(
                    PendingEmail.team_id == team_id,
                    PendingEmail.user_id == user_id,
                    PendingEmail.status == "pending",
                    PendingEmail.subject == draft.subject,
                    PendingEmail.content == draft.content,
                )
            )
        return next((pid for pid, to in rows.all() if to == list(draft.to)), None)

    async def pending_email(self, team_id: str, user_id: str, pending_id: str) -> PendingEmail:
        async with self.db.session() as session:
            pending = await session.get(PendingEmail, pending_id)
        if pending is None or (pending.team_id, pending.user_id) != (team_id, user_id):
            raise PendingEmailNotFound()
        return pending

    async def confirm_email(self, team_id: str, user_id: str, pending_id: str) -> PendingEmail:
        """Send a pending email exactly once, and only for its owner."""
        pending = await self.pending_email(team_id, user_id, pending_id)
        if self.email is None:
            raise InvalidInput("Email is not configured on this workspace.")
        if not await self._transition(pending_id, "pending", "sending"):
            raise PendingEmailNotFound()
        draft = EmailDraft(pending.recipients, pending.subject, pending.content)
        try:
            await self.email.send(draft)
        except EmailSendError as exc:
            await self._transition(pending_id, "sending", "failed")
            raise CommanderError(f"The email was not sent: {exc}.") from None
        await self._transition(pending_id, "sending", "sent")
        pending.status = "sent"
        return pending

    async def cancel_email(self, team_id: str, user_id: str, pending_id: str) -> PendingEmail:
        pending = await self.pending_email(team_id, user_id, pending_id)
        if not await self._transition(pending_id, "pending", "cancelled"):
            raise PendingEmailNotFound()
        pending.status = "cancelled"
        return pending

    async def _transition(self, pending_id: str, old: str, new: str) -> bool:
        async with self.db.transaction() as session:
            result = await session.execute(
                update(PendingEmail)
                .where(PendingEmail.id == pending_id, PendingEmail.status == old)
                .values(status=new)
            )
        return (result.rowcount or 0) == 1

    # --- helpers -------------------------------------------------------------------

    def _valid_instructions(self, instructions: str) -> str:
        instructions = (instructions or "").strip()
        if not instructions:
            raise InvalidInput("Please give your assistant some instructions.")
        if len(instructions) > self.limits.max_instructions_chars:
            raise InvalidInput(
                "Instructions are too long: at most "
                f"{self.limits.max_instructions_chars:,} characters."
            )
        return instructions

    def _valid_prompt(self, text: str) -> str:
        text = (text or "").strip()
        if not text:
            raise InvalidInput("Your message is empty. Ask me something!")
        if len(text) > self.limits.max_prompt_chars:
            raise InvalidInput(
                f"Your message is too long: at most {self.limits.max_prompt_chars:,} characters."
            )
        return text

    @staticmethod
    async def _assistant(session: Any, team_id: str, user_id: str) -> Assistant | None:
        rows = await session.execute(_ASSISTANT, {"team_id": team_id, "user_id": user_id})
        return rows.scalar_one_or_none()

    @staticmethod
    async def _files(session: Any, team_id: str, user_id: str) -> list[StoredFile]:
        rows = await session.execute(_FILES, {"team_id": team_id, "user_id": user_id})
        return list(rows.scalars().all())

    @staticmethod
    async def _forget(delete_remote: Any, object_id: str) -> None:
        """Best-effort remote clean-up that must not fail the user's action."""
        try:
            await delete_remote(object_id)
        except CommanderError as exc:
            log.warning("could not delete %s at the provider: %s", object_id, exc.user_message)


def _new_thread(assistant_id: int, strategy: str, conversation_id: str | None, **more: Any) -> Any:
    """The update that starts the assistant on an empty thread (reset, retention)."""
    return (
        update(Assistant)
        .where(Assistant.id == assistant_id)
        .values(
            thread_strategy=strategy,
            conversation_id=conversation_id,
            last_response_id=None,
            last_item_id=None,
            **more,
        )
    )


def thread_label(assistant: Assistant) -> str:
    if assistant.thread_strategy == CONVERSATION:
        return f"conversation {assistant.conversation_id}"
    return "chained responses (this endpoint has no Conversations API)"


# The person's assistant and files, and saving a thread's place: statements built once
# (commander/store/prepared.py), as every turn runs them.
_ASSISTANT = select(Assistant).where(
    Assistant.team_id == bindparam("team_id"), Assistant.user_id == bindparam("user_id")
)
_FILES = (
    select(StoredFile)
    .where(StoredFile.team_id == bindparam("team_id"), StoredFile.user_id == bindparam("user_id"))
    .order_by(StoredFile.id)
)
ASSISTANTS = Assistant.__table__
_SAVE_THREAD = (
    ASSISTANTS.update()
    .where(ASSISTANTS.c.id == bindparam("assistant_id"))
    .values(values_of(ASSISTANTS, ("last_response_id", "last_item_id")))
)
