"""Through NATS against real logrus: the service's lines equal what the
original's handler writes for the very messages it received (time aside).

Needs Go 1.23 and the Debian logrus / nats.go sources (see tests/golden);
skipped where they are missing, e.g. in CI, where test_service.py checks the
same lines against the pure twin, itself checked against logrus by the
committed golden vectors.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest

from servers import ROOT, Service, publish, wait_all_acked
from test_service import base_args, event_lines, normalise_time, reply_and_sequence, sample_payloads

GO = os.environ.get("GO", "/usr/lib/go-1.23/bin/go")


@pytest.fixture(scope="module")
def golden_tool(tmp_path_factory):
    if not os.path.exists(GO):
        pytest.skip(f"Go 1.23 not installed at {GO} (set GO=...)")
    out = tmp_path_factory.mktemp("golden-bin")
    result = subprocess.run(
        ["bash", str(ROOT / "tests/golden/regen.sh"), "--build-only", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "GO": GO},
    )
    if result.returncode != 0:
        pytest.skip(f"cannot build the Go golden tool: {result.stderr.strip()[-300:]}")
    return out / "golden"


@pytest.mark.parametrize("layout", ["json", "text"])
def test_lines_through_nats_equal_real_logrus(nats_server, tmp_path, golden_tool, layout):
    payloads = sample_payloads(150)
    publish(nats_server.url, [("events.golden", p) for p in payloads])
    svc = Service(
        tmp_path,
        base_args(nats_server.url, f"--log-format={layout}", "--log-level=info"),
        env={"TZ": "Europe/Moscow"},
    ).start()
    try:
        wait_all_acked(nats_server.url, len(payloads))
        assert svc.terminate() == 0
    finally:
        svc.stop()
    lines = event_lines(svc)
    assert len(lines) == len(payloads)
    cases = []
    for line in lines:
        reply, seq = reply_and_sequence(line, layout)
        cases.append(
            json.dumps(
                {
                    "subject": "events.golden",
                    "reply": reply,
                    "now_unix_nano": 0,
                    "data_b64": base64.b64encode(payloads[seq - 1]).decode(),
                    "tz": "Europe/Moscow",
                }
            )
        )
    result = subprocess.run(
        [str(golden_tool)],
        input="\n".join(cases) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    expected = [json.loads(row)[layout] for row in result.stdout.split("\n") if row]
    mismatches = [
        (got, want)
        for got, want in zip(lines, expected, strict=True)
        if normalise_time(got, layout) != normalise_time(want, layout)
    ]
    assert not mismatches, mismatches[:3]
