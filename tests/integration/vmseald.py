"""Drives a real vmseald and the real vmseal CLI for the integration tests.

    d = Vmseald(build_dir, tmp_path)     # a fresh data directory
    d.start()
    d.cli("kp", "add-native", "n1")      # -> parsed JSON (--json), raises on failure
    d.cli_fail("vm", "decrypt", "x")     # -> (exit code, stderr) of a refused command
    d.kill()                             # SIGKILL, as a crash
    d.start()                            # recovery runs at start

    h = Vmseald(build_dir, tmp_path, https=True)   # also --listen-https 127.0.0.1:PORT
    h.start()
    h.api_https("GET", "/v1/vms", token=t)  # -> (status, JSON, headers) over TLS,
                                            #    trusting DATA_DIR/tls/api.crt

Interop checks go through qemu-img and cryptsetup, never through our code:
guest_sha256() reads a disk's guest-visible bytes with qemu-img through
QEMU's LUKS and qcow2 drivers, with the passphrases the break-glass route
writes (POST /v1/vms/NAME/disks/N/secret).
"""
import hashlib
import http.client
import json
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import tempfile
import time

PASSPHRASE = "a long test passphrase"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class CliError(Exception):
    def __init__(self, args, code, stderr):
        super().__init__(f"vmseal {' '.join(args)} exited {code}: {stderr.strip()}")
        self.code = code
        self.stderr = stderr


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Vmseald:
    def __init__(self, build_dir, workdir, runtime_dir=None, https=False, extra_args=()):
        self.build = pathlib.Path(build_dir)
        self.work = pathlib.Path(workdir)
        self.data = self.work / "data"
        self.socket = self.data / "vmseald.sock"
        self.runtime = runtime_dir or tempfile.mkdtemp(prefix="vmseal-test-", dir="/dev/shm")
        self.log = self.work / "vmseald.log"
        self.proc = None
        # HTTPS (--listen-https): off unless asked; the port is chosen at start.
        self.https = https
        self.https_port = None
        self.extra_args = list(extra_args)

    @property
    def ca(self):
        """The API's certificate, which clients trust (vmseald init writes it)."""
        return self.data / "tls" / "api.crt"

    def program(self):
        return str(self.build / "bin" / "vmseald")

    def init(self):
        """Runs `vmseald init --data-dir DATA`; returns the CompletedProcess."""
        self.work.mkdir(parents=True, exist_ok=True)
        return subprocess.run([self.program(), "init", "--data-dir", str(self.data)],
                              capture_output=True, text=True, env=self._env(), timeout=120)

    # --- the daemon ---------------------------------------------------------
    def start(self, timeout=30):
        assert self.proc is None
        self.work.mkdir(parents=True, exist_ok=True)
        logf = open(self.log, "ab")
        args = [str(self.build / "bin" / "vmseald"), "--data-dir", str(self.data),
                "--runtime-dir", str(self.runtime)]
        if self.https:
            self.https_port = free_port()
            args += ["--listen-https", f"127.0.0.1:{self.https_port}"]
        self.proc = subprocess.Popen(
            args + self.extra_args,
            stdout=subprocess.DEVNULL, stderr=logf, env=self._env())
        logf.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vmseald exited {self.proc.returncode}: {self.log_text()[-2000:]}")
            try:
                self.api("GET", "/v1/tasks")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("vmseald did not start")

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _env(self):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        return env

    # --- the API and the CLI ------------------------------------------------
    def api(self, method, path, body=None, token=None):
        conn = UnixHTTPConnection(str(self.socket))
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        return resp.status, json.loads(text)

    # --- HTTPS (started with https=True) -------------------------------------
    def tls_context(self):
        """A client context that trusts only the API's certificate."""
        return ssl.create_default_context(cafile=str(self.ca))

    def https_connection(self, host="127.0.0.1", timeout=120):
        assert self.https_port is not None, "start with https=True"
        return http.client.HTTPSConnection(host, self.https_port, timeout=timeout,
                                           context=self.tls_context())

    def api_https(self, method, path, body=None, token=None, conn=None):
        """One request over HTTPS: (status, JSON body, headers). With conn,
        on that (kept-alive) connection; else on a new one, closed after."""
        own = conn is None
        if own:
            conn = self.https_connection()
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        if own:
            conn.close()
        return resp.status, json.loads(text), resp.headers

    def run_cli(self, *args, input=None, timeout=600):
        env = self._env()
        env["VMSEAL_SOCKET"] = str(self.socket)
        return subprocess.run([str(self.build / "bin" / "vmseal"), "--json", *args],
                              input=input, capture_output=True, text=True, env=env,
                              timeout=timeout)

    def cli(self, *args, input=None, timeout=600):
        p = self.run_cli(*args, input=input, timeout=timeout)
        if p.returncode != 0:
            raise CliError(args, p.returncode, p.stderr)
        return json.loads(p.stdout) if p.stdout.strip() else None

    def cli_fail(self, *args, input=None):
        p = self.run_cli(*args, input=input)
        assert p.returncode != 0, f"vmseal {' '.join(args)} should have been refused: {p.stdout}"
        return p.returncode, p.stderr

    # --- set-up helpers -----------------------------------------------------
    def add_native(self, name="n1"):
        self.cli("kp", "add-native", name)
        backup = self.work / f"{name}-{time.time_ns()}.backup"
        self.cli("kp", "backup", name, "--to", str(backup), input=PASSPHRASE + "\n")
        return backup

    def vm(self, name):
        return self.cli("vm", "info", name)

    def layer_path(self, rel):
        return self.data / "vms" / rel

    # --- interop: qemu-img and cryptsetup read what vmseald wrote ----------
    def passphrases(self, name, disk=0):
        """[(absolute path, format, passphrase)] of disk's chain, top first."""
        out = self.work / f"secret-{name}-{disk}-{time.time_ns()}"
        status, body = self.api("POST", f"/v1/vms/{name}/disks/{disk}/secret", {"path": str(out)})
        assert status == 200, body
        lines = out.read_text().splitlines()
        out.unlink()
        formats = [l["format"] for l in body["layers"]]
        result = []
        for line, fmt in zip(lines, formats):
            rel, pw = line.split(" ")
            result.append((self.layer_path(rel), fmt, pw))
        return result

    def image_opts(self, vm_info, disk, secrets_dir):
        """qemu-img --object and --image-opts arguments for a disk's chain."""
        layers = vm_info["disks"][disk]["layers"]
        objects, prefix, opts = [], "", []
        secrets = {}
        if vm_info["encrypted"]:
            for path, fmt, pw in self.passphrases(vm_info["name"], disk):
                secrets[str(path)] = pw
        for i, layer in enumerate(layers):
            path = str(self.layer_path(layer["file"]))
            fmt = layer["format"]
            driver = {"raw": "raw", "luks": "luks", "qcow2": "qcow2", "qcow2-luks": "qcow2"}[fmt]
            opts.append(f"{prefix}driver={driver}")
            opts.append(f"{prefix}file.driver=file")
            opts.append(f"{prefix}file.filename={path}")
            if fmt in ("luks", "qcow2-luks"):
                sf = pathlib.Path(secrets_dir) / f"s{i}"
                sf.write_text(secrets[path])
                os.chmod(sf, 0o600)
                objects += ["--object", f"secret,id=s{i},file={sf},format=raw"]
                opts.append(f"{prefix}{'key-secret' if fmt == 'luks' else 'encrypt.key-secret'}=s{i}")
            prefix += "backing."
        return objects, ",".join(opts)

    def guest_sha256(self, name, disk=0):
        """SHA-256 of the guest-visible bytes of a disk, read by qemu-img."""
        info = self.vm(name)
        with tempfile.TemporaryDirectory(dir="/dev/shm") as td:
            objects, opts = self.image_opts(info, disk, td)
            out = pathlib.Path(td) / "guest.raw"
            subprocess.run(["qemu-img", "convert", *objects, "--image-opts", opts, "-O", "raw",
                            str(out)], check=True, capture_output=True, timeout=600)
            h = hashlib.sha256()
            with open(out, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest()

    def write_guest(self, name, disk, offset, data_byte, length):
        """Writes length bytes of data_byte at offset into the disk's active
        layer with qemu-io, as a guest would."""
        info = self.vm(name)
        with tempfile.TemporaryDirectory(dir="/dev/shm") as td:
            objects, opts = self.image_opts(info, disk, td)
            subprocess.run(["qemu-io", *objects, "--image-opts", opts, "-c",
                            f"write -P {data_byte} {offset} {length}"],
                           check=True, capture_output=True, timeout=600)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_with_write(base_bytes, offset, byte, length):
    data = bytearray(base_bytes)
    data[offset:offset + length] = bytes([byte]) * length
    return hashlib.sha256(data).hexdigest()


def write_guest_file(d, name, disk, path):
    """Writes the raw file at path as the guest-visible contents of a disk
    (from offset 0), through QEMU's drivers with qemu-img convert -n."""
    info = d.vm(name)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as td:
        objects, opts = d.image_opts(info, disk, td)
        subprocess.run(["qemu-img", "convert", "-n", *objects, "-f", "raw", str(path),
                        "--target-image-opts", opts], check=True, capture_output=True,
                       timeout=600)
