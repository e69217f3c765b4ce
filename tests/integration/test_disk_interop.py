"""vmseal's disks against the standard tools, both ways.

- LUKS1 headers written by vmseal are accepted by cryptsetup (luksDump,
  --test-passphrase, the same master key) and QEMU; a header cryptsetup
  wrote opens with vmseal's reader to the same master key.
- Data written through QEMU's luks driver decrypts with vmseal's own
  luks1_open + XTS (plain64 counted from the payload), and the reverse.
- qcow2 LUKS overlays made by disk_image_create_overlay: written with
  qemu-io through an explicit chain, committed into the LUKS base with
  disk_image_commit, exported, rebased; QEMU itself opens the chain from
  disk_image_qemu_args.
- Import: probe and convert accept raw and self-contained qcow2 only.

Secrets reach the helper (disk_tool) on stdin only. The test itself hands
them to qemu-io / cryptsetup as 0600 files or stdin: that is the test's
business, not vmseal's.
"""
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

QEMU_IMG = "/usr/bin/qemu-img"
QEMU_IO = "/usr/bin/qemu-io"
CRYPTSETUP = shutil.which("cryptsetup") or "/usr/sbin/cryptsetup"
QEMU_SYSTEM = "/usr/bin/qemu-system-x86_64"
MIB = 1 << 20

for tool in (QEMU_IMG, QEMU_IO):
    if not os.access(tool, os.X_OK):
        pytest.skip(f"{tool} is missing (scripts/deps.sh installs qemu-utils)",
                    allow_module_level=True)


def passphrase(secret: bytes) -> bytes:
    """What QEMU and cryptsetup are given: the secret in lower-case hex."""
    return secret.hex().encode()


@pytest.fixture
def tool(helper):
    path = os.path.abspath(helper("disk_tool"))  # tests may chdir

    def run(*args, secrets=(), check=True):
        p = subprocess.run([path, *map(str, args)], input=b"".join(secrets),
                           capture_output=True, timeout=300)
        if check and p.returncode != 0:
            pytest.fail(f"disk_tool {' '.join(map(str, args))}: {p.stderr.decode()}")
        return p
    return run


def qemu_io(tmp_path, spec: dict, secrets: dict, *commands, check=True):
    """qemu-io on a JSON image spec; secrets {id: secret} as 0600 files."""
    args = [QEMU_IO]
    for sid, secret in secrets.items():
        f = tmp_path / f"{sid}.key"
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, passphrase(secret))
        os.close(fd)
        args += ["--object", f"secret,id={sid},file={f},format=raw"]
    for c in commands:
        args += ["-c", c]
    args.append("json:" + json.dumps(spec))
    p = subprocess.run(args, capture_output=True, timeout=120)
    out = p.stdout.decode() + p.stderr.decode()
    if check:
        assert p.returncode == 0 and "failed" not in out and "error" not in out.lower(), out
    return out


def luks_spec(path, sid="s1"):
    return {"driver": "luks", "key-secret": sid,
            "file": {"driver": "file", "filename": str(path)}}


def qcow2_luks_spec(path, backing, sid="s0"):
    return {"driver": "qcow2", "encrypt": {"format": "luks", "key-secret": sid},
            "file": {"driver": "file", "filename": str(path)}, "backing": backing}


def dump_master_key(path, secret) -> bytes:
    p = subprocess.run([CRYPTSETUP, "luksDump", "--dump-master-key", "--batch-mode",
                        "--key-file=-", str(path)], input=passphrase(secret),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    text = p.stdout.decode()
    block = text.split("MK dump:", 1)[1]
    return bytes.fromhex("".join(re.findall(r"\b[0-9a-f]{2}\b", block)[:64]))


def field(out: bytes, name: str) -> str:
    for line in out.decode().splitlines():
        if line.startswith(name + " "):
            return line[len(name) + 1:]
    raise AssertionError(f"{name} missing in {out!r}")


# --- LUKS1 headers -----------------------------------------------------------

def test_our_header_with_cryptsetup(tool, tmp_path):
    if not os.access(CRYPTSETUP, os.X_OK):
        pytest.skip("cryptsetup is missing (cryptsetup-bin)")
    secret = os.urandom(32)
    disk = tmp_path / "disk.img"
    tool("create-luks", disk, 4 * MIB, secrets=[secret])
    assert (disk.stat().st_mode & 0o777) == 0o600
    assert disk.stat().st_size == 2 * MIB + 4 * MIB

    p = subprocess.run([CRYPTSETUP, "luksDump", str(disk)], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    dump = p.stdout.decode()
    for want in (r"Version:\s+1", r"Cipher name:\s+aes", r"Cipher mode:\s+xts-plain64",
                 r"Hash spec:\s+sha256", r"Payload offset:\s+4096", r"MK bits:\s+512",
                 r"Key Slot 0: ENABLED", r"Key Slot 1: DISABLED", r"AF stripes:\s+4000",
                 r"Key material offset:\s+8\b"):
        assert re.search(want, dump), f"{want!r} not in luksDump:\n{dump}"

    def test_passphrase(data: bytes) -> int:
        return subprocess.run([CRYPTSETUP, "luksOpen", "--test-passphrase", "--key-file=-",
                               str(disk)], input=data, capture_output=True,
                              timeout=60).returncode

    assert test_passphrase(passphrase(secret)) == 0
    assert test_passphrase(passphrase(os.urandom(32))) != 0
    assert test_passphrase(secret) != 0  # the raw bytes are not the passphrase
    assert test_passphrase(passphrase(secret) + b"\n") != 0

    # The same master key on both sides.
    out = tool("open-luks", disk, secrets=[secret]).stdout
    assert field(out, "mk-sha256") == hashlib.sha256(dump_master_key(disk, secret)).hexdigest()
    assert field(out, "cipher") == "aes" and field(out, "mode") == "xts-plain64"
    assert field(out, "slots") == "1" and field(out, "payload-offset") == str(2 * MIB)
    uuid = subprocess.run([CRYPTSETUP, "luksUUID", str(disk)], capture_output=True,
                          timeout=60).stdout.decode().strip()
    assert field(out, "uuid") == uuid

    # A wrong secret: ERR_LUKS_KEY.
    p = tool("open-luks", disk, secrets=[os.urandom(32)], check=False)
    assert p.returncode == 1 and b"ERR_LUKS_KEY" in p.stderr


def test_cryptsetup_header_opens_with_ours(tool, tmp_path):
    if not os.access(CRYPTSETUP, os.X_OK):
        pytest.skip("cryptsetup is missing (cryptsetup-bin)")
    secret = os.urandom(32)
    key = tmp_path / "key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, passphrase(secret))
    os.close(fd)
    disk = tmp_path / "cs.img"
    with open(disk, "wb") as f:
        f.truncate(4 * MIB)
    p = subprocess.run([CRYPTSETUP, "luksFormat", "--type", "luks1", "--batch-mode",
                        "--cipher", "aes-xts-plain64", "--key-size", "512", "--hash", "sha256",
                        "--key-file", str(key), "--pbkdf-force-iterations", "1000", str(disk)],
                       capture_output=True, timeout=120)
    if p.returncode != 0:
        pytest.skip(f"cryptsetup luksFormat on a plain file failed here: {p.stderr.decode()}")
    out = tool("open-luks", disk, secrets=[secret]).stdout
    assert field(out, "mk-sha256") == hashlib.sha256(dump_master_key(disk, secret)).hexdigest()
    assert field(out, "payload-offset") == str(4096 * 512)
    p = tool("open-luks", disk, secrets=[os.urandom(32)], check=False)
    assert p.returncode == 1 and b"ERR_LUKS_KEY" in p.stderr

    # cryptsetup's default LUKS1 key size for xts is 256 bits: not ours,
    # refused as a header we do not support (not as a wrong key).
    disk2 = tmp_path / "cs256.img"
    with open(disk2, "wb") as f:
        f.truncate(4 * MIB)
    p = subprocess.run([CRYPTSETUP, "luksFormat", "--type", "luks1", "--batch-mode",
                        "--cipher", "aes-xts-plain64", "--key-size", "256", "--key-file",
                        str(key), "--pbkdf-force-iterations", "1000", str(disk2)],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    p = tool("open-luks", disk2, secrets=[secret], check=False)
    assert p.returncode == 1 and b"ERR_LUKS_HEADER" in p.stderr and b"key-bytes" in p.stderr


# --- payload: QEMU's luks driver and vmseal's XTS agree ----------------------

def test_qemu_writes_vmseal_reads_and_back(tool, tmp_path):
    secret = os.urandom(32)
    disk = tmp_path / "disk.img"
    tool("create-luks", disk, 4 * MIB, secrets=[secret])
    spec = luks_spec(disk)

    # QEMU writes random data at guest offset 1 MiB + 4 KiB; vmseal reads it.
    data = os.urandom(192 * 1024)
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    qemu_io(tmp_path, spec, {"s1": secret}, f"write -s {src} {MIB + 4096} {len(data)}")
    got = tool("read-payload", disk, MIB + 4096, len(data), secrets=[secret]).stdout
    assert got == data

    # vmseal writes at guest offset 512 (sector 1); QEMU reads it back.
    data2 = os.urandom(64 * 1024)
    src2 = tmp_path / "data2.bin"
    src2.write_bytes(data2)
    tool("write-payload", disk, 512, src2, secrets=[secret])
    out = tmp_path / "out.raw"
    key = tmp_path / "s1.key"
    subprocess.run([QEMU_IMG, "convert", "--object", f"secret,id=s1,file={key},format=raw",
                    "-O", "raw", "json:" + json.dumps(spec), str(out)], check=True,
                   capture_output=True, timeout=120)
    guest = out.read_bytes()
    assert len(guest) == 4 * MIB
    assert guest[512:512 + len(data2)] == data2
    assert guest[MIB + 4096:MIB + 4096 + len(data)] == data
    # And the ciphertext on disk is not the plaintext.
    raw = disk.read_bytes()
    assert data2 not in raw and data[:4096] not in raw


# --- overlays, commit, export, rebase, QEMU ----------------------------------

@pytest.fixture
def chain(tool, tmp_path):
    """A LUKS base holding 0x11 in its first MiB and a qcow2 LUKS overlay
    on top of it, made by disk_image_create_overlay."""
    base_secret, ov_secret = os.urandom(32), os.urandom(32)
    base = tmp_path / "disk0.img"
    tool("create-luks", base, 4 * MIB, secrets=[base_secret])
    qemu_io(tmp_path, luks_spec(base), {"s1": base_secret}, f"write -P 0x11 0 {MIB}")
    ov = tmp_path / "disk0-1.qcow2"
    tool("overlay", ov, "encrypted", f"luks:{base}", secrets=[ov_secret, base_secret])
    return {"base": base, "ov": ov, "base_secret": base_secret, "ov_secret": ov_secret,
            "spec": qcow2_luks_spec(ov, luks_spec(base)),
            "secrets": {"s0": ov_secret, "s1": base_secret}}


def test_overlay_is_an_encrypted_qcow2_on_the_base(tool, tmp_path, chain):
    ov = chain["ov"]
    assert (ov.stat().st_mode & 0o777) == 0o600
    info = json.loads(subprocess.run([QEMU_IMG, "info", "--output=json", "json:" + json.dumps(
        {"file": {"driver": "file", "filename": str(ov)}})], check=True, capture_output=True,
        timeout=60).stdout)
    assert info["format"] == "qcow2" and info["encrypted"] is True
    assert info["virtual-size"] == 4 * MIB
    assert info["backing-filename"] == str(chain["base"])
    assert info["format-specific"]["data"]["encrypt"]["format"] == "luks"
    # Opening needs the overlay's own secret, not the base's.
    bad = qcow2_luks_spec(ov, luks_spec(chain["base"]))
    out = qemu_io(tmp_path, bad, {"s0": chain["base_secret"], "s1": chain["base_secret"]},
                  "read 0 512", check=False)
    assert "Invalid password" in out or "No key slot" in out or "Could not open" in out, out
    # The overlay shows the base's data until written.
    qemu_io(tmp_path, chain["spec"], chain["secrets"], f"read -P 0x11 0 {MIB}")
    size = tool("size", f"qcow2-luks:{ov}", f"luks:{chain['base']}",
                secrets=[chain["ov_secret"], chain["base_secret"]]).stdout
    assert int(size) == 4 * MIB
    # No plaintext of the base's data, nor the pattern, in the overlay file.
    qemu_io(tmp_path, chain["spec"], chain["secrets"], "write -P 0x33 2M 64k")
    assert b"\x33" * 4096 not in ov.read_bytes()


def test_commit_export_rebase(tool, tmp_path, chain):
    base, ov = chain["base"], chain["ov"]
    layers = [f"qcow2-luks:{ov}", f"luks:{base}"]
    secrets = [chain["ov_secret"], chain["base_secret"]]
    qemu_io(tmp_path, chain["spec"], chain["secrets"], "write -P 0x22 64k 64k")
    qemu_io(tmp_path, chain["spec"], chain["secrets"], "read -P 0x11 0 64k",
            "read -P 0x22 64k 64k", "read -P 0x11 128k 64k")
    # The base alone does not have the overlay's write yet.
    qemu_io(tmp_path, luks_spec(base), {"s1": chain["base_secret"]}, "read -P 0x11 64k 64k")

    tool("commit", *layers, secrets=secrets)
    qemu_io(tmp_path, luks_spec(base), {"s1": chain["base_secret"]}, "read -P 0x11 0 64k",
            "read -P 0x22 64k 64k", "read -P 0x11 128k 64k")
    # vmseal's own reader sees the committed data in the base's payload.
    got = tool("read-payload", base, 64 * 1024, 64 * 1024, secrets=[chain["base_secret"]]).stdout
    assert got == b"\x22" * 65536
    # -d: the overlay keeps its data; committing again changes nothing.
    qemu_io(tmp_path, chain["spec"], chain["secrets"], "read -P 0x22 64k 64k")
    tool("commit", *layers, secrets=secrets)
    qemu_io(tmp_path, luks_spec(base), {"s1": chain["base_secret"]}, "read -P 0x22 64k 64k")

    # Export: the guest's bytes in a new 0600 plaintext file.
    out = tmp_path / "export.raw"
    tool("export", out, *layers, secrets=secrets)
    assert (out.stat().st_mode & 0o777) == 0o600
    data = out.read_bytes()
    assert len(data) == 4 * MIB
    assert data[:65536] == b"\x11" * 65536 and data[65536:131072] == b"\x22" * 65536
    # Never over an existing file.
    p = tool("export", out, *layers, secrets=secrets, check=False)
    assert p.returncode == 1 and b"ERR_EXISTS" in p.stderr
    # A wrong secret for a layer fails, and leaves no file behind.
    out2 = tmp_path / "export2.raw"
    p = tool("export", out2, *layers, secrets=[chain["ov_secret"], os.urandom(32)], check=False)
    assert p.returncode == 1 and b"ERR_CHILD" in p.stderr
    assert not out2.exists()

    # Rebase -u: only the recorded name changes; the chain still reads.
    moved = tmp_path / "moved" / "disk0.img"
    tool("rebase", f"qcow2-luks:{ov}", f"luks:{moved}", secrets=secrets)
    info = json.loads(subprocess.run([QEMU_IMG, "info", "--output=json", "json:" + json.dumps(
        {"file": {"driver": "file", "filename": str(ov)}})], check=True, capture_output=True,
        timeout=60).stdout)
    assert info["backing-filename"] == str(moved)
    assert info["backing-filename-format"] == "luks"
    qemu_io(tmp_path, chain["spec"], chain["secrets"], "read -P 0x22 64k 64k")


def test_plain_overlay_and_paths_with_commas(tool, tmp_path):
    d = tmp_path / "we,ird dir"
    d.mkdir()
    base = d / "base,1.raw"
    with open(base, "wb") as f:
        f.truncate(MIB)
    ov = d / "top,1.qcow2"
    tool("overlay", ov, "plain", f"raw:{base}")
    spec = {"driver": "qcow2", "file": {"driver": "file", "filename": str(ov)},
            "backing": {"driver": "raw", "file": {"driver": "file", "filename": str(base)}}}
    qemu_io(tmp_path, spec, {}, "write -P 0x44 0 4k")
    tool("commit", f"qcow2:{ov}", f"raw:{base}")
    assert base.read_bytes()[:4096] == b"\x44" * 4096
    out = d / "out,1.raw"
    tool("export", out, f"qcow2:{ov}", f"raw:{base}")
    assert out.read_bytes()[:4096] == b"\x44" * 4096
    assert tool("probe", out).stdout.decode().split() == ["raw", str(MIB)]


def test_qemu_opens_the_chain(tool, tmp_path, chain):
    if not os.access(QEMU_SYSTEM, os.X_OK):
        pytest.skip("qemu-system-x86_64 is missing")
    qemu_io(tmp_path, chain["spec"], chain["secrets"], "write -P 0x55 64k 64k")
    sock = tmp_path / "qmp.sock"
    log = tmp_path / "qemu.log"
    p = tool("qemu", "disk0", sock, log, f"qcow2-luks:{chain['ov']}", f"luks:{chain['base']}",
             secrets=[chain["ov_secret"], chain["base_secret"]])
    pid = int(p.stdout)
    try:
        # No secret on QEMU's command line or in its environment.
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        environ = open(f"/proc/{pid}/environ", "rb").read()
        for s in (chain["ov_secret"], chain["base_secret"]):
            assert passphrase(s) not in cmdline and passphrase(s) not in environ
            assert s not in cmdline
        assert environ.split(b"\0")[:2] == [b"PATH=/usr/sbin:/usr/bin:/sbin:/bin", b"LC_ALL=C"]

        qmp = connect_qmp(sock, pid, log)
        nodes = {n["node-name"] for n in qmp("query-named-block-nodes")}
        assert {"disk0", "disk0-l1", "disk0-l0-file", "disk0-l1-file"} <= nodes
        # Through QEMU's own block layer: the overlay's write and the base's data.
        # The guest's virtio disk is attached to the top node.
        blocks = {b.get("qdev"): b for b in qmp("query-block")}
        dev = blocks.get("/machine/peripheral/disk0-dev/virtio-backend")
        assert dev is not None and dev["inserted"]["node-name"] == "disk0", blocks
        assert dev["inserted"]["encrypted"] is True
        # QEMU 7.2's HMP qemu-io prints to QEMU's stdout (the log), not to
        # the monitor: read its answer there.
        def hmp_qemu_io(node, cmd):
            before = log.stat().st_size
            out = qmp("human-monitor-command", {"command-line": f'qemu-io {node} "{cmd}"'})
            deadline = time.time() + 10
            while log.stat().st_size == before and not out and time.time() < deadline:
                time.sleep(0.05)
            with open(log, "rb") as f:
                f.seek(before)
                return out + f.read().decode(errors="replace")

        for cmd in ("read -P 0x55 64k 64k", "read -P 0x11 0 64k", "read -P 0x11 128k 64k"):
            out = hmp_qemu_io("disk0", cmd)
            assert "read 65536/65536" in out and "failed" not in out, (cmd, out)
        out = hmp_qemu_io("disk0", "read -P 0x66 64k 512")  # the check can fail
        assert "Pattern verification failed" in out, out
        # The layer below is read-only.
        out = hmp_qemu_io("disk0-l1", "write -P 0x66 0 512")
        assert "read-only" in out.lower() or "permission" in out.lower(), out
        qmp("quit")
    finally:
        stop(pid)


def stop(pid):
    """Kills QEMU and waits until it is gone. proc_spawn made it a child of
    the helper, which has exited: init reaps it, the test only watches."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if open(f"/proc/{pid}/stat").read().split()[2] in ("Z", "X"):
                return
        except OSError:
            return
        time.sleep(0.05)


def connect_qmp(path, pid, log):
    deadline = time.time() + 30
    s = socket.socket(socket.AF_UNIX)
    while True:
        try:
            s.connect(str(path))
            break
        except OSError:
            if time.time() > deadline or not os.path.exists(f"/proc/{pid}"):
                pytest.fail(f"QEMU did not start: {log.read_text() if log.exists() else ''}")
            time.sleep(0.05)
    f = s.makefile("rw")
    json.loads(f.readline())  # greeting

    def call(command, arguments=None):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        f.write(json.dumps(msg) + "\n")
        f.flush()
        while True:
            line = f.readline()
            if not line:
                return None
            r = json.loads(line)
            if "event" in r:
                continue
            assert "error" not in r, r
            return r.get("return")
    call("qmp_capabilities")
    return call


# --- import ------------------------------------------------------------------

def test_probe_and_convert(tool, tmp_path):
    raw = tmp_path / "in.raw"
    payload = os.urandom(MIB)
    with open(raw, "wb") as f:
        f.write(payload)
        f.truncate(3 * MIB)
    assert tool("probe", raw).stdout.decode().split() == ["raw", str(3 * MIB)]

    q = tmp_path / "in.qcow2"
    subprocess.run([QEMU_IMG, "convert", "-f", "raw", "-O", "qcow2", str(raw), str(q)],
                   check=True, capture_output=True)
    assert tool("probe", q).stdout.decode().split() == ["qcow2", str(3 * MIB)]
    out = tmp_path / "out.raw"
    tool("convert", q, "qcow2", out)
    assert out.read_bytes() == raw.read_bytes()
    assert (out.stat().st_mode & 0o777) == 0o600
    out2 = tmp_path / "out2.raw"
    tool("convert", raw, "raw", out2)
    assert out2.read_bytes() == raw.read_bytes()
    # A format that is not what was probed is refused.
    p = tool("convert", q, "raw", tmp_path / "out3.raw", check=False)
    assert p.returncode == 1 and b"ERR_DISK_FORMAT" in p.stderr

    def refused(path, why):
        p = tool("probe", path, check=False)
        assert p.returncode == 1 and b"ERR_DISK_FORMAT" in p.stderr, (why, p.stderr)

    # A qcow2 with a backing file: never followed, refused.
    withb = tmp_path / "backed.qcow2"
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw",
                    str(withb), "1M"], check=True, capture_output=True)
    refused(withb, "backing file")
    # A LUKS image (ours).
    luks = tmp_path / "disk.img"
    tool("create-luks", luks, MIB, secrets=[os.urandom(32)])
    refused(luks, "LUKS")
    # An encrypted qcow2.
    keyf = tmp_path / "k"
    keyf.write_text("x" * 64)
    encq = tmp_path / "enc.qcow2"
    for _ in range(10):  # the CPU-usage calibration failure, in the test too
        p = subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "--object",
                            f"secret,id=k,file={keyf}", "-o",
                            "encrypt.format=luks,encrypt.key-secret=k,encrypt.iter-time=10",
                            str(encq), "1M"], capture_output=True)
        if p.returncode == 0:
            break
    assert p.returncode == 0, p.stderr.decode()
    refused(encq, "encrypted qcow2")
    # A qcow2 with an external data file.
    dataf = tmp_path / "data.qcow2"
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-o",
                    f"data_file={tmp_path / 'data.bin'}", str(dataf), "1M"], check=True,
                   capture_output=True)
    refused(dataf, "external data file")
    # Another format qemu-img knows.
    vmdk = tmp_path / "x.vmdk"
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "vmdk", str(vmdk), "1M"], check=True,
                   capture_output=True)
    refused(vmdk, "vmdk")
    # Not a regular file; not a whole number of sectors.
    refused(tmp_path, "directory")
    odd = tmp_path / "odd.raw"
    odd.write_bytes(b"x" * 1000)
    refused(odd, "odd size")
    p = tool("probe", tmp_path / "missing.raw", check=False)
    assert p.returncode == 1 and b"ERR_NOT_FOUND" in p.stderr
    # A file name qemu-img would read as a protocol is just a file name.
    nbd = tmp_path / "nbd:localhost:10809"
    nbd.write_bytes(payload)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert tool("probe", "nbd:localhost:10809").stdout.decode().split() == ["raw", str(MIB)]
        tool("convert", "nbd:localhost:10809", "raw", "json:{}")
        assert (tmp_path / "json:{}").read_bytes() == payload
    finally:
        os.chdir(old)
