"""Entry point of the single-file executable (PyInstaller): ``events_audit.cli:main``.

``EVENTS_AUDIT_BUNDLE_CHECK=1`` runs a self-check instead of the service: it
imports every module the service needs, prints where each one was loaded
from (one JSON object) and exits 1 when one is missing or a compiled module
fell back to its pure twin.  packaging/build_executable.sh and
`make image-test` use it on the finished executable.
"""

from __future__ import annotations

import os
import sys

# Modules the service imports lazily or from compiled code, where PyInstaller's
# import scan cannot see them; build_executable.sh passes the same list as
# --hidden-import.
BUNDLED = (
    "events_audit.cli",
    "events_audit.server",
    "events_audit.engines.fast",
    "events_audit.engines.python",
    "events_audit._formatting",
    "events_audit._datapath",
    "events_audit._unicode_tables",
    "uvloop",
    "orjson",
    "nats",
    "nats.js",
    "yaml",
    "prometheus_client",
    "nkeys",
    "nacl.signing",
    "_cffi_backend",  # nacl's binding, loaded from compiled code
    # the tools (verify, replay, keygen) and the digest, imported when asked for
    "events_audit.verify",
    "events_audit.replay",
    "events_audit.digest",
    "tqdm",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
    "cryptography.hazmat.primitives.serialization",
)


def bundle_check() -> int:
    import importlib
    import json

    report: dict[str, object] = {
        "executable": sys.executable,
        "frozen": getattr(sys, "frozen", False),
    }
    failed = []
    for name in BUNDLED:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - reported, then exit 1
            report[name] = f"MISSING: {exc!r}"
            failed.append(name)
        else:
            report[name] = getattr(module, "__file__", None) or "built-in"
    import events_audit
    import events_audit.datapath
    import events_audit.formatting

    report["version"] = events_audit.__version__
    report["formatting_compiled"] = events_audit.formatting.USING_EXTENSION
    report["datapath_compiled"] = events_audit.datapath.USING_EXTENSION
    if not (events_audit.formatting.USING_EXTENSION and events_audit.datapath.USING_EXTENSION):
        failed.append("compiled modules")
    import uvloop

    loop = uvloop.new_event_loop()
    loop.run_until_complete(_noop())
    loop.close()
    report["ok"] = not failed
    print(json.dumps(report, indent=1))
    return 1 if failed else 0


async def _noop() -> None:
    return None


def main() -> int:
    if os.environ.get("EVENTS_AUDIT_BUNDLE_CHECK") == "1":
        return bundle_check()
    from events_audit.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
