"""Request and response bodies of the REST API. The handlers validate with these models
and /api/openapi.json is generated from them, so the contract cannot drift.

Field names are the original web app's (camelCase included)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Stored as the user id (32 characters at most); no "/" so it fits in a path segment.
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,31}$"
UserName = Annotated[
    str,
    StringConstraints(pattern=USER_NAME_PATTERN),
    Field(
        description="The caller's own name for a user: 1-32 letters, digits, '.', '_', '@', "
        "'+' or '-', starting with a letter or digit. Scoped to the caller's tenant.",
        examples=["alice"],
    ),
]


class _Request(BaseModel):
    # Unknown fields are ignored: old front ends may send more than we read.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class CreateRequest(_Request):
    userName: UserName
    name: Annotated[str, Field(max_length=200, examples=["Math Tutor"])]
    instructions: Annotated[
        str, Field(max_length=100_000, examples=["You are a personal math tutor."])
    ]
    fileURLs: Annotated[
        list[Annotated[str, Field(max_length=4096)]],
        Field(
            default_factory=list,
            max_length=100,
            description="https links to files to add; may be empty.",
            examples=[["https://example.com/a.pdf"]],
        ),
    ]


class ProcessRequest(_Request):
    userName: UserName
    prompt: Annotated[str, Field(max_length=1_000_000, examples=["Solve 3x + 11 = 14."])]


class Tool(BaseModel):
    type: str


class RefusedFile(BaseModel):
    url: str
    reason: str


class CreateResponse(BaseModel):
    userName: str
    name: str
    instructions: str
    tools: list[Tool]
    assistant_id: str
    thread_id: str | None = Field(description="The conversation id, or the newest response id.")
    file_ids: list[str]
    refused: list[RefusedFile] = Field(
        default_factory=list, description="fileURLs that were not added, each with the reason."
    )


class Message(BaseModel):
    role: Literal["assistant"]
    content: str = Field(description="The answer's text, or a generated file's name.")
    imageContent: str | None = Field(description="A generated file, base64; null for text.")
    citations: list[str] = Field(description="Names of the files the answer cites.")
    mimeType: str | None = Field(default=None, description="Type of imageContent.")


class DeleteResponse(BaseModel):
    message: str


class StoredFileInfo(BaseModel):
    file_id: str | None
    name: str
    size: int
    tools: list[str]
    error: str | None = None


class AssistantInfo(BaseModel):
    assistant_id: str
    name: str
    instructions: str
    model: str
    tools: list[Tool]
    thread_id: str | None
    created_at: str


class StatusResponse(BaseModel):
    userName: str
    assistant: AssistantInfo
    files: list[StoredFileInfo]
    running: bool = Field(description="Whether a turn of this user is under way.")


class ErrorResponse(BaseModel):
    detail: str
