"""vmseald's HTTPS listener, its certificate, and who the Unix socket lets in.

- `vmseald init` writes DATA/tls/api.crt and api.key (modes, the names the
  certificate carries, checked with the openssl tool, not with our code),
  prints the fingerprint `openssl x509 -fingerprint -sha256` prints, and
  never replaces them.
- HTTPS: the same routes as the socket; no token is 401; plain HTTP on the
  HTTPS port gets no HTTP answer and disturbs no other connection; TLS 1.1
  is refused; keep-alive holds one connection for many requests; a token
  from POST /v1/session works over either transport; Retry-After on 429;
  Cache-Control: no-store everywhere; the audit log records the transport
  and the peer, never the token.
- The socket: root needs no token; another Unix user is refused unless a
  vmseal user of its login name exists, and is then that user (403 for what
  it may not do). Other users reach the socket but cannot list the data
  directory.
- A second vmseald on the same data directory refuses to start.
"""
import concurrent.futures
import json
import os
import pathlib
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import warnings

import pytest

from vmseald import Vmseald

NOBODY_UID = 65534
PASSWORD = "a good long password"


def openssl(*args, input=None):
    return subprocess.run(["openssl", *args], input=input, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def workdir():
    # Under /tmp with a mode that lets another user reach the socket (pytest's
    # tmp_path is inside a 0700 directory of root's).
    path = pathlib.Path(tempfile.mkdtemp(prefix="vmseal-https-", dir="/tmp"))
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def d(workdir):
    from conftest import BUILD_DIR
    daemon = Vmseald(BUILD_DIR, workdir / "main", https=True)
    daemon.work.mkdir()
    os.chmod(daemon.work, 0o711)
    daemon.start()
    yield daemon
    daemon.stop()
    shutil.rmtree(daemon.runtime, ignore_errors=True)


def login(d, user, password=PASSWORD):
    status, body, _ = d.api_https("POST", "/v1/session", {"user": user, "password": password})
    assert status == 201, body
    return body["token"]


def make_user(d, name):
    status, body = d.api("POST", "/v1/users", {"name": name, "password": PASSWORD})
    assert status in (201, 409), body  # 409: made by an earlier test


# --- init and the certificate -------------------------------------------------------


def test_init_writes_the_certificate_once(workdir):
    from conftest import BUILD_DIR
    d = Vmseald(BUILD_DIR, workdir / "init")
    p = d.init()
    assert p.returncode == 0, p.stderr
    tls = d.data / "tls"
    assert (d.data.stat().st_mode & 0o777) == 0o700
    assert (tls.stat().st_mode & 0o777) == 0o700
    assert (d.ca.stat().st_mode & 0o777) == 0o644
    assert ((tls / "api.key").stat().st_mode & 0o777) == 0o600
    assert (d.data / "vmseald.db").is_file()

    text = openssl("x509", "-in", str(d.ca), "-noout", "-text")
    assert "ecdsa-with-SHA256" in text
    assert "NIST CURVE: P-256" in text
    assert re.search(r"Basic Constraints: critical\s+CA:FALSE", text)
    assert "TLS Web Server Authentication" in text
    san = re.search(r"Subject Alternative Name:\s*\n\s*(.*)", text).group(1)
    names = [n.strip() for n in san.split(",")]
    assert "DNS:localhost" in names
    assert "IP Address:127.0.0.1" in names
    assert "IP Address:0:0:0:0:0:0:0:1" in names
    host = socket.gethostname().lower()
    if re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*", host):
        assert f"DNS:{host}" in names
    # The key is the certificate's: the public keys match.
    assert openssl("pkey", "-in", str(tls / "api.key"), "-pubout") == \
        openssl("x509", "-in", str(d.ca), "-noout", "-pubkey")
    # 825 days (within the hour of back-dating).
    dates = openssl("x509", "-in", str(d.ca), "-noout", "-startdate", "-enddate")
    start = ssl.cert_time_to_seconds(re.search(r"notBefore=(.*)", dates).group(1))
    end = ssl.cert_time_to_seconds(re.search(r"notAfter=(.*)", dates).group(1))
    assert abs((end - start) - (825 * 86400 + 3600)) <= 5
    # Python's TLS stack accepts it as a trust anchor for "localhost".
    ssl.create_default_context(cafile=str(d.ca))

    # The fingerprint printed is openssl's.
    want = openssl("x509", "-in", str(d.ca), "-noout", "-fingerprint", "-sha256").strip()
    assert want in p.stdout, p.stdout

    # A second init changes nothing and prints the same fingerprint.
    before = {f: (f.read_bytes(), f.stat().st_ino) for f in (d.ca, tls / "api.key")}
    p2 = d.init()
    assert p2.returncode == 0, p2.stderr
    assert want in p2.stdout
    for f, (data, ino) in before.items():
        assert f.read_bytes() == data and f.stat().st_ino == ino

    # A key without its certificate gets a certificate for that key.
    key = (tls / "api.key").read_bytes()
    d.ca.unlink()
    p3 = d.init()
    assert p3.returncode == 0, p3.stderr
    assert (tls / "api.key").read_bytes() == key
    assert openssl("pkey", "-in", str(tls / "api.key"), "-pubout") == \
        openssl("x509", "-in", str(d.ca), "-noout", "-pubkey")

    # A certificate without its key is the operator's to sort out.
    cert = d.ca.read_bytes()
    (tls / "api.key").unlink()
    p4 = d.init()
    assert p4.returncode != 0
    assert "without its key" in p4.stderr
    assert d.ca.read_bytes() == cert and not (tls / "api.key").exists()

    # A key others may read is refused, not used.
    (tls / "api.key").write_bytes(key)
    os.chmod(tls / "api.key", 0o644)
    p5 = d.init()
    assert p5.returncode != 0 and "chmod 600" in p5.stderr


def test_first_start_makes_the_certificate(workdir):
    from conftest import BUILD_DIR
    d = Vmseald(BUILD_DIR, workdir / "first", https=True)
    d.start()
    try:
        assert d.ca.is_file()
        status, body, _ = d.api_https("GET", "/v1/vms")
        assert status == 401
    finally:
        d.stop()
        shutil.rmtree(d.runtime, ignore_errors=True)


def test_second_vmseald_refuses_to_start(d):
    p = subprocess.run([d.program(), "--data-dir", str(d.data), "--runtime-dir",
                        str(d.runtime)], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert f"another vmseald uses {d.data}" in p.stderr
    assert d.api("GET", "/v1/vms")[0] == 200  # the first one is untouched
    # init takes the lock too.
    p = subprocess.run([d.program(), "init", "--data-dir", str(d.data)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode != 0 and "another vmseald uses" in p.stderr


def test_help_documents_every_option(d):
    p = subprocess.run([d.program(), "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    for word in ("--data-dir", "--socket", "--runtime-dir", "--accel", "--listen-https", "init",
                 "--privileges-markdown", "api.crt", "audit.log", "vmseald.lock", "0711"):
        assert word in p.stdout, word


def test_bad_listen_address_is_refused(workdir):
    from conftest import BUILD_DIR
    for spec in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999", "::1:8443", "[::1]8443"):
        p = subprocess.run([str(pathlib.Path(BUILD_DIR) / "bin" / "vmseald"), "--data-dir",
                            str(workdir / "badlisten"), "--listen-https", spec],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "is not HOST:PORT" in p.stderr, (spec, p.stderr)


# --- HTTPS ------------------------------------------------------------------------------


def test_no_token_is_401_json(d):
    status, body, headers = d.api_https("GET", "/v1/vms")
    assert status == 401
    assert body["error"]["code"] == "unauthenticated"
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert headers["WWW-Authenticate"].startswith("Bearer")
    # By the names in the certificate, too.
    conn = d.https_connection(host="localhost")
    assert d.api_https("GET", "/v1/vms", conn=conn)[0] == 401
    conn.close()


def test_a_token_works_over_https_and_the_socket(d):
    make_user(d, "alice")
    token = login(d, "alice")
    status, body, headers = d.api_https("GET", "/v1/session", token=token)
    assert status == 200, body
    assert body["session"]["user"] == "alice" and body["session"]["via"] == "https"
    assert headers["Cache-Control"] == "no-store"
    # The scheme is case-insensitive (RFC 7235 §2.1).
    conn = d.https_connection()
    conn.request("GET", "/v1/session", headers={"Authorization": f"bEaReR   {token}"})
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["session"]["user"] == "alice"
    # Another scheme is no token.
    conn.request("GET", "/v1/session", headers={"Authorization": f"Basic {token}"})
    r = conn.getresponse()
    assert r.status == 401, r.read()
    r.read()
    # "Bearer" with nothing after it is a wrong token, not none.
    conn.request("GET", "/v1/session", headers={"Authorization": "Bearer"})
    r = conn.getresponse()
    assert r.status == 401
    r.read()
    conn.close()
    # Root over the socket with alice's token is alice.
    status, body = d.api("GET", "/v1/session", token=token)
    assert status == 200 and body["session"]["user"] == "alice"
    assert body["session"]["via"] == "socket"
    # A wrong token on the socket does not fall back to root.
    status, body = d.api("GET", "/v1/session", token="vst_" + "A" * 43)
    assert status == 401


def test_plain_http_on_the_https_port_gets_no_answer(d):
    good = d.https_connection()
    assert d.api_https("GET", "/v1/vms", conn=good)[0] == 401
    received = b""
    with socket.create_connection(("127.0.0.1", d.https_port), timeout=10) as s:
        s.sendall(b"GET /v1/vms HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                received += chunk
        except ConnectionResetError:
            pass
    assert b"HTTP/" not in received and b"{" not in received, received
    # The connection that was open before still works, and new ones too.
    assert d.api_https("GET", "/v1/vms", conn=good)[0] == 401
    good.close()
    assert d.api_https("GET", "/v1/vms")[0] == 401


def test_garbage_and_half_handshakes_disturb_nothing(d):
    good = d.https_connection()
    assert d.api_https("GET", "/v1/vms", conn=good)[0] == 401
    idle = [socket.create_connection(("127.0.0.1", d.https_port)) for _ in range(20)]
    for i, s in enumerate(idle):
        s.sendall(os.urandom(64) if i % 2 else b"\x16\x03\x01\x02\x00")  # half a ClientHello
    assert d.api_https("GET", "/v1/vms", conn=good)[0] == 401
    assert d.api_https("GET", "/v1/vms")[0] == 401
    for s in idle:
        s.close()
    good.close()


def _handshake(d, minimum, maximum):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(d.ca))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
        ctx.minimum_version = minimum
        ctx.maximum_version = maximum
    if maximum < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that the client offers it at all
    with socket.create_connection(("127.0.0.1", d.https_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version(), s.cipher()


def test_tls_versions(d):
    with pytest.raises(ssl.SSLError) as e:
        _handshake(d, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1)
    # The server's alert, not the client declining to try.
    assert "PROTOCOL_VERSION" in str(e.value).upper() or "protocol version" in str(e.value), e
    with pytest.raises(ssl.SSLError):
        _handshake(d, ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1)
    version, cipher = _handshake(d, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2" and cipher[0].startswith("ECDHE-") and "GCM" in cipher[0] \
        or "CHACHA20" in cipher[0]
    assert _handshake(d, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"


def test_keep_alive_serves_50_requests_on_one_connection(d):
    make_user(d, "alice")
    token = login(d, "alice")
    conn = d.https_connection()
    conn.connect()
    sock = conn.sock
    for i in range(50):
        status, body, headers = d.api_https("GET", "/v1/session", token=token, conn=conn)
        assert status == 200, body
        assert headers.get("Connection", "").lower() != "close"
        assert conn.sock is sock, f"reconnected after {i} requests"
    conn.close()


def test_session_resumption(d):
    ctx = d.tls_context()
    with socket.create_connection(("127.0.0.1", d.https_port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /v1/vms HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(4096)  # TLS 1.3 tickets arrive after the handshake
            session = s.session
    with socket.create_connection(("127.0.0.1", d.https_port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            assert s.session_reused


def test_rate_limited_login_says_when_to_retry(d):
    make_user(d, "mallory-target")
    conn = d.https_connection()
    statuses = []
    for _ in range(12):
        status, body, headers = d.api_https("POST", "/v1/session",
                                            {"user": "mallory-target", "password": "wrong one!"},
                                            conn=conn)
        statuses.append(status)
        if status == 429:
            assert body["error"]["code"] == "rate_limited"
            assert int(headers["Retry-After"]) > 0
            assert headers["Cache-Control"] == "no-store"
            break
    conn.close()
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {401}


def test_audit_names_transport_and_peer_and_never_the_token(d):
    make_user(d, "alice")
    token = login(d, "alice")
    conn = d.https_connection()
    status, _, _ = d.api_https("GET", "/v1/session", token=token, conn=conn)
    assert status == 200
    local = conn.sock.getsockname()
    conn.close()
    text = (d.data / "audit.log").read_text()
    assert token not in text and PASSWORD not in text
    lines = [json.loads(line) for line in text.splitlines()]
    mine = [l for l in lines if l.get("peer") == f"127.0.0.1:{local[1]}"]
    assert mine and all(l["via"] == "https" and l["user"] == "alice" for l in mine), mine[-3:]
    assert any(l["via"] == "socket" and l["peer"] == "uid=0" for l in lines)
    assert (d.data / "audit.log").stat().st_mode & 0o777 == 0o600


def test_busy_beyond_the_request_threads(d):
    """Logins hold a request thread each while Argon2id runs (two at a time):
    a burst of 120 fills the 64 threads, and the rest are told 503 busy at
    once instead of queueing. vmseald serves normally afterwards."""
    make_user(d, "burst")

    def one(_):
        try:
            conn = d.https_connection(timeout=300)
            status, body, _ = d.api_https("POST", "/v1/session",
                                          {"user": "burst", "password": PASSWORD}, conn=conn)
            conn.close()
            return status, body
        except OSError as e:
            return 0, str(e)

    with concurrent.futures.ThreadPoolExecutor(max_workers=120) as pool:
        results = list(pool.map(one, range(120)))
    statuses = [s for s, _ in results]
    busy = [b for s, b in results if s == 503]
    assert set(statuses) <= {201, 503, 429}, results
    if not busy:
        pytest.skip("the logins finished faster than the burst arrived: nothing to see")
    print(f"{len(busy)} of {len(results)} logins were told busy")
    assert all(b["error"]["code"] == "busy" for b in busy)
    assert statuses.count(201) >= 1
    assert d.api_https("GET", "/v1/vms")[0] == 401
    assert d.api("GET", "/v1/vms")[0] == 200


# --- the Unix socket, by uid ---------------------------------------------------------------

CLIENT = r"""
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sys.argv[1])
c = C("localhost")
body = sys.argv[4] if len(sys.argv) > 4 else None
c.request(sys.argv[2], sys.argv[3], body=body,
          headers={"Content-Type": "application/json"} if body else {})
r = c.getresponse()
print(json.dumps({"status": r.status, "body": json.loads(r.read())}))
"""


def as_nobody(*args):
    return subprocess.run(["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_UID}",
                           "--clear-groups", *args], capture_output=True, text=True, timeout=60)


def nobody_api(d, method, path, body=None):
    args = [sys.executable, "-c", CLIENT, str(d.socket), method, path]
    if body is not None:
        args.append(json.dumps(body))
    p = as_nobody(*args)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    return out["status"], out["body"]


def test_socket_as_root_needs_no_token(d):
    status, body = d.api("GET", "/v1/session")
    assert status == 200 and body["session"]["user"] == "root" and body["session"]["root"]
    assert (d.socket.stat().st_mode & 0o777) == 0o666
    assert (d.data.stat().st_mode & 0o777) == 0o711


@pytest.mark.skipif(os.geteuid() != 0, reason="setpriv to another uid needs root")
def test_socket_as_another_uid(d):
    name = pwd.getpwuid(NOBODY_UID).pw_name
    # Another user reaches the socket but cannot list the data directory.
    assert as_nobody("test", "-w", str(d.socket)).returncode == 0
    assert as_nobody("ls", str(d.data)).returncode != 0
    for f in ("vmseald.db", "audit.log", "tls/api.key", "host.key"):
        assert as_nobody("cat", str(d.data / f)).returncode != 0, f

    status, _ = d.api("DELETE", f"/v1/users/{name}")
    assert status in (200, 404)
    status, body = nobody_api(d, "GET", "/v1/vms")
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    assert name in body["error"]["message"]

    make_user(d, name)
    status, body = nobody_api(d, "GET", "/v1/session")
    assert status == 200, body
    assert body["session"]["user"] == name and not body["session"]["root"]
    # No permission anywhere: creating a folder is refused, naming what is missing.
    status, body = nobody_api(d, "POST", "/v1/folders", {"name": "nobodys"})
    assert status == 403 and body["error"]["code"] == "forbidden", body
    assert "Folder.Create" in body["error"]["message"]
    assert d.api("GET", "/v1/folders")[1]["folders"] == [] or \
        all(f["name"] != "nobodys" for f in d.api("GET", "/v1/folders")[1]["folders"])
    # Deleted again: refused again.
    assert d.api("DELETE", f"/v1/users/{name}")[0] == 200
    assert nobody_api(d, "GET", "/v1/session")[0] == 401


def test_rate_limit_counts_per_address_not_per_connection(workdir):
    """Each guess on a new connection comes from a new port: the address's
    limit (20 failures a minute, above a name's 5) must still hold against
    guessing across many names from one address."""
    from conftest import BUILD_DIR
    d = Vmseald(BUILD_DIR, workdir / "spray", https=True)
    d.start()
    try:
        codes = []
        for i in range(22):
            status, out, headers = d.api_https(
                "POST", "/v1/session", {"user": f"spray{i}", "password": "guess-guess"})
            codes.append(status)
        assert codes[:20] == [401] * 20, codes
        assert set(codes[20:]) == {429}, codes
    finally:
        d.stop()
