"""What a user id and a file name may be. Both processes check names with these before using
them, so no request can name a path outside its user's folder."""

from __future__ import annotations

import re
from typing import Literal

from engine.contract.errors import InvalidRequest, NotFound

Kind = Literal["loras", "outputs"]
USER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
JOB_ID_RE = re.compile(r"^[A-Za-z0-9]{1,64}$")
# A leading letter or digit rules out hidden files and "..".
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SUFFIX: dict[Kind, str] = {"loras": ".safetensors", "outputs": ".png"}


def check_user_id(user_id: str) -> str:
    if not USER_ID_RE.fullmatch(user_id):
        raise InvalidRequest(
            f"user_id {user_id!r} is invalid: use 1-64 letters, digits, '_' or '-'",
            code="invalid_user_id",
        )
    return user_id


def check_file_name(name: str, kind: Kind) -> str:
    """Return the canonical file name (suffix added if missing) or raise."""
    suffix = SUFFIX[kind]
    if not name.endswith(suffix):
        name += suffix
    if not FILE_NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidRequest(
            f"file name {name!r} is invalid: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit, no paths",
            code="invalid_file_name",
        )
    return name


def check_job_id(job_id: str) -> str:
    """A job id that could exist; any other gets the same 404 as an unknown one."""
    if not JOB_ID_RE.fullmatch(job_id):
        raise NotFound(f"job {job_id!r} not found")
    return job_id
