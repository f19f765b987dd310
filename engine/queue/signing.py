"""Every task a dispatcher sends is signed with the queue secret that it and the workers share
(`LORAMINT_QUEUE__SECRET`, else the engine token), and a worker runs only what verifies: Redis
is a shared mailbox, and a task put there by anyone else (or altered on the way) could
otherwise act as any user. The signature covers the task's name, id and arguments; a copy of
a signed task re-sent under its id is dropped as done (presence.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any


def _message(name: str, task_id: str, args: list[Any]) -> bytes:
    return json.dumps([name, task_id, args], sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, name: str, task_id: str, args: list[Any]) -> str:
    return hmac.new(secret.encode(), _message(name, task_id, args), hashlib.sha256).hexdigest()


def verify(secret: str, name: str, task_id: str, args: list[Any], signature: Any) -> bool:
    if not isinstance(signature, str):
        return False
    return hmac.compare_digest(sign(secret, name, task_id, args), signature)
