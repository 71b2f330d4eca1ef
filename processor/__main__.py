"""Command line: `python -m processor worker | local | sweep | admin ...`.

`admin` is the on-call toolbox (order, stuck, outbox, notifications, dlq, emails); every admin
command accepts `--json` for scripts and `--stack NAME` to target a deployed Pulumi stack.
"""

from __future__ import annotations

import argparse
import os
import sys
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
        default=os.environ.get(
            "AWS_ENDPOINT_URL_SES", os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5051")
        ),
    )
    return parser


def _add_dlq_commands(parser: argparse.ArgumentParser) -> None:
    dlq_commands = parser.add_subparsers(dest="dlq_command", required=True)
    dlq_commands.add_parser("list")
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
        from processor.devstack.local import run

        return run(args.port, args.services_only, args.processor)
    if args.command == "sweep":
        from processor.ops.admin import emit
        from processor.outbox.relay import sweep

        result = sweep()
        emit({"sent": result.sent, "failed": result.failed}, as_json=True)
        return 0
    return _admin(args)


def _admin(args: argparse.Namespace) -> int:
    from processor.ops import admin

    if args.stack:
        admin.load_stack_environment(args.stack)
        settings.cache_clear()
    command = args.admin_command
    if command == "order":
        admin.emit(admin.show_order(args.order_id), args.json)
    elif command == "stuck":
        found = admin.stuck_orders(args.older_than_seconds)
        admin.emit(found, args.json)
        return 1 if found else 0
    elif command == "outbox":
        admin.emit(
            admin.replay_outbox(not args.json) if args.replay else admin.outbox_status(), args.json
        )
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
    elif command == "emails":
        from processor.devstack.local import sent_emails

        admin.emit(sent_emails(args.endpoint), args.json)
    return 0


def _dlq(args: argparse.Namespace, as_json: bool) -> int:
    from processor.ops import dlq
    from processor.ops.admin import emit

    config = settings()
    if not config.dlq_url or not config.queue_url:
        print("set ORDER_QUEUE_URL and ORDER_DLQ_URL (or use --stack)", file=sys.stderr)
        return 2
    if args.dlq_command == "redrive":
        moved = dlq.redrive(config.dlq_url, config.queue_url, set(args.message_ids) or None)
        emit({"redriven": moved}, as_json)
        return 0
    letters = [
        {
            "message_id": d.message_id,
            "reason": d.reason,
            "receive_count": d.receive_count,
            "body": d.body,
        }
        for d in dlq.peek(config.dlq_url)
    ]
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
