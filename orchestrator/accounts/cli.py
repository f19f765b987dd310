"""`python -m orchestrator users ...` and `... tokens ...`: manage accounts from a shell, with
the same settings (file and LORAMINT_* variables) as the server. Passwords are read from
standard input, one line (hidden when typed at a terminal); a new token is printed alone on the
last line of standard output, so scripts can take it with `tail -n 1`."""

from __future__ import annotations

import argparse
import getpass
import sys

from engine.contract.errors import ApiError
from orchestrator.accounts.db import Database
from orchestrator.accounts.store import Accounts
from orchestrator.config import OrchestratorSettings


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m orchestrator", description=__doc__)
    kinds = ap.add_subparsers(dest="kind", required=True)
    users = kinds.add_parser("users", help="add, list, disable, enable users; set passwords")
    u = users.add_subparsers(dest="action", required=True)
    add = u.add_parser("add", help="add a user; the password is read from stdin")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may add and disable users")
    u.add_parser("list", help="every user, with role and state")
    for action, text in (("disable", "refuse the user's logins and tokens"), ("enable", "undo")):
        u.add_parser(action, help=text).add_argument("name")
    u.add_parser("passwd", help="set a new password from stdin").add_argument("name")
    tokens = kinds.add_parser("tokens", help="create and revoke API tokens")
    t = tokens.add_subparsers(dest="action", required=True)
    create = t.add_parser("create", help="a new API token for NAME, printed once")
    create.add_argument("name")
    create.add_argument("--label", default="cli", help="what the token is for")
    t.add_parser("list", help="a user's tokens (never the tokens themselves)").add_argument("name")
    t.add_parser("revoke", help="stop a token working").add_argument("id")
    return ap


def _password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    return sys.stdin.readline().rstrip("\r\n")


def _run(args: argparse.Namespace, accounts: Accounts) -> None:
    if args.kind == "users":
        if args.action == "add":
            user = accounts.add_user(args.name, _password(), admin=args.admin)
            print(f"added {user.name}{' (admin)' if user.is_admin else ''}")
        elif args.action == "list":
            for u in accounts.users():
                role = "admin" if u.is_admin else "user"
                print(f"{u.name}\t{role}\t{'disabled' if u.disabled else 'enabled'}\t{u.created}")
        elif args.action == "passwd":
            accounts.set_password(args.name, _password())
            print(f"new password set for {args.name}; their sessions ended")
        else:
            user = accounts.set_disabled(args.name, args.action == "disable")
            print(f"{user.name} {'disabled' if user.disabled else 'enabled'}")
    elif args.action == "create":
        info, token = accounts.create_token(accounts.user(args.name), args.label)
        print(f"token {info.id} ({info.label}) for {args.name}; it is shown only now:")
        print(token)
    elif args.action == "list":
        for tok in accounts.tokens(accounts.user(args.name)):
            state = f"revoked {tok.revoked}" if tok.revoked else f"last used {tok.last_used}"
            print(f"{tok.id}\t{tok.label}\tcreated {tok.created}\t{state}")
    else:
        print(f"token {accounts.revoke_token(args.id).id} revoked")


def main(argv: list[str], settings: OrchestratorSettings) -> int:
    args = _parser().parse_args(argv)
    accounts = Accounts(Database(settings.database), settings.Auth.SessionDays)
    try:
        _run(args, accounts)
    except ApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0
