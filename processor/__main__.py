"""Command line: `python -m processor worker | local | sweep | admin ...`.

`admin` is the on-call toolbox (order, stuck, outbox, notifications, dlq, emails, token); every
admin command accepts `--json` for scripts and `--stack NAME` to target a deployed Pulumi stack.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from uuid import UUID

from processor.config import settings
from processor.entrypoints.worker import DELIVERIES, MAX_WAIT_SECONDS
from processor.observability import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m processor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="consume the order queue (Fargate, local)")
    worker.add_argument(
        "--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "4"))
    )
    worker.add_argument(
        "--wait-seconds",
        type=int,
        default=MAX_WAIT_SECONDS,
        help=f"long poll, 0-{MAX_WAIT_SECONDS} s (a stop waits for the poll in progress)",
    )
    worker.add_argument("--visibility-timeout", type=int, default=60)
    worker.add_argument("--sweep-interval", type=float, default=30.0)

    local = commands.add_parser("local", help="run the whole system locally")
    local.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    local.add_argument(
        "--services-only",
        action="store_true",
        help="no API server: serve it with `chalice local` (the processor still runs)",
    )
    local.add_argument(
        "--no-reload",
        action="store_true",
        help="do not restart the API and processor when product code changes",
    )
    local.add_argument("--app-only", action="store_true", help=argparse.SUPPRESS)
    local.add_argument(
        "--processor",
        choices=(*DELIVERIES, "none"),
        default="lambda",
        help="lambda (default, as the cloud's event source mapping), worker (as Fargate),"
        " or none (no consumer and no outbox sweeper)",
    )

    commands.add_parser("sweep", help="republish unsent outbox records once")

    admin = commands.add_parser("admin", help="operator tools")
    admin.add_argument("--json", action="store_true", help="machine-readable output")
    admin.add_argument("--stack", help="read endpoints from `pulumi stack output` of STACK")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    order = admin_commands.add_parser("order", help="an order with history, payment, outbox")
    order.add_argument("order_id", type=UUID)
    stuck = admin_commands.add_parser("stuck", help="orders not final after a while")
    stuck.add_argument("--older-than-seconds", type=float, default=300)
    outbox = admin_commands.add_parser("outbox", help="unsent outbox records; --replay sends")
    outbox.add_argument("--replay", action="store_true")
    outbox.add_argument(
        "--retry-given-up",
        action="store_true",
        help="make the given-up emails unsent again (after fixing their cause)",
    )
    notes = admin_commands.add_parser("notifications", help="latest notifications")
    notes.add_argument("--limit", type=int, default=20)
    notes.add_argument("--follow", action="store_true")
    _add_dlq_commands(admin_commands.add_parser("dlq", help="inspect and redrive the DLQ"))
    from processor.ops import invariants

    invariants.add_arguments(
        admin_commands.add_parser("check", help="verify stored data against the guarantees")
    )
    from processor.reconciliation import reconciler

    reconciler.add_arguments(
        admin_commands.add_parser(
            "reconcile", help="`check` plus our payments against the provider's; --fix repairs"
        )
    )
    emails = admin_commands.add_parser("emails", help="emails recorded by the local moto server")
    emails.add_argument(
        "--endpoint",
        help="the SES emulator (default: AWS_ENDPOINT_URL_SES, else AWS_ENDPOINT_URL, else the"
        " running local system's)",
    )
    token = admin_commands.add_parser(
        "token", help="a bearer token the local system (make run AUTH=jwt) accepts"
    )
    token.add_argument("--email", required=True, help="the customer's (verified) email")
    token.add_argument("--admin", action="store_true", help="with the operators' admin group")
    return parser


def _add_dlq_commands(parser: argparse.ArgumentParser) -> None:
    dlq_commands = parser.add_subparsers(dest="dlq_command", required=True)
    dlq_commands.add_parser("list", help="every dead letter; redundant copies are marked")
    dlq_commands.add_parser(
        "clear-redundant", help="delete the dead letters whose order is already final"
    )
    show = dlq_commands.add_parser("show")
    show.add_argument("message_id")
    redrive = dlq_commands.add_parser("redrive")
    redrive.add_argument("message_ids", nargs="*", help="default: all")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    if args.command == "worker":
        from processor.entrypoints.worker import WorkerOptions, run_worker

        return run_worker(
            WorkerOptions(
                concurrency=args.concurrency,
                wait_seconds=args.wait_seconds,
                visibility_timeout=args.visibility_timeout,
                sweep_interval=args.sweep_interval,
            )
        )
    if args.command == "local":
        from processor.devstack.local import run, run_app

        if args.app_only:  # the child `run` starts and restarts
            return run_app(args.port, args.services_only, args.processor)
        return run(args.port, args.services_only, args.processor, reload=not args.no_reload)
    if args.command == "sweep":
        from processor.ops.admin import emit
        from processor.outbox.relay import sweep

        result = sweep()
        emit({"sent": result.sent, "failed": result.failed}, as_json=True)
        return 0
    return _admin(args)


# Commands that read the database; without one configured they stop with one line.
_DATABASE_COMMANDS = frozenset({"order", "stuck", "outbox", "notifications", "check"})


def _admin(args: argparse.Namespace) -> int:
    """Run one admin command; expected conditions (nothing to talk to, an unknown order, a
    Ctrl-C on `--follow`) end with one line and an exit status, never a traceback. Exit 2
    means the command could not reach what it reads (so cron and CI never take it for a
    finding, which is 1)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from db.errors import DatabaseError
    from processor.domain.errors import OrderNotFound
    from processor.ops import local_system

    if args.stack:
        import subprocess

        from processor.ops import admin

        try:
            admin.load_stack_environment(args.stack)
        except subprocess.CalledProcessError as error:
            print(f"pulumi stack output --stack {args.stack} failed: {error.stderr}".strip(),
                  file=sys.stderr)
            return 2
    else:
        local_system.adopt()
    settings.cache_clear()
    if args.admin_command in _DATABASE_COMMANDS and not local_system.database_configured():
        print(local_system.NOT_RUNNING.format(repo=local_system.REPO), file=sys.stderr)
        return 2
    try:
        return _admin_command(args)
    except OrderNotFound as error:
        print(str(error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except DatabaseError as error:
        print(f"cannot read the database: {error}".strip(), file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError, OSError) as error:
        print(f"cannot reach AWS (or the local emulator): {error}", file=sys.stderr)
        return 2


def _admin_command(args: argparse.Namespace) -> int:
    from processor.ops import admin

    command = args.admin_command
    if command == "order":
        admin.emit(admin.show_order(args.order_id), args.json)
    elif command == "stuck":
        found = admin.stuck_orders(args.older_than_seconds)
        admin.emit(found, args.json)
        return 1 if found else 0
    elif command == "outbox":
        if args.retry_given_up:
            admin.emit(admin.retry_given_up(), args.json)
        elif args.replay:
            admin.emit(admin.replay_outbox(not args.json), args.json)
        else:
            admin.emit(admin.outbox_status(), args.json)
    elif command == "notifications":
        if args.json:
            admin.emit(admin.notifications(args.limit), True)
        else:
            admin.tail_notifications(args.limit, args.follow)
    elif command == "check":
        from processor.ops import invariants

        return invariants.run(args)
    elif command == "reconcile":
        from processor.reconciliation import reconciler

        return reconciler.run(args)
    elif command == "dlq":
        return _dlq(args, args.json)
    elif command == "token":
        from processor.devstack.issuer import local_token
        from processor.devstack.local import DEFAULT_DATA

        data_dir = Path(os.environ.get("ORDERFLOW_DATA_DIR", DEFAULT_DATA))
        try:
            print(local_token(data_dir, args.email, args.admin))
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 2
    elif command == "emails":
        from processor.devstack.local import sent_emails
        from processor.ops.local_system import NOT_RUNNING, REPO

        endpoint = args.endpoint or os.environ.get(
            "AWS_ENDPOINT_URL_SES", os.environ.get("AWS_ENDPOINT_URL")
        )
        if not endpoint:
            print(NOT_RUNNING.format(repo=REPO), file=sys.stderr)
            return 2
        admin.emit(sent_emails(endpoint), args.json)
    return 0


def _dlq(args: argparse.Namespace, as_json: bool) -> int:
    from processor.ops import dlq
    from processor.ops.admin import emit

    config = settings()
    if not config.dlq_url or not config.queue_url:
        print(
            "no queues to read: start `make run` (or `make services`), or set ORDER_QUEUE_URL"
            " and ORDER_DLQ_URL (or use --stack STACK)",
            file=sys.stderr,
        )
        return 2
    if args.dlq_command == "redrive":
        moved = dlq.redrive(config.dlq_url, config.queue_url, set(args.message_ids) or None)
        emit({"redriven": moved}, as_json)
        return 0
    if args.dlq_command == "clear-redundant":
        emit({"cleared": dlq.clear_redundant(config.dlq_url)}, as_json)
        return 0
    letters = [
        {
            "message_id": d.message_id,
            "reason": d.reason,
            "receive_count": d.receive_count,
            "order_id": d.order_id,
            "order_status": d.order_status,
            "redundant": d.redundant,
            "body": d.body,
        }
        for d in dlq.peek(config.dlq_url)
    ]
    print(dlq.READ_NOTE, file=sys.stderr)
    if args.dlq_command == "list":
        emit(letters, as_json)
        return 0
    chosen = [letter for letter in letters if letter["message_id"] == args.message_id]
    if not chosen:
        print(f"no message {args.message_id} in the DLQ", file=sys.stderr)
        return 1
    emit(chosen[0], as_json)
    return 0

if __name__ == "__main__":
    sys.exit(main())
