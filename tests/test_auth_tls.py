"""The service against secured nats-servers: user/password, token, NKey, JWT, TLS.

Each test starts its own nats-server with JetStream and the matching auth or TLS
block, runs the service with the matching URL or flags, and checks that events
are logged and acked.  Secrets (passwords, tokens, seeds, JWTs) must never show
up in the service's output, not even when the connection is refused.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import secrets
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nkeys
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from servers import NatsServer, Service, publish, run_async, wait_all_acked, wait_until
from test_service import base_args, event_lines

EVENTS = 5


@dataclass
class Setup:
    """A secured nats-server set-up: what the server, the service and the test client need."""

    config: str
    service_flags: list[str] = field(default_factory=list)
    client_options: dict = field(default_factory=dict)
    scheme: str = "nats"
    userinfo: str = ""  # "user:password" or "token", put before "@" in the URL
    hidden: list[str] = field(default_factory=list)  # secrets: never in the service output
    # What a client without the credentials connects with (the TLS set-up: the CA only).
    anonymous_options: dict = field(default_factory=dict)

    def url(self, server: NatsServer, userinfo: str | None = None) -> str:
        userinfo = self.userinfo if userinfo is None else userinfo
        at = f"{userinfo}@" if userinfo else ""
        return f"{self.scheme}://{at}127.0.0.1:{server.port}"


# --- NKeys and JWTs ------------------------------------------------------------------------


def new_nkey(prefix: int) -> tuple[str, nkeys.KeyPair]:
    """A fresh NKey of the given role: its seed (S...) and its key pair."""
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return seed.decode(), nkeys.from_seed(bytearray(seed))


def public(kp: nkeys.KeyPair) -> str:
    return kp.public_key.decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_jwt(subject: str, name: str, nats_claims: dict, issuer: nkeys.KeyPair) -> str:
    """A NATS (v2) JWT for ``subject`` signed with the issuer's NKey."""
    claims = {
        "jti": "",
        "iat": int(time.time()),
        "iss": public(issuer),
        "name": name,
        "sub": subject,
        "nats": {**nats_claims, "version": 2},
    }
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    header = b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    signing_input = f"{header}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(issuer.sign(signing_input.encode()))}"


UNLIMITED = -1

ACCOUNT_LIMITS = {
    "subs": UNLIMITED,
    "data": UNLIMITED,
    "payload": UNLIMITED,
    "imports": UNLIMITED,
    "exports": UNLIMITED,
    "wildcards": True,
    "conn": UNLIMITED,
    "leaf": UNLIMITED,
    # JetStream is off for an account unless it has some storage.
    "mem_storage": UNLIMITED,
    "disk_storage": UNLIMITED,
    "streams": UNLIMITED,
    "consumer": UNLIMITED,
}


def creds_text(user_jwt: str, user_seed: str) -> str:
    """A .creds file as `nsc generate creds` writes it."""
    return f"""-----BEGIN NATS USER JWT-----
{user_jwt}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.
NKEYs are sensitive and should be treated as secrets.

-----BEGIN USER NKEY SEED-----
{user_seed}
------END USER NKEY SEED------

*************************************************************
"""


# --- TLS -----------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_pki(directory: Path) -> dict[str, Path]:
    """A private CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("events-audit test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": directory / "ca.pem"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(name: str, usage: x509.ObjectIdentifier, san: list[x509.GeneralName]) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(f"events-audit test {name}"))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        paths[f"{name}_cert"] = directory / f"{name}-cert.pem"
        paths[f"{name}_key"] = directory / f"{name}-key.pem"
        paths[f"{name}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(paths[f"{name}_key"], key)

    leaf(
        "server",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    )
    leaf("client", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    return paths


# --- The set-ups ---------------------------------------------------------------------------


def user_password_setup(tmp_path: Path) -> Setup:
    password = secrets.token_hex(16)
    return Setup(
        config=f'authorization {{ user: "auditor", password: "{password}" }}\n',
        userinfo=f"auditor:{password}",
        hidden=[password],
    )


def token_setup(tmp_path: Path) -> Setup:
    token = secrets.token_hex(16)
    return Setup(config=f'authorization {{ token: "{token}" }}\n', userinfo=token, hidden=[token])


def nkey_setup(tmp_path: Path) -> Setup:
    seed, kp = new_nkey(nkeys.PREFIX_BYTE_USER)
    seed_file = tmp_path / "user.nk"
    seed_file.write_text(seed + "\n")
    return Setup(
        config=f'authorization {{ users: [ {{ nkey: "{public(kp)}" }} ] }}\n',
        service_flags=[f"--audit-nats-nkey={seed_file}"],
        client_options={"nkeys_seed": str(seed_file)},
        hidden=[seed],
    )


def jwt_setup(tmp_path: Path) -> Setup:
    operator_seed, operator = new_nkey(nkeys.PREFIX_BYTE_OPERATOR)
    account_seed, account = new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)
    user_seed, user = new_nkey(nkeys.PREFIX_BYTE_USER)
    # JetStream in operator mode needs a system account (for its internal subscriptions).
    _, system = new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)
    operator_jwt = encode_jwt(
        public(operator),
        "audit-op",
        {"type": "operator", "system_account": public(system)},
        operator,
    )
    system_jwt = encode_jwt(public(system), "SYS", {"type": "account"}, operator)
    account_jwt = encode_jwt(
        public(account),
        "audit-account",
        {
            "limits": ACCOUNT_LIMITS,
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
        },
        operator,
    )
    user_jwt = encode_jwt(
        public(user),
        "auditor",
        {
            "pub": {},
            "sub": {},
            "subs": UNLIMITED,
            "data": UNLIMITED,
            "payload": UNLIMITED,
            "type": "user",
        },
        account,
    )
    creds = tmp_path / "auditor.creds"
    creds.write_text(creds_text(user_jwt, user_seed))
    config = (
        f"operator: {operator_jwt}\n"
        f"system_account: {public(system)}\n"
        "resolver: MEMORY\n"
        "resolver_preload: {\n"
        f"  {public(system)}: {system_jwt}\n"
        f"  {public(account)}: {account_jwt}\n"
        "}\n"
    )
    return Setup(
        config=config,
        service_flags=[f"--audit-nats-creds={creds}"],
        client_options={"user_credentials": str(creds)},
        hidden=[user_seed, user_jwt, account_seed, operator_seed],
    )


def tls_setup(tmp_path: Path) -> Setup:
    pki = make_pki(tmp_path / "pki")
    config = (
        "tls {\n"
        f'  cert_file: "{pki["server_cert"]}"\n'
        f'  key_file: "{pki["server_key"]}"\n'
        f'  ca_file: "{pki["ca"]}"\n'
        "  verify: true\n"
        "  timeout: 5\n"
        "}\n"
    )
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    context.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
    no_client_cert = ssl.create_default_context(cafile=str(pki["ca"]))
    return Setup(
        config=config,
        scheme="tls",
        service_flags=[
            f"--audit-nats-tls-ca={pki['ca']}",
            f"--audit-nats-tls-cert={pki['client_cert']}",
            f"--audit-nats-tls-key={pki['client_key']}",
        ],
        client_options={"tls": context},
        anonymous_options={"tls": no_client_cert},
    )


SETUPS = {
    "user-password": user_password_setup,
    "token": token_setup,
    "nkey": nkey_setup,
    "jwt-creds": jwt_setup,
    "tls-client-cert": tls_setup,
}


def start_server(tmp_path: Path, setup: Setup) -> NatsServer:
    server = NatsServer(tmp_path, config=setup.config)
    try:
        return server.start()
    except AssertionError:
        server.stop()
        log = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        raise AssertionError(f"nats-server did not start:\n{log[-3000:]}") from None


async def _connect_once(url: str, options: dict) -> None:
    async def quiet(exc: Exception) -> None:
        pass

    nc = await nats.connect(
        url, allow_reconnect=False, connect_timeout=3, error_cb=quiet, **options
    )
    try:
        await nc.flush(timeout=3)
    finally:
        await nc.close()


def assert_rejected(server: NatsServer, setup: Setup) -> None:
    """The set-up really is secured: a client without the credentials is turned away."""
    with pytest.raises((nats.errors.Error, OSError, TimeoutError)):
        run_async(_connect_once(setup.url(server, userinfo=""), setup.anonymous_options))


def assert_no_secrets(svc: Service, setup: Setup, *more: str) -> None:
    output = svc.output()
    for index, secret in enumerate([*setup.hidden, *more]):
        assert secret not in output, f"secret #{index} is in the service output"


# --- The tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SETUPS))
def test_events_flow_through_a_secured_server(tmp_path, kind, engine) -> None:
    setup = SETUPS[kind](tmp_path)
    server = start_server(tmp_path, setup)
    try:
        assert_rejected(server, setup)
        url = setup.url(server)
        events = [("events.auth", b'{"id":"%s-%d"}' % (kind.encode(), i)) for i in range(EVENTS)]
        publish(url, events, **setup.client_options)
        args = base_args(
            url, "--log-format=json", "--log-level=info", *setup.service_flags, engine=engine
        )
        svc = Service(tmp_path, args).start()
        try:
            info = wait_all_acked(url, EVENTS, **setup.client_options)
            assert info.num_pending == 0 and info.num_ack_pending == 0
            assert svc.terminate() == 0
        finally:
            svc.stop()
    finally:
        server.stop()
    ids = sorted(json.loads(line)["event_id"] for line in event_lines(svc))
    assert ids == sorted(f"{kind}-{i}" for i in range(EVENTS)), svc.output()[-3000:]
    assert "Connected to NATS" in svc.output()
    assert_no_secrets(svc, setup)
    if setup.userinfo:
        assert "***@127.0.0.1" in svc.output()


@pytest.mark.parametrize("kind", ["user-password", "token"])
def test_wrong_credentials_are_retried_and_not_logged(tmp_path, kind) -> None:
    """Refused, the service logs "NATS error" with the redacted URL every 2 s until stopped."""
    setup = SETUPS[kind](tmp_path)
    server = start_server(tmp_path, setup)
    wrong = secrets.token_hex(16)
    userinfo, redacted = {
        "user-password": (f"auditor:{wrong}", "auditor:***"),
        "token": (wrong, "***"),
    }[kind]
    try:
        url = setup.url(server, userinfo=userinfo)
        svc = Service(tmp_path, base_args(url, "--log-format=json", "--log-level=debug")).start()
        try:
            wait_until(lambda: svc.count("Authorization Violation") >= 2, 10, "a second attempt")
            assert svc.proc.poll() is None  # still retrying
            assert svc.terminate() == 0
        finally:
            svc.stop()
    finally:
        server.stop()
    output = svc.output()
    assert_no_secrets(svc, setup, wrong)
    errors = [json.loads(line) for line in svc.lines() if "NATS error" in line]
    assert errors and all(e["url"] == f"nats://{redacted}@127.0.0.1:{server.port}" for e in errors)
    # Each refusal may be followed by a "Connection reset by peer" from the read loop.
    assert sum("Authorization Violation" in e["error"] for e in errors) >= 2
    assert "Connected to NATS" not in output
    assert "JetStream events audit server stopped" in svc.lines()[-1]


def _bad_files(tmp_path: Path) -> tuple[dict[str, tuple[list[str], str]], str]:
    """Flags that cannot work with the flag the error must name; the seed in them."""
    missing = str(tmp_path / "missing.file")
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("not a certificate, a seed nor a JWT\n")
    seed_only = tmp_path / "seed-only.creds"
    seed, _ = new_nkey(nkeys.PREFIX_BYTE_USER)
    seed_only.write_text(creds_text("JWT", seed).replace("NATS USER JWT", "NATS USER XYZ"))
    return {
        "missing-creds": ([f"--audit-nats-creds={missing}"], "--audit-nats-creds"),
        "missing-nkey": ([f"--audit-nats-nkey={missing}"], "--audit-nats-nkey"),
        "missing-tls-ca": ([f"--audit-nats-tls-ca={missing}"], "--audit-nats-tls-ca"),
        "missing-tls-key": (
            [f"--audit-nats-tls-cert={garbage}", f"--audit-nats-tls-key={missing}"],
            "--audit-nats-tls-key",
        ),
        "cert-without-key": ([f"--audit-nats-tls-cert={garbage}"], "--audit-nats-tls-key"),
        "garbage-tls-ca": ([f"--audit-nats-tls-ca={garbage}"], "TLS files"),
        "creds-and-nkey": (
            [f"--audit-nats-creds={garbage}", f"--audit-nats-nkey={garbage}"],
            "--audit-nats-creds and --audit-nats-nkey",
        ),
        "garbage-creds": ([f"--audit-nats-creds={garbage}"], "--audit-nats-creds"),
        "creds-without-jwt": ([f"--audit-nats-creds={seed_only}"], "--audit-nats-creds"),
        "garbage-nkey": ([f"--audit-nats-nkey={garbage}"], "--audit-nats-nkey"),
    }, seed


@pytest.mark.parametrize(
    "case",
    [
        "missing-creds",
        "missing-nkey",
        "missing-tls-ca",
        "missing-tls-key",
        "cert-without-key",
        "garbage-tls-ca",
        "creds-and-nkey",
        "garbage-creds",
        "creds-without-jwt",
        "garbage-nkey",
    ],
)
def test_bad_credential_files_are_a_clear_error(tmp_path, case) -> None:
    """The service exits 2 at once with one error line naming the flag.

    The server requires JWT auth, so a file that is not checked up front is
    actually used (and an unchecked one makes the service retry rather than exit).
    """
    setup = jwt_setup(tmp_path)
    server = start_server(tmp_path, setup)
    cases, seed = _bad_files(tmp_path)
    flags, named = cases[case]
    svc = Service(tmp_path, base_args(setup.url(server), "--log-format=json", *flags)).start()
    try:
        code = svc.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        svc.stop()
        server.stop()
    output = svc.output()
    assert code == 2, output[-3000:]
    errors = [line for line in output.splitlines() if "Invalid connection settings" in line]
    assert len(errors) == 1, output[-3000:]
    assert named in json.loads(errors[0])["error"]
    assert "Traceback" not in output
    assert "Connected to NATS" not in output
    assert_no_secrets(svc, setup, seed)
