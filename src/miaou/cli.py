"""The ``miaou`` command: serve, worker, migrate, config, user, invite, version.

Settings come from defaults, ``miaou.toml``, ``MIAOU_*`` variables and these flags, in that
order. A bad setting prints one clear line and exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from miaou import __version__
from miaou.config import Settings, load_settings
from miaou.errors import ConfigError, MiaouError

EXIT_CONFIG = 2


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (override miaou.toml and MIAOU_*)")
    group.add_argument("--host")
    group.add_argument("--port", type=int)
    group.add_argument("--data-dir")
    group.add_argument("--database-url")
    group.add_argument("--redis-url")
    group.add_argument("--registration", choices=["open", "invite", "closed"])
    group.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    group.add_argument("--worker-id", type=int)


def _positive_int(text: str) -> int:
    value = int(text)  # a ValueError becomes a usage error (exit status 2)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="miaou", description="Run and manage a Miaou node.")
    parser.add_argument("--config", help="path of miaou.toml (default: ./miaou.toml if present)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="start the node (migrates the database first)")
    _settings_flags(serve)
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="serving processes on the one port (needs PostgreSQL and --redis-url when > 1)",
    )
    worker = sub.add_parser(
        "worker", help="run background jobs (track processing) without serving HTTP"
    )
    _settings_flags(worker)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    _settings_flags(migrate)
    config = sub.add_parser("config", help="print the settings in force (secrets masked)")
    _settings_flags(config)
    sub.add_parser("version", help="print the version")

    user = sub.add_parser("user", help="manage accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_sub.add_parser("create", help="create an account (password from stdin/prompt)")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="make the account an administrator")
    create.add_argument("--display-name")
    listing = user_sub.add_parser("list", help="list accounts")
    listing.add_argument("--limit", type=_positive_int, default=100)
    listing.add_argument(
        "--after", type=int, default=0, help="list ids after this one (pagination)"
    )
    listing.add_argument("--json", action="store_true")
    for name, text in (
        ("disable", "disable an account and end its sessions"),
        ("enable", "enable a disabled account"),
    ):
        action = user_sub.add_parser(name, help=text)
        action.add_argument("username")
    for action_parser in user_sub.choices.values():
        _settings_flags(action_parser)

    invite = sub.add_parser("invite", help="registration invites (for registration = 'invite')")
    invite_sub = invite.add_subparsers(dest="invite_command", required=True, metavar="ACTION")
    inv_create = invite_sub.add_parser("create", help="create a registration invite code")
    inv_create.add_argument("--max-uses", type=_positive_int)
    inv_create.add_argument(
        "--expires-in", type=_positive_int, help="seconds until the code expires"
    )
    inv_list = invite_sub.add_parser("list", help="list invites, newest first")
    inv_list.add_argument("--limit", type=_positive_int, default=100)
    inv_revoke = invite_sub.add_parser("revoke", help="revoke an invite code")
    inv_revoke.add_argument("code")
    for action_parser in invite_sub.choices.values():
        _settings_flags(action_parser)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = (
        "host",
        "port",
        "data_dir",
        "database_url",
        "redis_url",
        "registration",
        "log_level",
        "worker_id",
    )
    return {k: getattr(args, k, None) for k in keys}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(f"miaou {__version__}")
        return 0
    try:
        settings = load_settings(args.config, overrides=_overrides(args))
        return COMMANDS[args.command](settings, args)
    except ConfigError as exc:
        print(f"miaou: configuration error: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    except MiaouError as exc:
        print(f"miaou: {exc.message}", file=sys.stderr)
        for field, problems in exc.errors.items():
            print(f"  {field}: {'; '.join(problems)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from miaou.app import Node
    from miaou.observability import configure_logging
    from miaou.server import bind_socket, serve_forever

    configure_logging(settings.log_level, json=settings.log_json)
    workers = getattr(args, "workers", 1)
    if workers > 1:
        from miaou.workers import check, serve_workers

        check(settings, workers)
        # Holds the port (and finds it taken) without listening: each worker listens on a
        # socket of its own (see miaou.workers).
        sock = bind_socket(settings.host, settings.port, reuse_port=True, listen=False)
        print(
            f"miaou {__version__} listening on http://{settings.host}:{sock.getsockname()[1]} "
            f"({workers} workers)",
            file=sys.stderr,
            flush=True,
        )
        return serve_workers(settings, sock, workers)
    sock = bind_socket(settings.host, settings.port)  # fails fast and clearly if taken
    node = Node(settings)
    print(
        f"miaou {__version__} listening on http://{settings.host}:{sock.getsockname()[1]} "
        f"({node.db.dialect})",
        file=sys.stderr,
        flush=True,
    )
    # uvicorn re-raises SIGTERM once its graceful shutdown is done; with the default handler
    # that would end a clean stop with status 143. Exit 0 instead (also if it comes early).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve_forever(node, sock)
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    """Background jobs only, for clusters where ``miaou serve`` runs with
    ``jobs_in_serve = false``: claims jobs from the shared database until SIGTERM/SIGINT,
    then puts the running ones back in the queue."""
    import msgspec

    from miaou.app import Node
    from miaou.observability import configure_logging

    configure_logging(settings.log_level, json=settings.log_json)

    async def go() -> int:
        node = Node(msgspec.structs.replace(settings, jobs_in_serve=True))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await node.start()
        try:
            print(
                f"miaou {__version__} worker running ({settings.job_processes} processes, "
                f"{node.db.dialect})",
                file=sys.stderr,
                flush=True,
            )
            await stop.wait()
        finally:
            await node.stop()
        return 0

    return asyncio.run(go())


def _with_node(work: Callable[[Any], Awaitable[int]]) -> Callable[[Settings, Any], int]:
    """Run ``work(node)`` on a migrated database, outside any server."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        async def go() -> int:
            from miaou.app import Node

            node = Node(settings)
            try:
                await node.start()
                return await work((node, args))
            finally:
                await node.stop()

        return asyncio.run(go())

    return run


async def _migrate(ctx: Any) -> int:
    node, _ = ctx
    from miaou.db import migrate

    print(f"database at revision {', '.join(sorted(await migrate.current_revisions(node.db)))}")
    return 0


def _config(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(settings.masked(), indent=2, sort_keys=True))
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Again: "):
            raise MiaouError("The passwords differ.", code="invalid_input")
        return first
    return sys.stdin.readline().rstrip("\n")


async def _user_create(ctx: Any) -> int:
    node, args = ctx
    user = await node.accounts.create_user(
        args.username, _read_password(), is_admin=args.admin, display_name=args.display_name
    )
    print(f"created user {user.username} (id {user.id}){' as administrator' if args.admin else ''}")
    return 0


async def _user_list(ctx: Any) -> int:
    node, args = ctx
    rows = await node.accounts.list_users(after=int(args.after), limit=args.limit)
    items = [
        {
            "id": str(r.id),
            "username": r.username,
            "display_name": r.display_name,
            "admin": bool(r.is_admin),
            "disabled": r.disabled_at is not None,
            "created": datetime.fromtimestamp(r.created_at / 1000, UTC).isoformat(),
        }
        for r in rows
    ]
    if args.json:
        print(json.dumps(items, indent=2))
    else:
        for item in items:
            flags = ",".join(f for f in ("admin", "disabled") if item[f]) or "-"
            print(f"{item['id']:>20}  {item['username']:<32}  {flags:<15} {item['created']}")
        if len(items) == args.limit:
            print(f"(more: --after {items[-1]['id']})")
    return 0


def _set_disabled(disabled: bool) -> Callable[[Any], Awaitable[int]]:
    async def run(ctx: Any) -> int:
        node, args = ctx
        row = await node.accounts.set_disabled(args.username, disabled)
        print(f"{'disabled' if disabled else 'enabled'} user {row.username}")
        return 0

    return run


async def _invite_create(ctx: Any) -> int:
    node, args = ctx
    from miaou.accounts.models import InviteCreate

    invite = await node.invites.create(
        InviteCreate(max_uses=args.max_uses, expires_in=args.expires_in), created_by=None
    )
    print(invite.code)
    return 0


async def _invite_list(ctx: Any) -> int:
    node, args = ctx
    for invite in await node.invites.list(limit=args.limit):
        expires = (
            datetime.fromtimestamp(invite.expires_at / 1000, UTC).isoformat()
            if invite.expires_at is not None
            else "never"
        )
        seats = f"{invite.uses}/{invite.max_uses if invite.max_uses is not None else '-'}"
        print(f"{invite.code}  uses {seats:<12} expires {expires}")
    return 0


async def _invite_revoke(ctx: Any) -> int:
    node, args = ctx
    await node.invites.revoke(args.code)
    print(f"revoked {args.code}")
    return 0


def _invite(settings: Settings, args: argparse.Namespace) -> int:
    actions = {"create": _invite_create, "list": _invite_list, "revoke": _invite_revoke}
    return _with_node(actions[args.invite_command])(settings, args)


def _user(settings: Settings, args: argparse.Namespace) -> int:
    actions = {
        "create": _user_create,
        "list": _user_list,
        "disable": _set_disabled(True),
        "enable": _set_disabled(False),
    }
    return _with_node(actions[args.user_command])(settings, args)


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _serve,
    "worker": _worker,
    "migrate": _with_node(_migrate),
    "config": _config,
    "user": _user,
    "invite": _invite,
}

if __name__ == "__main__":
    raise SystemExit(main())
