"""Per-disk encryption (storage policies, as vSphere's): one disk of an
encrypted VM encrypted or decrypted by itself, and every operation on a
mixed VM (an encrypted VM with some plaintext disks).

Driven through the vm_tool helper (the host engine, src/vm/vm.h, without
vmseald); the checks go through qemu-img, qemu-io and cryptsetup, never
through our code: vmseald.py's interop helpers (guest_sha256, write_guest)
over vm_tool's info and disk-secret commands.

  - disk encrypt / decrypt: the disk becomes LUKS1 (cryptsetup accepts it)
    or raw with the guest's bytes unchanged; the other disk keeps its file
    and its bytes; refusals; cancellation rolls back;
  - a mixed VM through deep and shallow rekey, clone (keep, recrypt,
    decrypt, instant), snapshots, add disk, export, VM decrypt and encrypt:
    plaintext disks stay plaintext except where the VM is encrypted as a
    whole, guest bytes never change; no secret in clear in any file;
  - crash safety: vm_tool disk-encrypt and disk-decrypt killed with SIGKILL
    at random moments inside the operation and right at its commit, then
    recovery (at the next vm_host_open) rolls back or forward: guest bytes
    identical, no journal, no stray file.
"""
import hashlib
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from test_vm_crash import referenced_only
from test_vm_secrets import scan
from vmseald import Vmseald, sha256_file, write_guest_file

MIB = 1 << 20
SIZE0 = 4 * MIB  # disk 0: an imported random image
SIZE1 = 2 * MIB  # disk 1: random bytes written through QEMU
CRASH_KILLS = int(os.environ.get("VMSEAL_DISK_POLICY_KILLS", "20"))
CRASH_SIZE = 256 * MIB


class VmTool(Vmseald):
    """vm_tool on one data directory, with vmseald.py's interop helpers
    (qemu-img reads, qemu-io writes): only the two calls they make to the
    server are answered by vm_tool instead."""

    def __init__(self, tool, workdir, runtime):
        super().__init__(tool.parent.parent, workdir, runtime_dir=runtime)
        self.tool = tool

    def run(self, *args, timeout=600):
        env = self._env()
        env["VM_TOOL_RUNTIME_DIR"] = str(self.runtime)
        env["VM_TOOL_THREADS"] = "2"
        return subprocess.run([str(self.tool), str(self.data), *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=timeout)

    def popen(self, *args):
        env = self._env()
        env["VM_TOOL_RUNTIME_DIR"] = str(self.runtime)
        env["VM_TOOL_THREADS"] = "1"
        return subprocess.Popen([str(self.tool), str(self.data), *map(str, args)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    def call(self, *args):
        p = self.run(*args)
        assert p.returncode == 0, f"vm_tool {' '.join(map(str, args))}: {p.stderr}"
        return json.loads(p.stdout)

    def refused(self, *args, code, says):
        p = self.run(*args)
        assert p.returncode == 1, f"vm_tool {' '.join(map(str, args))} was not refused: {p.stdout}"
        assert f"error {code}:" in p.stderr and says in p.stderr, p.stderr
        return p.stderr

    # What vmseald.py asks the server, answered by vm_tool.
    def vm(self, name):
        return self.call("info", name)

    def passphrases(self, name, disk=0):
        out = self.work / f"secret-{name}-{disk}-{time.time_ns()}"
        body = self.call("secret", name, disk, out)
        lines = out.read_text().splitlines()
        out.unlink()
        assert len(lines) == len(body["layers"])
        result = []
        for line, layer in zip(lines, body["layers"]):
            rel, pw = line.split(" ")
            result.append((self.layer_path(rel), layer["format"], pw))
        return result

    # Helpers of these tests.
    def vm_dir(self, name):
        return self.data / "vms" / name

    def desc_bytes(self, name):
        return (self.vm_dir(name) / "vm.json").read_bytes()

    def formats(self, name):
        return [[l["format"] for l in disk["layers"]] for disk in self.vm(name)["disks"]]


@pytest.fixture(scope="module")
def t(tmp_path_factory, helper):
    work = tmp_path_factory.mktemp("policy")
    runtime = tempfile.mkdtemp(prefix="vmseal-test-", dir="/dev/shm")
    tool = VmTool(helper("vm_tool"), work, runtime)
    tool.call("init")
    yield tool
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    data0, data1 = os.urandom(SIZE0), os.urandom(SIZE1)
    (d / "d0.raw").write_bytes(data0)
    (d / "d1.raw").write_bytes(data1)
    return {"path0": d / "d0.raw", "path1": d / "d1.raw",
            "sha0": hashlib.sha256(data0).hexdigest(), "sha1": hashlib.sha256(data1).hexdigest()}


def luks_ok(t, name, disk):
    """cryptsetup reads disk's LUKS1 base layer and accepts its passphrase."""
    (path, fmt, pw), = [x for x in t.passphrases(name, disk) if x[1] == "luks"]
    dump = subprocess.run(["cryptsetup", "luksDump", str(path)], capture_output=True, text=True,
                          check=True).stdout
    assert "aes" in dump and "xts-plain64" in dump and "sha256" in dump
    ok = subprocess.run(["cryptsetup", "luksOpen", "--test-passphrase", "--key-file=-", str(path)],
                        input=pw.encode(), capture_output=True)
    assert ok.returncode == 0, ok.stderr


def guest_ok(t, name, image):
    assert t.guest_sha256(name, 0) == image["sha0"]
    assert t.guest_sha256(name, 1) == image["sha1"]


def make_vm(t, name, image, encrypt=True):
    """A VM whose disk 0 is image 0 and disk 1 image 1, both encrypted (or
    both plaintext)."""
    t.call("create", name, *(["--encrypt"] if encrypt else []), "--image", image["path0"],
           "--disk", SIZE1)
    write_guest_file(t, name, 1, image["path1"])
    guest_ok(t, name, image)


def make_mixed(t, name, image):
    """An encrypted VM whose disk 1 is plaintext."""
    make_vm(t, name, image)
    vm = t.call("disk-decrypt", name, 1)
    assert vm["encrypted"] and [d["encrypted"] for d in vm["disks"]] == [True, False]
    return vm


def base_file(t, name, disk):
    info = t.vm(name)
    return t.layer_path(info["disks"][disk]["layers"][-1]["file"])


def test_disk_encrypt_and_decrypt(t, image):
    vm = make_mixed(t, "a", image)
    assert t.formats("a") == [["luks"], ["raw"]]
    guest_ok(t, "a", image)
    referenced_only(t, "a")
    # The plaintext disk holds the guest's bytes as they are.
    assert sha256_file(base_file(t, "a", 1)) == image["sha1"]
    d0 = base_file(t, "a", 0)
    d0_sha, d0_ino = sha256_file(d0), d0.stat().st_ino

    vm2 = t.call("disk-encrypt", "a", 1)
    assert vm2["encrypted"] and [d["encrypted"] for d in vm2["disks"]] == [True, True]
    assert t.formats("a") == [["luks"], ["luks"]]
    assert vm2["key_id"] == vm["key_id"]  # the VM's keys stay
    luks_ok(t, "a", 1)
    guest_ok(t, "a", image)
    # Disk 0 untouched: the same file, the same bytes.
    assert base_file(t, "a", 0) == d0 and d0.stat().st_ino == d0_ino
    assert sha256_file(d0) == d0_sha
    assert image["path1"].read_bytes()[:65536] not in base_file(t, "a", 1).read_bytes()
    referenced_only(t, "a")

    vm3 = t.call("disk-decrypt", "a", 1)
    assert [d["encrypted"] for d in vm3["disks"]] == [True, False]
    assert vm3["key_id"] == vm["key_id"]
    assert t.formats("a") == [["luks"], ["raw"]]
    guest_ok(t, "a", image)
    assert sha256_file(base_file(t, "a", 1)) == image["sha1"]
    assert sha256_file(d0) == d0_sha and d0.stat().st_ino == d0_ino
    referenced_only(t, "a")
    # Disk 0 by itself too: then the encrypted VM has only plaintext disks.
    vm4 = t.call("disk-decrypt", "a", 0)
    assert vm4["encrypted"] and [d["encrypted"] for d in vm4["disks"]] == [False, False]
    guest_ok(t, "a", image)
    t.call("disk-encrypt", "a", 0)
    luks_ok(t, "a", 0)
    guest_ok(t, "a", image)


def test_refusals(t, image):
    make_vm(t, "p", image, encrypt=False)
    before = t.desc_bytes("p")
    t.refused("disk-encrypt", "p", 1, code="ERR_VM_STATE",
              says="encrypt the VM first: a disk can only be encrypted in an encrypted VM")
    t.refused("disk-decrypt", "p", 0, code="ERR_VM_STATE", says="disk 0 of VM 'p' is not encrypted")
    t.refused("disk-encrypt", "p", 2, code="ERR_NOT_FOUND", says="VM 'p' has no disk 2")
    assert t.desc_bytes("p") == before

    make_mixed(t, "r", image)
    before = t.desc_bytes("r")
    t.refused("disk-encrypt", "r", 0, code="ERR_VM_STATE",
              says="disk 0 of VM 'r' is already encrypted")
    t.refused("disk-decrypt", "r", 1, code="ERR_VM_STATE", says="disk 1 of VM 'r' is not encrypted")
    t.refused("disk-decrypt", "r", 2, code="ERR_NOT_FOUND", says="VM 'r' has no disk 2")
    t.refused("disk-encrypt", "r", 99, code="ERR_NOT_FOUND", says="VM 'r' has no disk 99")
    t.refused("disk-encrypt", "nope", 0, code="ERR_NOT_FOUND", says="no VM named 'nope'")
    assert t.desc_bytes("r") == before
    referenced_only(t, "r")

    # With snapshots, as VM encrypt and decrypt.
    t.call("snapshot-create", "r", "s")
    before = t.desc_bytes("r")
    t.refused("disk-encrypt", "r", 1, code="ERR_VM_STATE", says="snapshots")
    t.refused("disk-decrypt", "r", 0, code="ERR_VM_STATE", says="snapshots")
    assert t.desc_bytes("r") == before
    t.call("snapshot-delete", "r", "s")
    guest_ok(t, "r", image)

    # Instant clones and their source share keys: refused on both.
    t.call("clone", "r", "r-ic", "--instant")
    for name in ("r", "r-ic"):
        t.refused("disk-encrypt", name, 1, code="ERR_VM_STATE", says="instant clone")
        t.refused("disk-decrypt", name, 0, code="ERR_VM_STATE", says="instant clone")
    guest_ok(t, "r-ic", image)
    assert t.formats("r-ic") == [["qcow2-luks", "luks"], ["qcow2", "raw"]]


def test_cancel_rolls_back(t, image):
    # The engine reports progress every 64 MiB: cancelled at the first report.
    t.call("create", "c", "--encrypt", "--image", image["path0"], "--disk", 256 * MIB)
    t.call("disk-decrypt", "c", 1)
    write_guest_file(t, "c", 1, image["path1"])
    expect1 = t.guest_sha256("c", 1)
    for op in ("disk-encrypt", "disk-decrypt"):
        before = t.desc_bytes("c")
        t.refused(op, "c", 1, "--cancel-at", 10, code="ERR_CANCELLED", says="cancelled")
        assert t.desc_bytes("c") == before
        assert not (t.vm_dir("c") / "journal").exists()
        referenced_only(t, "c")
        assert t.guest_sha256("c", 0) == image["sha0"] and t.guest_sha256("c", 1) == expect1
        t.call(op, "c", 1)  # then done for real: the other op is cancelled next
        assert t.guest_sha256("c", 1) == expect1


def test_mixed_rekey(t, image):
    vm = make_mixed(t, "k", image)
    d1 = base_file(t, "k", 1)
    d1_sha = sha256_file(d1)
    deep = t.call("rekey", "k", "--deep")
    assert deep["key_id"] != vm["key_id"]
    assert t.formats("k") == [["luks"], ["raw"]]  # the plaintext disk stays so
    assert base_file(t, "k", 1) == d1 and sha256_file(d1) == d1_sha  # and is not re-written
    assert base_file(t, "k", 0) != t.layer_path(vm["disks"][0]["layers"][0]["file"])
    luks_ok(t, "k", 0)
    guest_ok(t, "k", image)
    referenced_only(t, "k")
    d0 = base_file(t, "k", 0)
    d0_head = d0.read_bytes()[:1 << 16]
    shallow = t.call("rekey", "k", "--shallow")
    assert shallow["key_id"] != deep["key_id"]
    assert t.formats("k") == [["luks"], ["raw"]]
    assert d0.read_bytes()[:1 << 16] == d0_head and sha256_file(d1) == d1_sha  # no data moved
    luks_ok(t, "k", 0)
    guest_ok(t, "k", image)


def test_mixed_clones(t, image):
    src = make_mixed(t, "m", image)
    keep = t.call("clone", "m", "m-keep")
    assert keep["encrypted"] and keep["key_id"] == src["key_id"]
    assert [d["encrypted"] for d in keep["disks"]] == [True, False]
    assert t.formats("m-keep") == [["luks"], ["raw"]]
    guest_ok(t, "m-keep", image)

    re = t.call("clone", "m", "m-re", "--recrypt")
    assert re["encrypted"] and re["key_id"] != src["key_id"]
    assert [d["encrypted"] for d in re["disks"]] == [True, False]  # plaintext stays plaintext
    assert t.formats("m-re") == [["luks"], ["raw"]]
    luks_ok(t, "m-re", 0)
    guest_ok(t, "m-re", image)

    plain = t.call("clone", "m", "m-plain", "--decrypt")
    assert not plain["encrypted"] and [d["encrypted"] for d in plain["disks"]] == [False, False]
    assert t.formats("m-plain") == [["raw"], ["raw"]]
    guest_ok(t, "m-plain", image)

    # Encrypting a clone of a plaintext VM encrypts every disk.
    enc = t.call("clone", "m-plain", "m-enc", "--encrypt")
    assert [d["encrypted"] for d in enc["disks"]] == [True, True]
    guest_ok(t, "m-enc", image)

    # The source is unchanged throughout.
    assert t.formats("m") == [["luks"], ["raw"]]
    guest_ok(t, "m", image)
    for name in ("m", "m-keep", "m-re", "m-plain", "m-enc"):
        referenced_only(t, name)


def test_mixed_snapshots_and_add_disk(t, image):
    make_mixed(t, "s", image)
    vm = t.call("snapshot-create", "s", "s1")
    # Each overlay is encrypted as its disk is.
    assert t.formats("s") == [["qcow2-luks", "luks"], ["qcow2", "raw"]]
    assert [d["encrypted"] for d in vm["disks"]] == [True, False]
    guest_ok(t, "s", image)
    t.write_guest("s", 1, 8192, 0x5A, 4096)
    data1 = bytearray(image["path1"].read_bytes())
    data1[8192:12288] = b"\x5a" * 4096
    assert t.guest_sha256("s", 1) == hashlib.sha256(data1).hexdigest()
    t.call("snapshot-delete", "s", "s1")
    assert t.formats("s") == [["luks"], ["raw"]]
    assert t.guest_sha256("s", 1) == hashlib.sha256(data1).hexdigest()
    assert t.guest_sha256("s", 0) == image["sha0"]
    referenced_only(t, "s")
    # A disk added to an encrypted VM is encrypted, mixed or not.
    vm = t.call("add-disk", "s", MIB)
    assert [d["encrypted"] for d in vm["disks"]] == [True, False, True]
    luks_ok(t, "s", 2)
    t.guest_sha256("s", 2)  # qemu-img opens it (never-written LUKS sectors are undefined)


def test_mixed_export_and_secret(t, image, tmp_path):
    make_mixed(t, "x", image)
    for disk, key in ((0, "sha0"), (1, "sha1")):
        out = tmp_path / f"x-{disk}.raw"
        t.call("export", "x", disk, out)
        assert sha256_file(out) == image[key]
        assert (out.stat().st_mode & 0o777) == 0o600
    # The plaintext disk has no passphrase: an empty list.
    out = tmp_path / "x-1.secret"
    body = t.call("secret", "x", 1, out)
    assert body["layers"] == [] and out.read_text() == ""
    assert len(t.passphrases("x", 0)) == 1


def test_vm_decrypt_and_encrypt_cover_every_disk(t, image):
    make_mixed(t, "v", image)
    d1 = base_file(t, "v", 1)
    d1_sha = sha256_file(d1)
    vm = t.call("decrypt", "v")
    assert not vm["encrypted"] and [d["encrypted"] for d in vm["disks"]] == [False, False]
    assert t.formats("v") == [["raw"], ["raw"]]
    assert base_file(t, "v", 1) == d1 and sha256_file(d1) == d1_sha  # carried, not re-written
    guest_ok(t, "v", image)
    referenced_only(t, "v")
    vm = t.call("encrypt", "v")
    assert vm["encrypted"] and [d["encrypted"] for d in vm["disks"]] == [True, True]
    luks_ok(t, "v", 0)
    luks_ok(t, "v", 1)
    guest_ok(t, "v", image)


def test_no_secret_in_clear(t, image, helper):
    """After the tours above (and one more mixed VM), no root, KEK, file key,
    disk secret, passphrase or DEK is in any file of the data directory."""
    make_mixed(t, "z", image)
    t.call("disk-encrypt", "z", 1)
    t.call("disk-decrypt", "z", 0)
    out = subprocess.run([str(helper("vm_secrets")), str(t.data)], capture_output=True, text=True,
                         check=True).stdout
    secrets = []
    for line in out.splitlines():
        kind, hexval = line.split(" ")
        secrets.append((kind, bytes.fromhex(hexval)))
    kinds = {k for k, _ in secrets}
    assert {"root", "kek", "file_key", "disk_secret", "passphrase", "dek"} <= kinds
    assert scan([t.data], secrets) == []


def test_crash_during_disk_encrypt_and_decrypt(t):
    """vm_tool killed with SIGKILL inside disk-encrypt or disk-decrypt (the
    delay drawn over the operation's measured lifetime, from the moment its
    journal appears, every other one near its end); recovery at the next
    open leaves the guest's bytes identical, with the disk encrypted or not,
    no journal, no stray file."""
    rng = random.Random(int(os.environ.get("VMSEAL_CRASH_SEED", time.time_ns())))
    t.call("create", "crash", "--encrypt", "--disk", MIB, "--disk", CRASH_SIZE)
    t.call("disk-decrypt", "crash", 1)
    # Guest bytes on disk 1: random at the start, a pattern near the end.
    head = os.urandom(4 * MIB)
    (t.work / "crash-head.raw").write_bytes(head)
    write_guest_file(t, "crash", 1, t.work / "crash-head.raw")
    t.write_guest("crash", 1, CRASH_SIZE - 2 * MIB, 0x6B, 65536)
    expect1 = t.guest_sha256("crash", 1)
    expect0 = t.guest_sha256("crash", 0)
    d0 = base_file(t, "crash", 0)
    d0_sha = sha256_file(d0)
    journal = t.vm_dir("crash") / "journal"

    def op_for_state():
        return "disk-decrypt" if t.vm("crash")["disks"][1]["encrypted"] else "disk-encrypt"

    # The journal's lifetime of each operation, measured (the shortest of
    # two runs: write-back makes it vary on a busy machine).
    lifetime = {}
    for _ in range(4):
        op = op_for_state()
        p = t.popen(op, "crash", 1)
        while not journal.exists() and p.poll() is None:
            time.sleep(0.001)
        start = time.monotonic()
        assert p.wait() == 0
        lifetime[op] = min(lifetime.get(op, 1e9), time.monotonic() - start)
    desc = t.vm_dir("crash") / "vm.json"
    interrupted = rolled_back = rolled_forward = 0
    for i in range(CRASH_KILLS):
        op = op_for_state()
        committed_inode = desc.stat().st_ino
        p = t.popen(op, "crash", 1)
        while not journal.exists() and p.poll() is None:
            time.sleep(0.001)
        if i % 3 == 2:
            # At the commit: as soon as vm.json is replaced, while the old
            # layer is still there (recovery rolls forward).
            while p.poll() is None and desc.stat().st_ino == committed_inode:
                pass
        else:
            time.sleep(lifetime[op] * rng.uniform(0, 1))
        p.send_signal(signal.SIGKILL)
        p.wait()
        left = journal.exists()  # killed inside the operation
        t.call("info", "crash")  # vm_host_open recovers
        done = op_for_state() != op
        interrupted += left
        rolled_forward += left and done
        rolled_back += left and not done
        assert not journal.exists(), f"kill {i} in {op}: journal left"
        assert not [f for f in t.vm_dir("crash").iterdir() if ".tmp-" in f.name]
        referenced_only(t, "crash")
        assert t.guest_sha256("crash", 1) == expect1, f"kill {i} in {op}: guest bytes changed"
        assert sha256_file(d0) == d0_sha
    assert t.guest_sha256("crash", 0) == expect0
    print(f"{interrupted} of {CRASH_KILLS} kills inside the operation: {rolled_back} rolled "
          f"back, {rolled_forward} rolled forward")
    # Most kills must land inside the operation, or this tests little.
    assert interrupted >= CRASH_KILLS // 2, f"only {interrupted} of {CRASH_KILLS} interrupted"
