"""Operability: /metrics counts what happened, /ready follows the connection,
the stats line appears and parses."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from servers import Service, publish, wait_all_acked, wait_until
from test_service import base_args

STRUCTURED = b'{"id":"e-%d","type":"t","source":"s","timestamp":"2025-01-11T10:30:00Z"}'


def http_get(addr: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(addr: str) -> dict[str, float]:
    status, body = http_get(addr, "/metrics")
    assert status == 200
    values = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return values


def health_addr(svc: Service) -> str:
    return svc.wait_for(r'Health server listening" addr="\[(127\.0\.0\.1:\d+)\]"').group(1)


def test_metrics_count_the_events(nats_server, tmp_path, engine) -> None:
    structured, raw = 30, 12
    publish(
        nats_server.url,
        [("events.s", STRUCTURED % i) for i in range(structured)]
        + [("events.r", b"raw line %d" % i) for i in range(raw)],
    )
    svc = Service(tmp_path, base_args(nats_server.url, "--log-level=info", engine=engine)).start()
    try:
        addr = health_addr(svc)
        wait_all_acked(nats_server.url, structured + raw)
        values = wait_until(
            lambda: (
                (v := scrape(addr)).get("events_audit_consumer_num_ack_pending") == 0
                and v.get("events_audit_consumer_num_pending") == 0
                and v
            ),
            15,
            "the lag gauges",
        )
        assert values["events_audit_events_total{kind=structured}"] == structured
        assert values["events_audit_events_total{kind=raw}"] == raw
        assert values["events_audit_acks_total"] == structured + raw
        assert values["events_audit_naks_total"] == 0
        assert values["events_audit_write_errors_total"] == 0
        assert values["events_audit_consumer_num_pending"] == 0
        assert values["events_audit_batch_size_sum"] == structured + raw
        assert values["events_audit_bytes_written_total"] > 0
        assert values["events_audit_connected"] == 1
        assert (
            values[
                f"events_audit_build_info{{engine={engine},python="
                + next(
                    k.split("python=")[1] for k in values if k.startswith("events_audit_build_info")
                )
            ]
            == 1
        )
        assert svc.terminate() == 0
    finally:
        svc.stop()


def test_ready_follows_the_server(nats_server, tmp_path, engine) -> None:
    svc = Service(tmp_path, base_args(nats_server.url, "--log-level=info", engine=engine)).start()
    try:
        addr = health_addr(svc)
        wait_until(lambda: http_get(addr, "/ready")[0] == 200, 15, "ready")
        nats_server.kill()
        status, body = wait_until(
            lambda: (r := http_get(addr, "/ready"))[0] == 503 and r, 15, "not ready"
        )
        assert json.loads(body)["reason"] == "not connected to NATS"
        assert http_get(addr, "/health")[0] == 200  # alive all the same
        nats_server.start()
        wait_until(lambda: http_get(addr, "/ready")[0] == 200, 30, "ready again")
        assert svc.terminate() == 0
    finally:
        svc.stop()


def test_stats_line(nats_server, tmp_path, engine) -> None:
    publish(nats_server.url, [("events.s", STRUCTURED % i) for i in range(5)])
    svc = Service(
        tmp_path,
        base_args(
            nats_server.url,
            "--log-level=info",
            "--log-format=json",
            "--stats-interval=1s",
            engine=engine,
        ),
    ).start()
    try:
        wait_all_acked(nats_server.url, 5)
        wait_until(
            lambda: any(
                '"stats_events":5' in line and '"stats_lag":0' in line for line in svc.lines()
            ),
            15,
            "a stats line with 5 events",
        )
        assert svc.terminate() == 0
    finally:
        svc.stop()
    stats = [json.loads(line) for line in svc.lines() if '"msg":"Audit stats"' in line]
    last = next(s for s in reversed(stats) if s["stats_lag"] == 0)
    assert last["level"] == "info"
    assert last["stats_events"] == 5 and last["stats_structured"] == 5 and last["stats_raw"] == 0
    assert last["stats_lag"] == 0 and last["stats_acks"] == 5
    assert all(key.startswith("stats_") for key in last if key not in ("level", "msg", "time"))


def test_stats_can_be_switched_off(nats_server, tmp_path) -> None:
    """``--stats-interval=0`` logs no stats line, however long the service runs.

    A control run with a short interval shows a stats line does appear in such
    a run; the run with ``0`` then lasts many times that interval (and handles
    an event published at the end, so its event loop was live all along: any
    stats timer due by then has fired) before it is checked for stats lines.
    """
    control_interval = 0.2
    control = Service(
        tmp_path,
        base_args(nats_server.url, "--log-level=info", f"--stats-interval={control_interval}s"),
        name="control",
    ).start()
    try:
        control.wait_for("Starting to listen")
        control.wait_for("Audit stats", timeout=15)
        assert control.terminate() == 0
    finally:
        control.stop()

    svc = Service(tmp_path, base_args(nats_server.url, "--log-level=info", "--stats-interval=0"))
    svc.start()
    try:
        svc.wait_for("Starting to listen")
        time.sleep(8 * control_interval)
        publish(nats_server.url, [("events.s", STRUCTURED % 0)])
        wait_all_acked(nats_server.url, 1)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    assert "Starting to listen" in svc.output()
    assert not re.search("Audit stats", svc.output())


def test_batch_histograms_match_prometheus_client() -> None:
    """The engines count histogram buckets themselves (prometheus-client is
    imported only at the first scrape); the exposition is the library's own."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from events_audit.metrics import Metrics

    metrics = Metrics("fast")
    registry = CollectorRegistry()
    reference = Histogram(
        "events_audit_batch_size",
        "Messages per written batch",
        registry=registry,
        buckets=metrics.batch_size.bounds,
    )
    for value in (0, 1, 1.5, 2, 100, 101, 2000, 2001, 10**6):
        metrics.batch_size.observe(value)
        reference.observe(value)
    ours = [line for line in metrics.exposition()[2].decode().splitlines() if "batch_size" in line]
    theirs = [
        line for line in generate_latest(registry).decode().splitlines() if "_created" not in line
    ]
    assert ours == theirs
