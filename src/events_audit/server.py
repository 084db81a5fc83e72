"""The service's life: connect, set up JetStream, pull until a signal, stop."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import ssl

import nats
import nats.errors

from . import advisories, ha, jetstream, sd_notify, upstream
from .config import ConfigError, Settings, format_duration
from .delivery import EXIT_OUTPUT_HUNG
from .engines import fast
from .engines.python import PythonEngine
from .http import HttpServer
from .logs import Logger
from .metrics import Metrics, poll_consumer, stats_loop
from .nats_urls import redact_url, server_urls
from .sink import Sink, SinkError

# How long shutdown may wait for acks to reach a server that may be gone.
SHUTDOWN_FLUSH_TIMEOUT = 5.0
# Pings without a pong after which the connection is taken as dead.
PINGS_OUTSTANDING = 2
# How often the stream's sequences are compared with what was logged.
UPSTREAM_CHECK = 2.0
# How often a stream limit held back (it would remove unlogged events) is tried again.
HELD_LIMITS_RECHECK = 2.0


def _async(function):
    async def handler():
        return function()

    return handler


def _ready(metrics: Metrics) -> tuple[int, str, bytes]:
    ok, reason = metrics.readiness()
    body = json.dumps(
        {"Status": "OK" if ok else "Unavailable", "reason": reason, "role": metrics.role}
    ).encode()
    return (200 if ok else 503), "application/json", body + b"\n"


_CREDS_BLOCK = re.compile(r"-+BEGIN (NATS USER JWT|USER NKEY SEED)-+\r?\n(\S+)\r?\n")


def _check_seed(flag: str, path: str, seed: str) -> None:
    import nkeys  # only for NKey and .creds auth

    try:
        nkeys.from_seed(bytearray(seed.strip().encode()))
    except Exception:
        raise ConfigError(f"{flag}: {path!r} holds no valid NKey seed") from None


def _check_key_files(settings: Settings) -> None:
    """nats-py reads these files only while connecting, and a malformed one
    fails there badly (a .creds file without a JWT block even hangs it)."""
    if settings.audit_nats_nkey:
        with open(settings.audit_nats_nkey, encoding="ascii", errors="replace") as handle:
            _check_seed("--audit-nats-nkey", settings.audit_nats_nkey, handle.read())
    if settings.audit_nats_creds:
        with open(settings.audit_nats_creds, encoding="ascii", errors="replace") as handle:
            blocks = dict(_CREDS_BLOCK.findall(handle.read()))
        if "NATS USER JWT" not in blocks or "USER NKEY SEED" not in blocks:
            raise ConfigError(
                f"--audit-nats-creds: {settings.audit_nats_creds!r} is not a .creds file "
                "(no BEGIN NATS USER JWT / BEGIN USER NKEY SEED block)"
            )
        _check_seed("--audit-nats-creds", settings.audit_nats_creds, blocks["USER NKEY SEED"])


def connection_options(settings: Settings) -> dict:
    """Credentials and TLS for nats-py; user:password and tokens come in the URL."""
    options: dict = {}
    for flag, path in (
        ("--audit-nats-creds", settings.audit_nats_creds),
        ("--audit-nats-nkey", settings.audit_nats_nkey),
        ("--audit-nats-tls-ca", settings.audit_nats_tls_ca),
        ("--audit-nats-tls-cert", settings.audit_nats_tls_cert),
        ("--audit-nats-tls-key", settings.audit_nats_tls_key),
    ):
        if path and not os.access(path, os.R_OK):
            raise ConfigError(f"{flag}: cannot read {path!r}")
    if settings.audit_nats_creds and settings.audit_nats_nkey:
        raise ConfigError("--audit-nats-creds and --audit-nats-nkey exclude each other")
    _check_key_files(settings)
    if settings.audit_nats_creds:
        options["user_credentials"] = settings.audit_nats_creds
    if settings.audit_nats_nkey:
        options["nkeys_seed"] = settings.audit_nats_nkey
    if bool(settings.audit_nats_tls_cert) != bool(settings.audit_nats_tls_key):
        raise ConfigError("--audit-nats-tls-cert and --audit-nats-tls-key go together")
    if settings.audit_nats_tls_ca or settings.audit_nats_tls_cert:
        try:
            context = ssl.create_default_context(cafile=settings.audit_nats_tls_ca or None)
            if settings.audit_nats_tls_cert:
                context.load_cert_chain(settings.audit_nats_tls_cert, settings.audit_nats_tls_key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"cannot load the TLS files: {exc}") from None
        options["tls"] = context
    return options


def choose_engine(settings: Settings, nc: nats.NATS, log: Logger):
    """--audit-engine: auto takes the fast engine when it can run here."""
    from . import datapath

    wanted = settings.audit_engine
    if wanted == "python":
        return PythonEngine
    if not fast.supported(nc):
        if settings.audit_ha == "pinned":
            raise ConfigError(
                "--audit-ha=pinned needs the fast engine, and the installed nats-py cannot host it"
            )
        if wanted == "fast":
            raise jetstream.SetupError(
                "--audit-engine=fast needs nats-py internals this "
                "nats-py version does not have; use --audit-engine=python"
            )
        log.warning("The installed nats-py cannot host the fast engine, using the python engine")
        return PythonEngine
    if not datapath.USING_EXTENSION:
        if wanted == "auto" and settings.audit_ha != "pinned":  # (pinned needs the fast one)
            return PythonEngine
        log.warning(
            "The compiled data path is not available, the fast engine runs its pure-Python twin"
        )
    return fast.FastEngine


async def digest_checkpoints(sink: Sink, log: Logger, interval: float) -> None:
    """--audit-digest-interval: sign what was written since the last checkpoint."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        try:  # in a thread: a write holding the sink's lock must not stop the loop
            await loop.run_in_executor(None, sink.checkpoint)
        except SinkError as exc:
            log.error("Cannot write a digest checkpoint", error=str(exc))


async def run(settings: Settings, log: Logger, sink: Sink) -> int:
    """Run until SIGTERM/SIGINT; the process exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    notifier = sd_notify.Notifier.from_environment(log)  # does nothing outside systemd

    def on_stop() -> None:
        if not stop.is_set():  # at once: systemd then knows the stop is under way
            notifier.send("STOPPING=1", "STATUS=Stopping")
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop)
    loop.add_signal_handler(signal.SIGHUP, sink.request_reopen)  # logrotate

    log.info("Starting JetStream events audit server")
    metrics = Metrics()
    metrics.pull_timeout = settings.audit_pull_timeout
    http = None
    if settings.health_addr:
        http = HttpServer(settings.health_addr)
        http.routes["/metrics"] = _async(metrics.exposition)
        http.routes["/ready"] = _async(lambda: _ready(metrics))
        try:
            bound = await http.start()
        except OSError as exc:
            log.error(
                "Failed to start the health server",
                addr=settings.health_addr,
                error=exc.strerror or str(exc),
            )
            return 1
        log.info("Health server listening", addr=[f"{h}:{p}" for h, p in bound])

    try:
        options = connection_options(settings)
    except ConfigError as exc:
        log.error("Invalid connection settings", error=str(exc))
        if http:
            await http.close()
        return 2
    urls = server_urls(settings.audit_nats_addr)
    redacted = ",".join(redact_url(u) for u in urls)

    async def on_error(exc: Exception) -> None:
        log.error("NATS error", url=redacted, error=str(exc) or type(exc).__name__)

    async def on_disconnect() -> None:
        metrics.connected = False
        if getattr(nc, "_pings_outstanding", 0) > PINGS_OUTSTANDING:
            # nats-py gave the connection up: no pong (nor anything else) came back
            metrics.counters.dead_connections += 1
            log.warning(
                "NATS did not answer pings: the connection carries nothing any more "
                "(a dropped path or a frozen server); closing it and reconnecting",
                url=redacted,
                unanswered_pings=PINGS_OUTSTANDING,
                ping_interval=format_duration(settings.audit_nats_ping_interval),
            )
        if not stop.is_set():
            log.warning("Disconnected from NATS")

    engine = None

    async def on_reconnect() -> None:
        metrics.connected = True
        metrics.counters.reconnects += 1
        log.info("Reconnected to NATS", url=redact_url(str(nc.connected_url.geturl())))
        if engine is not None:
            engine.on_reconnected()

    nc = nats.NATS()
    # The first connection is retried like a reconnect (every 2 s, errors
    # logged), so the service can start before NATS does; a signal ends it.
    connecting = asyncio.ensure_future(
        nc.connect(
            servers=urls,
            name="events-audit",
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            max_reconnect_attempts=-1,
            reconnect_time_wait=2,
            connect_timeout=5,
            # A path that drops packets without closing (a NAT or firewall that
            # lost its state, a frozen host) is found by its unanswered pings
            # (nats-py's default: 2 x 120 s), then replaced.
            ping_interval=settings.audit_nats_ping_interval,
            max_outstanding_pings=PINGS_OUTSTANDING,
            **options,
        )
    )
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not connecting.done():
        connecting.cancel()
        await nc.close()
        if http:
            await http.close()
        log.info("JetStream events audit server stopped")
        return 0
    try:
        connecting.result()
    except (TimeoutError, nats.errors.NoServersError, OSError) as exc:
        log.error("Failed to connect to NATS", url=redacted, error=str(exc) or type(exc).__name__)
        if http:
            await http.close()
        return 1
    log.info("Connected to NATS", url=redact_url(nc.connected_url.geturl()))
    metrics.connected = True
    background: list[asyncio.Task] = []

    code = 0
    try:
        js = nc.jetstream()
        if settings.audit_ha == "pinned":
            ha.warn_if_old_server(nc, log)
        limits_applied = await jetstream.ensure_stream(js, settings, log)
        binding = await jetstream.ensure_consumer(js, settings, log)
        if not limits_applied:
            background.append(
                asyncio.ensure_future(
                    jetstream.apply_held_limits(js, settings, log, HELD_LIMITS_RECHECK)
                )
            )

        async def set_up(resume: jetstream.Resume) -> jetstream.Binding:
            """Recreate what the service is configured to create, after a deletion."""
            await jetstream.ensure_stream(js, settings, log)
            return await jetstream.ensure_consumer(js, settings, log, resume)

        watch = upstream.UpstreamWatch(
            js, binding.stream, binding.durable, binding.subject, log, metrics
        )
        try:
            await advisories.watch_given_up(nc, js, binding, log, metrics)
            await watch.check()  # what went missing while the service was away
        except Exception as exc:  # (a permission, a timeout): the events still flow
            log.warning(
                "Cannot watch for events lost upstream or given up by the server",
                error=str(exc) or type(exc).__name__,
            )
        background.append(asyncio.ensure_future(watch.run(UPSTREAM_CHECK)))
        engine_class = choose_engine(settings, nc, log)
        role = None
        if binding.priority_group:
            role = ha.Role(
                nc,
                binding.stream,
                binding.durable,
                binding.priority_group,
                log,
                metrics,
                getattr(js, "_prefix", "$JS.API"),
            )
            try:
                await role.watch()
            except Exception as exc:  # (a permission): the pulls still tell the role
                log.warning(
                    "Cannot follow the consumer's PINNED advisories",
                    error=str(exc) or type(exc).__name__,
                )
            role.other_pinned(binding.pinned_at_start)  # at start: someone else's pin
        engine = engine_class(nc, js, binding, settings, log, sink, metrics, set_up, role)
        metrics.engine = engine.name
        metrics.consumer_bound = True
        metrics.pulled()
        status = (
            f"Listening on {binding.subject} (stream {binding.stream}, "
            f"consumer {binding.durable}, {engine.name} engine)"
        )
        notifier.send("READY=1", "STATUS=" + status)
        interval = sd_notify.watchdog_interval()
        if notifier.enabled and interval:
            background.append(
                asyncio.ensure_future(sd_notify.watchdog(notifier, metrics, interval, status))
            )
        background.append(
            asyncio.ensure_future(
                poll_consumer(
                    metrics,
                    js,
                    binding.stream,
                    binding.durable,
                    2.0,
                )
            )
        )
        if settings.stats_interval:
            background.append(
                asyncio.ensure_future(stats_loop(metrics, log, settings.stats_interval))
            )
        if sink.digest is not None and sink.digest.key is not None:
            background.append(
                asyncio.ensure_future(digest_checkpoints(sink, log, settings.audit_digest_interval))
            )

        async def bound_the_shutdown() -> None:
            await stop.wait()
            engine.delivery.give_up_after(settings.log_shutdown_timeout)

        background.append(asyncio.ensure_future(bound_the_shutdown()))
        await engine.run(stop)
        if engine.delivery.hung:
            log.error(
                "The log output took no write before the shutdown bound; "
                "its messages were NAKed and come back",
                output=sink.target,
                log_shutdown_timeout=format_duration(settings.log_shutdown_timeout),
            )
            code = EXIT_OUTPUT_HUNG
    except (ha.ConsumerRefused, ConfigError) as exc:
        log.error("Cannot run as configured", error=str(exc))
        code = 2
    except (jetstream.SetupError, nats.errors.Error) as exc:
        log.error("JetStream set-up failed", error=str(exc) or type(exc).__name__)
        code = 1
    finally:
        for task in background:
            task.cancel()
        try:
            await nc.flush(timeout=SHUTDOWN_FLUSH_TIMEOUT)  # the last acks
        except Exception as exc:
            log.warning("Could not flush acks to NATS", error=str(exc) or type(exc).__name__)
        await nc.close()
        if http:
            await http.close()
    log.info("JetStream events audit server stopped")
    return code
