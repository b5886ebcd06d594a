"""The ``switchboard`` command: serve, stack, migrate (and later users / keys)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from switchboard.settings import SettingsError, get_settings


def _serve(_: argparse.Namespace) -> int:
    from switchboard.devstack.stack import app_command

    command = app_command(get_settings())
    os.execv(command[0], command)  # noqa: S606 - replace this process with the server


def _stack(_: argparse.Namespace) -> int:
    from switchboard.devstack.stack import run_stack

    return run_stack(get_settings())


def _migrate(_: argparse.Namespace) -> int:
    from switchboard.db.engine import build_engine, close_engine, open_engine
    from switchboard.db.registry import install_engine, migrate

    async def run() -> None:
        settings = get_settings()
        engine = build_engine(settings.resolved_database_url)
        install_engine(engine)
        await open_engine(engine, 2)
        try:
            await migrate()
        finally:
            await close_engine(engine)

    asyncio.run(run())
    print("migrations applied")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gateway with granian").set_defaults(run=_serve)
    commands.add_parser(
        "stack", help="run the embedded stack: vLLM on the CPU + the gateway"
    ).set_defaults(run=_stack)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=_migrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except SettingsError as exc:
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
