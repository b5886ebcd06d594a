"""The ``switchboard`` command: serve, stack, migrate, users, keys, budgets and prices."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from switchboard.settings import SettingsError, get_settings


def _serve(_: argparse.Namespace) -> int:
    from switchboard.devstack.stack import app_command, prepare_multiprocess_metrics

    settings = get_settings()
    prepare_multiprocess_metrics(settings)
    command = app_command(settings)
    os.execv(command[0], command)  # noqa: S606 - replace this process with the server  # nosec B606


def _stack(_: argparse.Namespace) -> int:
    from switchboard.devstack.stack import run_stack

    return run_stack(get_settings())


def with_database(work: Callable[[argparse.Namespace], Awaitable[int]]) -> Callable[..., int]:
    """Run ``work`` with the database open and migrated."""

    def run(args: argparse.Namespace) -> int:
        from switchboard.db.engine import build_engine, close_engine, open_engine
        from switchboard.db.registry import install_engine, migrate

        async def main() -> int:
            engine = build_engine(get_settings().resolved_database_url)
            install_engine(engine)
            await open_engine(engine, 2)
            try:
                await migrate(get_settings().resolved_database_url)
                return await work(args)
            finally:
                await close_engine(engine)

        return asyncio.run(main())

    return run


async def _migrate(_: argparse.Namespace) -> int:
    print("migrations applied")
    return 0


async def _users_create(args: argparse.Namespace) -> int:
    from switchboard.accounts.services import AccountError, create_user, password_problem

    password = args.password
    if args.password_stdin:  # scripts: a password on the command line shows in `ps`
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            print("switchboard: no password on standard input", file=sys.stderr)
            return 1
    if password is None and args.admin:
        password = getpass.getpass(f"password for {args.username}: ")
    if password is not None and (
        problem := password_problem(password, get_settings().password_min_length)
    ):
        print(f"switchboard: {problem}", file=sys.stderr)
        return 1
    try:
        user = await create_user(
            args.username,
            password=password,
            role="admin" if args.admin else "member",
            rpm=args.rpm,
            tpm=args.tpm,
        )
    except AccountError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    print(f"created {user.role} {user.username!r} (id {user.id})")
    return 0


async def _keys_create(args: argparse.Namespace) -> int:
    from switchboard.accounts.services import create_user, get_user_by_name
    from switchboard.keys.services import KeyLimitError, KeyService

    settings = get_settings()
    user = await get_user_by_name(args.user)
    if user is None:
        user = await create_user(args.user, rpm=settings.default_rpm, tpm=settings.default_tpm)
        print(f"created member {user.username!r} (no password: API access only)", file=sys.stderr)
    try:
        minted = await KeyService(max_per_user=settings.max_keys_per_user).mint(
            int(user.id), name=args.name, rpm=args.rpm, tpm=args.tpm, expires_days=args.expires
        )
    except KeyLimitError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    print(
        f"key {minted.key_id} for {user.username!r} ({minted.prefix}...); shown once:",
        file=sys.stderr,
    )
    print(minted.secret)
    return 0


async def _keys_list(args: argparse.Namespace) -> int:
    from switchboard.accounts.services import get_user_by_name
    from switchboard.keys.services import KeyService

    user = await get_user_by_name(args.user)
    if user is None:
        print(f"switchboard: no user {args.user!r}", file=sys.stderr)
        return 1
    for key in await KeyService().list_for_user(int(user.id)):
        state = "revoked" if key["revoked_at"] else "active"
        limits = f"rpm={key['rpm'] or 'default'} tpm={key['tpm'] or 'default'}"
        when = f"expires={key['expires_at'] or '-'} last_used={key['last_used_at'] or '-'}"
        print(f"{key['id']:>5}  {key['prefix']}...  {state:8} {limits} {when}")
    return 0


async def _keys_revoke(args: argparse.Namespace) -> int:
    from switchboard.keys.services import KeyService

    if await KeyService().revoke(args.key_id):
        print(f"revoked key {args.key_id}")
        return 0
    print(f"switchboard: no active key {args.key_id}", file=sys.stderr)
    return 1


async def _budgets_set(args: argparse.Namespace) -> int:
    from switchboard.accounts.services import get_user_by_name
    from switchboard.budgets.catalog import CatalogError, Kind, set_budget

    kind: Kind
    if args.user is not None:
        user = await get_user_by_name(args.user)
        if user is None:
            print(f"switchboard: no user {args.user!r}", file=sys.stderr)
            return 1
        kind, subject = "user", int(user.id)
    else:
        kind, subject = "key", args.key
    try:
        await set_budget(kind, subject, args.money or "", args.tokens or "")
    except CatalogError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    given = [f"{args.tokens} tokens"] * bool(args.tokens) + [f"{args.money} money"] * bool(
        args.money
    )
    print(
        f"monthly budget of {kind} {subject}: {' and '.join(given) or 'removed'} "
        f"(running gateways apply it within SWITCHBOARD_BUDGET_REFRESH_SECONDS)"
    )
    return 0


async def _prices_set(args: argparse.Namespace) -> int:
    from switchboard.budgets.catalog import CatalogError, set_price

    try:
        await set_price(args.model, args.prompt, args.completion)
    except CatalogError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    print(
        f"price of {args.model}: {args.prompt} per million prompt tokens, {args.completion} "
        "per million completion tokens"
    )
    return 0


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gateway with granian").set_defaults(run=_serve)
    commands.add_parser(
        "stack", help="run the embedded stack: vLLM on the CPU + the gateway"
    ).set_defaults(run=_stack)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(
        run=with_database(_migrate)
    )

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True
    )
    create = users.add_parser("create", help="create a user")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="an administrator (asks a password)")
    secret = create.add_mutually_exclusive_group()
    secret.add_argument("--password", help="password (default: asked for admins, none otherwise)")
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.add_argument("--rpm", type=_positive, help="default requests per minute of their keys")
    create.add_argument("--tpm", type=_positive, help="default tokens per minute of their keys")
    create.set_defaults(run=with_database(_users_create))

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    mint = keys.add_parser("create", help="create an API key (printed once)")
    mint.add_argument("--user", required=True, help="owner (created as a member if missing)")
    mint.add_argument("--name", default="", help="a label for the key")
    mint.add_argument("--rpm", type=_positive, help="requests per minute (default: the user's)")
    mint.add_argument("--tpm", type=_positive, help="tokens per minute (default: the user's)")
    mint.add_argument("--expires", type=_positive, metavar="DAYS", help="expire after DAYS days")
    mint.set_defaults(run=with_database(_keys_create))
    listing = keys.add_parser("list", help="list a user's keys")
    listing.add_argument("--user", required=True)
    listing.set_defaults(run=with_database(_keys_list))
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(run=with_database(_keys_revoke))

    budgets = commands.add_parser("budgets", help="monthly budgets").add_subparsers(
        dest="action", required=True
    )
    budget = budgets.add_parser("set", help="set (or, with neither amount, remove) a budget")
    holder = budget.add_mutually_exclusive_group(required=True)
    holder.add_argument("--user", help="a person: all their keys and the chat")
    holder.add_argument("--key", type=_positive, help="one API key, by id (keys list)")
    budget.add_argument("--tokens", help="tokens per calendar month (UTC)")
    budget.add_argument("--money", help="money per month, priced with `prices set`")
    budget.set_defaults(run=with_database(_budgets_set))
    prices = commands.add_parser("prices", help="model prices").add_subparsers(
        dest="action", required=True
    )
    price = prices.add_parser("set", help="price of a model, per million tokens")
    price.add_argument("model")
    price.add_argument("--prompt", required=True, help="per million prompt tokens")
    price.add_argument("--completion", required=True, help="per million completion tokens")
    price.set_defaults(run=with_database(_prices_set))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: Any = args.run(args)
    except SettingsError as exc:
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    return int(result)


if __name__ == "__main__":
    sys.exit(main())
