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
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from processor.devstack.event_source import LambdaDelivery
    from processor.devstack.localstripe import LocalStripe

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO / ".local"
REGION = "us-east-1"
# Concurrent consumers (Lambda mode: concurrent handler invocations, as the mapping's maximum
# concurrency). Each waits on moto and PostgreSQL most of the time, so eight keep a laptop busy.
CONCURRENCY = 8


class LocalSetupError(Exception):
    """The local system cannot start for a reason its user can fix (a busy port, an emulator
    that exited): `make run` prints the message, not a traceback."""


@dataclass
class MotoProcess:
    """`python -m processor.devstack.emulator`: moto in its own process and session; its
    stderr goes to an unnamed temporary file, read only when it fails to start."""

    process: subprocess.Popen[bytes]
    endpoint: str
    stderr: IO[bytes]
    setting: str = "the emulator's port"

    def stop(self) -> None:
        from processor.devstack.processes import stop_process

        stop_process(self.process)
        self.stderr.close()

    def wait_ready(self, timeout: float = 30) -> MotoProcess:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2):  # noqa: S310 (our URL)
                    return self
            except OSError:
                exited = self.process.poll() is not None
                if exited or time.monotonic() > deadline:
                    self.stderr.seek(0)
                    last = self.stderr.read().decode(errors="replace").splitlines()[-STDERR_LINES:]
                    self.stop()
                    what = "exited" if exited else f"did not answer within {timeout:.0f} s"
                    shown = "".join(f"\n  | {line}" for line in last) or " (no output)"
                    raise LocalSetupError(
                        f"the moto server {self.endpoint} ({self.setting}) {what};"
                        f" its last output:{shown}"
                    ) from None
                time.sleep(0.05)


STDERR_LINES = 10  # of an emulator's output shown when it fails to start


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick for port 0).

    The one definition for the local system, the benchmarks and the tests: each server they
    start gets a port of its own, so runs side by side never collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_port_free(port: int, setting: str) -> None:
    """Refuse, in one line naming the port and the setting that chose it, a port something
    already listens on (the emulator would only die with a bind error)."""
    with socket.socket() as probe:
        # As the server binds: a port whose old connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise LocalSetupError(
                f"port {port} ({setting}) is in use: set {setting.split(',')[0]} to a free port,"
                " or to 0 for any free one"
            ) from None


def spawn_moto(port: int = 0, setting: str = "the emulator's port") -> MotoProcess:
    """Start the emulator (port 0: a free one); `wait_ready()` returns once it answers.

    Its own process, so the emulator does not share a GIL with the API and the processor; its
    own session, so a Ctrl-C to the terminal's group does not stop it before the processor has
    settled its in-flight messages. It exits by itself if this process dies (SIGKILL)."""
    if port:
        check_port_free(port, setting)
    port = port or free_port()
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by MotoProcess.stop)
    process = subprocess.Popen(  # noqa: S603 (this interpreter, our module)
        [sys.executable, "-m", "processor.devstack.emulator", str(port), str(os.getpid())],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
    return MotoProcess(process, f"http://127.0.0.1:{port}", stderr, setting)


def start_emulators(port: int = 0, ses_port: int | None = None) -> tuple[MotoProcess, MotoProcess]:
    """moto for SQS and SNS on `port` (MOTO_PORT), and a second one for SES
    (`AWS_ENDPOINT_URL_SES`) on `ses_port` (SES_PORT; unset: the next port, or a free one when
    `port` is 0; 0: a free one).

    SES takes five of an order's seven calls; in one process moto's GIL serialises them with
    the queue's, in two they run side by side. Started together, so start-up costs one wait."""
    if ses_port is None:
        ses_port, ses_setting = (port + 1 if port else 0), "SES_PORT, default MOTO_PORT + 1"
    else:
        ses_setting = "SES_PORT"
    sqs_sns = spawn_moto(port, "MOTO_PORT")
    try:
        ses = spawn_moto(ses_port, ses_setting)
    except BaseException:
        sqs_sns.stop()
        raise
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
    issuer: Any | None = None

    def start_issuer(self, data_dir: Path) -> None:
        """With AUTH=jwt, the local token issuer (processor.devstack.issuer), and the JWT_*
        settings that point the authorizer at it (unless JWT_ISSUER names another issuer)."""
        from processor.config import auth_mode

        if auth_mode() != "jwt" or os.environ.get("JWT_ISSUER"):
            return
        from processor.devstack.issuer import start_issuer

        self.issuer = start_issuer(data_dir)
        self.env.update(self.issuer.env)
        os.environ.update(self.issuer.env)

    def stop(self) -> None:
        if self.issuer is not None:
            self.issuer.stop()
        for emulator in self.emulators:  # all at once: the stop has 10 s in all
            emulator.process.terminate()
        for emulator in self.emulators:
            emulator.stop()
        if self.postgres is not None:
            self.postgres.cleanup()


def start_services(
    data_dir: Path = DEFAULT_DATA, moto_port: int = 0, ses_port: int | None = None
) -> LocalServices:
    """Start PostgreSQL (unless DATABASE_URL is set) and moto (unless AWS_ENDPOINT_URL is
    set: an emulator of your own, which then outlives the stop); create queues; migrate."""
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
        given = os.environ.get("AWS_ENDPOINT_URL", "")
        emulators: tuple[MotoProcess, ...] = () if given else start_emulators(moto_port, ses_port)
    except BaseException:
        if postgres is not None:
            postgres.cleanup()
        raise
    env = {
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL": emulators[0].endpoint if emulators else given,
        "AWS_ENDPOINT_URL_SES": (
            emulators[1].endpoint if emulators else os.environ.get("AWS_ENDPOINT_URL_SES") or given
        ),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SENDER_EMAIL": os.environ.get("SENDER_EMAIL", "orders@orderflow.local"),
    }
    os.environ.update(env)
    env.update(create_aws_resources(env["SENDER_EMAIL"]))
    processes: tuple[MotoProcess | LocalStripe, ...] = emulators
    if os.environ.get("PAYMENT_PROVIDER", "simulator").lower() == "stripe":
        stripe = start_localstripe(int(os.environ.get("STRIPE_PORT", "8420")))
        processes += (stripe,)
        env.update(stripe_environment(stripe.api_base))
    os.environ.update(env)
    return LocalServices(env=env, emulators=processes, postgres=postgres)


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
    from chalice.cli.factory import CLIFactory
    from chalice.local import (
        ChaliceRequestHandler,
        CustomLocalChalice,
        LocalChalice,
        LocalDevServer,
        LocalGatewayException,
        NotAuthorizedError,
        RouteMatcher,
        ThreadedHTTPServer,
    )

    from processor.domain.errors import MethodNotAllowed, RouteNotFound, ServiceError, Unauthorized
    from processor.jsonutil import dumps

    class JsonErrorHandler(ChaliceRequestHandler):
        # Headers and body leave in two writes; with Nagle's algorithm on, a keep-alive
        # client's delayed ACK holds back every response body by ~40 ms (TCP_NODELAY).
        disable_nagle_algorithm = True

        def _send_error_response(self, error: LocalGatewayException) -> None:
            if isinstance(error, NotAuthorizedError):
                # The JWT authorizer's 401 (already our shape), or Chalice's own for a request
                # without `Authorization`, which API Gateway's gateway response reshapes too.
                from chalicelib.auth import challenge

                headers = {"Content-Type": "application/json", **challenge()}
                headers.update(error.headers)
                payload = error.body or b""
                if b'"error"' not in payload:
                    payload = dumps(Unauthorized("missing bearer token").body()).encode()
                self._send_http_response(401, headers, payload)
                return
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

    from chalicelib.http import mask_local_access_log

    mask_local_access_log()  # in case the app module was imported before chalice.local
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
    port: int, services_only: bool, processor: str = "lambda", reload: bool = True
) -> int:
    """`make run` (`services_only=False`) and `make services`; returns the exit status.

    This process owns the services (PostgreSQL, moto); the product code (migrations, API,
    processor) runs in a child that processor.devstack.reload replaces when its files change
    (with `reload=False`, one child for the whole run). Signals only set a flag
    (processor.entrypoints.stopping); a Ctrl-C reaches the child too, which stops the API
    first (no new orders), then the processor (in-flight messages finish, the rest are
    released); this process waits for it, then stops moto and PostgreSQL, all within 10 s. A
    signal during start-up stops as soon as the services are up, so PostgreSQL is never left
    running."""
    from processor.devstack.reload import App, child_argv, supervise
    from processor.entrypoints.stopping import StopSignals
    from processor.entrypoints.worker import STOP_SECONDS
    from processor.ops import local_system
    from processor.processing.requeue import requeue_unfinished

    os.environ.setdefault("OUTBOX_GRACE_SECONDS", "5")
    os.environ.setdefault("METRICS_DISABLED", "1")
    data_dir = local_system.data_dir()
    app = App(child_argv(port, services_only, processor))
    started_app = False
    with StopSignals() as signals:
        ses_port = os.environ.get("SES_PORT")
        try:
            services = start_services(
                data_dir,
                moto_port=int(os.environ.get("MOTO_PORT", "5050")),
                ses_port=int(ses_port) if ses_port else None,
            )
        except LocalSetupError as error:
            print(f"orderflow cannot start: {error}", file=sys.stderr, flush=True)
            return 1
        # What the API must share with this process when `chalice local` serves it.
        services.env["METRICS_DISABLED"] = os.environ["METRICS_DISABLED"]
        try:
            services.start_issuer(data_dir)  # AUTH=jwt only; before the app, which needs it
            if "STRIPE_API_BASE" in services.env and not signals.requested:
                webhook = register_stripe_webhook(services.env["STRIPE_API_BASE"], port)
                services.env.update(webhook)
                os.environ.update(webhook)
            if not signals.requested:
                # The emulator starts empty: messages of unfinished orders died with the last
                # run's emulator, so the database's word on what is unfinished is sent again.
                requeued = requeue_unfinished(services.env["ORDER_QUEUE_URL"])
                if requeued:
                    print(f"re-queued {requeued} unfinished order(s) of an earlier run", flush=True)
            started_app = not signals.requested and app.start(signals)
            if started_app:
                local_system.announce(services.env, data_dir)
                banner = _print_services_banner if services_only else _print_banner

                def ready() -> None:
                    banner(port, services.env, processor, reload)

                if reload:  # the banner once a save is sure to reload
                    supervise(app, signals, REPO, lambda line: print(line, flush=True), ready)
                else:
                    ready()
                    signals.wait()
                print(f"\nstopping (signal {signals.signum})...", flush=True)
            elif not signals.requested:
                print("the local system did not start (see the error above)", flush=True)
        finally:
            started = time.monotonic()
            local_system.withdraw(data_dir)
            app.wait(STOP_SECONDS - 1)
            services.stop()
    print(f"stopped in {time.monotonic() - started:.1f} s", flush=True)
    return 0 if started_app or signals.requested else 1


def run_app(port: int, services_only: bool, processor: str, concurrency: int = CONCURRENCY) -> int:
    """The reloadable part (`local --app-only`, started by `run`): migrations, the API unless
    `services_only`, and the processor, against the services `run` exported to it. Stops on
    SIGINT/SIGTERM, or when `run`'s process is gone."""
    from db.migrate import migrate
    from processor.devstack.reload import await_go, exit_with, orphaned, preload, report_ready
    from processor.entrypoints.stopping import StopSignals
    from processor.entrypoints.worker import STOP_SECONDS, Worker, WorkerOptions, stop_within

    parent = os.getppid()
    api = worker = runner = api_thread = None
    with StopSignals() as signals:
        exit_with(parent, signals)
        preload()
        if not await_go():  # the child it replaces is still stopping until then
            return 0
        try:
            migrate(os.environ["DATABASE_URL"])  # an added migration applies on the reload
            if not services_only:
                api = start_api("127.0.0.1", port)
                api_thread = threading.Thread(target=api.serve_forever, name="api", daemon=True)
                api_thread.start()
            if processor != "none":
                options = WorkerOptions(concurrency=concurrency, wait_seconds=1, sweep_interval=5)
                worker = Worker(options, delivery=_delivery(processor, dict(os.environ)))
                runner = threading.Thread(target=worker.run, name="processor", daemon=True)
                runner.start()
            report_ready()
            while not signals.requested and not orphaned(parent):
                signals.wait()
        finally:
            if api is not None and api_thread is not None:
                api.shutdown()
                api_thread.join(2)
            if worker is not None and runner is not None:
                stop_within(worker, runner, STOP_SECONDS - 3)
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


def _stripe_exports(env: dict[str, str]) -> str:
    """PAYMENT_PROVIDER=stripe: the localstripe address, for the Stripe SDK or CLI a developer
    points at it (the app itself already has it)."""
    if env.get("PAYMENT_PROVIDER") != "stripe":
        return ""
    return f"""Stripe is localstripe; point your own Stripe clients at it:
  export STRIPE_API_BASE='{env["STRIPE_API_BASE"]}'

"""


def _print_services_banner(port: int, env: dict[str, str], processor: str, reload: bool) -> None:
    print(
        f"""
orderflow services are running (the API is yours to serve)
  AWS (moto)   {env["AWS_ENDPOINT_URL"]} (SES: {env["AWS_ENDPOINT_URL_SES"]})
  PostgreSQL   {env["DATABASE_URL"]}
  Processor    {_processor_line(processor)}
  Payments     {_payments_line(env)}
  Reload       {_reload_line(reload)}

Serve the API with chalice local: in another shell, from {REPO}, run
  . {_venv()}/bin/activate
{_exports(env, indent="  ")}
  cd chalice_app && {_chalice_local(port, reload)}

Ready. Ctrl-C stops everything.""",
        flush=True,
    )


def _print_banner(port: int, env: dict[str, str], processor: str, reload: bool) -> None:
    base = f"http://127.0.0.1:{port}"
    tokens = _stripe_exports(env) + _token_lines(env, base)
    print(
        f"""
orderflow is running
  API          {base}/orders  (reference: {base}/docs)
  AWS (moto)   {env["AWS_ENDPOINT_URL"]} (SES: {env["AWS_ENDPOINT_URL_SES"]})
  PostgreSQL   {env["DATABASE_URL"]}
  Processor    {_processor_line(processor)}
  Reload       {_reload_line(reload)}
  Payments     {_payments_line(env)}

Try:
  curl -s -X POST {base}/orders -H 'Content-Type: application/json' \\
    -d '{{"customer_email": "ada@example.com", "customer_name": "Ada",
         "payment_method": "pm_card_visa",
         "items": [{{"product_name": "Widget", "quantity": 2, "unit_price": 24.99}}]}}'
  curl -s {base}/orders/<order_id>

{tokens}Admin CLI (it finds this system by itself): in another shell, from {REPO}, run
{_data_dir_export()}  {_venv()}/bin/python -m processor admin order <order_id>
  {_venv()}/bin/python -m processor admin emails

Ready. Ctrl-C stops everything.""",
        flush=True,
    )


def _reload_line(reload: bool) -> str:
    if not reload:
        return "off (--no-reload): restart to pick up code changes"
    return "on: saving a file under processor/, db/ or chalice_app/ restarts the API and processor"


def _chalice_local(port: int, reload: bool) -> str:
    """`chalice local` under watchfiles, which restarts it when any product module changes
    (its own autoreload only watches chalice_app/, not processor/ or db/ where the logic is)."""
    serve = f"chalice local --port {port}"
    if not reload:
        return serve
    return f"watchfiles --filter python '{serve} --no-autoreload' . ../processor ../db"


def _data_dir_export() -> str:
    """The line a new shell needs to find this system when it keeps its data elsewhere."""
    from processor.ops import local_system

    directory = local_system.data_dir()
    if directory == local_system.DEFAULT_DATA:
        return ""
    return f"  export ORDERFLOW_DATA_DIR='{directory}'\n"


def _token_lines(env: dict[str, str], base: str) -> str:
    """AUTH=jwt: how to get a token (customers) and call as a customer."""
    if env.get("AUTH") != "jwt":
        return ""
    return f"""Customers need a bearer token (AUTH=jwt; issuer {env["JWT_ISSUER"]}):
  TOKEN=$({_venv()}/bin/python -m processor admin token --email ada@example.com)
  curl -s -H "Authorization: Bearer $TOKEN" {base}/orders
  (--admin: a token of the operators' group, which sees every order)

"""


def _venv() -> Path:
    """This interpreter's venv, relative to the repository when inside it (`.venv`)."""
    venv = Path(sys.prefix)
    return venv.relative_to(REPO) if venv.is_relative_to(REPO) else venv


def _exports(env: dict[str, str], indent: str = "") -> str:
    """Shell lines that point another process (chalice local, the admin CLI) at this stack."""
    return "\n".join(f"{indent}export {key}='{value}'" for key, value in env.items())
