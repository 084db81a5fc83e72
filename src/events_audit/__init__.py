"""events-audit: a NATS JetStream events audit server."""

__version__ = "0.1.0"
