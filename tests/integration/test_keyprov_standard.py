"""The standard key provider (src/keyprov/standard.c) against real KMIP
servers: vmseal-kms, and the PyKMIP server (Debian's python3-pykmip 0.10),
driven through tests/integration/helpers/keyprov_tool.c.

Each parametrized test runs once per server. What the server holds is
checked independently of vmseal's KMIP code, with the tests' own TTLV
codec (kms.py): the state and attributes of the keys, and their material
(a value wrapped by the provider must open, RFC 5649, under the bytes the
server hands out).

PyKMIP 0.10 quirks met here (docs/keyprov.md lists them for operators):
- it has no Add Attribute: the request does not even parse ("Invalid
  Message: Error parsing request message"), so the vCenter-like x-
  attributes are never set; the provider logs a warning and the key is
  usable all the same;
- Destroy deletes the object: afterwards Get Attributes answers Item Not
  Found rather than State = Destroyed, so a destroyed key reads as
  unavailable (ERR_KEY_UNAVAILABLE), not as destroyed (ERR_KEY_STATE).
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import re
import signal
import socket
import subprocess
import time
from typing import Optional

import pytest

from kms import (AES, KmsServer, Op, Reason, State, Status, Tag, batch_item, call, create_aes,
                 enum, find_all, free_port, get, get_attributes, struct_, tls_connect, uid_item)

from cryptography.hazmat.primitives import keywrap, serialization  # PyKMIP depends on it

VM_NAME = "test01"
VM_UUID = "4c4c4544-0031-3410-8056-b4c04f4e3732"
PAYLOAD = bytes(range(32))  # what the tests wrap: a test value, not a secret
REVOKE_CESSATION_OF_OPERATION = 6
STARTUP_SECONDS = 30
TOOL_SECONDS = 120


def project_version() -> str:
    from conftest import SOURCE_DIR
    text = (SOURCE_DIR / "CMakeLists.txt").read_text()
    return re.search(r"project\(vmseal VERSION ([0-9.]+)", text).group(1)


# --------------------------------------------------------------------------
# The PyKMIP server

class PyKmipServer:
    """Debian's pykmip-server with vmseal-kms's development PKI (the same
    server certificate, CA and client certificate), as bench/kms/run.sh
    starts it. Runs in its own session: it forks helpers, and SIGINT to the
    group stops them all (on SIGTERM its accept loop notices only after its
    10 s socket timeout)."""

    kind = "pykmip"

    def __init__(self, pki: pathlib.Path, tmp_path: pathlib.Path):
        self.pki = pki
        self.dir = tmp_path / "pykmip"
        self.port: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None

    ca_crt = property(lambda self: self.pki / "ca.crt")
    client_crt = property(lambda self: self.pki / "client.crt")
    client_key = property(lambda self: self.pki / "client.key")

    def log(self) -> str:
        out = []
        for name in ("stderr.log", "server.log"):
            try:
                out.append((self.dir / name).read_text(errors="replace")[-4000:])
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def start(self) -> None:
        (self.dir / "policies").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = self.dir / "server.conf"
        # auth_suite TLS1.2: 'Basic' means TLS 1.0, which OpenSSL 3 refuses.
        # enable_tls_client_auth: the client certificate must carry the
        # clientAuth extended key usage, which the development one has.
        conf.write_text(f"""[server]
hostname=127.0.0.1
port={self.port}
certificate_path={self.pki / 'server.crt'}
key_path={self.pki / 'server.key'}
ca_path={self.ca_crt}
auth_suite=TLS1.2
policy_path={self.dir / 'policies'}
enable_tls_client_auth=True
logging_level=INFO
database_path={self.dir / 'pykmip.db'}
""")
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen(
                ["/usr/bin/python3", "/usr/bin/pykmip-server", "-f", str(conf),
                 "-l", str(self.dir / "server.log")],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"pykmip-server exited with status {self.proc.returncode}:\n"
                            f"{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"pykmip-server is not listening after {STARTUP_SECONDS} s:\n"
                            f"{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Its forked helpers are in the same group; make sure none is left.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(params=["vmseal-kms", "pykmip"])
def server(request, kms_program, tmp_path, capsys):
    """A KMIP server on loopback whose certificate is valid for
    "localhost": vmseal-kms, or PyKMIP with vmseal-kms's development PKI."""
    failed_before = request.session.testsfailed
    if request.param == "vmseal-kms":
        with KmsServer(kms_program, tmp_path) as kms:
            kms.kind = "vmseal-kms"
            yield kms
            log = kms.log
    else:
        pki_source = KmsServer(kms_program, tmp_path, name="pki")
        pki_source.init()
        pyk = PyKmipServer(pki_source.pki, tmp_path)
        pyk.start()
        try:
            yield pyk
        finally:
            pyk.stop()
        log = pyk.log
    if request.session.testsfailed > failed_before:
        with capsys.disabled():
            print(f"\n--- {request.param} log ---\n{log()}")


# --------------------------------------------------------------------------
# The helper

class Tool:
    """keyprov_tool on one data directory. run(step, step, ...) runs the
    steps in one process and returns one dict per step ("rc", "error" and
    the step's results) and the process's stderr (its log)."""

    def __init__(self, path: pathlib.Path, data_dir: pathlib.Path):
        self.path = path
        self.data_dir = data_dir

    def args(self, steps) -> list[str]:
        args = [str(self.path), "--data-dir", str(self.data_dir)]
        for i, step in enumerate(steps):
            if i:
                args.append(";")
            args += [str(a) for a in step]
        return args

    @staticmethod
    def parse(stdout: str, count: int) -> list[dict]:
        results = [dict() for _ in range(count)]
        for line in stdout.splitlines():
            m = re.fullmatch(r"(\d+)\.([a-z_0-9]+)=(.*)", line)
            if m:
                results[int(m.group(1))][m.group(2)] = m.group(3)
        return results

    def run(self, *steps):
        proc = subprocess.run(self.args(steps), capture_output=True, timeout=TOOL_SECONDS)
        stdout = proc.stdout.decode(errors="replace")
        stderr = proc.stderr.decode(errors="replace")
        assert proc.returncode == 0, f"keyprov_tool exited {proc.returncode}:\n{stdout}\n{stderr}"
        assert "open.rc" not in stdout, stdout
        return self.parse(stdout, len(steps)), stderr

    def start(self, *steps) -> subprocess.Popen:
        """Runs steps that include a pause: returns the process once it is
        paused (resume() continues it)."""
        proc = subprocess.Popen(self.args(steps), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._count = len(steps)
        self._seen = []
        deadline = time.monotonic() + TOOL_SECONDS
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            self._seen.append(line)
            if line.rstrip().endswith(".paused=1"):
                return proc
        proc.kill()
        proc.wait()
        pytest.fail(f"keyprov_tool did not pause:\n{''.join(self._seen)}")

    def resume(self, proc: subprocess.Popen):
        stdout, stderr = proc.communicate(b"\n", timeout=TOOL_SECONDS)
        assert proc.returncode == 0, stderr.decode(errors="replace")
        text = "".join(self._seen) + stdout.decode(errors="replace")
        return self.parse(text, self._count), stderr.decode(errors="replace")


@pytest.fixture
def tool(helper, tmp_path):
    """tool(name="host") -> a Tool on data directory tmp_path/name."""
    return lambda name="host": Tool(helper("keyprov_tool"), tmp_path / name)


def ok(result: dict) -> dict:
    assert result.get("rc") == "ERR_OK", f"step {result.get('step')} failed: {result}"
    return result


def refused(result: dict, code: str) -> dict:
    assert result.get("rc") == code, f"step {result.get('step')}: expected {code}, got {result}"
    return result


def add_standard(server, *servers: str, name: str = "kp", key=None, ca=None):
    servers = servers or (f"localhost:{server.port}",)
    return ("add-standard", name, ca or server.ca_crt, server.client_crt,
            key or server.client_key, *servers)


def kmip(server, item):
    """One KMIP request with the tests' own TTLV code (KMIP 1.2), as the
    same client identity the provider uses."""
    with tls_connect(server, server.client_crt, server.client_key) as s:
        return call(s, item)


def key_state(server, uid: str) -> Optional[int]:
    """The State the server reports, or None if it has no such object."""
    res = kmip(server, get_attributes(uid, "State"))
    if res.status != Status.SUCCESS:
        assert res.reason == Reason.ITEM_NOT_FOUND, res.describe()
        return None
    return res.attributes()["State"][0]


def key_material(server, uid: str) -> bytes:
    return find_all(kmip(server, get(uid)).ok(), Tag.KEY_MATERIAL)[0].value


def revoke_cessation(server, uid: str) -> None:
    item = batch_item(Op.REVOKE, uid_item(uid),
                      struct_(Tag.REVOCATION_REASON,
                              enum(Tag.REVOCATION_REASON_CODE, REVOKE_CESSATION_OF_OPERATION)))
    kmip(server, item).ok()


# --------------------------------------------------------------------------
# Tests

VCENTER_ATTRIBUTES = ("x-Vendor", "x-Product", "x-Product_Version", "x-Component", "x-Name",
                      "x-Identifier")


def test_new_kek_is_an_active_aes_key_described_as_vcenter_does(server, tool):
    t = tool()
    (added, new, info), log = t.run(add_standard(server), ("new-kek", "kp", VM_NAME, VM_UUID),
                                    ("info", "kp"))
    ok(added)
    uid = ok(new)["key"]
    assert new["provider"] == "kp"
    assert ok(info)["type"] == "standard" and info["default"] == "1"
    assert info["servers"] == f"localhost:{server.port}"

    attrs = kmip(server, get_attributes(uid, "State", "Cryptographic Algorithm",
                                        "Cryptographic Length", *VCENTER_ATTRIBUTES)).attributes()
    assert attrs["State"] == [State.ACTIVE]
    assert attrs["Cryptographic Algorithm"] == [AES]
    assert attrs["Cryptographic Length"] == [256]
    expected = {"x-Vendor": "vmseal", "x-Product": "vmseal",
                "x-Product_Version": project_version(), "x-Component": "Virtual Machine",
                "x-Name": VM_NAME, "x-Identifier": VM_UUID}
    if server.kind == "vmseal-kms":
        for name, value in expected.items():
            assert attrs.get(name) == [value], f"{name}: {attrs.get(name)}"
        assert "did not take" not in log
    else:
        # PyKMIP cannot parse Add Attribute: the key has none of them, the
        # refusal is logged, and the key works (the other tests use it).
        assert not set(VCENTER_ATTRIBUTES) & set(attrs), attrs
        assert "did not take the key's descriptive attributes" in log, log
        assert "refused=6" in log and "Invalid Message" in log, log


def test_fetch_in_a_fresh_process_and_wrap_round_trip(server, tool):
    t = tool()
    results, _ = t.run(add_standard(server), ("new-kek", "kp", VM_NAME, VM_UUID))
    ok(results[0])
    uid = ok(results[1])["key"]
    (wrap,), _ = t.run(("wrap", "kp", uid, PAYLOAD.hex()))
    wrapped = bytes.fromhex(ok(wrap)["wrapped"])
    # The provider's KEK is the server's key: RFC 5649 under the material
    # the server hands out opens what the provider wrapped.
    assert keywrap.aes_key_unwrap_with_padding(key_material(server, uid), wrapped) == PAYLOAD

    # A fresh process: nothing cached until the key is fetched.
    (before, unwrap, after, again), _ = t.run(
        ("cached", "kp", uid), ("unwrap", "kp", uid, wrapped.hex()), ("cached", "kp", uid),
        ("wrap", "kp", uid, PAYLOAD.hex()))
    assert ok(before)["cached"] == "0"
    assert ok(unwrap)["plain_sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert ok(after)["cached"] == "1"
    rewrapped = bytes.fromhex(ok(again)["wrapped"])
    assert keywrap.aes_key_unwrap_with_padding(key_material(server, uid), rewrapped) == PAYLOAD

    # A wrapped key that was tampered with does not open.
    bad = bytearray(wrapped)
    bad[3] ^= 1
    (res,), _ = t.run(("unwrap", "kp", uid, bad.hex()))
    refused(res, "ERR_AUTH")


def test_server_down_names_provider_and_key_but_cached_keys_work(server, tool):
    t = tool()
    results, _ = t.run(add_standard(server), ("new-kek", "kp", VM_NAME, VM_UUID),
                       ("new-kek", "kp", "vm2", VM_UUID))
    cached_uid, other_uid = ok(results[1])["key"], ok(results[2])["key"]
    (wrap,), _ = t.run(("wrap", "kp", cached_uid, PAYLOAD.hex()))
    wrapped = ok(wrap)["wrapped"]

    # One process: fetch one key, then the server goes away.
    proc = t.start(("fetch", "kp", cached_uid), ("pause",),
                   ("unwrap", "kp", cached_uid, wrapped), ("wrap", "kp", cached_uid, "ff" * 16),
                   ("fetch", "kp", other_uid), ("new-kek", "kp", "vm3", VM_UUID),
                   ("probe", "kp", "0"))
    server.stop()
    (fetch, _, unwrap, wrap_again, fetch_other, new_kek, probe), log = t.resume(proc)
    ok(fetch)
    assert ok(unwrap)["plain_sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    ok(wrap_again)
    error = refused(fetch_other, "ERR_KEY_UNAVAILABLE")["error"]
    assert f"key provider kp: key {other_uid}: " in error, error
    # "cannot connect", or "no answer" when the kept connection was cut
    # under the request: either way the server is named.
    assert f"no KMIP server answered (localhost:{server.port}: " in error, error
    refused(new_kek, "ERR_KEY_UNAVAILABLE")
    assert "key provider kp" in new_kek["error"], new_kek
    assert probe["rc"] != "ERR_OK"

    # A fresh process has nothing cached: the key is unavailable, clearly.
    (res,), _ = t.run(("unwrap", "kp", cached_uid, wrapped))
    error = refused(res, "ERR_KEY_UNAVAILABLE")["error"]
    assert f"key provider kp: key {cached_uid}: " in error, error


def test_failover_past_a_dead_server(server, tool):
    t = tool()
    dead = f"localhost:{free_port()}"  # nothing listens there
    live = f"localhost:{server.port}"
    (added, new, probe0, probe1, info), _ = t.run(
        add_standard(server, dead, live), ("new-kek", "kp", VM_NAME, VM_UUID),
        ("probe", "kp", "0"), ("probe", "kp", "1"), ("info", "kp"))
    ok(added)
    uid = ok(new)["key"]
    assert probe0["rc"] == "ERR_IO" and "cannot connect" in probe0["error"], probe0
    ok(probe1)
    assert ok(info)["servers"] == f"{dead},{live}"
    assert key_state(server, uid) == State.ACTIVE
    # A fresh process fails over the same way to fetch.
    (res, wrap), _ = t.run(("fetch", "kp", uid), ("wrap", "kp", uid, PAYLOAD.hex()))
    ok(res)
    wrapped = bytes.fromhex(ok(wrap)["wrapped"])
    assert keywrap.aes_key_unwrap_with_padding(key_material(server, uid), wrapped) == PAYLOAD


def test_destroy_shreds_the_key(server, tool):
    t = tool()
    results, _ = t.run(add_standard(server), ("new-kek", "kp", VM_NAME, VM_UUID),
                       ("new-kek", "kp", "vm2", VM_UUID))
    uid, other = ok(results[1])["key"], ok(results[2])["key"]
    (wrap,), _ = t.run(("wrap", "kp", uid, PAYLOAD.hex()))
    wrapped = ok(wrap)["wrapped"]

    (fetch, destroy, cached, unwrap, wrap_again, again, other_wrap), _ = t.run(
        ("fetch", "kp", uid), ("destroy", "kp", uid), ("cached", "kp", uid),
        ("unwrap", "kp", uid, wrapped), ("wrap", "kp", uid, PAYLOAD.hex()),
        ("destroy", "kp", uid), ("wrap", "kp", other, PAYLOAD.hex()))
    ok(fetch)
    ok(destroy)
    assert ok(cached)["cached"] == "0"
    ok(other_wrap)  # the other key is untouched
    if server.kind == "vmseal-kms":
        # Revoked (Cessation of Operation), then Destroyed: the state stays.
        assert key_state(server, uid) == State.DESTROYED
        refused(unwrap, "ERR_KEY_STATE")
        refused(wrap_again, "ERR_KEY_STATE")
        assert "Destroyed at the key server" in unwrap["error"], unwrap
        ok(again)  # destroying twice is fine
    else:
        # PyKMIP deletes a destroyed object: it is gone, not Destroyed.
        assert key_state(server, uid) is None
        refused(unwrap, "ERR_KEY_UNAVAILABLE")
        refused(wrap_again, "ERR_KEY_UNAVAILABLE")
        assert "Item Not Found" in unwrap["error"], unwrap
        refused(again, "ERR_KEY_UNAVAILABLE")
    res = kmip(server, get(uid))
    assert res.status != Status.SUCCESS, "the server still hands out a destroyed key"

    # A fresh process cannot use it either.
    (res,), _ = t.run(("unwrap", "kp", uid, wrapped))
    assert res["rc"] in ("ERR_KEY_STATE", "ERR_KEY_UNAVAILABLE"), res
    assert f"key provider kp: key {uid}: " in res["error"], res


def test_only_active_keys_wrap(server, tool):
    t = tool()
    results, _ = t.run(add_standard(server), ("new-kek", "kp", VM_NAME, VM_UUID))
    uid = ok(results[1])["key"]
    (wrap,), _ = t.run(("wrap", "kp", uid, PAYLOAD.hex()))
    wrapped = ok(wrap)["wrapped"]

    revoke_cessation(server, uid)
    assert key_state(server, uid) == State.DEACTIVATED
    (wrap, unwrap), _ = t.run(("wrap", "kp", uid, PAYLOAD.hex()),
                              ("unwrap", "kp", uid, wrapped))
    error = refused(wrap, "ERR_KEY_STATE")["error"]
    assert f"key provider kp: key {uid}: Deactivated" in error, error
    # Existing wrapped keys still open: that is how a VM is rekeyed away
    # from a deactivated key.
    assert ok(unwrap)["plain_sha256"] == hashlib.sha256(PAYLOAD).hexdigest()

    # A key made elsewhere and never activated: readable, not for wrapping.
    pre = kmip(server, create_aes(256)).uid()
    assert key_state(server, pre) == State.PRE_ACTIVE
    (fetch, wrap), _ = t.run(("fetch", "kp", pre), ("wrap", "kp", pre, PAYLOAD.hex()))
    ok(fetch)
    assert "Pre-Active" in refused(wrap, "ERR_KEY_STATE")["error"]


def test_add_standard_refusals_store_nothing(kms_server, tool, tmp_path):
    kms_server.kind = "vmseal-kms"
    t = tool()
    other_crt, other_key = kms_server.issue_client("other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    other_ca = tmp_path / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / "k"),
                    "-out", str(other_ca), "-subj", "/CN=other", "-days", "1"],
                   check=True, capture_output=True)
    dead1, dead2 = f"localhost:{free_port()}", f"localhost:{free_port()}"
    results, _ = t.run(
        add_standard(kms_server, dead1, dead2),
        add_standard(kms_server, key=other_key),          # not the certificate's key
        add_standard(kms_server, ca=garbage),
        add_standard(kms_server, ca=other_ca),            # the server is not trusted
        add_standard(kms_server, "localhost"),            # no port
        add_standard(kms_server, "localhost:0"),
        add_standard(kms_server, name="../kp"),
        ("fetch", "nope", "1"),
        ("probe", "kp", "0"))
    (dead, mismatch, bad_ca, untrusted, no_port, port0, bad_name, unknown, probe) = results
    assert "no server answered" in refused(dead, "ERR_PROVIDER")["error"], dead
    assert "nothing was stored" in dead["error"]
    assert "mismatch" in refused(mismatch, "ERR_CRYPTO")["error"], mismatch
    refused(bad_ca, "ERR_CRYPTO")
    assert "server certificate" in refused(untrusted, "ERR_PROVIDER")["error"], untrusted
    refused(no_port, "ERR_INVALID_ARG")
    refused(port0, "ERR_INVALID_ARG")
    refused(bad_name, "ERR_INVALID_ARG")
    refused(unknown, "ERR_NOT_FOUND")
    refused(probe, "ERR_NOT_FOUND")
    assert not (t.data_dir / "providers.json").exists()
    assert list((t.data_dir / "providers").iterdir()) == []

    (added, again), _ = t.run(add_standard(kms_server), add_standard(kms_server))
    ok(added)
    refused(again, "ERR_EXISTS")


def test_no_client_key_or_kek_in_clear_on_disk(kms_server, tool):
    kms_server.kind = "vmseal-kms"
    t = tool()
    results, _ = t.run(add_standard(kms_server), ("new-kek", "kp", VM_NAME, VM_UUID),
                       ("new-kek", "kp", "vm2", VM_UUID))
    uids = [ok(r)["key"] for r in results[1:]]
    provider_dir = t.data_dir / "providers" / "kp"
    assert sorted(p.name for p in provider_dir.iterdir()) == ["ca.pem", "cert.pem", "key.sealed"]
    assert (provider_dir / "key.sealed").stat().st_mode & 0o777 == 0o600
    assert (provider_dir / "ca.pem").read_bytes() == kms_server.ca_crt.read_bytes()
    assert (provider_dir / "cert.pem").read_bytes() == kms_server.client_crt.read_bytes()

    pem = kms_server.client_key.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    needles = {
        "client key PKCS#8 DER": key.private_bytes(serialization.Encoding.DER,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()),
        "client key traditional DER": key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()),
    }
    numbers = key.private_numbers()
    if hasattr(numbers, "private_value"):  # EC
        needles["client key scalar"] = numbers.private_value.to_bytes(
            (key.curve.key_size + 7) // 8, "big")
    for i, line in enumerate(l for l in pem.splitlines() if l and not l.startswith(b"-----")):
        needles[f"client key PEM line {i}"] = line
    for uid in uids:
        material = key_material(kms_server, uid)
        needles[f"KEK {uid}"] = material
        needles[f"KEK {uid} hex"] = material.hex().encode()
    files = [p for p in t.data_dir.rglob("*") if p.is_file()]
    assert len(files) >= 5, files
    for path in files:
        data = path.read_bytes()
        for what, needle in needles.items():
            assert needle not in data, f"{what} found in {path}"
