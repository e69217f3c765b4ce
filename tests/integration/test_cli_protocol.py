"""The vmseal CLI's side of vmseald's API (docs/api.md), against a fake
server: a small HTTP/1.1 server on a Unix socket that records every request
and answers from a script. It checks the exact method, route and body of
every command, the --json outputs, exit codes and messages, the following
of tasks, the handling of malformed answers, and that a passphrase travels
in a request body and nowhere else (not argv, not the environment).

It tests the CLI's protocol only; the end-to-end tests against the real
vmseald live with the server."""
import base64
import http.server
import json
import os
import pty
import select
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
import time

import pytest

# --- the fake vmseald --------------------------------------------------------


class Request:
    def __init__(self, method, path, headers, body, pid, peer=None):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.pid = pid
        self.peer = peer  # over TCP: the client's (address, port): one port per connection
        self.time = time.monotonic()
        self.json = json.loads(body) if body else None
        # What another user could see of the client while it talks to us.
        self.cmdline = _read_proc(pid, "cmdline")
        self.environ = _read_proc(pid, "environ")

    def __repr__(self):
        return f"{self.method} {self.path} {self.body!r}"


def _read_proc(pid, name):
    if pid is None:
        return b""
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return b""


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _TlsServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, context):
        self.context = context
        super().__init__(address, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # The handshake happens in the handler's thread, at its first read.
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass  # a client that refused our certificate: what the tests look for


class FakeVmseald:
    """Answers (method, path) from a script of responses; the last response
    of a route repeats. A response is (status, object), (status, raw bytes),
    (status, payload, {extra headers}), "close" (hang up without answering)
    or a function of the Request. With tls=(cert, key) it serves HTTPS on
    127.0.0.1 instead of the Unix socket (self.url)."""

    def __init__(self, directory, tls=None):
        self.socket_path = os.path.join(directory, "vmseald.sock")
        self.routes = {}
        self.requests = []
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def address_string(self):
                return "unix"

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if tls is None:
                    creds = self.connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                       struct.calcsize("3i"))
                    pid, peer = struct.unpack("3i", creds)[0], None
                else:
                    pid, peer = None, self.client_address
                req = Request(self.command, self.path, dict(self.headers), body, pid, peer)
                with fake.lock:
                    fake.requests.append(req)
                    script = fake.routes.get((self.command, self.path))
                    if script is None:
                        answer = (404, {"error": {"code": "not_found",
                                                  "message": f"no route {self.path}"}})
                    elif len(script) > 1:
                        answer = script.pop(0)
                    else:
                        answer = script[0]
                if callable(answer):
                    answer = answer(req)
                if answer == "close":
                    self.close_connection = True
                    return
                status, payload = answer[0], answer[1]
                extra = answer[2] if len(answer) > 2 else {}
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = _serve

        if tls is None:
            self.server = _Server(self.socket_path, Handler)
        else:
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server = _TlsServer(("127.0.0.1", 0), Handler, context)
            self.url = f"https://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def on(self, method, path, *responses):
        with self.lock:
            self.routes[(method, path)] = list(responses)

    def task(self, method, path, result, task_id="t-1", operation="vm.op", states=None):
        """A route answered by a task, and the task's states when polled
        (default: one poll, success with result)."""
        self.on(method, path, (202, {"task": task_obj(task_id, operation, "queued", 0)}))
        polls = states or [task_obj(task_id, operation, "success", 100, result=result)]
        self.on("GET", f"/v1/tasks/{task_id}", *[(200, {"task": t}) for t in polls])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def task_obj(task_id, operation, state, progress, result=None, error=None):
    return {"id": task_id, "operation": operation, "target": "vm/web1", "user": "alice",
            "state": state, "progress": progress, "started": "2026-11-23T10:00:00Z",
            "finished": None if state in ("queued", "running") else "2026-11-23T10:00:09Z",
            "cancellable": True, "result": result, "error": error, "recovered": None}


VM = {"name": "web1", "uuid": "0192f0c4-0000-7000-8000-000000000001", "encrypted": True,
      "state": "off", "locked_reason": None, "provider": "native1", "key_id": "k-1",
      "template": False, "linked_clone_of": None, "instant_clone_of": None, "rekeyable": True,
      "memory": 268435456, "cpus": 1,
      "disks": [{"index": 0, "size": 1073741824, "encrypted": True,
                 "layers": [{"file": "disk0.img", "format": "luks"},
                            {"file": "disk0-1.qcow2", "format": "qcow2"}]}],
      "snapshots": [{"name": "s1", "created": "2026-11-23T10:00:00Z"}],
      "console_log": "/var/lib/vmseal/vms/web1/console.log"}
PLAIN_VM = dict(VM, name="web2", encrypted=False, provider=None, key_id=None, snapshots=[],
                disks=[{"index": 0, "size": 536870912, "encrypted": False,
                        "layers": [{"file": "disk0.img", "format": "raw"}]}])
NATIVE = {"name": "native1", "type": "native", "default": True, "backed_up": False,
          "servers": []}
STANDARD = {"name": "kms", "type": "standard", "default": False, "backed_up": False,
            "servers": ["kms1:5696", "kms2:5696"]}
KEY = {"provider": "native1", "key_id": "k-1", "vms": ["web1"], "destroyed": False}


# --- fixtures ----------------------------------------------------------------

@pytest.fixture
def workdir():
    # Unix socket paths are short (108 bytes): not under pytest's tmp_path.
    d = tempfile.mkdtemp(prefix="vmseal-cli-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fake(workdir):
    server = FakeVmseald(workdir)
    yield server
    server.close()


@pytest.fixture
def vmseal(program, fake, workdir):
    """vmseal(*args, stdin=None) -> CompletedProcess, run in workdir against
    the fake server."""
    binary = program("vmseal").resolve()

    def run(*args, stdin=None, socket_arg=True, env=None, timeout=60):
        environ = {k: v for k, v in os.environ.items() if k != "VMSEAL_SOCKET"}
        environ.update(env or {})
        argv = [str(binary)] + (["--socket", fake.socket_path] if socket_arg else []) + list(args)
        return subprocess.run(argv, input=stdin, capture_output=True, cwd=workdir, env=environ,
                              timeout=timeout)
    return run


def ok(proc):
    assert proc.returncode == 0, (proc.returncode, proc.stderr.decode())
    return proc.stdout.decode()


def only(fake):
    """The one request made, polling of tasks aside."""
    reqs = [r for r in fake.requests if not r.path.startswith("/v1/tasks/")]
    assert len(reqs) == 1, reqs
    return reqs[0]


# --- every command: its method, route and body ---------------------------------

def _pem(workdir, name, kind):
    path = os.path.join(workdir, name)
    text = f"-----BEGIN {kind}-----\nMIIB{name}\n-----END {kind}-----\n"
    with open(path, "w") as f:
        f.write(text)
    return text


TASK_COMMANDS = [
    (["vm", "create", "web2"], "POST", "/v1/vms",
     {"name": "web2", "disks": [], "image": None, "encrypt": False, "provider": None,
      "memory": None, "cpus": None}),
    (["vm", "encrypt", "web1"], "POST", "/v1/vms/web1/encrypt", {"provider": None}),
    (["vm", "encrypt", "web1", "--provider", "kms"], "POST", "/v1/vms/web1/encrypt",
     {"provider": "kms"}),
    (["vm", "decrypt", "web1"], "POST", "/v1/vms/web1/decrypt", {}),
    (["vm", "clone", "web1", "web3"], "POST", "/v1/vms/web1/clone",
     {"name": "web3", "mode": "keep", "provider": None, "instant": False}),
    (["vm", "clone", "web1", "web3", "--recrypt", "--provider", "kms", "--instant"], "POST",
     "/v1/vms/web1/clone", {"name": "web3", "mode": "recrypt", "provider": "kms",
                            "instant": True}),
    (["vm", "clone", "web2", "web3", "--encrypt"], "POST", "/v1/vms/web2/clone",
     {"name": "web3", "mode": "encrypt", "provider": None, "instant": False}),
    (["vm", "clone", "web1", "web3", "--decrypt"], "POST", "/v1/vms/web1/clone",
     {"name": "web3", "mode": "decrypt", "provider": None, "instant": False}),
    (["vm", "rekey", "web1", "--shallow"], "POST", "/v1/vms/web1/rekey",
     {"deep": False, "provider": None}),
    (["vm", "rekey", "web1", "--deep", "--provider", "kms"], "POST", "/v1/vms/web1/rekey",
     {"deep": True, "provider": "kms"}),
    (["vm", "snapshot", "create", "web1", "s2"], "POST", "/v1/vms/web1/snapshots",
     {"name": "s2"}),
    (["vm", "snapshot", "delete", "web1", "s1"], "DELETE", "/v1/vms/web1/snapshots/s1", None),
    (["vm", "snapshot", "revert", "web1", "s1"], "POST", "/v1/vms/web1/snapshots/s1/revert", {}),
    (["vm", "power-on", "web1"], "POST", "/v1/vms/web1/power-on", {}),
    (["vm", "power-off", "web1"], "POST", "/v1/vms/web1/power-off", {}),
    (["vm", "delete", "web1"], "DELETE", "/v1/vms/web1", None),
    (["disk", "add", "web1", "10G"], "POST", "/v1/vms/web1/disks", {"size": 10 << 30}),
]


@pytest.mark.parametrize("argv,method,path,body", TASK_COMMANDS,
                         ids=[" ".join(c[0]) for c in TASK_COMMANDS])
def test_task_command_request(vmseal, fake, argv, method, path, body):
    fake.task(method, path, result=VM)
    out = ok(vmseal(*argv))
    req = only(fake)
    assert (req.method, req.path) == (method, path)
    assert req.json == body
    if body is None:
        assert req.body == b""
    else:
        assert req.headers.get("Content-Type") == "application/json"
    # The task was followed to its end, and said so in one line.
    assert [r.path for r in fake.requests[1:]] == ["/v1/tasks/t-1"]
    assert len(out.splitlines()) == 1 and argv[2] in out
    if "--instant" in argv:
        assert out == "cloned web1 to web3 as an instant clone (encrypted, provider native1)\n"


def test_vm_create_every_option(vmseal, fake, workdir):
    fake.task("POST", "/v1/vms", result=VM)
    out = ok(vmseal("vm", "create", "web1", "--disk", "1G", "--disk=512M", "--image",
                    "img/guest.raw", "--encrypt", "--provider", "native1", "--memory", "2G",
                    "--cpus", "2"))
    assert only(fake).json == {
        "name": "web1", "disks": [1 << 30, 512 << 20],
        "image": os.path.join(workdir, "img/guest.raw"),  # made absolute
        "encrypt": True, "provider": "native1", "memory": 2 << 30, "cpus": 2}
    assert out == "created web1 (encrypted, provider native1)\n"


def test_disk_export_path_made_absolute(vmseal, fake, workdir):
    result = {"vm": "web1", "index": 1, "path": f"{workdir}/out.raw", "size": 1 << 30}
    fake.task("POST", "/v1/vms/web1/disks/1/export", result=result)
    out = ok(vmseal("disk", "export", "web1", "1", "./out.raw"))
    assert only(fake).json == {"path": f"{workdir}/out.raw"}
    assert out == f"exported disk 1 of web1 to {workdir}/out.raw (not encrypted)\n"
    fake.requests.clear()
    assert json.loads(ok(vmseal("disk", "export", "web1", "1", "/abs/x.raw", "--json"))) == result
    assert only(fake).json == {"path": "/abs/x.raw"}


def test_vm_template(vmseal, fake):
    fake.on("POST", "/v1/vms/web1/template", (200, {"vm": dict(VM, template=True)}))
    assert ok(vmseal("vm", "template", "web1")) == "web1 is now a template\n"
    assert only(fake).json == {"template": True}
    fake.requests.clear()
    fake.on("POST", "/v1/vms/web1/template", (200, {"vm": VM}))
    assert json.loads(ok(vmseal("vm", "template", "web1", "--off", "--json"))) == VM
    assert only(fake).json == {"template": False}


def test_kp_add_native(vmseal, fake):
    fake.on("POST", "/v1/providers", (201, {"provider": NATIVE}))
    out = ok(vmseal("kp", "add-native", "native1"))
    assert only(fake).json == {"name": "native1", "type": "native"}
    assert out.startswith("created native key provider native1 (the default)\n")
    assert "vmseal kp backup native1 --to FILE" in out
    fake.requests.clear()
    assert json.loads(ok(vmseal("kp", "add-native", "native1", "--json"))) == NATIVE


def test_kp_add_standard_sends_pem_contents(vmseal, fake, workdir):
    ca = _pem(workdir, "ca.pem", "CERTIFICATE")
    cert = _pem(workdir, "client.pem", "CERTIFICATE")
    key = _pem(workdir, "client.key", "PRIVATE KEY")
    fake.on("POST", "/v1/providers", (201, {"provider": STANDARD}))
    out = ok(vmseal("kp", "add-standard", "kms", "--server", "kms1:5696", "--server",
                    "kms2:5696", "--ca", "ca.pem", "--cert", "client.pem", "--key",
                    "client.key"))
    req = only(fake)
    assert req.json == {"name": "kms", "type": "standard", "servers": ["kms1:5696", "kms2:5696"],
                        "ca_pem": ca, "cert_pem": cert, "key_pem": key}
    assert b"PRIVATE KEY" not in req.cmdline
    assert out == "created standard key provider kms\n"


def test_kp_add_standard_refusals(vmseal, fake, workdir):
    _pem(workdir, "ca.pem", "CERTIFICATE")
    _pem(workdir, "c.pem", "CERTIFICATE")
    with open(os.path.join(workdir, "notpem.key"), "w") as f:
        f.write("just some text\n")
    base = ["kp", "add-standard", "kms", "--ca", "ca.pem", "--cert", "c.pem"]
    p = vmseal(*base, "--server", "kms1", "--key", "c.pem")
    assert p.returncode == 2 and b"--server: 'kms1' is not HOST:PORT" in p.stderr
    p = vmseal(*base, "--server", "kms1:5696", "--key", "notpem.key")
    assert p.returncode == 1 and b"notpem.key is not a PEM file" in p.stderr
    p = vmseal(*base, "--server", "kms1:5696", "--key", "missing.key")
    assert p.returncode == 1 and b"missing.key" in p.stderr
    assert fake.requests == []


def test_kp_list_and_set_default(vmseal, fake):
    fake.on("GET", "/v1/providers", (200, {"providers": [NATIVE, STANDARD]}))
    out = ok(vmseal("kp", "list"))
    assert out.splitlines() == [
        "NAME     TYPE      DEFAULT  CONFIGURED  BACKED UP / SERVERS",
        "native1  native    yes      -           no",
        "kms      standard           -           kms1:5696,kms2:5696",
    ]
    assert json.loads(ok(vmseal("kp", "list", "--json"))) == {"providers": [NATIVE, STANDARD]}
    fake.requests.clear()
    fake.on("POST", "/v1/providers/kms/default", (200, {"provider": dict(STANDARD, default=True)}))
    assert ok(vmseal("kp", "set-default", "kms")) == "kms is now the default key provider\n"
    assert only(fake).json == {}


def test_vm_list(vmseal, fake):
    locked = dict(PLAIN_VM, name="db", state="locked", encrypted=True, provider="kms",
                  template=True)
    fake.on("GET", "/v1/vms", (200, {"vms": [VM, PLAIN_VM, locked]}))
    assert ok(vmseal("vm", "list")).splitlines() == [
        "NAME  STATE              ENCRYPTED  PROVIDER  DISKS  SNAPSHOTS",
        "web1  off                yes        native1   1      1",
        "web2  off                no         -         1      0",
        "db    locked (template)  yes        kms       1      0",
    ]
    assert json.loads(ok(vmseal("vm", "list", "--json"))) == {"vms": [VM, PLAIN_VM, locked]}
    assert {(r.method, r.path) for r in fake.requests} == {("GET", "/v1/vms")}


def test_vm_info(vmseal, fake):
    fake.on("GET", "/v1/vms/web1", (200, {"vm": VM}))
    out = ok(vmseal("vm", "info", "web1"))
    lines = out.splitlines()
    assert lines[0] == "name:             web1"
    for want in ["state:            off", "encrypted:        yes", "provider:         native1",
                 "key id:           k-1", "memory:           256 MiB", "cpus:             1",
                 "disk 0:           1 GiB, encrypted; disk0.img (luks), disk0-1.qcow2 (qcow2)",
                 "snapshot:         s1 (2026-11-23T10:00:00Z)",
                 "console log:      /var/lib/vmseal/vms/web1/console.log"]:
        assert want in lines, (want, lines)
    assert not any(l.startswith("linked clone of") for l in lines)
    # --json: the vm object itself, "encrypted" at the top.
    printed = json.loads(ok(vmseal("vm", "info", "web1", "--json")))
    assert printed == VM and printed["encrypted"] is True
    # A locked instant clone: why it is locked, its parent, no hardware.
    locked = dict(VM, state="locked", locked_reason="provider kms: key k-1 cannot be fetched",
                  memory=None, cpus=None, instant_clone_of="gold")
    fake.on("GET", "/v1/vms/web1", (200, {"vm": locked}))
    lines = ok(vmseal("vm", "info", "web1")).splitlines()
    assert lines[2:4] == ["state:            locked",
                          "locked because:   provider kms: key k-1 cannot be fetched"]
    assert "instant clone of: gold" in lines
    assert not any(l.startswith(("memory:", "cpus:")) for l in lines)


def test_keys(vmseal, fake):
    destroyed = dict(KEY, key_id="k-0", vms=[], destroyed=True)
    fake.on("GET", "/v1/keys", (200, {"keys": [KEY, destroyed]}))
    assert ok(vmseal("key", "list")).splitlines() == [
        "PROVIDER  KEY ID  VMS   DESTROYED",
        "native1   k-1     web1  no",
        "native1   k-0     -     yes",
    ]
    fake.on("POST", "/v1/keys/destroy", (200, {"key": destroyed}))
    fake.requests.clear()
    out = ok(vmseal("key", "destroy", "web1"))
    assert only(fake).json == {"vm": "web1"}
    assert out == "destroyed key k-0 of provider native1: what it encrypted can no longer be opened\n"
    fake.requests.clear()
    assert json.loads(ok(vmseal("key", "destroy", "native1/k-0/x", "--json"))) == destroyed
    # Split at the first '/': provider names hold none, key IDs may.
    assert only(fake).json == {"provider": "native1", "key_id": "k-0/x"}
    for bad in ["/k-0", "native1/"]:
        p = vmseal("key", "destroy", bad)
        assert p.returncode == 2 and b"is not PROVIDER/KEYID" in p.stderr


def test_key_destroy_list_answer(vmseal, fake):
    """A VM rekeyed over its life used several keys: the answer may list
    them all as {"destroyed": [...]}."""
    two = [dict(KEY, key_id="k-1", destroyed=True), dict(KEY, key_id="k-2", destroyed=True)]
    fake.on("POST", "/v1/keys/destroy", (200, {"destroyed": two}))
    out = ok(vmseal("key", "destroy", "web1"))
    assert [l.split()[2] for l in out.splitlines()] == ["k-1", "k-2"]
    assert json.loads(ok(vmseal("key", "destroy", "web1", "--json"))) == {"destroyed": two}


def test_tasks(vmseal, fake):
    t1 = task_obj("t-2", "vm.encrypt", "running", 42)
    t2 = task_obj("t-1", "vm.create", "success", 100, result=VM)
    t3 = task_obj("t-0", "vm.rekey", "error", 10,
                  error={"code": "provider_unavailable", "message": "kms1:5696 refused"})
    fake.on("GET", "/v1/tasks?limit=50", (200, {"tasks": [t1, t2, t3]}))
    assert ok(vmseal("task", "list")).splitlines() == [
        "ID   OPERATION   TARGET   USER   STATE    PROGRESS  STARTED",
        "t-2  vm.encrypt  vm/web1  alice  running  42%       2026-11-23T10:00:00Z",
        "t-1  vm.create   vm/web1  alice  success  100%      2026-11-23T10:00:00Z",
        "t-0  vm.rekey    vm/web1  alice  error    10%       2026-11-23T10:00:00Z",
    ]
    fake.on("GET", "/v1/tasks/t-0", (200, {"task": t3}))
    out = ok(vmseal("task", "show", "t-0"))
    assert "state:            error" in out.splitlines()
    assert "error:            provider_unavailable: kms1:5696 refused" in out.splitlines()
    fake.on("GET", "/v1/tasks/t-1", (200, {"task": t2}))
    assert "result:           vm web1 (encrypted)" in ok(vmseal("task", "show", "t-1")).splitlines()
    assert json.loads(ok(vmseal("task", "show", "t-1", "--json"))) == t2


# --- --json -------------------------------------------------------------------

def test_json_task_result_only(vmseal, fake):
    fake.task("POST", "/v1/vms/web1/encrypt", result=VM)
    p = vmseal("vm", "encrypt", "web1", "--json")
    assert json.loads(ok(p)) == VM  # the task's result and nothing else
    assert p.stderr == b""


def test_json_null_result(vmseal, fake):
    fake.task("DELETE", "/v1/vms/web1", result=None)
    assert json.loads(ok(vmseal("vm", "delete", "web1", "--json"))) is None
    assert ok(vmseal("vm", "delete", "web1")) == "deleted web1 (its keys stay at their provider)\n"


# --- passphrases ----------------------------------------------------------------

PASSPHRASE = "correct horse battery staple 7"


def _backup_route(fake, content=b"VMSEAL-BACKUP\x00\x01\x02\xff"):
    fake.on("POST", "/v1/providers/native1/backup",
            (200, {"backup": base64.b64encode(content).decode()}))
    return content


def test_backup_passphrase_from_stdin(vmseal, fake, workdir):
    content = _backup_route(fake)
    out = ok(vmseal("kp", "backup", "native1", "--to", "native1.backup",
                    stdin=(PASSPHRASE + "\n").encode()))
    req = only(fake)
    assert req.json == {"passphrase": PASSPHRASE}  # in the body, newline stripped
    # ...and nowhere another process could read it while the CLI ran.
    assert PASSPHRASE.encode() not in req.cmdline
    assert PASSPHRASE.encode() not in req.environ
    assert req.cmdline.split(b"\0")[1:4] == [b"--socket", fake.socket_path.encode(), b"kp"]
    path = os.path.join(workdir, "native1.backup")
    assert open(path, "rb").read() == content
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert PASSPHRASE not in out
    assert f"wrote the backup of native1 to {path} ({len(content)} bytes)" in out


def test_backup_passphrase_file(vmseal, fake, workdir):
    _backup_route(fake)
    with open(os.path.join(workdir, "pass"), "w") as f:
        f.write(PASSPHRASE + "\r\n")
    p = vmseal("kp", "backup", "native1", "--to", "b1", "--passphrase-file", "pass", "--json")
    report = json.loads(ok(p))
    assert report == {"provider": "native1", "file": os.path.join(workdir, "b1"), "size": 17}
    req = only(fake)
    assert req.json == {"passphrase": PASSPHRASE}
    assert PASSPHRASE.encode() not in req.cmdline + req.environ


def test_backup_never_overwrites(vmseal, fake, workdir):
    _backup_route(fake)
    path = os.path.join(workdir, "exists.backup")
    with open(path, "w") as f:
        f.write("precious")
    p = vmseal("kp", "backup", "native1", "--to", "exists.backup", stdin=b"pw\n")
    assert p.returncode == 1 and b"exists.backup exists" in p.stderr
    assert open(path).read() == "precious"
    assert fake.requests == []  # refused before asking the server


def test_backup_refused_leaves_no_file(vmseal, fake, workdir):
    fake.on("POST", "/v1/providers/kms/backup",
            (409, {"error": {"code": "invalid_request",
                             "message": "provider 'kms' is standard: its keys are at its servers"}}))
    p = vmseal("kp", "backup", "kms", "--to", "kms.backup", stdin=b"pw\n")
    assert p.returncode == 1
    assert p.stderr == b"vmseal: provider 'kms' is standard: its keys are at its servers\n"
    assert not os.path.exists(os.path.join(workdir, "kms.backup"))
    # A malformed backup in the answer: no file either.
    fake.on("POST", "/v1/providers/native1/backup", (200, {"backup": "not base64!"}))
    p = vmseal("kp", "backup", "native1", "--to", "n.backup", stdin=b"pw\n")
    assert p.returncode == 1 and b"malformed answer" in p.stderr
    assert not os.path.exists(os.path.join(workdir, "n.backup"))


@pytest.mark.parametrize("stdin,message", [
    (b"", b"no passphrase on stdin"),
    (b"\n", b"empty passphrase"),
    (b"x" * 1025 + b"\n", b"longer than 1024 bytes"),
])
def test_backup_bad_passphrase(vmseal, fake, workdir, stdin, message):
    _backup_route(fake)
    p = vmseal("kp", "backup", "native1", "--to", "b", stdin=stdin)
    assert p.returncode == 1 and message in p.stderr, p.stderr
    assert fake.requests == []
    assert not os.path.exists(os.path.join(workdir, "b"))


def test_restore(vmseal, fake, workdir):
    content = b"VMSEAL-BACKUP\x00\xfe"
    with open(os.path.join(workdir, "n.backup"), "wb") as f:
        f.write(content)
    fake.on("POST", "/v1/providers/restore", (201, {"provider": dict(NATIVE, name="native2")}))
    out = ok(vmseal("kp", "restore", "--from", "n.backup", "--name", "native2",
                    stdin=(PASSPHRASE + "\n").encode()))
    req = only(fake)
    assert req.json == {"backup": base64.b64encode(content).decode(), "passphrase": PASSPHRASE,
                        "name": "native2"}
    assert PASSPHRASE.encode() not in req.cmdline + req.environ
    assert out == "restored native key provider native2 (the default)\n"
    # Without --name, no "name" field: the backup knows its provider's name.
    fake.requests.clear()
    with open(os.path.join(workdir, "pass"), "w") as f:
        f.write(PASSPHRASE)
    ok(vmseal("kp", "restore", "--from", "n.backup", "--passphrase-file", "pass"))
    assert only(fake).json == {"backup": base64.b64encode(content).decode(),
                               "passphrase": PASSPHRASE}
    # A wrong passphrase is the server's refusal.
    fake.on("POST", "/v1/providers/restore",
            (400, {"error": {"code": "invalid_request",
                             "message": "wrong passphrase or damaged backup"}}))
    p = vmseal("kp", "restore", "--from", "n.backup", stdin=b"wrong\n")
    assert (p.returncode, p.stderr) == (1, b"vmseal: wrong passphrase or damaged backup\n")


# --- tasks: polling, progress, errors ---------------------------------------------

def test_task_polled_until_success(vmseal, fake):
    states = [task_obj("t-7", "vm.encrypt", "running", p) for p in (10, 30, 60, 90)]
    states.append(task_obj("t-7", "vm.encrypt", "success", 100, result=VM))
    fake.task("POST", "/v1/vms/web1/encrypt", result=VM, task_id="t-7", states=states)
    out = ok(vmseal("vm", "encrypt", "web1"))
    assert out == "encrypted web1 (encrypted, provider native1)\n"
    polls = [r for r in fake.requests if r.path == "/v1/tasks/t-7"]
    assert len(polls) == 5 and all(r.method == "GET" for r in polls)
    gaps = [b.time - a.time for a, b in zip(fake.requests, fake.requests[1:])]
    assert all(0.09 <= g <= 1.0 for g in gaps), gaps  # every 100-200 ms, no busy loop


def test_progress_bar_on_a_terminal(program, fake, workdir):
    states = [task_obj("t-1", "vm.encrypt", "running", p) for p in (30, 60)]
    states.append(task_obj("t-1", "vm.encrypt", "success", 100, result=VM))
    fake.task("POST", "/v1/vms/web1/encrypt", result=VM, states=states)
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(program("vmseal").resolve()), "--socket", fake.socket_path, "vm",
                             "encrypt", "web1"], stdout=subprocess.PIPE, stderr=slave,
                            cwd=workdir)
    os.close(slave)
    drawn = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        assert r, "vmseal hung"
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the last holder of the terminal is gone
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert b"encrypt web1 [#########                     ] 30%" in drawn
    assert b"encrypt web1 [##################            ] 60%" in drawn
    assert b"] 100%" in drawn
    assert drawn.endswith(b"\r\x1b[K")  # the bar is wiped at the end
    assert out == b"encrypted web1 (encrypted, provider native1)\n"  # stdout stays clean


def test_task_error(vmseal, fake):
    error = {"code": "provider_unavailable", "message": "kms1:5696: connection refused"}
    states = [task_obj("t-1", "vm.encrypt", "running", 20),
              task_obj("t-1", "vm.encrypt", "error", 20, error=error)]
    fake.task("POST", "/v1/vms/web1/encrypt", result=None, states=states)
    p = vmseal("vm", "encrypt", "web1")
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr == b"vmseal: kms1:5696: connection refused\n"
    # --json: the error object on stderr, nothing on stdout.
    fake.task("POST", "/v1/vms/web1/encrypt", result=None,
              states=[task_obj("t-1", "vm.encrypt", "error", 20, error=error)])
    p = vmseal("vm", "encrypt", "web1", "--json")
    assert (p.returncode, p.stdout) == (1, b"")
    assert json.loads(p.stderr) == {"error": error}


def test_task_cancelled(vmseal, fake):
    fake.task("POST", "/v1/vms/web1/decrypt", result=None,
              states=[task_obj("t-1", "vm.decrypt", "cancelled", 50)])
    p = vmseal("vm", "decrypt", "web1")
    assert p.returncode == 1 and p.stderr == b"vmseal: task t-1 was cancelled\n"


def test_interrupt_leaves_the_task_running(program, fake, workdir):
    fake.task("POST", "/v1/vms/web1/encrypt", result=None,
              states=[task_obj("t-1", "vm.encrypt", "running", 5)])
    proc = subprocess.Popen([str(program("vmseal").resolve()), "--socket", fake.socket_path, "vm",
                             "encrypt", "web1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=workdir)
    deadline = time.monotonic() + 30
    while sum(r.path == "/v1/tasks/t-1" for r in fake.requests) < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"the task goes on in vmseald: vmseal task show t-1" in err


# --- errors, exit codes, malformed answers -------------------------------------------

@pytest.mark.parametrize("status,code,message", [
    (409, "vm_state", "vm 'web1' is running: power it off first"),
    (404, "not_found", "no VM named 'web9'"),
    (423, "vm_locked", "vm 'web1' is locked: provider kms, key k-1 cannot be fetched"),
    (403, "forbidden", "user bob lacks Cryptographer.Decrypt on vm/web1"),
    (409, "busy", "another operation is in progress on 'web1'"),
])
def test_refusal(vmseal, fake, status, code, message):
    fake.on("POST", "/v1/vms/web1/decrypt", (status, {"error": {"code": code,
                                                                "message": message}}))
    p = vmseal("vm", "decrypt", "web1")
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr.decode() == f"vmseal: {message}\n"
    p = vmseal("vm", "decrypt", "web1", "--json")
    assert (p.returncode, p.stdout) == (1, b"")
    assert json.loads(p.stderr) == {"error": {"code": code, "message": message}}


def test_usage_errors_reach_no_server(vmseal, fake):
    cases = [
        (["vm", "rekey", "web1", "--shallow", "--deep"], "--shallow and --deep cannot be used"),
        (["vm", "rekey", "web1"], "needs one of --shallow or --deep"),
        (["vm", "clone", "a", "b", "--encrypt", "--decrypt"], "--encrypt and --decrypt cannot"),
        (["vm", "create", "x", "--disk", "12X"], "'12X': unknown size suffix 'X'"),
        (["vm", "create", "x", "--disk", "99999999999T"], "too large"),
        (["vm", "create", "x", "--disk"], "--disk needs a value"),
        (["vm", "create", "x", "--provider", "p"], "--provider needs --encrypt"),
        (["vm", "list", "--frob"], "unknown option --frob"),
        (["vm", "info"], "needs NAME"),
        (["vm", "frob"], "unknown command 'vm frob'"),
        (["frob"], "unknown command 'frob'"),
        (["disk", "export", "web1", "one", "f"], "INDEX: 'one' is not a number"),
        (["disk", "add", "web1", "1X"], "SIZE: '1X': unknown size suffix"),
        (["kp", "backup", "native1"], "needs --to FILE"),
        ([], "no command given"),
    ]
    for argv, message in cases:
        p = vmseal(*argv)
        assert p.returncode == 2, (argv, p.stderr)
        lines = p.stderr.decode().splitlines()
        assert lines[0].startswith("vmseal: ") and message in lines[0], (argv, lines)
        assert lines[1].startswith("usage: vmseal"), (argv, lines)
        assert p.stdout == b""
    assert fake.requests == []


def test_names_cannot_change_the_route(vmseal, fake):
    for name, path in [("a/b", "/v1/vms/a%2Fb"), ("..", "/v1/vms/%2E%2E"),
                       ("x?y#z", "/v1/vms/x%3Fy%23z")]:
        fake.requests.clear()
        p = vmseal("vm", "info", name)
        assert p.returncode == 1
        assert [(r.method, r.path) for r in fake.requests] == [("GET", path)]


@pytest.mark.parametrize("route,answer,message", [
    (("GET", "/v1/vms"), (200, b"<html>oops</html>"), "malformed answer from vmseald: not JSON"),
    (("GET", "/v1/vms"), (200, b"[]"), "malformed answer from vmseald: an array"),
    (("GET", "/v1/vms"), (200, {"vms": "web1"}),
     "field 'vms' is a string, expected an array"),
    (("GET", "/v1/vms"), (200, {"vms": [{"name": "web1"}]}), "field 'state' is missing"),
    (("GET", "/v1/vms"), (200, {"vms": [dict(VM, encrypted="yes")]}),
     "field 'encrypted' is a string, expected a boolean"),
    (("GET", "/v1/vms"), (200, {"vms": [7]}), "not an object"),
    (("GET", "/v1/vms"), (502, b"<html>Bad Gateway</html>"),
     "vmseald answered HTTP 502 without a well-formed error"),
    (("GET", "/v1/vms"), (500, {"error": "boom"}),
     "vmseald answered HTTP 500 without a well-formed error"),
    (("GET", "/v1/vms"), "close", "closed the connection without answering"),
    (("GET", "/v1/vms"), (200, b'{"vms": [], "vms": []}'), "not JSON"),
])
def test_malformed_answers(vmseal, fake, route, answer, message):
    fake.on(*route, answer)
    p = vmseal("vm", "list")
    assert (p.returncode, p.stdout) == (1, b"")
    assert message in p.stderr.decode(), p.stderr
    assert p.stderr.startswith(b"vmseal: ")


@pytest.mark.parametrize("first,polls,message", [
    ((202, {"nothing": 1}), [], "field 'task' is missing"),
    ((202, {"task": {"id": "t-1", "state": "running"}}),
     [(200, {"task": {"id": "t-1", "state": "running", "progress": "half"}})],
     "field 'progress' is a string, expected an integer"),
    ((202, {"task": task_obj("t-1", "vm.encrypt", "queued", 0)}),
     [(200, {"task": task_obj("t-1", "vm.encrypt", "exploded", 0)})], "unknown task state"),
    ((202, {"task": task_obj("t-1", "vm.encrypt", "queued", 0)}),
     [(200, {"task": task_obj("t-2", "vm.encrypt", "success", 100)})], "got another"),
    ((202, {"task": task_obj("t-1", "vm.encrypt", "queued", 0)}),
     [(200, {"task": task_obj("t-1", "vm.encrypt", "running", 250)})], "is not 0-100"),
    ((202, {"task": task_obj("t-1", "vm.encrypt", "queued", 0)}),
     [(200, {"task": task_obj("t-1", "vm.encrypt", "error", 5, error="bad")})],
     "field 'error' is a string, expected an object"),
    ((202, {"task": task_obj("t-1", "vm.encrypt", "queued", 0)}),
     [(200, {"task": task_obj("t-1", "vm.encrypt", "success", 100,
                              result={"vm": dict(VM, encrypted=1)})})],
     "field 'encrypted' is an integer, expected a boolean"),
])
def test_malformed_tasks(vmseal, fake, first, polls, message):
    fake.on("POST", "/v1/vms/web1/encrypt", first)
    if polls:
        fake.on("GET", "/v1/tasks/t-1", *polls)
    p = vmseal("vm", "encrypt", "web1")
    assert p.returncode == 1 and message in p.stderr.decode(), p.stderr


def test_hostile_strings_are_defused(vmseal, fake):
    evil = dict(VM, name="web1\x1b[2J\x1b]0;pwned\x07", provider="p\r\nfake line")
    fake.on("GET", "/v1/vms", (200, {"vms": [evil]}))
    out = ok(vmseal("vm", "list"))
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert len(out.splitlines()) == 2
    fake.on("POST", "/v1/vms/web1/decrypt",
            (409, {"error": {"code": "vm_state", "message": "no\x1b[31m red"}}))
    p = vmseal("vm", "decrypt", "web1")
    assert p.stderr == b"vmseal: no?[31m red\n"
    # --json output is JSON: jansson escapes control characters.
    assert json.loads(ok(vmseal("vm", "list", "--json")))["vms"][0]["name"] == evil["name"]


# --- the socket, help, version -----------------------------------------------------

def test_socket_choice(vmseal, fake, workdir):
    fake.on("GET", "/v1/tasks?limit=50", (200, {"tasks": []}))
    # VMSEAL_SOCKET when there is no --socket...
    ok(vmseal("task", "list", socket_arg=False, env={"VMSEAL_SOCKET": fake.socket_path}))
    # ...--socket before it...
    p = vmseal("task", "list", "--socket", "/nonexistent/s.sock",
               socket_arg=False, env={"VMSEAL_SOCKET": fake.socket_path})
    assert p.returncode == 1 and b"no socket at /nonexistent/s.sock" in p.stderr
    # ...and else ./run/vmseald/vmseald.sock, where `make run` serves.
    p = vmseal("task", "list", socket_arg=False)
    assert p.returncode == 1
    assert b"no socket at ./run/vmseald/vmseald.sock: is vmseald running?" in p.stderr
    os.makedirs(os.path.join(workdir, "run", "vmseald"))
    os.symlink(fake.socket_path, os.path.join(workdir, "run", "vmseald", "vmseald.sock"))
    ok(vmseal("task", "list", socket_arg=False))
    assert len(fake.requests) == 2


def test_nothing_listens(vmseal, fake, workdir):
    dead = os.path.join(workdir, "dead.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(dead)
    s.close()  # the file stays, nobody listens
    p = vmseal("vm", "list", "--socket", dead, socket_arg=False)
    assert p.returncode == 1 and b"nothing listens on" in p.stderr


def test_help_and_version(vmseal, fake):
    out = ok(vmseal("help"))
    for name in ["kp add-native", "kp backup", "vm create", "vm snapshot revert", "disk export",
                 "key destroy", "task show", "login", "logout", "whoami", "token revoke",
                 "user group add", "role create", "privilege list", "permission set",
                 "folder create", "vm move", "policy create", "vm policy", "task watch",
                 "task cancel", "kp server-cert", "kp trust", "kp client csr", "host show"]:
        assert name in out
    out = ok(vmseal("help", "vm", "clone"))
    assert out.startswith("usage: vmseal vm clone SRC DST [--encrypt | --decrypt | --recrypt]")
    assert ok(vmseal("vm", "clone", "--help")) == out
    assert "vm snapshot delete" in ok(vmseal("help", "vm"))
    p = vmseal("help", "frob")
    assert p.returncode == 2 and b"no command 'frob'" in p.stderr
    assert ok(vmseal("--version")).startswith("vmseal ")
    assert fake.requests == []


# --- administration: every command's method, route and body ----------------------

USER = {"name": "bob", "created": "2026-11-23T10:00:00Z", "groups": ["ops"], "builtin": False}
ROLE = {"name": "Crypto ops", "builtin": False,
        "privileges": ["Cryptographer.Access", "Cryptographer.Encrypt"]}
PERMISSION = {"principal": "bob", "group": False, "role": "Read-only", "object": "vm/web1",
              "propagate": True}
FOLDER = {"name": "prod", "vms": ["web1", "web2"]}
POLICY = {"name": "VM Encryption Policy", "encryption": True, "provider": None, "builtin": True}
PASSWORD = "a long password 7"

# (argv, method, path, body, answer, stdout without --json, key of the
# object --json prints: None for the whole answer)
ADMIN_COMMANDS = [
    (["user", "create", "bob", "--password-file", "pw"], "POST", "/v1/users",
     {"name": "bob", "password": PASSWORD}, (201, {"user": USER}), "created user bob\n", "user"),
    (["user", "delete", "bob"], "DELETE", "/v1/users/bob", None, (200, {"deleted": "bob"}),
     "deleted user bob (their tokens are revoked, their permissions removed)\n", None),
    (["user", "password", "bob", "--password-file", "pw"], "POST", "/v1/users/bob/password",
     {"password": PASSWORD}, (200, {"user": USER}), "changed the password of bob\n", "user"),
    (["user", "group", "add", "bob", "ops"], "POST", "/v1/users/bob/groups", {"group": "ops"},
     (200, {"user": USER}), "added bob to group ops\n", "user"),
    (["user", "group", "remove", "bob", "ops"], "DELETE", "/v1/users/bob/groups/ops", None,
     (200, {"user": dict(USER, groups=[])}), "removed bob from group ops\n", "user"),
    (["role", "create", "Crypto ops", "--privilege", "Cryptographer.Access", "--privilege",
      "Cryptographer.Encrypt"], "POST", "/v1/roles",
     {"name": "Crypto ops", "privileges": ["Cryptographer.Access", "Cryptographer.Encrypt"]},
     (201, {"role": ROLE}), "created role Crypto ops (2 privileges)\n", "role"),
    (["role", "delete", "Crypto ops"], "DELETE", "/v1/roles/Crypto%20ops", None,
     (200, {"deleted": "Crypto ops"}), "deleted role Crypto ops\n", None),
    (["permission", "set", "--user", "bob", "--role", "Read-only", "--object", "vm/web1"], "POST",
     "/v1/permissions", {"user": "bob", "role": "Read-only", "object": "vm/web1",
                         "propagate": True},
     (200, {"permission": PERMISSION}), "gave user bob the role Read-only on vm/web1\n",
     "permission"),
    (["permission", "set", "--group", "ops", "--role", "Administrator", "--no-propagate"], "POST",
     "/v1/permissions", {"group": "ops", "role": "Administrator", "object": "/",
                         "propagate": False},
     (200, {"permission": dict(PERMISSION, principal="ops", group=True)}),
     "gave group ops the role Administrator on / (not propagated to its children)\n",
     "permission"),
    (["permission", "remove", "--user", "bob", "--object", "folder/prod"], "POST",
     "/v1/permissions/remove", {"user": "bob", "object": "folder/prod"},
     (200, {"removed": PERMISSION}), "removed the permission of user bob on folder/prod\n",
     "removed"),
    (["permission", "remove", "--group", "ops"], "POST", "/v1/permissions/remove",
     {"group": "ops", "object": "/"}, (200, {"removed": PERMISSION}),
     "removed the permission of group ops on /\n", "removed"),
    (["folder", "create", "prod"], "POST", "/v1/folders", {"name": "prod"},
     (201, {"folder": dict(FOLDER, vms=[])}), "created folder prod\n", "folder"),
    (["folder", "delete", "prod"], "DELETE", "/v1/folders/prod", None,
     (200, {"deleted": "prod"}), "deleted folder prod\n", None),
    (["vm", "move", "web1", "--folder", "prod"], "POST", "/v1/vms/web1/move",
     {"folder": "prod"}, (200, {"vm": dict(VM, folder="prod")}), "moved web1 to folder prod\n",
     "vm"),
    (["vm", "move", "web1", "--root"], "POST", "/v1/vms/web1/move", {"folder": None},
     (200, {"vm": VM}), "moved web1 to the root\n", "vm"),
    (["policy", "create", "KMS policy", "--provider", "kms"], "POST", "/v1/policies",
     {"name": "KMS policy", "provider": "kms"},
     (201, {"policy": dict(POLICY, name="KMS policy", provider="kms", builtin=False)}),
     "created encryption policy KMS policy (provider kms)\n", "policy"),
    (["policy", "delete", "KMS policy"], "DELETE", "/v1/policies/KMS%20policy", None,
     (200, {"deleted": "KMS policy"}), "deleted policy KMS policy\n", None),
    (["token", "revoke", "0f3a"], "DELETE", "/v1/tokens/0f3a", None, (200, {"revoked": "0f3a"}),
     "revoked token 0f3a\n", "revoked"),
    (["task", "cancel", "t-1"], "POST", "/v1/tasks/t-1/cancel", {},
     (202, {"task": task_obj("t-1", "vm.encrypt", "running", 40)}),
     "asked task t-1 to stop: it ends cancelled once its operation has rolled back "
     "(vmseal task watch t-1)\n", "task"),
    (["host", "enable-encryption"], "POST", "/v1/host/encryption", {},
     (200, {"host": {"name": "h1", "encryption_mode": "safe"}}),
     "the host is in encryption mode\nname:             h1\nencryption mode:  safe\n", "host"),
    (["kp", "add", "native2", "--type", "native"], "POST", "/v1/providers",
     {"name": "native2", "type": "native"}, (201, {"provider": dict(NATIVE, name="native2")}),
     "created native key provider native2 (the default)\n"
     "back it up before relying on it: vmseal kp backup native2 --to FILE\n", "provider"),
    (["kp", "add", "kms", "--type", "standard", "--server", "kms1:5696", "--server",
      "[::1]:5696"], "POST", "/v1/providers",
     {"name": "kms", "type": "standard", "servers": ["kms1:5696", "[::1]:5696"]},
     (201, {"provider": STANDARD}),
     "created standard key provider kms\nnext: vmseal kp server-cert kms, then vmseal kp trust "
     "kms ..., and a client certificate: vmseal kp client self-signed|csr|cert kms ...\n",
     "provider"),
    (["kp", "remove", "kms"], "DELETE", "/v1/providers/kms", None, (200, {"removed": "kms"}),
     "removed key provider kms\n", None),
    (["kp", "server", "add", "kms", "kms3:5696"], "POST", "/v1/providers/kms/servers",
     {"address": "kms3:5696"}, (201, {"provider": STANDARD}),
     "added key server kms3:5696 to standard key provider kms\n", "provider"),
    (["kp", "server", "remove", "kms", "kms2:5696"], "DELETE",
     "/v1/providers/kms/servers/kms2%3A5696", None, (200, {"provider": STANDARD}),
     "removed key server kms2:5696 from standard key provider kms\n", "provider"),
    (["kp", "default", "kms"], "POST", "/v1/providers/kms/default", {},
     (200, {"provider": dict(STANDARD, default=True)}), "kms is now the default key provider\n",
     "provider"),
]


@pytest.mark.parametrize("argv,method,path,body,answer,said,key", ADMIN_COMMANDS,
                         ids=[" ".join(c[0]) for c in ADMIN_COMMANDS])
def test_admin_command_request(vmseal, fake, workdir, argv, method, path, body, answer, said,
                               key):
    with open(os.path.join(workdir, "pw"), "w") as f:
        f.write(PASSWORD + "\n")
    fake.on(method, path, answer)
    p = vmseal(*argv)
    assert ok(p) == said
    assert len(fake.requests) == 1, fake.requests
    req = fake.requests[0]
    assert (req.method, req.path) == (method, path)
    assert req.json == body
    if body is None:
        assert req.body == b""
    # No token on the socket: vmseald knows the caller by its uid.
    assert "Authorization" not in req.headers
    # A password travels in the body only.
    assert PASSWORD.encode() not in req.cmdline + req.environ
    fake.requests.clear()
    printed = json.loads(ok(vmseal(*argv, "--json")))
    assert printed == (answer[1][key] if key else answer[1])


LISTS = [
    (["user", "list"], "/v1/users", {"users": [
        {"name": "root", "created": "2026-11-23T09:00:00Z", "groups": [], "builtin": True},
        USER]},
     ["NAME  GROUPS  BUILT-IN  CREATED",
      "root  -       yes       2026-11-23T09:00:00Z",
      "bob   ops     no        2026-11-23T10:00:00Z"]),
    (["role", "list"], "/v1/roles", {"roles": [
        {"name": "Administrator", "builtin": True, "privileges": ["a", "b", "c"]},
        {"name": "Read-only", "builtin": True,
         "privileges": ["System.View", "System.Read", "StorageProfile.View"]},
        {"name": "No cryptography administrator", "builtin": True, "privileges": ["a", "b"]},
        ROLE]},
     ["NAME                           BUILT-IN  PRIVILEGES",
      "Administrator                  yes       3",
      "Read-only                      yes       3",
      "No cryptography administrator  yes       2",
      "Crypto ops                     no        2"]),
    (["privilege", "list"], "/v1/privileges", {"privileges": [
        {"name": "Cryptographer.Decrypt", "description": "decrypt a VM or a disk"}]},
     ["NAME                   DESCRIPTION",
      "Cryptographer.Decrypt  decrypt a VM or a disk"]),
    (["permission", "list"], "/v1/permissions", {"permissions": [PERMISSION]},
     ["PRINCIPAL  GROUP  ROLE       OBJECT   PROPAGATE",
      "bob        no     Read-only  vm/web1  yes"]),
    (["folder", "list"], "/v1/folders", {"folders": [FOLDER, {"name": "empty", "vms": []}]},
     ["NAME   VMS", "prod   web1,web2", "empty  -"]),
    (["policy", "list"], "/v1/policies", {"policies": [
        POLICY, dict(POLICY, name="KMS policy", provider="kms", builtin=False)]},
     ["NAME                  ENCRYPTION  PROVIDER   BUILT-IN",
      "VM Encryption Policy  yes         (default)  yes",
      "KMS policy            yes         kms        no"]),
    (["token", "list"], "/v1/tokens", {"tokens": [
        {"id": "0f3a", "user": "bob", "created": "2026-11-23T10:00:00Z",
         "expires": "2026-11-23T22:00:00Z", "revoked": False}]},
     ["ID    USER  CREATED               EXPIRES               REVOKED",
      "0f3a  bob   2026-11-23T10:00:00Z  2026-11-23T22:00:00Z  no"]),
    (["token", "list", "--all"], "/v1/tokens?all=1", {"tokens": []},
     ["ID  USER  CREATED  EXPIRES  REVOKED"]),
    (["task", "list", "--running"], "/v1/tasks?state=running", {"tasks": []},
     ["ID  OPERATION  TARGET  USER  STATE  PROGRESS  STARTED"]),
    (["task", "list", "--all-states"], "/v1/tasks", {"tasks": []},
     ["ID  OPERATION  TARGET  USER  STATE  PROGRESS  STARTED"]),
]


@pytest.mark.parametrize("argv,path,answer,lines", LISTS, ids=[" ".join(c[0]) for c in LISTS])
def test_lists(vmseal, fake, argv, path, answer, lines):
    fake.on("GET", path, (200, answer))
    assert ok(vmseal(*argv)).splitlines() == lines
    assert json.loads(ok(vmseal(*argv, "--json"))) == answer
    assert {(r.method, r.path) for r in fake.requests} == {("GET", path)}


def test_lists_refuse_malformed_items(vmseal, fake):
    fake.on("GET", "/v1/roles", (200, {"roles": [{"name": "x", "privileges": "all"}]}))
    p = vmseal("role", "list")
    assert p.returncode == 1 and b"field 'privileges' is a string, expected an array" in p.stderr
    fake.on("GET", "/v1/folders", (200, {"folders": [{"name": "f", "vms": [1]}]}))
    p = vmseal("folder", "list")
    assert p.returncode == 1 and b"malformed answer from vmseald" in p.stderr


def test_vm_create_policy_and_folder(vmseal, fake):
    fake.task("POST", "/v1/vms", result=VM)
    ok(vmseal("vm", "create", "web1", "--policy", "VM Encryption Policy", "--folder", "prod"))
    assert only(fake).json == {"name": "web1", "disks": [], "image": None, "encrypt": False,
                               "provider": None, "memory": None, "cpus": None,
                               "policy": "VM Encryption Policy", "folder": "prod"}


def test_vm_policy_is_a_task(vmseal, fake):
    fake.task("POST", "/v1/vms/web1/policy", result=VM)
    out = ok(vmseal("vm", "policy", "web1", "--policy", "VM Encryption Policy"))
    assert only(fake).json == {"policy": "VM Encryption Policy", "disk": None}
    assert out == ("web1 has the storage policy VM Encryption Policy "
                   "(encrypted, provider native1)\n")
    assert [r.path for r in fake.requests[1:]] == ["/v1/tasks/t-1"]
    fake.requests.clear()
    out = ok(vmseal("vm", "policy", "web1", "--none", "--disk", "0"))
    assert only(fake).json == {"policy": None, "disk": 0}
    assert out.startswith("disk 0 of web1 has no storage policy")


def test_vm_policy_unchanged_answers_at_once(vmseal, fake):
    fake.on("POST", "/v1/vms/web2/policy", (200, {"vm": PLAIN_VM}))
    out = ok(vmseal("vm", "policy", "web2", "--none"))
    assert out == "web2 has no storage policy (not encrypted)\n"
    assert [r.path for r in fake.requests] == ["/v1/vms/web2/policy"]  # no task to follow
    assert json.loads(ok(vmseal("vm", "policy", "web2", "--none", "--json"))) == PLAIN_VM


def test_vm_info_folder_and_policy(vmseal, fake):
    fake.on("GET", "/v1/vms/web1", (200, {"vm": dict(VM, folder="prod",
                                                     policy="VM Encryption Policy")}))
    lines = ok(vmseal("vm", "info", "web1")).splitlines()
    assert "folder:           prod" in lines
    assert "storage policy:   VM Encryption Policy" in lines


def test_host_show(vmseal, fake):
    host = {"name": "h1", "encryption_mode": "safe",
            "host_key": {"provider": "n1", "key_id": "k-9", "created": "2026-11-23T10:00:00Z",
                         "created_by": "root"},
            "providers": 2, "vms": 3, "flags": ["x"]}
    fake.on("GET", "/v1/host", (200, {"host": host}))
    assert ok(vmseal("host", "show")).splitlines() == [
        "name:             h1", "encryption mode:  safe", "host key provider: n1",
        "host key key id:  k-9", "host key created: 2026-11-23T10:00:00Z",
        "host key created by: root", "providers:        2", "vms:              3"]
    assert json.loads(ok(vmseal("host", "show", "--json"))) == host
    fake.on("GET", "/v1/host", (200, {"host": dict(host, encryption_mode="none",
                                                   host_key=None)}))
    assert "host key:         -" in ok(vmseal("host", "show")).splitlines()


def test_admin_usage_errors(vmseal, fake, workdir):
    cases = [
        (["permission", "set", "--user", "bob"], "needs --role ROLE"),
        (["permission", "set", "--user", "bob", "--group", "ops", "--role", "r"],
         "--user and --group cannot be used together"),
        (["permission", "set", "--role", "r"], "needs one of --user or --group"),
        (["permission", "set", "--user", "bob", "--role", "r", "--object", "web1"],
         "--object: 'web1' is not an object"),
        (["permission", "set", "--user", "bob", "--role", "r", "--object", "vm/"],
         "is not an object"),
        (["permission", "remove", "bob"], "takes no arguments"),
        (["role", "create", "r"], "needs --privilege P"),
        (["user", "create", "bob"], "needs --password-file FILE"),
        (["user", "group", "add", "bob"], "needs NAME GROUP"),
        (["vm", "move", "web1"], "needs one of --folder or --root"),
        (["vm", "move", "web1", "--folder", "f", "--root"], "cannot be used together"),
        (["vm", "policy", "web1"], "needs one of --policy or --none"),
        (["vm", "policy", "web1", "--policy", "p", "--none"], "cannot be used together"),
        (["vm", "policy", "web1", "--none", "--disk", "x"], "--disk: 'x' is not a number"),
        (["vm", "create", "x", "--encrypt", "--policy", "p"], "cannot be used together"),
        (["policy", "create", "p"], "needs --provider P"),
        (["task", "list", "--running", "--all-states"], "cannot be used together"),
        (["login", "--user", "bob", "--password-file", "pw"], "vmseal login is for --server"),
        (["logout"], "vmseal logout is for --server"),
        (["--server", "https://localhost:1", "task", "list"],
         "--socket and --server cannot be used together"),
        (["login", "--user", "bob", "--password-file", "pw", "--ttl", "0"], "--ttl: "),
        (["login", "--user", "bob", "--password-file", "pw", "--ttl", "2592001"], "--ttl: "),
        (["--ca", "ca.pem", "task", "list"], "--ca goes with --server"),
    ]
    for argv, message in cases:
        p = vmseal(*argv)
        assert p.returncode == 2, (argv, p.returncode, p.stderr)
        lines = p.stderr.decode().splitlines()
        assert lines[0].startswith("vmseal: ") and message in lines[0], (argv, lines)
        assert lines[1].startswith("usage: vmseal"), (argv, lines)
    assert fake.requests == []


def test_unreadable_password_file(vmseal, fake, workdir):
    os.mkdir(os.path.join(workdir, "adir"))
    with open(os.path.join(workdir, "two-lines"), "w") as f:
        f.write("first\nsecond\n")
    open(os.path.join(workdir, "empty"), "w").close()
    for name, message in [("missing", "--password-file: opening"),
                          ("adir", "--password-file"),
                          ("two-lines", "the password must be one line"),
                          ("empty", "empty password")]:
        p = vmseal("user", "create", "bob", "--password-file", name)
        assert p.returncode == 1, (name, p.stderr)
        assert message in p.stderr.decode(), (name, p.stderr)
    assert fake.requests == []


def test_password_keeps_all_but_one_newline(vmseal, fake, workdir):
    with open(os.path.join(workdir, "pw"), "wb") as f:
        f.write(b"  spaces kept \t\n")
    fake.on("POST", "/v1/users", (201, {"user": USER}))
    ok(vmseal("user", "create", "bob", "--password-file", "pw"))
    assert only(fake).json["password"] == "  spaces kept \t"


@pytest.mark.parametrize("status,code,message", [
    (403, "forbidden", "user 'bob' lacks privilege Cryptographer.Decrypt on vm/web1"),
    (409, "not_allowed", "the built-in role Administrator cannot be deleted"),
    (409, "busy", "role 'Crypto ops' is used by a permission"),
])
def test_admin_refusals(vmseal, fake, status, code, message):
    fake.on("DELETE", "/v1/roles/Administrator", (status, {"error": {"code": code,
                                                                    "message": message}}))
    p = vmseal("role", "delete", "Administrator")
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr.decode() == f"vmseal: {message}\n"


# --- task watch -----------------------------------------------------------------------

def test_task_watch_lines(vmseal, fake):
    states = [task_obj("t-7", "vm.encrypt", "queued", 0),
              task_obj("t-7", "vm.encrypt", "running", 40),
              task_obj("t-7", "vm.encrypt", "running", 40),
              task_obj("t-7", "vm.encrypt", "running", 80),
              task_obj("t-7", "vm.encrypt", "success", 100, result=VM)]
    fake.on("GET", "/v1/tasks/t-7", *[(200, {"task": t}) for t in states])
    p = vmseal("task", "watch", "t-7")
    # One line per change (not per poll), then the verdict.
    assert ok(p).splitlines() == ["t-7 queued 0%", "t-7 running 40%", "t-7 running 80%",
                                  "t-7 success 100%",
                                  "task t-7 (vm.encrypt on vm/web1) succeeded"]
    polls = [r.time for r in fake.requests]
    assert len(polls) == 5
    # About 4 times a second.
    gaps = [b - a for a, b in zip(polls, polls[1:])]
    assert all(0.2 <= g < 1.5 for g in gaps), gaps


def test_task_watch_json(vmseal, fake):
    done = task_obj("t-7", "vm.encrypt", "success", 100, result=VM)
    fake.on("GET", "/v1/tasks/t-7", (200, {"task": done}))
    p = vmseal("task", "watch", "t-7", "--json")
    assert json.loads(ok(p)) == done


@pytest.mark.parametrize("final,message", [
    (task_obj("t-7", "vm.rekey", "error", 30,
              error={"code": "provider_unavailable", "message": "kms1:5696 refused"}),
     "vmseal: kms1:5696 refused\n"),
    (task_obj("t-7", "vm.rekey", "cancelled", 30,
              error={"code": "cancelled", "message": "task t-7 was cancelled: rolled back"}),
     "vmseal: task t-7 was cancelled: rolled back\n"),
    (task_obj("t-7", "vm.rekey", "cancelled", 30), "vmseal: task t-7 was cancelled\n"),
])
def test_task_watch_failure(vmseal, fake, final, message):
    fake.on("GET", "/v1/tasks/t-7", (200, {"task": task_obj("t-7", "vm.rekey", "running", 10)}),
            (200, {"task": final}))
    p = vmseal("task", "watch", "t-7")
    assert p.returncode == 1
    assert p.stderr.decode() == message
    assert p.stdout.decode().splitlines()[-1] == f"t-7 {final['state']} 30%"


def test_task_watch_unknown(vmseal, fake):
    fake.on("GET", "/v1/tasks/t-9", (404, {"error": {"code": "not_found",
                                                     "message": "no task 't-9'"}}))
    p = vmseal("task", "watch", "t-9")
    assert p.returncode == 1 and p.stderr == b"vmseal: no task 't-9'\n"


def test_task_watch_progress_bar_on_a_terminal(program, fake, workdir):
    """stderr a terminal: a bar there, not lines on stdout."""
    states = [task_obj("t-7", "vm.encrypt", "running", 50),
              task_obj("t-7", "vm.encrypt", "success", 100, result=VM)]
    fake.on("GET", "/v1/tasks/t-7", *[(200, {"task": t}) for t in states])
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(program("vmseal").resolve()), "--socket", fake.socket_path,
                             "task", "watch", "t-7"], stdout=subprocess.PIPE, stderr=slave,
                            cwd=workdir)
    os.close(slave)
    out, _ = proc.communicate(timeout=30)
    seen = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0
    assert out == b"task t-7 (vm.encrypt on vm/web1) succeeded\n"
    assert b"task t-7 [###############               ] 50%" in seen


# --- HTTPS, tokens and the token store -----------------------------------------------

def _make_cert(directory, name, cn="localhost", san="DNS:localhost"):
    cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName={san}", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls(workdir):
    return _make_cert(workdir, "api")


@pytest.fixture
def https(workdir, tls):
    server = FakeVmseald(workdir, tls=tls)
    yield server
    server.close()


LOGIN = {"token": "vst_" + "A" * 43, "id": "0f3a9b", "user": "alice",
         "expires": "2099-01-01T00:00:00Z"}


@pytest.fixture
def cli(program, workdir):
    """cli(*args, server=URL or None, ca=FILE or None, env=...) -> CompletedProcess, with
    HOME in workdir and neither VMSEAL_SERVER nor VMSEAL_SOCKET set unless given."""
    binary = program("vmseal").resolve()
    home = os.path.join(workdir, "home")
    os.makedirs(home, exist_ok=True)

    def run(*args, server=None, ca=None, env=None, stdin=None):
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("VMSEAL_SOCKET", "VMSEAL_SERVER", "VMSEAL_CA")}
        environ["HOME"] = home
        environ.update(env or {})
        argv = [str(binary)]
        if server:
            argv += ["--server", server]
        if ca:
            argv += ["--ca", ca]
        return subprocess.run(argv + list(args), input=stdin, capture_output=True, cwd=workdir,
                              env=environ, timeout=60)
    run.home = home
    run.store = os.path.join(home, ".config", "vmseal", "tokens.json")
    return run


def _login(cli, https, tls, workdir, *extra):
    with open(os.path.join(workdir, "pw"), "w") as f:
        f.write(PASSWORD + "\n")
    https.on("POST", "/v1/session", (201, LOGIN))
    return cli("login", "--user", "alice", "--password-file", "pw", *extra, server=https.url,
               ca=tls[0])


def test_login_stores_the_token(cli, https, tls, workdir):
    p = _login(cli, https, tls, workdir)
    out = ok(p)
    assert out == f"logged in to {https.url} as alice (the token expires 2099-01-01T00:00:00Z)\n"
    assert LOGIN["token"].encode() not in p.stdout + p.stderr
    req = only(https)
    assert (req.method, req.path) == ("POST", "/v1/session")
    assert req.json == {"user": "alice", "password": PASSWORD, "ttl": None}
    assert "Authorization" not in req.headers  # login sends no token
    # The store: the directory 0700, the file 0600, keyed by the server's URL,
    # with the CA made absolute so that later commands need no --ca.
    config = os.path.dirname(cli.store)
    assert os.stat(config).st_mode & 0o777 == 0o700
    assert os.stat(cli.store).st_mode & 0o777 == 0o600
    with open(cli.store) as f:
        assert json.load(f) == {https.url: {
            "token": LOGIN["token"], "id": "0f3a9b", "user": "alice",
            "expires": "2099-01-01T00:00:00Z", "ca": os.path.join(workdir, "api.crt")}}
    # No temporary file left behind.
    assert os.listdir(config) == ["tokens.json"]


def test_login_ttl_and_json(cli, https, tls, workdir):
    p = _login(cli, https, tls, workdir, "--ttl", "3600", "--json")
    assert only(https).json["ttl"] == 3600
    # --json: the answer without the token, which stays in the store.
    assert json.loads(ok(p)) == {"server": https.url, "id": "0f3a9b", "user": "alice",
                                 "expires": "2099-01-01T00:00:00Z"}


def test_login_refused(cli, https, tls, workdir):
    with open(os.path.join(workdir, "pw"), "w") as f:
        f.write("wrong\n")
    https.on("POST", "/v1/session", (401, {"error": {"code": "unauthenticated",
                                                      "message": "wrong user name or password"}}))
    p = cli("login", "--user", "alice", "--password-file", "pw", server=https.url, ca=tls[0])
    assert p.returncode == 1
    # No advice to log in: that is what failed.
    assert p.stderr == b"vmseal: wrong user name or password\n"
    assert not os.path.exists(cli.store)


def test_login_rate_limited(cli, https, tls, workdir):
    with open(os.path.join(workdir, "pw"), "w") as f:
        f.write("wrong\n")
    https.on("POST", "/v1/session", (429, {"error": {"code": "rate_limited",
                                                      "message": "too many failed logins"}},
                                     {"Retry-After": "37"}))
    p = cli("login", "--user", "alice", "--password-file", "pw", server=https.url, ca=tls[0])
    assert p.returncode == 1
    assert p.stderr == b"vmseal: too many failed logins (retry after 37 seconds)\n"


def test_later_commands_send_the_stored_token(cli, https, tls, workdir):
    ok(_login(cli, https, tls, workdir))
    session = {"user": "alice", "root": False, "groups": ["ops"], "via": "https",
               "token_id": "0f3a9b"}
    https.on("GET", "/v1/session", (200, {"session": session}))
    https.requests.clear()
    # No --ca: the store remembers it. VMSEAL_SERVER works as --server.
    for kwargs in [{"server": https.url}, {"env": {"VMSEAL_SERVER": https.url}},
                   {"server": https.url.upper().replace("HTTPS://LOCALHOST", "HTTPS://LocalHost")
                    + "/"}]:
        out = ok(cli("whoami", **kwargs))
        assert "user:             alice" in out.splitlines()
        assert f"server:           {https.url}" in out.splitlines()
        assert "expires:          2099-01-01T00:00:00Z" in out.splitlines()
        req = https.requests.pop()
        assert req.headers["Authorization"] == "Bearer " + LOGIN["token"]
    assert json.loads(ok(cli("whoami", "--json", server=https.url))) == session


def test_https_keeps_one_connection(cli, https, tls, workdir):
    ok(_login(cli, https, tls, workdir))
    https.requests.clear()
    https.task("POST", "/v1/vms/web1/encrypt", result=VM,
               states=[task_obj("t-1", "vm.encrypt", "running", 10),
                       task_obj("t-1", "vm.encrypt", "running", 60),
                       task_obj("t-1", "vm.encrypt", "success", 100, result=VM)])
    ok(cli("vm", "encrypt", "web1", server=https.url))
    assert len(https.requests) == 4
    assert len({r.peer for r in https.requests}) == 1  # keep-alive: one connection
    assert all(r.headers["Authorization"] == "Bearer " + LOGIN["token"] for r in https.requests)


def test_socket_never_sends_the_stored_token(cli, https, tls, fake, workdir):
    ok(_login(cli, https, tls, workdir))
    fake.on("GET", "/v1/vms", (200, {"vms": []}))
    ok(cli("--socket", fake.socket_path, "vm", "list"))
    assert "Authorization" not in only(fake).headers


def test_token_file(cli, https, tls, fake, workdir):
    with open(os.path.join(workdir, "tok"), "w") as f:
        f.write("vst_fromfile\n")
    https.on("GET", "/v1/vms", (200, {"vms": []}))
    ok(cli("--token-file", "tok", "vm", "list", server=https.url, ca=tls[0]))
    assert only(https).headers["Authorization"] == "Bearer vst_fromfile"
    assert not os.path.exists(cli.store)  # read, never written
    # On the socket too, when asked for explicitly.
    fake.on("GET", "/v1/vms", (200, {"vms": []}))
    ok(cli("--socket", fake.socket_path, "--token-file", "tok", "vm", "list"))
    assert only(fake).headers["Authorization"] == "Bearer vst_fromfile"


def test_token_file_cannot_inject_headers(cli, https, tls, workdir):
    for content in [b"vst_a\r\nX-Evil: 1\n", b"vst a\n", b"vst_a\x00b\n", b"\n",
                    b"vst_" + b"a" * 300 + b"\n"]:
        with open(os.path.join(workdir, "tok"), "wb") as f:
            f.write(content)
        p = cli("--token-file", "tok", "vm", "list", server=https.url, ca=tls[0])
        assert p.returncode == 1, content
    assert https.requests == []


def test_not_logged_in(cli, https, tls):
    p = cli("vm", "list", server=https.url, ca=tls[0])
    assert p.returncode == 1
    assert p.stderr.decode() == (f"vmseal: not logged in to {https.url}: run vmseal --server "
                                 f"{https.url} login --user NAME --password-file FILE\n")
    assert https.requests == []


def _write_store(cli, content, mode=0o600):
    os.makedirs(os.path.dirname(cli.store), mode=0o700, exist_ok=True)
    with open(cli.store, "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    os.chmod(cli.store, mode)


def test_expired_token_is_not_sent(cli, https, tls):
    _write_store(cli, {https.url: dict(LOGIN, expires="2020-01-01T00:00:00Z", ca=None)})
    p = cli("vm", "list", server=https.url, ca=tls[0])
    assert p.returncode == 1 and b"expired at 2020-01-01T00:00:00Z" in p.stderr
    assert b"login --user NAME" in p.stderr
    assert https.requests == []


@pytest.mark.parametrize("content,message", [
    ("not json", "is malformed"),
    ("[]", "is malformed"),
    ({"https://localhost:1": {"token": "vst_a b", "user": "u", "expires": "x"}},
     "the token of https://localhost:1 is missing or malformed"),
    ({"https://localhost:1": {"token": "vst_a", "user": "u"}}, "needs \"user\" and \"expires\""),
    ({"https://localhost:1": {"token": "vst_a", "user": "u", "expires": "x", "ca": "rel.pem"}},
     "not an absolute path"),
    ({"https://localhost:1": {"token": "vst_a", "user": "u", "expires": "x", "extra": 1}},
     "unknown field 'extra'"),
    ({"localhost:1": {"token": "vst_a", "user": "u", "expires": "x"}}, "is not a server URL"),
    ('{"https://localhost:1": {}, "https://localhost:1": {}}', "is malformed"),
])
def test_malformed_store_is_refused(cli, https, tls, content, message):
    _write_store(cli, content)
    p = cli("vm", "list", server=https.url, ca=tls[0])
    assert p.returncode == 1
    assert message in p.stderr.decode(), p.stderr
    assert https.requests == []


def test_store_open_to_others_is_refused(cli, https, tls, workdir):
    ok(_login(cli, https, tls, workdir))
    https.requests.clear()
    os.chmod(cli.store, 0o644)
    p = cli("vm", "list", server=https.url)
    assert p.returncode == 1 and b"is open to others (mode 0644): chmod 600" in p.stderr
    os.chmod(cli.store, 0o600)
    os.chmod(os.path.dirname(cli.store), 0o777)
    p = cli("vm", "list", server=https.url)
    assert p.returncode == 1 and b"chmod 700" in p.stderr
    os.chmod(os.path.dirname(cli.store), 0o700)
    # A symbolic link in its place is not followed.
    os.rename(cli.store, cli.store + ".real")
    os.symlink(cli.store + ".real", cli.store)
    p = cli("vm", "list", server=https.url)
    assert p.returncode == 1 and b"symbolic link" in p.stderr
    assert https.requests == []


def test_two_servers_in_one_store(cli, https, tls, workdir):
    other = "https://vmseal2.example.com:8443"
    _write_store(cli, {other: dict(LOGIN, token="vst_other", ca=None)})
    ok(_login(cli, https, tls, workdir))
    with open(cli.store) as f:
        store = json.load(f)
    assert set(store) == {other, https.url}
    assert store[other]["token"] == "vst_other"


def test_logout(cli, https, tls, workdir):
    ok(_login(cli, https, tls, workdir))
    https.requests.clear()
    https.on("DELETE", "/v1/session", (200, {"revoked": "0f3a9b"}))
    assert ok(cli("logout", server=https.url)) == f"logged out of {https.url}\n"
    req = only(https)
    assert req.headers["Authorization"] == "Bearer " + LOGIN["token"]
    with open(cli.store) as f:
        assert json.load(f) == {}
    assert os.stat(cli.store).st_mode & 0o777 == 0o600
    # Again: nothing to do.
    https.requests.clear()
    assert ok(cli("logout", server=https.url)) == f"not logged in to {https.url}\n"
    assert https.requests == []


def test_logout_of_a_revoked_token(cli, https, tls, workdir):
    ok(_login(cli, https, tls, workdir))
    https.on("DELETE", "/v1/session", (401, {"error": {"code": "unauthenticated",
                                                        "message": "the token was revoked"}}))
    out = ok(cli("logout", server=https.url))
    assert out == f"logged out of {https.url} (the token was no longer valid)\n"
    with open(cli.store) as f:
        assert json.load(f) == {}


def test_logout_when_the_server_is_gone(cli, https, tls, workdir):
    ok(_login(cli, https, tls, workdir))
    https.close()
    p = cli("logout", server=https.url)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "removed here all the same" in err and "stays valid until 2099-01-01T00:00:00Z" in err
    assert "cannot connect to" in err
    with open(cli.store) as f:
        assert json.load(f) == {}


def test_logout_removes_an_expired_token_without_asking(cli, https, tls):
    _write_store(cli, {https.url: dict(LOGIN, expires="2020-01-01T00:00:00Z", ca=None)})
    assert ok(cli("logout", server=https.url)) == f"removed the expired token of {https.url}\n"
    assert https.requests == []


def test_revoking_our_own_token_forgets_it(cli, https, tls, workdir):
    ok(_login(cli, https, tls, workdir))
    https.on("DELETE", "/v1/tokens/0f3a9b", (200, {"revoked": "0f3a9b"}))
    out = ok(cli("token", "revoke", "0f3a9b", server=https.url))
    assert out.splitlines() == ["revoked token 0f3a9b",
                                f"it was this machine's token for {https.url}: logged out"]
    with open(cli.store) as f:
        assert json.load(f) == {}


def test_401_says_how_to_log_in_again(cli, https, tls, workdir):
    ok(_login(cli, https, tls, workdir))
    https.on("GET", "/v1/vms", (401, {"error": {"code": "unauthenticated",
                                                 "message": "the token has expired"}}))
    p = cli("vm", "list", server=https.url)
    assert p.returncode == 1
    assert p.stderr.decode().splitlines() == [
        "vmseal: the token has expired",
        f"vmseal: run vmseal --server {https.url} login --user NAME --password-file FILE"]


def test_403_names_the_privilege_and_the_object(cli, https, tls, workdir):
    ok(_login(cli, https, tls, workdir))
    message = "user 'alice' lacks privilege Cryptographer.Decrypt on vm/web1"
    https.on("POST", "/v1/vms/web1/decrypt", (403, {"error": {"code": "forbidden",
                                                               "message": message}}))
    p = cli("vm", "decrypt", "web1", server=https.url)
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr.decode() == f"vmseal: {message}\n"


def test_server_certificate_is_verified(cli, https, tls, workdir):
    with open(os.path.join(workdir, "pw"), "w") as f:
        f.write(PASSWORD + "\n")
    https.on("POST", "/v1/session", (201, LOGIN))
    other, _ = _make_cert(workdir, "other")
    port = https.url.rsplit(":", 1)[1]
    for server, ca, message in [
            (https.url, other, "is not trusted"),            # another CA
            (f"https://127.0.0.1:{port}", tls[0], "is not trusted"),  # not the name in it
            (https.url, None, "is not trusted"),             # the system's CAs
            (https.url, os.path.join(workdir, "missing.pem"), "CA file")]:
        p = cli("login", "--user", "alice", "--password-file", "pw", server=server, ca=ca)
        assert p.returncode == 1, (server, ca, p.stderr)
        assert message in p.stderr.decode(), (server, ca, p.stderr)
    assert https.requests == []  # the password never left
    assert not os.path.exists(cli.store)


def test_plain_http_server_is_refused(cli, fake):
    p = cli("vm", "list", server="http://localhost:8080")
    assert p.returncode == 2 and b"served over HTTPS only" in p.stderr
    p = cli("vm", "list", env={"VMSEAL_SERVER": "localhost:8080"})
    assert p.returncode == 1 and b"VMSEAL_SERVER: 'localhost:8080' is not https://HOST:PORT" in p.stderr


def test_ca_from_the_environment(cli, https, tls, workdir):
    with open(os.path.join(workdir, "pw"), "w") as f:
        f.write(PASSWORD + "\n")
    https.on("POST", "/v1/session", (201, LOGIN))
    ok(cli("login", "--user", "alice", "--password-file", "pw",
           env={"VMSEAL_SERVER": https.url, "VMSEAL_CA": tls[0]}))
    with open(cli.store) as f:
        assert json.load(f)[https.url]["ca"] == tls[0]


# --- key provider administration ----------------------------------------------------

FINGERPRINT = "ab" * 32
SERVER_CERT = {"address": "kms1:5696", "subject": "CN=kms1", "issuer": "CN=vmseal-kms CA",
               "not_before": "2026-01-01T00:00:00Z", "not_after": "2028-01-01T00:00:00Z",
               "sha256": FINGERPRINT, "sha256_colons": ":".join(["AB"] * 32), "chain_length": 2,
               "pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}


def test_kp_list_health(vmseal, fake):
    kms = dict(STANDARD, trust="ca", configured=True, servers=[
        {"address": "kms1:5696", "status": "ok", "versions": ["2.1", "1.4"], "error": None,
         "latency_ms": 3},
        {"address": "kms2:5696", "status": "unreachable", "versions": [],
         "error": "connection refused", "latency_ms": 0}])
    unchecked = dict(STANDARD, name="kms9", configured=False,
                     servers=[{"address": "kms9:5696", "status": None}])
    fake.on("GET", "/v1/providers", (200, {"providers": [dict(NATIVE, configured=True), kms,
                                                         unchecked]}))
    assert ok(vmseal("kp", "list")).splitlines() == [
        "NAME     TYPE      DEFAULT  CONFIGURED  BACKED UP / SERVERS",
        "native1  native    yes      yes         no",
        "kms      standard           yes         kms1:5696,kms2:5696",
        "kms9     standard           no          kms9:5696",
        "",
        "KEY SERVER  PROVIDER  STATUS       KMIP VERSIONS  LATENCY  ERROR",
        "kms1:5696   kms       ok           2.1,1.4        3 ms     -",
        "kms2:5696   kms       unreachable  -              -        connection refused",
    ]
    fake.on("GET", "/v1/providers", (200, {"providers": [dict(kms, servers=[{"status": "ok"}])]}))
    p = vmseal("kp", "list")
    assert p.returncode == 1 and b"field 'address' is missing" in p.stderr


def test_kp_add_refusals(vmseal, fake, workdir):
    _pem(workdir, "ca.pem", "CERTIFICATE")
    cases = [
        (["kp", "add", "k"], "needs --type TYPE"),
        (["kp", "add", "k", "--type", "fancy"], "--type: 'fancy' is neither native nor standard"),
        (["kp", "add", "k", "--type", "standard"], "needs --server HOST:PORT"),
        (["kp", "add", "k", "--type", "native", "--server", "kms1:5696"], "takes no --server"),
        (["kp", "add", "k", "--type", "standard", "--server", "kms1:5696", "--ca", "ca.pem"],
         "--ca, --cert and --key go together"),
        (["kp", "add", "k", "--type", "standard", "--server", "kms1"],
         "--server: 'kms1' is not HOST:PORT"),
        (["kp", "server", "add", "k", "kms1"], "HOST:PORT: 'kms1' is not HOST:PORT"),
        (["kp", "trust", "k"], "needs one of --ca or --server-cert"),
        (["kp", "trust", "k", "--ca", "ca.pem", "--server-cert", "c.pem", "--fingerprint",
          FINGERPRINT], "--ca and --server-cert cannot be used together"),
        (["kp", "trust", "k", "--server-cert", "c.pem"], "--server-cert needs --fingerprint"),
        (["kp", "trust", "k", "--ca", "ca.pem", "--fingerprint", FINGERPRINT],
         "--fingerprint needs --server-cert"),
        (["kp", "trust", "k", "--server-cert", "c.pem", "--fingerprint", "abc"],
         "--fingerprint: 'abc' is not a SHA-256 fingerprint"),
        (["kp", "client", "csr", "k"], "needs --out FILE"),
        (["kp", "client", "cert", "k"], "needs --cert FILE"),
        (["kp", "server-cert", "k", "--server", "a:1", "--server", "b:1"], "one --server"),
    ]
    for argv, message in cases:
        p = vmseal(*argv)
        assert p.returncode == 2, (argv, p.returncode, p.stderr)
        assert message in p.stderr.decode().splitlines()[0], (argv, p.stderr)
    assert fake.requests == []


def test_kp_add_standard_at_once_through_kp_add(vmseal, fake, workdir):
    ca = _pem(workdir, "ca.pem", "CERTIFICATE")
    cert = _pem(workdir, "client.pem", "CERTIFICATE")
    key = _pem(workdir, "client.key", "PRIVATE KEY")
    fake.on("POST", "/v1/providers", (201, {"provider": STANDARD}))
    ok(vmseal("kp", "add", "kms", "--type", "standard", "--server", "kms1:5696", "--ca",
              "ca.pem", "--cert", "client.pem", "--key", "client.key"))
    assert only(fake).json == {"name": "kms", "type": "standard", "servers": ["kms1:5696"],
                               "ca_pem": ca, "cert_pem": cert, "key_pem": key}


def test_kp_server_cert(vmseal, fake, workdir):
    fake.on("POST", "/v1/providers/kms/server-certificate",
            (200, {"server_certificate": SERVER_CERT}))
    out = ok(vmseal("kp", "server-cert", "kms", "--server", "kms1:5696", "--out", "kms1.pem"))
    assert only(fake).json == {"address": "kms1:5696"}
    lines = out.splitlines()
    for want in ["server:           kms1:5696", "subject:          CN=kms1",
                 "issuer:           CN=vmseal-kms CA", "not before:       2026-01-01T00:00:00Z",
                 "not after:        2028-01-01T00:00:00Z",
                 "SHA-256:          " + ":".join(["AB"] * 32),
                 "wrote the certificate to kms1.pem"]:
        assert want in lines, (want, lines)
    assert lines[-1].endswith(f"vmseal kp trust kms --server-cert FILE --fingerprint "
                              f"{FINGERPRINT}")
    path = os.path.join(workdir, "kms1.pem")
    assert open(path).read() == SERVER_CERT["pem"]
    # Never overwritten: refused before asking vmseald.
    fake.requests.clear()
    p = vmseal("kp", "server-cert", "kms", "--out", "kms1.pem")
    assert p.returncode == 1 and b"kms1.pem exists" in p.stderr
    assert fake.requests == []
    # Without --server and --out: the provider's first server, nothing written;
    # the PEM is printed instead.
    assert json.loads(ok(vmseal("kp", "server-cert", "kms", "--json"))) == SERVER_CERT
    assert only(fake).json == {}
    lines = ok(vmseal("kp", "server-cert", "kms")).splitlines()
    pem = SERVER_CERT["pem"].splitlines()
    start = lines.index(pem[0])
    assert lines[start:start + len(pem)] == pem
    assert not any(l.startswith("wrote") for l in lines)
    fake.on("POST", "/v1/providers/kms/server-certificate",
            (200, {"server_certificate": dict(SERVER_CERT, pem="x\x1b[2Jy\n")}))
    assert "x?[2Jy" in ok(vmseal("kp", "server-cert", "kms")).splitlines()


def test_kp_trust(vmseal, fake, workdir):
    ca = _pem(workdir, "ca.pem", "CERTIFICATE")
    server = _pem(workdir, "kms1.pem", "CERTIFICATE")
    trusted = dict(STANDARD, trust="ca")
    fake.on("POST", "/v1/providers/kms/trust", (200, {"provider": trusted}))
    out = ok(vmseal("kp", "trust", "kms", "--ca", "ca.pem"))
    assert only(fake).json == {"ca_pem": ca}
    assert out == "kms trusts the key servers that the CA in ca.pem signed\n"
    fake.requests.clear()
    colons = ":".join(["Ab"] * 32)
    out = ok(vmseal("kp", "trust", "kms", "--server-cert", "kms1.pem", "--fingerprint", colons))
    assert only(fake).json == {"server_certificate_pem": server, "fingerprint": colons}
    assert out == f"kms trusts the key server certificate kms1.pem (SHA-256 {colons})\n"
    fake.requests.clear()
    assert json.loads(ok(vmseal("kp", "trust", "kms", "--ca", "ca.pem", "--json"))) == trusted
    # As openssl prints it, prefix and all: passed on as given.
    fake.requests.clear()
    printed = "sha256 Fingerprint=" + ":".join(["AB"] * 32)
    ok(vmseal("kp", "trust", "kms", "--server-cert", "kms1.pem", "--fingerprint", printed))
    assert only(fake).json["fingerprint"] == printed


@pytest.mark.parametrize("what,field", [("self-signed", "certificate_pem"), ("csr", "csr_pem")])
def test_kp_client_pem(vmseal, fake, workdir, what, field):
    pem = "-----BEGIN X-----\nMIIB\n-----END X-----\n"
    fake.on("POST", f"/v1/providers/kms/client/{what}", (200, {"provider": STANDARD,
                                                                 field: pem}))
    out = ok(vmseal("kp", "client", what, "kms", "--out", "client.out"))
    assert only(fake).json == {}
    path = os.path.join(workdir, "client.out")
    assert open(path).read() == pem
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert out.startswith("kms: a ")
    assert " written to client.out (its key stays in vmseald): " in out
    fake.requests.clear()
    p = vmseal("kp", "client", what, "kms", "--out", "client.out")
    assert p.returncode == 1 and b"exists" in p.stderr and fake.requests == []


def test_kp_client_cert(vmseal, fake, workdir):
    cert = _pem(workdir, "signed.crt", "CERTIFICATE")
    key = _pem(workdir, "client.key", "PRIVATE KEY")
    fake.on("POST", "/v1/providers/kms/client/certificate", (200, {"provider": STANDARD}))
    out = ok(vmseal("kp", "client", "cert", "kms", "--cert", "signed.crt"))
    assert only(fake).json == {"certificate_pem": cert}
    assert out == "kms uses the client certificate signed.crt\n"
    fake.requests.clear()
    out = ok(vmseal("kp", "client", "cert", "kms", "--cert", "signed.crt", "--key", "client.key"))
    req = only(fake)
    assert req.json == {"certificate_pem": cert, "key_pem": key}
    assert b"PRIVATE KEY" not in req.cmdline + req.environ
    assert out == ("kms uses the client certificate signed.crt and its key (delete the key file "
                   "now)\n")
