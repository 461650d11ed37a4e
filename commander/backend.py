"""Everything the core asks of the model provider, on one AsyncOpenAI client.

Works against OpenAI and Azure OpenAI's v1 API alike. Endpoints that answer 404 to
/conversations are detected once, remembered in the database, and threads there are
chained with previous_response_id instead.
"""

from __future__ import annotations

import logging
from typing import IO, Any

import openai
from openai import AsyncOpenAI, DefaultAioHttpClient
from openai.types.responses import Response

from commander.provider_errors import is_gone, to_provider_error
from commander.settings import CoreSettings
from commander.store.db import Database
from commander.store.models import ProviderFlag
from commander.stream_events import TurnStream

log = logging.getLogger(__name__)

CONVERSATION = "conversation"
PREVIOUS_RESPONSE = "previous_response"


def build_client(settings: CoreSettings) -> AsyncOpenAI:
    """One client per process; the SDK pools connections behind it."""
    if settings.uses_entra_id:
        from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

        token_provider = get_bearer_token_provider(
            DefaultAzureCredential(), "https://ai.azure.com/.default"
        )
        return AsyncOpenAI(
            base_url=settings.base_url, api_key=token_provider, http_client=http_client()
        )
    return AsyncOpenAI(
        api_key=settings.api_key, base_url=settings.base_url, http_client=http_client()
    )


def http_client() -> DefaultAioHttpClient:
    """The SDK's aiohttp transport: a streamed turn costs noticeably less CPU than on
    httpx's own. Its errors arrive as httpx2's, with the aiohttp error as the cause;
    commander/turn.py reads that cause to tell "never sent" from "sent, then broke"."""
    return DefaultAioHttpClient()


class ModelBackend:
    def __init__(self, client: AsyncOpenAI, db: Database, endpoint_key: str) -> None:
        self.client = client
        # A turn must not be resent by the SDK behind our back (it would add the
        # user's message twice); turn.py decides those retries itself.
        self.turn_client = client.with_options(max_retries=0)
        self._db = db
        self._flag_key = f"conversations_supported:{endpoint_key}"
        self._conversations_supported: bool | None = None

    async def stream_turn(self, params: dict[str, Any]) -> TurnStream:
        """`responses.create(stream=True, **params)`, with the body sent as built: turn.py
        builds plain JSON, so the SDK's per-request walk over it (a few ms for a long
        input) changes nothing. Events are read by commander/stream_events.py."""
        return await self.turn_client.post(
            "/responses",
            body={**params, "stream": True},
            cast_to=Response,
            stream=True,
            stream_cls=TurnStream,
        )

    # --- threads -----------------------------------------------------------------

    async def conversations_supported(self) -> bool:
        if self._conversations_supported is None:
            async with self._db.session() as session:
                flag = await session.get(ProviderFlag, self._flag_key)
            self._conversations_supported = flag is None or flag.value == "yes"
        return self._conversations_supported

    async def _remember_no_conversations(self) -> None:
        self._conversations_supported = False
        log.warning(
            "The model endpoint answers 404 to /conversations; threads fall back to "
            "chaining previous_response_id on this endpoint from now on."
        )
        async with self._db.transaction() as session:
            await session.merge(ProviderFlag(key=self._flag_key, value="no"))

    async def new_thread(self, team_id: str, user_id: str) -> tuple[str, str | None]:
        """Returns (strategy, conversation_id)."""
        if not await self.conversations_supported():
            return PREVIOUS_RESPONSE, None
        try:
            conversation = await self.client.conversations.create(
                metadata={"team_id": team_id, "user_id": user_id}
            )
        except openai.NotFoundError:
            await self._remember_no_conversations()
            return PREVIOUS_RESPONSE, None
        except openai.APIError as exc:
            raise to_provider_error(exc) from exc
        return CONVERSATION, conversation.id

    async def delete_conversation(self, conversation_id: str) -> bool:
        return await self._delete(self.client.conversations.delete, conversation_id)

    async def items_after(self, conversation_id: str, cursor: str | None) -> list[Any]:
        """Conversation items newer than `cursor` (all items when cursor is None)."""
        params: dict[str, Any] = {"order": "asc", "limit": 100}
        if cursor:
            params["after"] = cursor
        page = await self.client.conversations.items.list(conversation_id, **params)
        return list(page.data)

    async def retrieve_response(self, response_id: str) -> Any:
        """A stored response, e.g. one whose stream broke; raises the SDK's errors."""
        return await self.client.responses.retrieve(response_id)

    async def newest_item_id(self, conversation_id: str) -> str | None:
        page = await self.client.conversations.items.list(conversation_id, order="desc", limit=1)
        return page.data[0].id if page.data else None

    # --- files -------------------------------------------------------------------

    async def upload_file(self, filename: str, stream: IO[bytes]) -> str:
        try:
            uploaded = await self.client.files.create(file=(filename, stream), purpose="assistants")
        except openai.APIError as exc:
            raise to_provider_error(exc) from exc
        return uploaded.id

    async def create_vector_store(self, name: str) -> str:
        try:
            store = await self.client.vector_stores.create(name=name[:64])
        except openai.APIError as exc:
            raise to_provider_error(exc) from exc
        return store.id

    async def index_file(self, vector_store_id: str, file_id: str) -> str | None:
        """Adds a file to a vector store and waits; returns an error text if indexing failed."""
        try:
            result = await self.client.vector_stores.files.create_and_poll(
                file_id=file_id, vector_store_id=vector_store_id, poll_interval_ms=500
            )
        except openai.APIError as exc:
            raise to_provider_error(exc) from exc
        if result.status == "completed":
            return None
        error = result.last_error.message if result.last_error else result.status
        return f"indexing {result.status}: {error}"

    async def delete_file(self, file_id: str) -> bool:
        return await self._delete(self.client.files.delete, file_id)

    async def delete_vector_store(self, vector_store_id: str) -> bool:
        return await self._delete(self.client.vector_stores.delete, vector_store_id)

    async def container_file(self, container_id: str, file_id: str) -> bytes:
        content = await self.client.containers.files.content.retrieve(
            file_id, container_id=container_id
        )
        return content.content

    async def _delete(self, delete: Any, object_id: str) -> bool:
        """True if deleted now, False if it was already gone."""
        try:
            await delete(object_id)
        except openai.APIError as exc:
            if is_gone(exc):
                return False
            raise to_provider_error(exc) from exc
        return True

    # --- listing, for prune and doctor ----------------------------------------------

    async def list_file_ids(self) -> list[str]:
        return [f.id async for f in self.client.files.list(purpose="assistants")]

    async def list_vector_store_ids(self) -> list[str]:
        return [v.id async for v in self.client.vector_stores.list()]

    async def check(self, model: str) -> None:
        """Cheap reachability and credentials check."""
        try:
            await self.client.models.retrieve(model)
        except openai.APIError as exc:
            raise to_provider_error(exc) from exc
