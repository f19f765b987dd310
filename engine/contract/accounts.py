"""Bodies of the accounts API (Auth.Mode accounts): the signed-in user, their password and API
tokens, and the admin's user list with each user's storage use (from the engine's /usage)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from engine.contract.schemas import JsonBody

PASSWORD = {"min_length": 8, "max_length": 1024}


class Me(BaseModel):
    name: str
    is_admin: bool


class PasswordChange(JsonBody):
    current_password: str = Field(..., max_length=1024)
    new_password: str = Field(..., description="8 to 1024 characters.", **PASSWORD)


class TokenRequest(JsonBody):
    label: str = Field("api", min_length=1, max_length=100, description="What it is for.")


class TokenEntry(BaseModel):
    id: str
    label: str
    created: str
    last_used: str | None
    revoked: str | None


class NewToken(TokenEntry):
    token: str = Field(description="Shown only now: send it as Authorization: Bearer TOKEN.")


class TokenList(BaseModel):
    tokens: list[TokenEntry]


class Usage(BaseModel):
    """What a user keeps on the engine's storage."""

    loras: int
    loras_bytes: int
    images: int
    images_bytes: int
    training: int = Field(0, description="Checkpoints, training states and kept images.")
    training_bytes: int = 0


class UserEntry(BaseModel):
    name: str
    is_admin: bool
    disabled: bool
    created: str
    usage: Usage | None = Field(description="None while the engine can't be asked.")


class UserList(BaseModel):
    users: list[UserEntry]


class NewUser(JsonBody):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Also the storage id.")
    password: str = Field(..., description="8 to 1024 characters.", **PASSWORD)
    admin: bool = False


class UserChange(JsonBody):
    disabled: bool
