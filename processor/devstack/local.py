"""The whole system on a laptop: embedded PostgreSQL, moto servers for SQS/SNS and for SES, each
in its own process, the Chalice API on Chalice's local server, and the processor (the Chalice
SQS handler fed as the event source mapping would, or the Fargate-style worker) with its
outbox sweeper.

`python -m processor local` runs everything; `--services-only` leaves the API to
`cd chalice_app && chalice local` and prints the commands for it. Any number of SIGINT/SIGTERM
stops it all within 10 s (see processor.entrypoints.stopping), PostgreSQL included when it
started it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from processor.devstack.event_source import LambdaDelivery
    from processor.devstack.localstripe import LocalStripe

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO / ".local"
REGION = "us-east-1"
# Concurrent consumers (Lambda mode: concurrent handler invocations, as the mapping's maximum
# concurrency). Each waits on moto and PostgreSQL most of the time, so eight keep a laptop busy.
CONCURRENCY = 8


@dataclass
class MotoProcess:
    """`python -m processor.devstack.emulator`: moto in its own process and session."""

    process: subprocess.Popen[bytes]
    endpoint: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_ready(self, timeout: float = 30) -> MotoProcess:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2):  # noqa: S310 (our URL)
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the moto server {self.endpoint} did not start") from None
                time.sleep(0.05)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick for port 0).

    The one definition for the local system, the benchmarks and the tests: each server they
    start gets a port of its own, so runs side by side never collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spawn_moto(port: int = 0) -> MotoProcess:
    """Start the emulator (port 0: a free one); `wait_ready()` returns once it answers.

    Its own process, so the emulator does not share a GIL with the API and the processor; its
    own session, so a Ctrl-C to the terminal's group does not stop it before the processor has
    settled its in-flight messages. It exits by itself if this process dies (SIGKILL)."""
    port = port or free_port()
    process = subprocess.Popen(  # noqa: S603 (this interpreter, our module)
        [sys.executable, "-m", "processor.devstack.emulator", str(port), str(os.getpid())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return MotoProcess(process, f"http://127.0.0.1:{port}")


def start_emulators(port: int = 0) -> tuple[MotoProcess, MotoProcess]:
    """moto for SQS and SNS on `port`, and a second one for SES (`AWS_ENDPOINT_URL_SES`) on
    the next port (both free ones for port 0).

    SES takes five of an order's seven calls; in one process moto's GIL serialises them with
    the queue's, in two they run side by side. Started together, so start-up costs one wait."""
    sqs_sns, ses = spawn_moto(port), spawn_moto(port + 1 if port else 0)
    try:
        return sqs_sns.wait_ready(), ses.wait_ready()
    except BaseException:
        sqs_sns.stop()
        ses.stop()
        raise


@dataclass
class LocalServices:
    """Backing services and the environment variables that point at them."""

    env: dict[str, str]
    emulators: tuple[MotoProcess | LocalStripe, ...]
    postgres: Any | None

    def stop(self) -> None:
        for emulator in self.emulators:  # all at once: the stop has 10 s in all
            emulator.process.terminate()
        for emulator in self.emulators:
            emulator.stop()
        if self.postgres is not None:
            self.postgres.cleanup()


def start_services(data_dir: Path = DEFAULT_DATA, moto_port: int = 0) -> LocalServices:
    """Start PostgreSQL (unless DATABASE_URL is set) and moto; create queues; migrate."""
    from db.migrate import migrate
    from processor.devstack.postgres import ensure_database, start_server

    postgres = None
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        postgres = start_server(data_dir / "pgdata")
    try:
        if postgres is not None:
            database_url = ensure_database(postgres.get_uri(), "orderflow")
        assert database_url is not None
        migrate(database_url)
        moto, ses = start_emulators(moto_port)
    except BaseException:
        if postgres is not None:
            postgres.cleanup()
        raise
    env = {
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_ENDPOINT_URL_SES": ses.endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SENDER_EMAIL": os.environ.get("SENDER_EMAIL", "orders@orderflow.local"),
    }
    os.environ.update(env)
    env.update(create_aws_resources(env["SENDER_EMAIL"]))
    emulators: tuple[MotoProcess | LocalStripe, ...] = (moto, ses)
    if os.environ.get("PAYMENT_PROVIDER", "simulator").lower() == "stripe":
        stripe = start_localstripe(int(os.environ.get("STRIPE_PORT", "8420")))
        emulators += (stripe,)
        env.update(stripe_environment(stripe.api_base))
    os.environ.update(env)
    return LocalServices(env=env, emulators=emulators, postgres=postgres)


def start_localstripe(port: int) -> LocalStripe:
    """localstripe for `PAYMENT_PROVIDER=stripe` (see processor/devstack/localstripe.py)."""
    from processor.devstack import localstripe

    return localstripe.spawn(port or free_port()).wait_ready()


def stripe_environment(api_base: str) -> dict[str, str]:
    """Point the app at a Stripe API (localstripe here) with its key in Secrets Manager (moto),
    read at run time as in the cloud: the key itself is in no environment variable."""
    import boto3

    arn = boto3.client("secretsmanager").create_secret(
        Name=f"orderflow-stripe-secret-key-{os.getpid()}", SecretString="sk_test_orderflow_local"
    )["ARN"]
    return {
        "PAYMENT_PROVIDER": "stripe",
        "STRIPE_API_BASE": api_base,
        "STRIPE_SECRET_KEY_ARN": arn,
    }


def register_stripe_webhook(api_base: str, api_port: int) -> dict[str, str]:
    """Register the local API's `POST /webhooks/stripe` with localstripe (its own
    `/_config/webhooks/<name>` call, with a fresh signing secret), so its events reach the app
    signed as Stripe signs them. The secret goes into Secrets Manager (moto), read at run time
    through its ARN as in the cloud."""
    import secrets

    import boto3

    secret = f"whsec_local_{secrets.token_hex(16)}"
    form = urllib.parse.urlencode(
        {"url": f"http://127.0.0.1:{api_port}/webhooks/stripe", "secret": secret}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (our localstripe, http on loopback)
        f"{api_base}/_config/webhooks/orderflow", data=form
    )
    urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 (our localstripe)
    arn = boto3.client("secretsmanager").create_secret(
        Name=f"orderflow-stripe-webhook-secret-{os.getpid()}", SecretString=secret
    )["ARN"]
    return {"STRIPE_WEBHOOK_SECRET_ARN": arn}


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

    from processor.domain.errors import MethodNotAllowed, RouteNotFound, ServiceError
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
            error: ServiceError
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


def _delivery(processor: str, env: dict[str, str]) -> LambdaDelivery | None:
    """The Chalice handler as the event source mapping calls it, or None for the worker's own."""
    if processor != "lambda":
        return None
    from processor.devstack.event_source import LambdaDelivery

    return LambdaDelivery(env["ORDER_QUEUE_URL"], env["AWS_DEFAULT_REGION"])


def run(
    port: int, services_only: bool, processor: str = "lambda", concurrency: int = CONCURRENCY
) -> int:
    """`make run` (`services_only=False`) and `make services`; returns the exit status.

    Signals only set a flag (processor.entrypoints.stopping); this thread does the stopping: the API
    first (no new orders), then the processor (in-flight messages finish, the rest are
    released), then moto and PostgreSQL, all within 10 s. A signal during start-up stops as
    soon as the services are up, so PostgreSQL is never left running."""
    from processor.entrypoints.stopping import StopSignals
    from processor.entrypoints.worker import STOP_SECONDS, Worker, WorkerOptions, stop_within

    os.environ.setdefault("OUTBOX_GRACE_SECONDS", "5")
    os.environ.setdefault("METRICS_DISABLED", "1")
    with StopSignals() as signals:
        services = start_services(
            Path(os.environ.get("ORDERFLOW_DATA_DIR", DEFAULT_DATA)),
            moto_port=int(os.environ.get("MOTO_PORT", "5050")),
        )
        api = worker = runner = api_thread = None
        try:
            if "STRIPE_API_BASE" in services.env and not signals.requested:
                webhook = register_stripe_webhook(services.env["STRIPE_API_BASE"], port)
                services.env.update(webhook)
                os.environ.update(webhook)
            if not signals.requested:
                if not services_only:
                    api = start_api("127.0.0.1", port)
                    api_thread = threading.Thread(target=api.serve_forever, name="api", daemon=True)
                    api_thread.start()
                if processor != "none":
                    options = WorkerOptions(
                        concurrency=concurrency, wait_seconds=1, sweep_interval=5
                    )
                    worker = Worker(options, delivery=_delivery(processor, services.env))
                    runner = threading.Thread(target=worker.run, name="processor", daemon=True)
                    runner.start()
                if services_only:
                    _print_services_banner(port, services.env, processor)
                else:
                    _print_banner(port, services.env, processor)
                signals.wait()
            print(f"\nstopping (signal {signals.signum})...", flush=True)
        finally:
            started = time.monotonic()
            if api is not None and api_thread is not None:
                api.shutdown()
                api_thread.join(2)
            if worker is not None and runner is not None:
                stop_within(worker, runner, STOP_SECONDS - 3)
            services.stop()
    print(f"stopped in {time.monotonic() - started:.1f} s", flush=True)
    return 0


def _processor_line(processor: str) -> str:
    return {
        "lambda": "Chalice process_orders handler, fed as the SQS event source mapping does",
        "worker": "the Fargate-style worker (python -m processor worker)",
        "none": "not running (--processor none): orders stay PENDING",
    }[processor]


def _payments_line(env: dict[str, str]) -> str:
    if env.get("PAYMENT_PROVIDER") == "stripe":
        return (
            f"Stripe (localstripe at {env['STRIPE_API_BASE']}); orders need payment_method;"
            " its events are delivered, signed, to POST /webhooks/stripe"
        )
    return "the deterministic simulator (PAYMENT_PROVIDER=stripe for localstripe)"


def _print_services_banner(port: int, env: dict[str, str], processor: str) -> None:
    print(
        f"""
orderflow services are running (the API is yours to serve)
  AWS (moto)   {env["AWS_ENDPOINT_URL"]} (SES: {env["AWS_ENDPOINT_URL_SES"]})
  PostgreSQL   {env["DATABASE_URL"]}
  Processor    {_processor_line(processor)}
  Payments     {_payments_line(env)}

Serve the API with chalice local: in another shell, from {REPO}, run
  . {_venv()}/bin/activate
{_exports(env, indent="  ")}
  cd chalice_app && chalice local --port {port}

Ready. Ctrl-C stops everything.""",
        flush=True,
    )


def _print_banner(port: int, env: dict[str, str], processor: str) -> None:
    base = f"http://127.0.0.1:{port}"
    print(
        f"""
orderflow is running
  API          {base}/orders  (reference: {base}/docs)
  AWS (moto)   {env["AWS_ENDPOINT_URL"]} (SES: {env["AWS_ENDPOINT_URL_SES"]})
  PostgreSQL   {env["DATABASE_URL"]}
  Processor    {_processor_line(processor)}
  Payments     {_payments_line(env)}

Try:
  curl -s -X POST {base}/orders -H 'Content-Type: application/json' \\
    -d '{{"customer_email": "ada@example.com", "customer_name": "Ada",
         "payment_method": "pm_card_visa",
         "items": [{{"product_name": "Widget", "quantity": 2, "unit_price": 24.99}}]}}'
  curl -s {base}/orders/<order_id>

Admin CLI against this stack: in another shell, from {REPO}, run
{_exports(env, indent="  ")}
  {_venv()}/bin/python -m processor admin order <order_id>
  {_venv()}/bin/python -m processor admin emails

Ready. Ctrl-C stops everything.""",
        flush=True,
    )


def _venv() -> Path:
    """This interpreter's venv, relative to the repository when inside it (`.venv`)."""
    venv = Path(sys.prefix)
    return venv.relative_to(REPO) if venv.is_relative_to(REPO) else venv


def _exports(env: dict[str, str], indent: str = "") -> str:
    """Shell lines that point another process (chalice local, the admin CLI) at this stack."""
    return "\n".join(f"{indent}export {key}='{value}'" for key, value in env.items())
