"""The --audit-nats-addr list as the service reads it, and its URLs with the
secrets hidden (for logs, errors and ``events-audit config``)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def server_urls(addr: str) -> list[str]:
    """The comma-separated list the original passes to nats.Connect."""
    urls = []
    for part in addr.split(","):
        part = part.strip()
        if part:
            urls.append(part if "://" in part else "nats://" + part)
    return urls


def redact_url(url: str) -> str:
    """The URL with any password or token replaced by ***."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    user = "***" if parts.password is None else f"{parts.username}:***"
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))
