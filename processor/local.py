"""The whole system on a laptop: embedded PostgreSQL, a moto server for SQS/SNS/SES, the
Chalice API on Chalice's local server, and the worker with its outbox sweeper.

`python -m processor local` runs everything; `--services-only` starts just the backing
services and prints the environment for `cd chalice_app && chalice local`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / ".local"
REGION = "us-east-1"


@dataclass
class LocalServices:
    """Backing services and the environment variables that point at them."""

    env: dict[str, str]
    moto: Any
    postgres: Any | None

    def stop(self) -> None:
        self.moto.stop()
        if self.postgres is not None:
            self.postgres.cleanup()


def start_services(data_dir: Path = DEFAULT_DATA, moto_port: int = 0) -> LocalServices:
    """Start PostgreSQL (unless DATABASE_URL is set) and moto; create queues; migrate."""
    from moto.server import ThreadedMotoServer

    from db.embedded import ensure_database, start_server
    from db.migrate import migrate

    postgres = None
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        postgres = start_server(data_dir / "pgdata")
        database_url = ensure_database(postgres.get_uri(), "orderflow")
    migrate(database_url)

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    env = {
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SENDER_EMAIL": os.environ.get("SENDER_EMAIL", "orders@orderflow.local"),
    }
    os.environ.update(env)
    env.update(create_aws_resources(env["SENDER_EMAIL"]))
    os.environ.update(env)
    return LocalServices(env=env, moto=moto, postgres=postgres)


def create_aws_resources(sender_email: str, max_receive_count: int = 5) -> dict[str, str]:
    """The queue with its DLQ, the topic and a verified sender, as in the cloud stack."""
    import boto3

    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName="orderflow-orders-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    queue_url = sqs.create_queue(
        QueueName="orderflow-orders",
        Attributes={"VisibilityTimeout": "60", "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    topic_arn = boto3.client("sns").create_topic(Name="orderflow-notifications")["TopicArn"]
    boto3.client("ses").verify_email_identity(EmailAddress=sender_email)
    return {
        "ORDER_QUEUE_URL": queue_url,
        "ORDER_DLQ_URL": dlq_url,
        "NOTIFICATION_TOPIC_ARN": topic_arn,
    }


def sent_emails(endpoint_url: str) -> list[dict[str, Any]]:
    """Emails moto recorded for SES `send_email`, oldest first."""
    if not endpoint_url.startswith(("http://", "https://")):
        raise ValueError("endpoint must be an http(s) URL")
    url = f"{endpoint_url}/moto-api/data.json"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (scheme checked)
        data = json.load(response)
    return [
        {
            "to": message.get("destinations", {}).get("ToAddresses", []),
            "from": message.get("source"),
            "subject": message.get("subject"),
            "body": message.get("body"),
        }
        for message in data.get("ses", {}).get("Message", [])
    ]


def start_api(host: str, port: int) -> Any:
    """Chalice's local HTTP server for `chalice_app`, answering unknown routes in JSON."""
    sys.path.insert(0, str(REPO / "chalice_app"))
    from urllib.parse import parse_qsl, urlencode

    from chalice.cli.factory import CLIFactory
    from chalice.local import (
        ChaliceRequestHandler,
        CustomLocalChalice,
        LocalChalice,
        LocalDevServer,
        LocalGatewayException,
        RouteMatcher,
        ThreadedHTTPServer,
    )

    from processor.errors import MethodNotAllowed, RouteNotFound, ServiceError
    from processor.jsonutil import dumps
    from processor.observability import mask_email

    class JsonErrorHandler(ChaliceRequestHandler):
        # Headers and body leave in two writes; with Nagle's algorithm on, a keep-alive
        # client's delayed ACK holds back every response body by ~40 ms (TCP_NODELAY).
        disable_nagle_algorithm = True

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # The access log must not hold customer emails (`GET /orders?customer_email=`).
            method, _, rest = self.requestline.partition(" ")
            target, _, version = rest.rpartition(" ")
            path, sep, query = target.partition("?")
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, mask_email(v) if k == "customer_email" else v) for k, v in pairs], safe="*@"
            )
            self.log_message('"%s %s%s%s %s" %s %s', method, path, sep, query, version, code, size)

        def _send_error_response(self, error: LocalGatewayException) -> None:
            body = RouteNotFound(f"no route for {self.command} {self.path.split('?')[0]}").body()
            self._send_http_response(404, {"Content-Type": "application/json"}, dumps(body))

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            # http.server's own errors (unknown method such as TRACE, malformed request line,
            # oversized headers) in JSON like every other answer, not an HTML page; a method
            # the server does not know is a 405 for the client, not a 501 server error, with
            # the `Allow` header RFC 9110 requires (what Chalice sends for a known method).
            headers: dict[str, str] = {}
            if code == 501:
                allowed = _allowed_methods(self.path)
                if allowed:
                    code, error = 405, MethodNotAllowed(f"method {self.command} is not allowed")
                    headers["Allow"] = ", ".join(allowed)
                else:
                    code = 404
                    error = RouteNotFound(f"no route for {self.command} {self.path.split('?')[0]}")
            else:
                error = ServiceError(message or self.responses.get(code, ("error",))[0])
            self.log_error("code %d, message %s", code, message)
            payload = dumps(error.body()).encode()
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.close_connection = True

    class Server(ThreadedHTTPServer):
        # socketserver's default listen backlog of 5 makes the kernel drop connections when a
        # few dozen clients connect at once (load tests, retry storms).
        request_queue_size = 128

    def _allowed_methods(path: str) -> list[str]:
        """The methods of the route that `path` names, as Chalice lists them; none if none."""
        try:
            route = RouteMatcher(list(app.routes)).match_route(path).route
        except ValueError:
            return []
        return list(app.routes[route])

    factory = CLIFactory(str(REPO / "chalice_app"))
    config = factory.create_config_obj(chalice_stage_name="dev")
    app = factory.load_chalice_app()
    if not isinstance(app, CustomLocalChalice):  # a second server in one process reuses it
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=JsonErrorHandler, server_cls=Server)


def run(port: int, services_only: bool, worker_concurrency: int = 2) -> int:
    from processor.worker import Worker, WorkerOptions

    os.environ.setdefault("OUTBOX_GRACE_SECONDS", "5")
    os.environ.setdefault("METRICS_DISABLED", "1")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    services = start_services(
        Path(os.environ.get("ORDERFLOW_DATA_DIR", DEFAULT_DATA)),
        moto_port=int(os.environ.get("MOTO_PORT", "5050")),
    )
    threads: list[threading.Thread] = []
    api = worker = None
    try:
        if services_only:
            print("Backing services are running. In another shell:\n")
            print(_exports(services.env))
            print("\ncd chalice_app && chalice local --port 8000\n")
        else:
            api = start_api("127.0.0.1", port)
            threads.append(threading.Thread(target=api.serve_forever, name="api", daemon=True))
            worker = Worker(
                WorkerOptions(concurrency=worker_concurrency, wait_seconds=1, sweep_interval=5),
                stop,
            )
            threads.append(threading.Thread(target=worker.run, name="worker"))
            for thread in threads:
                thread.start()
            _print_banner(port, services.env)
        sys.stdout.flush()
        stop.wait()
        print("\nstopping...", flush=True)
    finally:
        stop.set()
        if api is not None:
            api.shutdown()
        for thread in threads:
            thread.join(timeout=30)
        services.stop()
    print("stopped", flush=True)
    return 0


def _print_banner(port: int, env: dict[str, str]) -> None:
    base = f"http://127.0.0.1:{port}"
    print(
        f"""
orderflow is running
  API          {base}/orders  (reference: {base}/docs)
  AWS (moto)   {env["AWS_ENDPOINT_URL"]}  (sent emails: python -m processor admin emails)
  PostgreSQL   {env["DATABASE_URL"]}

Try:
  curl -s -X POST {base}/orders -H 'Content-Type: application/json' \\
    -d '{{"customer_email": "ada@example.com", "customer_name": "Ada",
         "items": [{{"product_name": "Widget", "quantity": 2, "unit_price": 24.99}}]}}'
  curl -s {base}/orders/<order_id>

Admin CLI against this stack, in another shell:
{_exports(env, indent="  ")}
  .venv/bin/python -m processor admin order <order_id>

Ready. Ctrl-C stops everything.""",
        flush=True,
    )


def _exports(env: dict[str, str], indent: str = "") -> str:
    """Shell lines that point another process (chalice local, the admin CLI) at this stack."""
    return "\n".join(f"{indent}export {key}='{value}'" for key, value in env.items())
