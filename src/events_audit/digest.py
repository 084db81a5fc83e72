"""Tamper evidence for the log file: a digest file beside it (--audit-digest).

The log lines stay byte-identical to the original's; everything here goes
into a second file, one JSON record per line:

``open``        a segment starts: the log file's name and size at that moment,
                the chain value and signature it continues (the last of the
                previous segment, or none for the first one)
``write``       one per write to the log: the byte range, the line count, the
                first and last stream sequence, a CRC-32 per line (only to
                name the line that differs), and the chain value
                ``SHA-256(previous chain value + the record's header + every
                byte written)``
``checkpoint``  with ``--audit-digest-key``: the chain value and the log's end
                signed with Ed25519, naming the previous signature; every
                ``--audit-digest-interval``, at a reopen and at shutdown

Each write record is appended (and fsynced with the log) before the batch's
messages are acked.  A SIGHUP (logrotate) closes the segment with a
checkpoint and opens a new one in the file the digest path names then: a new
file when logrotate moved the old one, else the same file.

What it shows: a line edited, inserted, deleted or moved; a file cut short
or missing from a rotated chain; bytes nobody wrote through the service.
What it cannot: someone with the private key can sign a forged history;
without a key (or after the last checkpoint) someone who can write both
files can rewrite the chain; and lines of a write that was cut by a crash
before its record are reported as not attested, not proven.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .datapath import line_checksums

VERSION = 1
GENESIS = hashlib.sha256(b"events-audit digest v1").digest()


class DigestError(Exception):
    """The digest cannot be written or read."""


def _canonical(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def _write_header(n: int, start: int, end: int, lines: int, first: int, last: int) -> bytes:
    return b"write %d %d %d %d %d %d\n" % (n, start, end, lines, first, last)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def signed_text(checkpoint: dict) -> bytes:
    """What a checkpoint's signature covers: every field but the signature."""
    return b"events-audit checkpoint v1\n" + _canonical(
        {k: v for k, v in checkpoint.items() if k != "signature"}
    )


def _load_key(path: str, private: bool) -> Any:
    """An Ed25519 key from a PEM file (the private one unencrypted)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_pem_public_key,
    )

    what = "private key" if private else "public key"
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        key = load_pem_private_key(data, password=None) if private else load_pem_public_key(data)
    except OSError as exc:
        raise DigestError(f"cannot read the {what} {path!r}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        kind = "an unencrypted PEM private key" if private else "a PEM public key"
        raise DigestError(f"{path!r} is not {kind}: {exc}") from None
    wanted = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    if not isinstance(key, wanted):
        raise DigestError(
            f"{path!r} is not an Ed25519 {what} (make a pair with events-audit keygen)"
        )
    return key


def load_private_key(path: str) -> Any:
    return _load_key(path, private=True)


def load_public_key(path: str) -> Any:
    return _load_key(path, private=False)


def key_id(public_key: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# -- writing -------------------------------------------------------------------


class DigestWriter:
    """The service's side; called by the Sink under its lock."""

    def __init__(self, path: str, key: Any = None) -> None:
        self.path = path
        self.key = key
        self.key_id = key_id(key.public_key()) if key is not None else None
        self.fd = -1
        self.log_path = ""
        self.chain = GENESIS
        self.n = 0  # write records so far (over every segment and file)
        self.signature: str | None = None  # the last checkpoint's
        self.log_end = 0  # the log's size after the last record
        self.since_checkpoint = 0  # write records since the last checkpoint
        self._resume()

    def _resume(self) -> None:
        """A digest file left by an earlier run: continue its chain."""
        try:
            with open(self.path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                tail = 1 << 20
                while not self._take_last(handle, size, tail) and tail < size:
                    tail *= 4  # a long record (a large write's checksums): read more
        except FileNotFoundError:
            return
        except OSError as exc:
            raise DigestError(f"cannot read the digest {self.path!r}: {exc.strerror}") from None

    def _take_last(self, handle: Any, size: int, tail: int) -> bool:
        """Take the chain (the last write or open record) and the last
        signature (the last checkpoint's, or what the last open record names)
        from the last ``tail`` bytes; False when they are not both there."""
        handle.seek(max(0, size - tail))
        lines = handle.read().split(b"\n")
        if size > tail:
            lines = lines[1:]  # the first may be a part of a record
        chain: dict | None = None
        signed: tuple[str | None] | None = None  # the newest signature, once found
        for line in reversed(lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a record cut by a crash, or the empty end
            kind = record.get("kind")
            if chain is None and kind in ("write", "open"):
                chain = record
            if signed is None and kind == "checkpoint":
                signed = (record.get("signature"),)
            elif signed is None and kind == "open":
                signed = (record.get("previous_signature"),)
            if chain is not None and signed is not None:
                self.chain = bytes.fromhex(chain["chain"])
                self.n = chain.get("n", 0)
                self.log_end = chain.get("end", chain.get("log_size", 0))
                self.signature = signed[0]
                return True
        return size <= tail  # the whole file read: nothing to continue

    def _append(self, record: dict) -> None:
        """One record, whole or not at all (a full disk cuts it back)."""
        data = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        try:
            size = os.fstat(self.fd).st_size
        except OSError as exc:
            raise DigestError(f"cannot write the digest {self.path!r}: {exc.strerror}") from None
        try:
            written = 0
            while written < len(data):
                written += os.write(self.fd, data[written:])
        except OSError as exc:
            try:
                os.ftruncate(self.fd, size)
            except OSError:
                pass
            raise DigestError(f"cannot write the digest {self.path!r}: {exc.strerror}") from None

    def open_segment(self, log_path: str, log_size: int, reason: str) -> None:
        """A log file was opened (start, SIGHUP, a rotation found)."""
        self.log_path = log_path
        try:
            self.fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        except OSError as exc:
            raise DigestError(f"cannot open the digest {self.path!r}: {exc.strerror}") from None
        record = {
            "kind": "open",
            "version": VERSION,
            "n": self.n,
            "log": os.path.basename(log_path),
            "log_size": log_size,
            "reason": reason,
            "time": _now(),
            "previous": self.chain.hex(),
            "previous_signature": self.signature,
            "key": self.key_id,
        }
        chain = hashlib.sha256(self.chain + b"open\n" + _canonical(record)).digest()
        record["chain"] = chain.hex()
        try:
            self._append(record)
            self.sync()
        except DigestError:
            os.close(self.fd)  # not opened, then: the next write tries again
            self.fd = -1
            raise
        self.chain, self.log_end = chain, log_size

    def record(self, start: int, parts: Sequence[Any], sequences: tuple[int, int]) -> None:
        """One write of ``parts`` at ``start`` in the log; DigestError when
        its record cannot be written (the chain stays as it was)."""
        if self.fd < 0:  # the last reopen of the digest failed: try again
            self.open_segment(self.log_path, start, "reopen")
        size = sum(len(p) for p in parts)
        if any(len(p) and p[-1:] != b"\n" for p in parts[:-1]):
            parts = [b"".join(bytes(p) for p in parts)]  # a line across parts
        checksums = b"".join(line_checksums(p) for p in parts)
        n = self.n + 1
        header = _write_header(n, start, start + size, len(checksums) // 4, *sequences)
        digest = hashlib.sha256(self.chain)
        digest.update(header)
        for part in parts:
            digest.update(part)
        chain = digest.digest()
        self._append(
            {
                "kind": "write",
                "n": n,
                "start": start,
                "end": start + size,
                "lines": len(checksums) // 4,
                "first_seq": sequences[0],
                "last_seq": sequences[1],
                "crc": base64.b64encode(checksums).decode(),
                "chain": chain.hex(),
            }
        )
        self.n, self.chain, self.log_end = n, chain, start + size
        self.since_checkpoint += 1

    def sync(self) -> None:
        try:
            os.fdatasync(self.fd)
        except OSError as exc:
            raise DigestError(f"cannot sync the digest {self.path!r}: {exc.strerror}") from None

    def checkpoint(self, reason: str, force: bool = False) -> None:
        """A signed checkpoint of the chain so far (with a key; when there is
        something new to sign, or ``force``)."""
        if self.key is None or self.fd < 0 or not (self.since_checkpoint or force):
            return
        record = {
            "kind": "checkpoint",
            "n": self.n,
            "end": self.log_end,
            "chain": self.chain.hex(),
            "time": _now(),
            "reason": reason,
            "previous_signature": self.signature,
            "key": self.key_id,
        }
        record["signature"] = base64.b64encode(self.key.sign(signed_text(record))).decode()
        self._append(record)
        self.sync()
        self.signature = record["signature"]  # only once it is in the file
        self.since_checkpoint = 0

    def close(self, reason: str) -> None:
        if self.fd < 0:
            return
        try:
            self.checkpoint(reason, force=True)
            self.sync()
        finally:
            os.close(self.fd)
            self.fd = -1


def writer_for(settings: Any) -> DigestWriter | None:
    """The digest writer the settings ask for (None: off); DigestError when
    they cannot work."""
    if not settings.audit_digest:
        if settings.audit_digest_key:
            raise DigestError("--audit-digest-key needs --audit-digest PATH")
        return None
    if settings.log_output in ("stderr", "stdout"):
        raise DigestError("--audit-digest needs --log-output to be a file")
    if os.path.exists(settings.log_output) and not os.path.isfile(settings.log_output):
        raise DigestError("--audit-digest needs --log-output to be a regular file")
    if os.path.exists(settings.audit_digest) and not os.path.isfile(settings.audit_digest):
        raise DigestError("--audit-digest must be a regular file")
    if os.path.abspath(settings.audit_digest) == os.path.abspath(settings.log_output):
        raise DigestError("--audit-digest must not be the log file itself")
    key = load_private_key(settings.audit_digest_key) if settings.audit_digest_key else None
    return DigestWriter(settings.audit_digest, key)


# -- keygen --------------------------------------------------------------------


def keygen_main(argv: list[str]) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    from .cli import tool_parser

    parser = tool_parser(
        "keygen",
        "Write an Ed25519 key pair for --audit-digest-key: PREFIX.key (the service's, mode "
        "0600) and PREFIX.pub (the auditor's, for verify --public-key). Never overwrites.",
    )
    parser.add_argument(
        "prefix", metavar="PREFIX", help="path and name of the pair, e.g. /etc/events-audit/digest"
    )
    args = parser.parse_args(argv)
    private_path, public_path = args.prefix + ".key", args.prefix + ".pub"
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    written = []
    try:
        for path, data, mode in ((private_path, private, 0o600), (public_path, public, 0o644)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            written.append(path)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(path, mode)  # whatever the umask
    except OSError as exc:
        for path in written:  # no half pair left behind
            os.unlink(path)
        print(
            f"events-audit keygen: cannot write {exc.filename!r}: {exc.strerror}", file=sys.stderr
        )
        return 2
    print(f"private key (for --audit-digest-key): {private_path}")
    print(f"public key (for verify --public-key): {public_path}")
    print(f"key id: {key_id(key.public_key())}")
    return 0


# -- checking (events-audit verify --digest) -----------------------------------


@dataclass
class Segment:
    digest: str  # the digest file it is in
    open: dict
    writes: list[dict] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)
    log_file: str | None = None

    @property
    def last_chain(self) -> str:
        return self.writes[-1]["chain"] if self.writes else self.open["chain"]

    def describe(self) -> str:
        o = self.open
        text = f"the segment opened {o['time']} for {o['log']!r} (in {self.digest})"
        if self.writes:
            first, last = self.writes[0], self.writes[-1]
            text += f": bytes {first['start']}-{last['end']}"
            seqs = [w for w in self.writes if w["first_seq"]]
            if seqs:
                text += f", sequences {seqs[0]['first_seq']}-{seqs[-1]['last_seq']}"
        return text


@dataclass
class Findings:
    problems: list[dict] = field(default_factory=list)
    unattested: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, kind: str, text: str, **where: Any) -> None:
        self.problems.append({"kind": kind, "text": text, **where})


def read_segments(paths: Sequence[str], findings: Findings) -> list[Segment]:
    segments: list[Segment] = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                raw = handle.read().split(b"\n")
        except OSError as exc:
            raise DigestError(f"cannot read the digest {path!r}: {exc.strerror}") from None
        current: Segment | None = None
        for number, line in enumerate(raw, 1):
            if not line:
                continue
            try:
                record = json.loads(line)
                kind = record["kind"]
            except (ValueError, KeyError, TypeError):
                if number == len(raw):
                    findings.notes.append(f"{path}: its last record is cut short (a crash)")
                    continue
                raise DigestError(f"{path}:{number} is not a digest record") from None
            if kind == "open":
                current = Segment(path, record)
                segments.append(current)
            elif current is None:
                raise DigestError(f"{path}:{number}: a record before the first open record")
            elif kind == "write":
                current.writes.append(record)
            elif kind == "checkpoint":
                current.checkpoints.append(record)
    return segments


def chain_order(segments: list[Segment], findings: Findings) -> list[Segment]:
    """The segments in the order of their chain; a break is a problem."""
    by_previous: dict[str, list[Segment]] = {}
    for segment in segments:
        by_previous.setdefault(segment.open["previous"], []).append(segment)
    ordered: list[Segment] = []
    placed: set[int] = set()
    heads = by_previous.get(GENESIS.hex(), [])
    # a chain may start after files that are gone: those heads name an unknown previous
    known_ends = {s.last_chain for s in segments}
    heads += [s for s in segments if s.open["previous"] not in known_ends and s not in heads]
    begun: set[str] = set()  # log names with a chain that starts from nothing
    for head in heads:
        if head.open["previous"] == GENESIS.hex():
            if head.open["log"] in begun:
                findings.problem(
                    "chain_restarted",
                    f"the chain starts anew at {head.describe()}: the digest written before it "
                    "was removed or lost (the service found no digest to continue)",
                    digest=head.digest,
                )
            begun.add(head.open["log"])
        else:
            findings.problem(
                "chain_break",
                f"the chain breaks before {head.describe()}: the digest of an earlier log file "
                "is missing or was altered",
                digest=head.digest,
            )
        segment: Segment | None = head
        while segment is not None and id(segment) not in placed:
            ordered.append(segment)
            placed.add(id(segment))
            following = by_previous.get(segment.last_chain, [])
            segment = following[0] if following else None
    for segment in segments:
        if id(segment) not in placed:  # a second continuation of one chain value
            findings.problem(
                "chain_fork",
                f"{segment.describe()} continues a chain that another segment continues too",
                digest=segment.digest,
            )
    return ordered


def _open_chain_ok(segment: Segment) -> bool:
    record = {k: v for k, v in segment.open.items() if k != "chain"}
    previous = bytes.fromhex(record["previous"])
    expected = hashlib.sha256(previous + b"open\n" + _canonical(record)).hexdigest()
    return expected == segment.open["chain"]


def match_files(segments: list[Segment], log_paths: Sequence[str]) -> None:
    """Which log file each segment describes: the one with the segment's
    first line at the segment's first byte."""
    import zlib

    from .records import lines_of

    wanted: dict[int, list[Segment]] = {}
    for segment in segments:
        if segment.writes:
            wanted.setdefault(segment.writes[0]["start"], []).append(segment)
    for path in log_paths:
        for _number, offset, line in lines_of(path):
            for segment in wanted.get(offset, []):
                first = base64.b64decode(segment.writes[0]["crc"])[:4]
                if segment.log_file is None and zlib.crc32(line).to_bytes(4, "little") == first:
                    segment.log_file = path


def _classify(actual: list[int], expected: list[int]) -> str:
    a0, a1 = actual[0], actual[1] if len(actual) > 1 else None
    e0, e1 = expected[0], expected[1] if len(expected) > 1 else None
    if a0 == e1 and a1 == e0:
        return "reordered: this line and the next one were swapped"
    if a0 == e1:
        return "deleted: the line written here is missing"
    if a1 == e0:
        return "inserted: this line was not written by the service"
    return "edited: this line is not the one written here"


def check_file(path: str, segments: list[Segment], findings: Findings) -> int:
    """The log file against its segments (in file order); the bytes checked."""
    import zlib

    from .records import lines_of

    records: list[tuple[Segment, dict, bool]] = []  # (segment, write, first of its segment)
    for segment in sorted((s for s in segments if s.writes), key=lambda s: s.writes[0]["start"]):
        records += [(segment, w, i == 0) for i, w in enumerate(segment.writes)]
    lines = lines_of(path)
    index, in_record, chain, running = 0, 0, b"", None
    uncovered: list[int] = []  # [first byte, first line, lines]
    checked = 0
    position = 0  # the file's bytes read so far

    def flush_uncovered(end: int) -> None:
        if uncovered:
            findings.unattested.append(
                {
                    "file": path,
                    "byte": uncovered[0],
                    "end": end,
                    "line": uncovered[1],
                    "lines": uncovered[2],
                }
            )
            uncovered.clear()

    for number, offset, line in lines:
        position = offset + len(line)
        if index >= len(records):
            if not uncovered:
                uncovered[:] = [offset, number, 0]
            uncovered[2] += 1
            continue
        segment, record, first_of_segment = records[index]
        if in_record == 0:
            if offset < record["start"]:
                if not uncovered:
                    uncovered[:] = [offset, number, 0]
                uncovered[2] += 1
                continue
            flush_uncovered(offset)
            if offset > record["start"]:
                findings.problem(
                    "missing_bytes",
                    f"bytes {record['start']}-{offset} written by the service (record "
                    f"{record['n']}) are not in the file",
                    file=path,
                    line=number,
                    byte=offset,
                )
                return checked
            if first_of_segment:
                chain = bytes.fromhex(segment.open["chain"])
            running = hashlib.sha256(chain)
            running.update(
                _write_header(
                    record["n"],
                    record["start"],
                    record["end"],
                    record["lines"],
                    record["first_seq"],
                    record["last_seq"],
                )
            )
            expected = base64.b64decode(record["crc"])
        crc = zlib.crc32(line)
        want = int.from_bytes(expected[4 * in_record : 4 * in_record + 4], "little")
        if crc != want:
            if not line.endswith(b"\n"):
                findings.problem(
                    "cut_short",
                    f"the file is cut short: it ends inside line {number} (byte {position}), the "
                    f"service wrote up to byte {records[-1][1]['end']}",
                    file=path,
                    line=number,
                    byte=position,
                    record=record["n"],
                )
                return checked
            following = next(lines, None)  # one line more tells a deletion from an edit
            actual = [crc] + ([zlib.crc32(following[2])] if following else [])
            rest = [want]
            if in_record + 1 < record["lines"]:
                rest.append(
                    int.from_bytes(expected[4 * in_record + 4 : 4 * in_record + 8], "little")
                )
            elif index + 1 < len(records):
                rest.append(
                    int.from_bytes(base64.b64decode(records[index + 1][1]["crc"])[:4], "little")
                )
            what = _classify(actual, rest)
            findings.problem(
                "line_differs",
                f"line {number} (byte {offset}) differs from what the service wrote: {what}",
                file=path,
                line=number,
                byte=offset,
                record=record["n"],
            )
            return checked
        running.update(line)
        checked += len(line)
        in_record += 1
        if in_record == record["lines"]:
            if running.hexdigest() != record["chain"]:
                findings.problem(
                    "chain_differs",
                    f"record {record['n']} (bytes {record['start']}-{record['end']}): the lines "
                    "match their checksums but not the chained SHA-256: the digest or the lines "
                    "were forged",
                    file=path,
                    byte=record["start"],
                )
                return checked
            chain = bytes.fromhex(record["chain"])
            in_record = 0
            index += 1
    flush_uncovered(position)
    if index < len(records):
        record, last = records[index][1], records[-1][1]
        findings.problem(
            "cut_short",
            f"the file is cut short: it ends at byte {position}, the service wrote up to byte "
            f"{last['end']} (records {record['n']}-{last['n']})",
            file=path,
            byte=position,
            record=record["n"],
        )
    return checked


def check_signatures(ordered: list[Segment], key: Any, findings: Findings) -> dict | None:
    """Every checkpoint signed by the key, each naming the one before, each
    signing the chain value of the record it names; the last one back."""
    from cryptography.exceptions import InvalidSignature

    # what a checkpoint may sign: a record's chain value and the log's end there
    signable = {w["chain"]: w["end"] for s in ordered for w in s.writes}
    signable.update({s.open["chain"]: s.open["log_size"] for s in ordered})
    previous: str | None = None
    last = None
    wanted_id = key_id(key)
    for segment in ordered:
        if segment.open.get("previous_signature") != previous and previous is not None:
            findings.problem(
                "signature_chain",
                f"{segment.describe()} does not name the last signature before it",
                digest=segment.digest,
            )
        for checkpoint in segment.checkpoints:
            where = f"the checkpoint of {checkpoint['time']} in {segment.digest}"
            try:
                key.verify(base64.b64decode(checkpoint["signature"]), signed_text(checkpoint))
            except (InvalidSignature, ValueError, KeyError):
                other = checkpoint.get("key") != wanted_id
                findings.problem(
                    "bad_signature",
                    f"{where}: the signature is not valid"
                    + (" (it names another key)" if other else " (the record was altered)"),
                    digest=segment.digest,
                )
                continue
            if checkpoint.get("previous_signature") != previous:
                findings.problem(
                    "signature_chain",
                    f"{where} does not name the signature before it: a checkpoint was removed",
                    digest=segment.digest,
                )
            if signable.get(checkpoint["chain"]) != checkpoint["end"]:
                findings.problem(
                    "checkpoint_mismatch",
                    f"{where} signs record {checkpoint['n']} as the digest does not hold it",
                    digest=segment.digest,
                )
            previous = checkpoint["signature"]
            last = checkpoint
    return last


def check_digests(
    digest_paths: Sequence[str], log_paths: Sequence[str], public_key: str | None
) -> dict:
    """The log files against the digest files: what ``verify --digest`` reports."""
    findings = Findings()
    segments = read_segments(digest_paths, findings)
    if not segments:
        raise DigestError("the digest files hold no segment")
    for segment in segments:
        if not _open_chain_ok(segment):
            findings.problem(
                "open_altered",
                f"{segment.describe()}: its open record was altered",
                digest=segment.digest,
            )
    ordered = chain_order(segments, findings)
    match_files(ordered, log_paths)
    for before, segment in zip(ordered, ordered[1:], strict=False):
        # a restart appends to the file the last segment described: a change
        # earlier in it moves this segment's bytes, the check names that change
        if (
            segment.log_file is None
            and segment.open["log_size"] > 0
            and segment.open["log"] == before.open["log"]
        ):
            segment.log_file = before.log_file
    by_file: dict[str, list[Segment]] = {}
    for segment in ordered:
        if segment.writes and segment.log_file is None:
            findings.problem(
                "missing_file",
                f"no log file given holds {segment.describe()}: a missing file in the chain "
                "(or its first line was changed)",
                digest=segment.digest,
            )
        elif segment.log_file is not None:
            by_file.setdefault(segment.log_file, []).append(segment)
    checked = {path: check_file(path, segs, findings) for path, segs in by_file.items()}
    for path in log_paths:
        if path not in by_file:
            findings.notes.append(f"{path}: no digest segment describes it")
    signed = None
    if public_key:
        last = check_signatures(ordered, load_public_key(public_key), findings)
        if last is not None:
            signed = {"time": last["time"], "record": last["n"], "end": last["end"]}
            tail = [w for s in ordered for w in s.writes if w["n"] > last["n"]]
            if tail:
                findings.notes.append(
                    f"{len(tail)} write record(s) after the last signed checkpoint "
                    f"({last['time']}): not signed (no clean shutdown yet)"
                )
            for problem in findings.problems:
                if problem["kind"] == "cut_short" and problem.get("record", 0) <= last["n"]:
                    problem["text"] += " - below the last signed checkpoint"
        elif any(s.writes for s in ordered):
            findings.problem("unsigned", "the digest holds no signed checkpoint")
    elif any(s.checkpoints for s in ordered):
        findings.notes.append("the checkpoints' signatures were not checked (no --public-key)")
    return {
        "intact": not findings.problems and not findings.unattested,
        "segments": len(segments),
        "records": sum(len(s.writes) for s in segments),
        "bytes_checked": checked,
        "signatures_checked": bool(public_key),
        "last_signed_checkpoint": signed,
        "problems": findings.problems,
        "unattested": findings.unattested,
        "notes": findings.notes,
    }


def digest_summary(report: dict) -> str:
    lines = [
        f"Digest: {report['segments']} segment(s), {report['records']:,} write record(s), "
        f"{sum(report['bytes_checked'].values()):,} bytes checked"
        + (", signatures checked" if report["signatures_checked"] else "")
    ]
    if report["last_signed_checkpoint"]:
        last = report["last_signed_checkpoint"]
        lines.append(f"  last signed checkpoint: {last['time']} (up to byte {last['end']})")
    for problem in report["problems"]:
        where = f"{problem['file']}: " if problem.get("file") else ""
        lines.append(f"  ALTERED: {where}{problem['text']}")
    for gap in report["unattested"]:
        lines.append(
            f"  NOT ATTESTED: {gap['file']}: bytes {gap['byte']}-{gap['end']} (lines {gap['line']}-"
            f"{gap['line'] + gap['lines'] - 1}) have no digest record (written around a crash, "
            "or not by the service)"
        )
    for note in report["notes"]:
        lines.append(f"  note: {note}")
    lines.append(
        "  the files are as the service wrote them" if report["intact"] else "  NOT INTACT"
    )
    return "\n".join(lines) + "\n"
