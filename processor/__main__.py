"""Command line: `python -m processor worker | local | sweep | dlq ... | admin ...`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from processor.config import settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="consume the order queue (Fargate, local)")
    worker.add_argument(
        "--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "4"))
    )
    worker.add_argument("--wait-seconds", type=int, default=20)
    worker.add_argument("--visibility-timeout", type=int, default=60)
    worker.add_argument("--sweep-interval", type=float, default=30.0)

    local = commands.add_parser("local", help="run the whole system locally")
    local.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    local.add_argument("--services-only", action="store_true")

    commands.add_parser("sweep", help="republish unsent outbox records once")

    dlq = commands.add_parser("dlq", help="inspect and redrive dead-lettered messages")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_commands.add_parser("list")
    show = dlq_commands.add_parser("show")
    show.add_argument("message_id")
    again = dlq_commands.add_parser("redrive")
    again.add_argument("message_ids", nargs="*", help="default: all")

    admin = commands.add_parser("admin", help="operator tools")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    emails = admin_commands.add_parser("emails", help="emails recorded by the local moto server")
    emails.add_argument(
        "--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5050")
    )

    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))

    if args.command == "worker":
        from processor.worker import WorkerOptions, run_worker

        run_worker(
            WorkerOptions(
                concurrency=args.concurrency,
                wait_seconds=args.wait_seconds,
                visibility_timeout=args.visibility_timeout,
                sweep_interval=args.sweep_interval,
            )
        )
        return 0
    if args.command == "local":
        from processor.local import run

        return run(args.port, args.services_only)
    if args.command == "sweep":
        from processor.outbox import sweep

        result = sweep()
        print(json.dumps({"sent": result.sent, "failed": result.failed}))
        return 0
    if args.command == "dlq":
        return _dlq(args)
    if args.command == "admin" and args.admin_command == "emails":
        from processor.local import sent_emails

        for email in sent_emails(args.endpoint):
            print(json.dumps(email, indent=2))
        return 0
    return 2


def _dlq(args: argparse.Namespace) -> int:
    from processor import dlq

    config = settings()
    if not config.dlq_url or not config.queue_url:
        print("set ORDER_QUEUE_URL and ORDER_DLQ_URL", file=sys.stderr)
        return 2
    if args.dlq_command == "redrive":
        moved = dlq.redrive(config.dlq_url, config.queue_url, set(args.message_ids) or None)
        print(f"redrove {moved} message(s)")
        return 0
    letters = dlq.peek(config.dlq_url)
    if args.dlq_command == "list":
        for letter in letters:
            print(f"{letter.message_id}  receives={letter.receive_count}  {letter.reason}")
        print(f"{len(letters)} message(s)")
        return 0
    for letter in letters:
        if letter.message_id == args.message_id:
            print(
                json.dumps(
                    {
                        "message_id": letter.message_id,
                        "reason": letter.reason,
                        "receive_count": letter.receive_count,
                        "body": letter.body,
                    },
                    indent=2,
                )
            )
            return 0
    print(f"no message {args.message_id} in the DLQ", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
