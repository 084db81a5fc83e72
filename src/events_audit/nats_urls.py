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


def redact_nats_addr(text: str) -> str:
    """--audit-nats-addr with every password or token as *** (server.redact_url),
    also in a URL malformed enough that redact_url does not see its user part."""
    shown = []
    for part in text.split(","):
        if "@" not in part:
            shown.append(part)
            continue
        stripped = part.strip()
        bare = "://" not in stripped
        url = "nats://" + stripped if bare else stripped
        try:
            redacted = redact_url(url)
        except ValueError:  # a port that is not a number, an unclosed [
            redacted = url
        if redacted == url:
            redacted = _redact_before_at(url)
        shown.append(redacted.removeprefix("nats://") if bare else redacted)
    return ",".join(shown)


def _redact_before_at(url: str) -> str:
    # Whatever comes before the last "@" may be a secret: keep a user name only.
    at = url.rfind("@")
    if at < 0:
        return url
    start = url.find("://")
    if 0 <= start < at:
        prefix, userinfo = url[: start + 3], url[start + 3 : at]
        user, colon, _ = userinfo.partition(":")
        masked = f"{user}:***" if colon else "***"
    else:
        prefix, masked = "", "***"
    return f"{prefix}{masked}{url[at:]}"
