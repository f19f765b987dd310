"""Users, browser sessions and API tokens.

Passwords are hashed with argon2id (argon2-cffi's defaults) and never logged. Session ids and
API tokens are 256-bit random strings stored only as their SHA-256: a leaked database gives no
way in. Sessions live on the server, so logging out, disabling a user or changing a password
ends them at once."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.contract.errors import Conflict, InvalidRequest, NotFound
from engine.contract.names import check_user_id
from orchestrator.accounts.db import Database

MIN_PASSWORD, MAX_PASSWORD = 8, 1024
TOKEN_PREFIX = "lmt_"
LAST_USED_EVERY_S = 60  # a token's last use is written at most this often


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool
    disabled: bool
    created: str


@dataclass(frozen=True)
class TokenInfo:
    id: str
    label: str
    created: str
    last_used: str | None
    revoked: str | None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user(row: sqlite3.Row) -> User:
    return User(
        row["id"], row["name"], bool(row["is_admin"]), bool(row["disabled"]), row["created"]
    )


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidRequest(
            f"password: use {MIN_PASSWORD} to {MAX_PASSWORD} characters", code="weak_password"
        )
    return password


class Accounts:
    def __init__(self, db: Database, session_days: float = 7) -> None:
        self.db = db
        self.session_s = session_days * 86400
        self.hasher = PasswordHasher()
        # Verified against when the name is unknown, so a wrong name costs as long as a wrong
        # password and the timing tells nobody which names exist.
        self._dummy = self.hasher.hash(secrets.token_hex(8))

    # -- users ---------------------------------------------------------------------------
    def add_user(self, name: str, password: str, *, admin: bool = False) -> User:
        check_user_id(name)
        digest = self.hasher.hash(check_password(password))
        try:
            with self.db.connect() as conn:
                conn.execute(
                    "INSERT INTO users (name, password_hash, is_admin, created) VALUES (?,?,?,?)",
                    (name, digest, int(admin), _now()),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"a user named {name!r} already exists") from exc
        return self.user(name)

    def user(self, name: str) -> User:
        with self.db.connect() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no user named {name!r}")
        return _user(row)

    def users(self) -> list[User]:
        with self.db.connect() as conn:
            return [_user(r) for r in conn.execute("SELECT * FROM users ORDER BY name")]

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disabling also ends the user's sessions; their tokens stop working with them."""
        user = self.user(name)
        with self.db.connect() as conn:
            conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user.id))
            if disabled:
                conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))
        return self.user(name)

    def set_password(self, name: str, password: str) -> None:
        """A new password ends every session of the user's."""
        user = self.user(name)
        digest = self.hasher.hash(check_password(password))
        with self.db.connect() as conn:
            conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (digest, user.id))
            conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))

    def verify_password(self, name: str, password: str) -> User | None:
        """The user these credentials are for, if they are right and the user is enabled."""
        with self.db.connect() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        try:
            self.hasher.verify(row["password_hash"] if row else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled"]:
            return None
        if self.hasher.check_needs_rehash(row["password_hash"]):
            self.set_password(row["name"], password)
        return _user(row)

    # -- browser sessions ----------------------------------------------------------------
    def start_session(self, user: User) -> str:
        session = secrets.token_urlsafe(32)
        with self.db.connect() as conn:
            conn.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
            conn.execute(
                "INSERT INTO sessions (id_hash, user_id, created, expires) VALUES (?,?,?,?)",
                (_digest(session), user.id, _now(), time.time() + self.session_s),
            )
        return session

    def session_user(self, session: str) -> User | None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT users.* FROM sessions JOIN users ON users.id = sessions.user_id "
                "WHERE sessions.id_hash = ? AND sessions.expires > ? AND users.disabled = 0",
                (_digest(session), time.time()),
            ).fetchone()
        return _user(row) if row else None

    def end_session(self, session: str) -> None:
        with self.db.connect() as conn:
            conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(session),))

    # -- API tokens ----------------------------------------------------------------------
    def create_token(self, user: User, label: str) -> tuple[TokenInfo, str]:
        """A new token for `user`: its listing entry, and the token itself (shown once)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = secrets.token_hex(4)
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO tokens (id, user_id, label, token_hash, created) VALUES (?,?,?,?,?)",
                (token_id, user.id, label.strip()[:100], _digest(token), _now()),
            )
        return self._token(token_id), token

    def _token(self, token_id: str) -> TokenInfo:
        with self.db.connect() as conn:
            row = conn.execute("SELECT * FROM tokens WHERE id = ?", (token_id,)).fetchone()
        if row is None:
            raise NotFound(f"no token {token_id!r}")
        return TokenInfo(row["id"], row["label"], row["created"], row["last_used"], row["revoked"])

    def tokens(self, user: User) -> list[TokenInfo]:
        with self.db.connect() as conn:
            ids = conn.execute(
                "SELECT id FROM tokens WHERE user_id = ? ORDER BY created DESC", (user.id,)
            ).fetchall()
        return [self._token(r["id"]) for r in ids]

    def revoke_token(self, token_id: str, owner: User | None = None) -> TokenInfo:
        """Revoke a token; with `owner`, only one of theirs (others' read as unknown)."""
        with self.db.connect() as conn:
            owned = "" if owner is None else " AND user_id = ?"
            args = (_now(), token_id) if owner is None else (_now(), token_id, owner.id)
            done = conn.execute(
                f"UPDATE tokens SET revoked = COALESCE(revoked, ?) WHERE id = ?{owned}", args
            ).rowcount
        if not done:
            raise NotFound(f"no token {token_id!r}")
        return self._token(token_id)

    def revoke_all_tokens(self, user: User) -> int:
        """Revoke every active token of the user's (after a leaked password, say); how many."""
        with self.db.connect() as conn:
            return conn.execute(
                "UPDATE tokens SET revoked = ? WHERE user_id = ? AND revoked IS NULL",
                (_now(), user.id),
            ).rowcount

    def token_user(self, token: str) -> User | None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT users.*, tokens.id AS token_id, tokens.last_used FROM tokens "
                "JOIN users ON users.id = tokens.user_id WHERE tokens.token_hash = ? "
                "AND tokens.revoked IS NULL AND users.disabled = 0",
                (_digest(token),),
            ).fetchone()
            if row is None:
                return None
            last = row["last_used"]
            if last is None or time.time() - datetime.fromisoformat(last).timestamp() > (
                LAST_USED_EVERY_S
            ):
                conn.execute(
                    "UPDATE tokens SET last_used = ? WHERE id = ?", (_now(), row["token_id"])
                )
        return _user(row)
