"""Helpers for the vmseal-kms integration tests.

- KmsServer: `vmseal-kms init` a data directory under pytest's tmp_path,
  `serve` it on a free loopback port, stop it with SIGTERM (it must exit 0).
- tls_connect / kmip_roundtrip / read_message: a mutually authenticated TLS
  connection and one KMIP message each way, always with a timeout.
- A small, strict TTLV codec (KMIP 1.4 §9.1): decode() gives nested Items,
  encode() gives the bytes back, so a captured request can be edited and
  re-encoded with every enclosing length recomputed.
- Request builders for the KMIP 1.x operations the raw tests need, and
  parse_response() to check what came back.

This module is deliberately independent of PyKMIP: it is the second,
independent reading of the wire format.
"""
from __future__ import annotations

import signal
import socket
import ssl
import struct
import subprocess
import time
from dataclasses import dataclass
from typing import NamedTuple, Optional

import pytest

STARTUP_SECONDS = 20
SHUTDOWN_SECONDS = 10
IO_SECONDS = 10
MAX_MESSAGE = 16 << 20  # refuse to buffer more than this from the server


# --------------------------------------------------------------------------
# KMIP numbers (KMIP 1.4 §9.1.3; the 2.x ones are marked)

class Type:
    STRUCTURE = 0x01
    INTEGER = 0x02
    LONG_INTEGER = 0x03
    BIG_INTEGER = 0x04
    ENUMERATION = 0x05
    BOOLEAN = 0x06
    TEXT_STRING = 0x07
    BYTE_STRING = 0x08
    DATE_TIME = 0x09
    INTERVAL = 0x0A
    DATE_TIME_EXTENDED = 0x0B  # 2.x


class Tag:
    ATTRIBUTE = 0x420008
    ATTRIBUTE_NAME = 0x42000A
    ATTRIBUTE_VALUE = 0x42000B
    BATCH_COUNT = 0x42000D
    BATCH_ITEM = 0x42000F
    COMPROMISE_OCCURRENCE_DATE = 0x420021
    CRYPTOGRAPHIC_ALGORITHM = 0x420028
    CRYPTOGRAPHIC_LENGTH = 0x42002A
    KEY_BLOCK = 0x420040
    KEY_FORMAT_TYPE = 0x420042
    KEY_MATERIAL = 0x420043
    KEY_VALUE = 0x420045
    NAME = 0x420053
    NAME_TYPE = 0x420054
    NAME_VALUE = 0x420055
    OBJECT_TYPE = 0x420057
    OPERATION = 0x42005C
    PROTOCOL_VERSION = 0x420069
    PROTOCOL_VERSION_MAJOR = 0x42006A
    PROTOCOL_VERSION_MINOR = 0x42006B
    QUERY_FUNCTION = 0x420074
    REQUEST_HEADER = 0x420077
    REQUEST_MESSAGE = 0x420078
    REQUEST_PAYLOAD = 0x420079
    RESPONSE_HEADER = 0x42007A
    RESPONSE_MESSAGE = 0x42007B
    RESPONSE_PAYLOAD = 0x42007C
    RESULT_MESSAGE = 0x42007D
    RESULT_REASON = 0x42007E
    RESULT_STATUS = 0x42007F
    REVOCATION_REASON = 0x420081
    REVOCATION_REASON_CODE = 0x420082
    STATE = 0x42008D
    SYMMETRIC_KEY = 0x42008F
    TEMPLATE_ATTRIBUTE = 0x420091
    TIME_STAMP = 0x420092
    UNIQUE_BATCH_ITEM_ID = 0x420093
    UNIQUE_IDENTIFIER = 0x420094
    VENDOR_IDENTIFICATION = 0x42009D


class Op:
    CREATE = 0x01
    REGISTER = 0x03
    LOCATE = 0x08
    GET = 0x0A
    GET_ATTRIBUTES = 0x0B
    GET_ATTRIBUTE_LIST = 0x0C
    ADD_ATTRIBUTE = 0x0D
    ACTIVATE = 0x12
    REVOKE = 0x13
    DESTROY = 0x14
    QUERY = 0x18
    DISCOVER_VERSIONS = 0x1E


# The capture's operation names (requests.jsonl "operations") -> Op.
OPERATION_NAMES = {
    "Create": Op.CREATE, "Register": Op.REGISTER, "Locate": Op.LOCATE,
    "Get": Op.GET, "GetAttributes": Op.GET_ATTRIBUTES,
    "GetAttributeList": Op.GET_ATTRIBUTE_LIST, "AddAttribute": Op.ADD_ATTRIBUTE,
    "Activate": Op.ACTIVATE, "Revoke": Op.REVOKE, "Destroy": Op.DESTROY,
    "Query": Op.QUERY, "DiscoverVersions": Op.DISCOVER_VERSIONS,
}


class Status:
    SUCCESS = 0
    OPERATION_FAILED = 1


class Reason:
    ITEM_NOT_FOUND = 0x01
    INVALID_MESSAGE = 0x04
    PERMISSION_DENIED = 0x0C
    OBJECT_NOT_FOUND = 0x37  # 2.x
    NOT_AUTHORISED = 0x39    # 2.x


class ObjectType:
    SYMMETRIC_KEY = 2
    SECRET_DATA = 7


class State:
    PRE_ACTIVE = 1
    ACTIVE = 2
    DEACTIVATED = 3
    COMPROMISED = 4
    DESTROYED = 5
    DESTROYED_COMPROMISED = 6


AES = 3                  # Cryptographic Algorithm
KEY_FORMAT_RAW = 1       # Key Format Type
ENCRYPT_DECRYPT = 0x0C   # Cryptographic Usage Mask
NAME_UNINTERPRETED = 1   # Name Type
QUERY_OPERATIONS, QUERY_OBJECTS, QUERY_SERVER_INFORMATION = 1, 2, 3
REVOKE_KEY_COMPROMISE, REVOKE_CESSATION_OF_OPERATION = 2, 6


# --------------------------------------------------------------------------
# TTLV codec

class TtlvError(ValueError):
    pass


class Item(NamedTuple):
    """One TTLV item. value: list[Item] for a Structure, int for the numeric
    types (signed where KMIP says so), bool, str or bytes."""
    tag: int
    type: int
    value: object

    def __repr__(self):
        return f"Item(0x{self.tag:06X}, {self.type}, {self.value!r})"


_FIXED = {  # type -> (length, struct format)
    Type.INTEGER: (4, ">i"), Type.ENUMERATION: (4, ">I"), Type.INTERVAL: (4, ">I"),
    Type.LONG_INTEGER: (8, ">q"), Type.DATE_TIME: (8, ">q"),
    Type.DATE_TIME_EXTENDED: (8, ">q"), Type.BOOLEAN: (8, ">Q"),
}


def _padded(n: int) -> int:
    return (n + 7) & ~7


def decode(data: bytes) -> list[Item]:
    """Decode a sequence of TTLV items filling `data` exactly. Strict: fixed
    lengths, zero padding, valid UTF-8, nothing left over."""
    items, pos = [], 0
    while pos < len(data):
        if len(data) - pos < 8:
            raise TtlvError(f"{len(data) - pos} stray bytes at offset {pos}")
        tag = int.from_bytes(data[pos:pos + 3], "big")
        typ = data[pos + 3]
        length = int.from_bytes(data[pos + 4:pos + 8], "big")
        body_end = pos + 8 + length
        end = pos + 8 + _padded(length)
        if end > len(data):
            raise TtlvError(f"tag 0x{tag:06X}: length {length} overruns the data")
        body = data[pos + 8:body_end]
        if any(data[body_end:end]):
            raise TtlvError(f"tag 0x{tag:06X}: non-zero padding")
        if typ == Type.STRUCTURE:
            value = decode(body)
        elif typ in _FIXED:
            want, fmt = _FIXED[typ]
            if length != want:
                raise TtlvError(f"tag 0x{tag:06X}: type {typ} with length {length}")
            value = struct.unpack(fmt, body)[0]
            if typ == Type.BOOLEAN:
                if value > 1:
                    raise TtlvError(f"tag 0x{tag:06X}: boolean {value}")
                value = bool(value)
        elif typ == Type.BIG_INTEGER:
            if length % 8:
                raise TtlvError(f"tag 0x{tag:06X}: big integer of length {length}")
            value = int.from_bytes(body, "big", signed=True)
        elif typ == Type.TEXT_STRING:
            try:
                value = body.decode("utf-8")
            except UnicodeDecodeError as e:
                raise TtlvError(f"tag 0x{tag:06X}: {e}") from None
        elif typ == Type.BYTE_STRING:
            value = bytes(body)
        else:
            raise TtlvError(f"tag 0x{tag:06X}: unknown type 0x{typ:02X}")
        items.append(Item(tag, typ, value))
        pos = end
    return items


def decode_message(data: bytes) -> Item:
    """Exactly one top-level item (a whole KMIP message)."""
    items = decode(data)
    if len(items) != 1:
        raise TtlvError(f"expected one message, found {len(items)} items")
    return items[0]


def encode(items) -> bytes:
    """Encode an Item or a list of Items; structure lengths are computed."""
    if isinstance(items, Item):
        items = [items]
    out = bytearray()
    for it in items:
        if it.type == Type.STRUCTURE:
            body = encode(it.value)
        elif it.type in _FIXED:
            body = struct.pack(_FIXED[it.type][1], int(it.value))
        elif it.type == Type.BIG_INTEGER:
            n = max(8, _padded((it.value.bit_length() + 8) // 8))
            body = it.value.to_bytes(n, "big", signed=True)
        elif it.type == Type.TEXT_STRING:
            body = it.value.encode("utf-8")
        elif it.type == Type.BYTE_STRING:
            body = bytes(it.value)
        else:
            raise TtlvError(f"cannot encode type {it.type}")
        out += it.tag.to_bytes(3, "big") + bytes([it.type]) + struct.pack(">I", len(body))
        out += body + bytes(_padded(len(body)) - len(body))
    return bytes(out)


def children(item: Item, tag: int) -> list[Item]:
    """The direct children of a structure with this tag."""
    return [c for c in item.value if c.tag == tag]


def child(item: Optional[Item], tag: int) -> Optional[Item]:
    """The first direct child with this tag, or None."""
    if item is None:
        return None
    found = children(item, tag)
    return found[0] if found else None


def find_all(item: Item, tag: int) -> list[Item]:
    """Every item with this tag at any depth below (and including) item."""
    found = [item] if item.tag == tag else []
    if item.type == Type.STRUCTURE:
        for c in item.value:
            found += find_all(c, tag)
    return found


def replace(item: Item, fn) -> Item:
    """Rebuild the tree, replacing each item by fn(item) (bottom-up);
    fn returns the item unchanged where it has nothing to do."""
    if item.type == Type.STRUCTURE:
        item = item._replace(value=[replace(c, fn) for c in item.value])
    return fn(item)


# --------------------------------------------------------------------------
# Building requests (KMIP 1.x encodings)

def struct_(tag, *items) -> Item:
    return Item(tag, Type.STRUCTURE, list(items))


def integer(tag, v) -> Item:
    return Item(tag, Type.INTEGER, v)


def enum(tag, v) -> Item:
    return Item(tag, Type.ENUMERATION, v)


def text(tag, s) -> Item:
    return Item(tag, Type.TEXT_STRING, s)


def date_time(tag, t) -> Item:
    return Item(tag, Type.DATE_TIME, int(t))


def attribute(name: str, value: Item) -> Item:
    """A 1.x Attribute; value is any Item, its tag becomes Attribute Value."""
    return struct_(Tag.ATTRIBUTE, text(Tag.ATTRIBUTE_NAME, name),
                   value._replace(tag=Tag.ATTRIBUTE_VALUE))


def name_attribute(name: str) -> Item:
    return attribute("Name", struct_(0, text(Tag.NAME_VALUE, name),
                                     enum(Tag.NAME_TYPE, NAME_UNINTERPRETED)))


def batch_item(operation: int, *payload: Item, batch_id: Optional[bytes] = None) -> Item:
    fields = [enum(Tag.OPERATION, operation)]
    if batch_id is not None:
        fields.append(Item(Tag.UNIQUE_BATCH_ITEM_ID, Type.BYTE_STRING, batch_id))
    fields.append(struct_(Tag.REQUEST_PAYLOAD, *payload))
    return struct_(Tag.BATCH_ITEM, *fields)


def request(*items: Item, version=(1, 2)) -> bytes:
    """A whole Request Message around these batch items."""
    header = struct_(Tag.REQUEST_HEADER,
                     struct_(Tag.PROTOCOL_VERSION,
                             integer(Tag.PROTOCOL_VERSION_MAJOR, version[0]),
                             integer(Tag.PROTOCOL_VERSION_MINOR, version[1])),
                     integer(Tag.BATCH_COUNT, len(items)))
    return encode(struct_(Tag.REQUEST_MESSAGE, header, *items))


def uid_item(uid: str) -> Item:
    return text(Tag.UNIQUE_IDENTIFIER, uid)


def create_aes(bits: int = 256, name: Optional[str] = None) -> Item:
    attrs = [attribute("Cryptographic Algorithm", enum(0, AES)),
             attribute("Cryptographic Length", integer(0, bits)),
             attribute("Cryptographic Usage Mask", integer(0, ENCRYPT_DECRYPT))]
    if name is not None:
        attrs.append(name_attribute(name))
    return batch_item(Op.CREATE, enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
                      struct_(Tag.TEMPLATE_ATTRIBUTE, *attrs))


def get(uid: str) -> Item:
    return batch_item(Op.GET, uid_item(uid))


def get_attributes(uid: str, *names: str) -> Item:
    return batch_item(Op.GET_ATTRIBUTES, uid_item(uid),
                      *(text(Tag.ATTRIBUTE_NAME, n) for n in names))


def get_attribute_list(uid: str) -> Item:
    return batch_item(Op.GET_ATTRIBUTE_LIST, uid_item(uid))


def add_attribute(uid: str, name: str, value: Item) -> Item:
    return batch_item(Op.ADD_ATTRIBUTE, uid_item(uid), attribute(name, value))


def locate(*attributes: Item) -> Item:
    return batch_item(Op.LOCATE, *attributes)


def activate(uid: str) -> Item:
    return batch_item(Op.ACTIVATE, uid_item(uid))


def revoke(uid: str, code: int = REVOKE_KEY_COMPROMISE) -> Item:
    return batch_item(Op.REVOKE, uid_item(uid),
                      struct_(Tag.REVOCATION_REASON, enum(Tag.REVOCATION_REASON_CODE, code)),
                      date_time(Tag.COMPROMISE_OCCURRENCE_DATE, time.time()))


def destroy(uid: str) -> Item:
    return batch_item(Op.DESTROY, uid_item(uid))


def discover_versions() -> Item:
    return batch_item(Op.DISCOVER_VERSIONS)


# --------------------------------------------------------------------------
# Reading responses

@dataclass
class BatchResult:
    operation: Optional[int]
    batch_id: Optional[bytes]
    status: int
    reason: Optional[int]
    message: Optional[str]
    payload: Optional[Item]

    def describe(self) -> str:
        return (f"status {self.status}, reason {self.reason}, message {self.message!r}, "
                f"operation {self.operation}")

    def ok(self) -> Item:
        """Assert Success; return the payload (an empty one if absent)."""
        assert self.status == Status.SUCCESS, f"operation failed: {self.describe()}"
        return self.payload if self.payload is not None else struct_(Tag.RESPONSE_PAYLOAD)

    def uid(self) -> str:
        found = child(self.ok(), Tag.UNIQUE_IDENTIFIER)
        assert found is not None and found.type == Type.TEXT_STRING and found.value, \
            f"no Unique Identifier (Text String) in {self.payload}"
        return found.value

    def attributes(self) -> dict[str, list[object]]:
        """Get Attributes (1.x): {name: [value, ...]} from the payload."""
        out: dict[str, list[object]] = {}
        for a in children(self.ok(), Tag.ATTRIBUTE):
            name = child(a, Tag.ATTRIBUTE_NAME)
            value = child(a, Tag.ATTRIBUTE_VALUE)
            assert name is not None and value is not None, f"malformed Attribute {a}"
            out.setdefault(name.value, []).append(value.value)
        return out


@dataclass
class Response:
    version: tuple[int, int]
    items: list[BatchResult]
    message: Item


def parse_response(data: bytes) -> Response:
    """Decode a Response Message and check its envelope (KMIP 1.4 §7)."""
    msg = decode_message(data)
    assert msg.tag == Tag.RESPONSE_MESSAGE and msg.type == Type.STRUCTURE, \
        f"not a Response Message: {msg!r:.200}"
    header = child(msg, Tag.RESPONSE_HEADER)
    assert header is not None, "Response Message without Response Header"
    pv = child(header, Tag.PROTOCOL_VERSION)
    assert pv is not None, "Response Header without Protocol Version"
    version = (child(pv, Tag.PROTOCOL_VERSION_MAJOR).value,
               child(pv, Tag.PROTOCOL_VERSION_MINOR).value)
    assert child(header, Tag.TIME_STAMP) is not None, "Response Header without Time Stamp"
    count = child(header, Tag.BATCH_COUNT)
    assert count is not None, "Response Header without Batch Count"
    results = []
    for bi in children(msg, Tag.BATCH_ITEM):
        status = child(bi, Tag.RESULT_STATUS)
        assert status is not None, f"Batch Item without Result Status: {bi}"
        fields = {t: child(bi, t) for t in (Tag.OPERATION, Tag.UNIQUE_BATCH_ITEM_ID,
                                            Tag.RESULT_REASON, Tag.RESULT_MESSAGE)}
        if status.value != Status.SUCCESS:
            assert fields[Tag.RESULT_REASON] is not None, \
                "a failed Batch Item must carry a Result Reason"
        results.append(BatchResult(
            operation=fields[Tag.OPERATION].value if fields[Tag.OPERATION] else None,
            batch_id=fields[Tag.UNIQUE_BATCH_ITEM_ID].value
            if fields[Tag.UNIQUE_BATCH_ITEM_ID] else None,
            status=status.value,
            reason=fields[Tag.RESULT_REASON].value if fields[Tag.RESULT_REASON] else None,
            message=fields[Tag.RESULT_MESSAGE].value if fields[Tag.RESULT_MESSAGE] else None,
            payload=child(bi, Tag.RESPONSE_PAYLOAD)))
    assert count.value == len(results), \
        f"Batch Count {count.value} but {len(results)} Batch Items"
    return Response(version, results, msg)


def call(sock, item: Item, version=(1, 2)) -> BatchResult:
    """Send one batch item, return its result (the envelope checked)."""
    resp = parse_response(kmip_roundtrip(sock, request(item, version=version)))
    assert len(resp.items) == 1, f"{len(resp.items)} batch items for one request"
    return resp.items[0]


# --------------------------------------------------------------------------
# Transport

class ConnectionClosed(ConnectionError):
    """The peer closed the connection before a whole message arrived."""


def _recv_exactly(sock, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out with {len(buf)} of {n} bytes")
        sock.settimeout(remaining)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionClosed(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_message(sock, timeout: float = IO_SECONDS) -> bytes:
    """Read exactly one TTLV message: the 8-byte header (tag 3, type 1,
    big-endian length 4), then that many bytes."""
    deadline = time.monotonic() + timeout
    header = _recv_exactly(sock, 8, deadline)
    length = struct.unpack(">I", header[4:])[0]
    if length > MAX_MESSAGE:
        raise TtlvError(f"server announced a {length}-byte message")
    return header + _recv_exactly(sock, length, deadline)


def kmip_roundtrip(sock, request_bytes: bytes, timeout: float = IO_SECONDS) -> bytes:
    """Send one request message, return the one response message."""
    sock.settimeout(timeout)
    sock.sendall(request_bytes)
    return read_message(sock, timeout)


def tls_connect(server: "KmsServer", cert=None, key=None, *, timeout: float = IO_SECONDS,
                max_version: Optional[ssl.TLSVersion] = None) -> ssl.SSLSocket:
    """A TLS 1.2+ connection to the server, verified against its ca.crt for
    the name "localhost", presenting cert/key (none if cert is None)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if max_version is not None:
        ctx.maximum_version = max_version
    ctx.load_verify_locations(cafile=str(server.ca_crt))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def free_port() -> int:
    """A loopback port that was free a moment ago (bind 0, close, reuse)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# The server

class KmsServer:
    """A vmseal-kms with its own data directory, serving on loopback.

        with KmsServer(program("vmseal-kms"), tmp_path) as kms:
            sock = tls_connect(kms, kms.client_crt, kms.client_key)
    """

    def __init__(self, binary, tmp_path, name: str = "kms"):
        self.binary = str(binary)
        self.data_dir = tmp_path / name
        self.pki = self.data_dir / "pki"
        self.log_path = tmp_path / f"{name}-serve.log"
        self.port: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None

    ca_crt = property(lambda self: self.pki / "ca.crt")
    client_crt = property(lambda self: self.pki / "client.crt")
    client_key = property(lambda self: self.pki / "client.key")

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [self.binary, *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{' '.join(cmd)} did not finish in 120 s")
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} exited with status {proc.returncode}:\n"
                        f"{proc.stderr.decode(errors='replace')}")
        return proc

    def init(self) -> None:
        self._run("init", "--data-dir", str(self.data_dir))
        expected = [self.data_dir / "kms.conf"] + [
            self.pki / f for f in ("ca.crt", "ca.key", "server.crt", "server.key",
                                   "client.crt", "client.key")]
        missing = [str(p) for p in expected if not p.is_file()]
        assert not missing, f"vmseal-kms init did not create {missing}"

    def issue_client(self, name: str):
        """`pki issue-client NAME` -> (certificate path, key path)."""
        self._run("pki", "issue-client", "--data-dir", str(self.data_dir), name)
        crt, key = self.pki / f"{name}.crt", self.pki / f"{name}.key"
        assert crt.is_file() and key.is_file(), f"pki issue-client did not write {crt}, {key}"
        return crt, key

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, port: Optional[int] = None) -> None:
        """Serves on port (a restart keeps its port), or on a free one."""
        self.port = port or free_port()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--data-dir", str(self.data_dir),
                 "--listen", f"127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"vmseal-kms serve exited with status {self.proc.returncode} "
                            f"before listening on port {self.port}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._kill()
                pytest.fail(f"vmseal-kms serve did not accept connections on port "
                            f"{self.port} within {STARTUP_SECONDS} s:\n{self.log()}")
            time.sleep(0.05)

    def assert_running(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, \
            f"vmseal-kms serve has exited (status {self.proc.returncode}):\n{self.log()}"

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> Optional[str]:
        """SIGTERM, wait up to 10 s. Returns a problem description, or None
        if the server exited 0 in time."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is not None:
            return f"vmseal-kms serve had already exited with status {proc.returncode}"
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return f"vmseal-kms serve ignored SIGTERM for {SHUTDOWN_SECONDS} s (killed)"
        if proc.returncode != 0:
            return f"vmseal-kms serve exited with status {proc.returncode} on SIGTERM"
        return None

    def __enter__(self) -> "KmsServer":
        if not (self.data_dir / "kms.conf").exists():
            self.init()
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        problem = self.stop()
        if exc_type is not None:
            # The test failed already: show the server's side of it.
            print(f"--- vmseal-kms serve log ({self.log_path}) ---\n{self.log()}")
            if problem:
                print(problem)
            return False
        if problem:
            pytest.fail(f"{problem}\n{self.log()}")
        return False
