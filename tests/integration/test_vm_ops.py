"""Every VM operation and its refusals, through the vmseal CLI against a real
vmseald; after each operation qemu-img reads the guest-visible bytes through
QEMU's LUKS and qcow2 drivers, and cryptsetup accepts the LUKS images.

The guest data is a random image imported at creation, so the expected
bytes are known without our code.
"""
import base64
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from vmseald import PASSPHRASE, CliError, Vmseald, sha256_file, sha256_with_write

MIB = 1 << 20
IMAGE_SIZE = 4 * MIB


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "guest.raw"
    data = os.urandom(IMAGE_SIZE)
    path.write_bytes(data)
    return path, data, hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    from conftest import BUILD_DIR
    daemon = Vmseald(BUILD_DIR, tmp_path_factory.mktemp("vmseald"))
    daemon.start()
    daemon.add_native("n1")
    yield daemon
    daemon.stop()
    shutil.rmtree(daemon.runtime, ignore_errors=True)


def refused(d, *args, says, exit_code=1):
    code, err = d.cli_fail(*args)
    assert code == exit_code, err
    for s in ([says] if isinstance(says, str) else says):
        assert s in err, f"expected {s!r} in: {err}"
    return err


def luks_checks(d, name, disk=0):
    """cryptsetup reads every LUKS1 base layer and accepts its passphrase."""
    for path, fmt, pw in d.passphrases(name, disk):
        if fmt != "luks":
            continue
        dump = subprocess.run(["cryptsetup", "luksDump", str(path)], capture_output=True,
                              text=True, check=True).stdout
        assert "Version:       \t1" in dump or "Version:" in dump
        assert "aes" in dump and "xts-plain64" in dump and "sha256" in dump
        ok = subprocess.run(["cryptsetup", "luksOpen", "--test-passphrase", "--key-file=-",
                             str(path)], input=pw.encode(), capture_output=True)
        assert ok.returncode == 0, ok.stderr
        bad = subprocess.run(["cryptsetup", "luksOpen", "--test-passphrase", "--key-file=-",
                              str(path)], input=b"0" * 64, capture_output=True)
        assert bad.returncode != 0


def test_create_encrypted_from_image(d, image):
    path, _, digest = image
    vm = d.cli("vm", "create", "c1", "--image", str(path), "--disk", "1M", "--encrypt")
    assert vm["encrypted"] is True and vm["provider"] == "n1" and vm["state"] == "off"
    assert [x["size"] for x in vm["disks"]] == [IMAGE_SIZE, MIB]
    assert vm["disks"][0]["layers"][0]["format"] == "luks"
    assert d.guest_sha256("c1", 0) == digest
    luks_checks(d, "c1", 0)
    luks_checks(d, "c1", 1)
    info = d.cli("vm", "info", "c1")
    assert info["encrypted"] is True and info["memory"] == 256 * MIB and info["cpus"] == 1
    # The config is sealed: no memory size in clear in the VM's directory.
    for f in (d.data / "vms" / "c1").iterdir():
        if f.name.startswith("config"):
            assert b"memory" not in f.read_bytes()


def test_create_refusals(d, image):
    refused(d, "vm", "create", "bad/name", says="name")
    refused(d, "vm", "create", "-x", says="unknown option", exit_code=2)
    refused(d, "vm", "create", "c2", "--disk", "1M", "--encrypt", "--provider", "nope",
            says="nope")
    assert not (d.data / "vms" / "c2").exists()
    d.cli("vm", "create", "c2", "--disk", "1M")
    refused(d, "vm", "create", "c2", "--disk", "1M", says="exists")
    refused(d, "vm", "create", "c3", "--image", "/nonexistent.raw", says="")
    assert not (d.data / "vms" / "c3").exists()
    refused(d, "vm", "info", "nope", says="no VM named 'nope'")


def test_encrypt_decrypt(d, image):
    path, _, digest = image
    d.cli("vm", "create", "e1", "--image", str(path))
    assert d.guest_sha256("e1") == digest
    refused(d, "vm", "decrypt", "e1", says="not encrypted")
    vm = d.cli("vm", "encrypt", "e1")
    assert vm["encrypted"] and vm["disks"][0]["layers"][0]["format"] == "luks"
    assert d.guest_sha256("e1") == digest
    luks_checks(d, "e1")
    refused(d, "vm", "encrypt", "e1", says="already encrypted")
    vm = d.cli("vm", "decrypt", "e1")
    assert not vm["encrypted"] and vm["disks"][0]["layers"][0]["format"] == "raw"
    assert d.guest_sha256("e1") == digest
    # Only the current files remain.
    names = sorted(f.name for f in (d.data / "vms" / "e1").iterdir())
    assert len([n for n in names if n.startswith("disk0")]) == 1, names


def test_clone_modes(d, image):
    path, _, digest = image
    src = d.cli("vm", "create", "k1", "--image", str(path), "--encrypt")
    keep = d.cli("vm", "clone", "k1", "k1-keep")
    assert keep["encrypted"] and keep["key_id"] == src["key_id"] and keep["uuid"] != src["uuid"]
    assert d.guest_sha256("k1-keep") == digest
    re = d.cli("vm", "clone", "k1", "k1-re", "--recrypt")
    assert re["encrypted"] and re["key_id"] != src["key_id"]
    assert d.guest_sha256("k1-re") == digest
    luks_checks(d, "k1-re")
    plain = d.cli("vm", "clone", "k1", "k1-plain", "--decrypt")
    assert not plain["encrypted"]
    assert d.guest_sha256("k1-plain") == digest
    enc = d.cli("vm", "clone", "k1-plain", "k1-enc", "--encrypt")
    assert enc["encrypted"] and enc["key_id"] not in (src["key_id"], re["key_id"])
    assert d.guest_sha256("k1-enc") == digest
    refused(d, "vm", "clone", "k1-plain", "x1", "--recrypt", says="not encrypted")
    refused(d, "vm", "clone", "k1", "x2", "--encrypt", says="encrypted")
    refused(d, "vm", "clone", "k1", "k1-re", says="exists")
    refused(d, "vm", "clone", "nope", "x3", says="no VM named")
    assert not (d.data / "vms" / "x1").exists() and not (d.data / "vms" / "x3").exists()


def test_template(d, image):
    path, _, digest = image
    d.cli("vm", "create", "t1", "--image", str(path), "--encrypt")
    vm = d.cli("vm", "template", "t1")
    assert vm["template"] is True
    refused(d, "vm", "power-on", "t1", says="template")
    refused(d, "vm", "clone", "t1", "t1-i", "--instant", says="template")
    c = d.cli("vm", "clone", "t1", "t1-c", "--recrypt")
    assert c["template"] is False and d.guest_sha256("t1-c") == digest
    assert d.cli("vm", "template", "t1", "--off")["template"] is False


def test_rekey_shallow_and_deep(d, image):
    path, _, digest = image
    vm = d.cli("vm", "create", "r1", "--image", str(path), "--encrypt")
    files = [l["file"] for l in vm["disks"][0]["layers"]]
    before = d.layer_path(files[0]).read_bytes()[:4096]
    s = d.cli("vm", "rekey", "r1", "--shallow")
    assert s["key_id"] != vm["key_id"]
    assert [l["file"] for l in s["disks"][0]["layers"]] == files
    assert d.layer_path(files[0]).read_bytes()[:4096] == before  # no data touched
    assert d.guest_sha256("r1") == digest
    deep = d.cli("vm", "rekey", "r1", "--deep")
    assert deep["key_id"] != s["key_id"]
    assert [l["file"] for l in deep["disks"][0]["layers"]] != files
    assert d.guest_sha256("r1") == digest
    luks_checks(d, "r1")
    plain = d.cli("vm", "create", "r2", "--disk", "1M")
    refused(d, "vm", "rekey", "r2", "--shallow", says="not encrypted")
    refused(d, "vm", "rekey", "r2", "--deep", says="not encrypted")


def test_instant_clone_rules(d, image):
    path, data, digest = image
    src = d.cli("vm", "create", "i1", "--image", str(path), "--encrypt")
    ic = d.cli("vm", "clone", "i1", "i1-ic", "--instant")
    assert ic["instant_clone_of"] == "i1" and ic["key_id"] == src["key_id"] and ic["linked"]
    assert d.guest_sha256("i1-ic") == digest and d.guest_sha256("i1") == digest
    # Writes in the clone stay in the clone.
    d.write_guest("i1-ic", 0, 0, 0xAB, 65536)
    assert d.guest_sha256("i1-ic") == sha256_with_write(data, 0, 0xAB, 65536)
    assert d.guest_sha256("i1") == digest
    for name in ("i1", "i1-ic"):
        for kind in ("--shallow", "--deep"):
            refused(d, "vm", "rekey", name, kind, says=["instant clone", "refused"])
    refused(d, "vm", "clone", "i1", "i1-ic2", "--instant", "--recrypt", says="")
    refused(d, "vm", "delete", "i1", says="instant clones")
    refused(d, "vm", "decrypt", "i1", says="")
    d.cli("vm", "delete", "i1-ic")
    assert d.cli("vm", "info", "i1")["dependents"] == []
    d.cli("vm", "rekey", "i1", "--shallow")  # allowed again
    assert d.guest_sha256("i1") == digest


def test_snapshots(d, image):
    path, data, digest = image
    d.cli("vm", "create", "s1", "--image", str(path), "--encrypt")
    d.cli("vm", "snapshot", "create", "s1", "a")
    refused(d, "vm", "snapshot", "create", "s1", "a", says="exists")
    d.write_guest("s1", 0, 0, 0x11, 4096)
    h_a = sha256_with_write(data, 0, 0x11, 4096)
    assert d.guest_sha256("s1") == h_a
    luks_checks(d, "s1")
    d.cli("vm", "snapshot", "create", "s1", "b")
    d.write_guest("s1", 0, 8192, 0x22, 4096)
    h_b = sha256_with_write(bytes.fromhex(""), 0, 0, 0) if False else None
    data_b = bytearray(data)
    data_b[0:4096] = b"\x11" * 4096
    data_b[8192:12288] = b"\x22" * 4096
    assert d.guest_sha256("s1") == hashlib.sha256(data_b).hexdigest()
    # Refusals while snapshots exist.
    refused(d, "vm", "decrypt", "s1", says="snapshots")
    refused(d, "vm", "rekey", "s1", "--deep", says="snapshots")
    refused(d, "vm", "clone", "s1", "s1-c", says="snapshots")
    d.cli("vm", "rekey", "s1", "--shallow")  # a single branch: allowed
    assert d.guest_sha256("s1") == hashlib.sha256(data_b).hexdigest()
    # Revert to a: the guest sees the original image again.
    d.cli("vm", "snapshot", "revert", "s1", "a")
    assert d.guest_sha256("s1") == digest
    # Now a has two children (b's chain and the new one): a branch.
    refused(d, "vm", "rekey", "s1", "--shallow", says="branch")
    # Delete b, then a: every merge keeps the current state.
    d.cli("vm", "snapshot", "delete", "s1", "b")
    assert d.guest_sha256("s1") == digest
    d.cli("vm", "snapshot", "delete", "s1", "a")
    assert d.guest_sha256("s1") == digest
    vm = d.cli("vm", "info", "s1")
    assert vm["snapshots"] == []
    refused(d, "vm", "snapshot", "delete", "s1", "a", says="no snapshot")
    refused(d, "vm", "snapshot", "revert", "s1", "zz", says="no snapshot")
    # One layer per disk again after consolidation (b's branch top went
    # with b): deep rekey needs it.
    assert len(vm["disks"][0]["layers"]) == 1, vm["disks"]
    d.cli("vm", "rekey", "s1", "--deep")
    assert d.guest_sha256("s1") == digest


def test_snapshot_delete_merges(d, image):
    path, data, digest = image
    d.cli("vm", "create", "m1", "--image", str(path))
    d.cli("vm", "snapshot", "create", "m1", "x")
    d.write_guest("m1", 0, 4096, 0x33, 4096)
    expect = sha256_with_write(data, 4096, 0x33, 4096)
    d.cli("vm", "snapshot", "delete", "m1", "x")
    vm = d.cli("vm", "info", "m1")
    assert len(vm["disks"][0]["layers"]) == 1  # merged into the base
    assert d.guest_sha256("m1") == expect
    d.cli("vm", "encrypt", "m1")
    assert d.guest_sha256("m1") == expect


def test_add_disk_export_and_secret(d, image, tmp_path):
    path, _, digest = image
    d.cli("vm", "create", "x1", "--image", str(path), "--encrypt")
    vm = d.cli("disk", "add", "x1", "2M")
    assert len(vm["disks"]) == 2 and vm["disks"][1]["size"] == 2 * MIB
    luks_checks(d, "x1", 1)
    out = tmp_path / "x1-0.raw"
    d.cli("disk", "export", "x1", "0", str(out))
    assert sha256_file(out) == digest
    assert (os.stat(out).st_mode & 0o777) == 0o600
    refused(d, "disk", "export", "x1", "0", str(out), says="")  # exists: never overwritten
    refused(d, "disk", "export", "x1", "7", str(tmp_path / "n.raw"), says="no disk")


def test_delete_keeps_keys_and_key_destroy(d, image):
    path, _, digest = image
    vm = d.cli("vm", "create", "del1", "--image", str(path), "--encrypt")
    keys = d.cli("key", "list")
    mine = [k for k in keys["keys"] if k["key_id"] == vm["key_id"]]
    assert mine and mine[0]["vms"] == ["del1"] and not mine[0]["destroyed"]
    refused(d, "key", "destroy", "del1", says="used by VM 'del1'")
    d.cli("vm", "delete", "del1")
    assert not (d.data / "vms" / "del1").exists()
    keys = d.cli("key", "list")
    mine = [k for k in keys["keys"] if k["key_id"] == vm["key_id"]]
    assert mine and mine[0]["vms"] == [] and not mine[0]["destroyed"]
    d.cli("key", "destroy", "del1")
    keys = d.cli("key", "list")
    assert [k for k in keys["keys"] if k["key_id"] == vm["key_id"]][0]["destroyed"]
    refused(d, "key", "destroy", "del1", says="")
    refused(d, "vm", "delete", "del1", says="no VM named")


def test_power_on_off_reseals_nvram(d, image):
    path, _, digest = image
    d.cli("vm", "create", "p1", "--image", str(path), "--encrypt", "--memory", "128M")
    vm = d.cli("vm", "power-on", "p1")
    assert vm["state"] == "running"
    refused(d, "vm", "power-on", "p1", says="already running")
    refused(d, "vm", "encrypt", "p1", says="")
    refused(d, "vm", "rekey", "p1", "--deep", says="running")
    refused(d, "vm", "snapshot", "create", "p1", "s", says="running")
    # Shallow rekey is allowed while the VM runs.
    s = d.cli("vm", "rekey", "p1", "--shallow")
    assert s["key_id"] != vm["key_id"] and s["state"] == "running"
    # The variable store in clear lives on the tmpfs only.
    run = pathlib.Path(d.runtime) / vm["uuid"] / "nvram.fd"
    assert run.exists()
    time.sleep(1)
    vm = d.cli("vm", "power-off", "p1")
    assert vm["state"] == "off" and not run.exists()
    nv = [f for f in (d.data / "vms" / "p1").iterdir() if f.name.startswith("nvram")]
    assert len(nv) == 1 and nv[0].suffix == ".enc"
    ovmf = pathlib.Path("/usr/share/OVMF/OVMF_VARS_4M.fd").read_bytes()
    assert ovmf[:4096] not in nv[0].read_bytes()
    assert d.guest_sha256("p1") == digest
    refused(d, "vm", "power-off", "p1", says="not running")


def test_backup_restore_on_a_fresh_host(d, image, tmp_path):
    """The native provider's backup, restored on a new data directory, opens
    the VMs copied there."""
    from conftest import BUILD_DIR
    path, _, digest = image
    d.cli("vm", "create", "b1", "--image", str(path), "--encrypt")
    backup = tmp_path / "n1.backup"
    d.cli("kp", "backup", "n1", "--to", str(backup), input=PASSPHRASE + "\n")
    fresh = Vmseald(BUILD_DIR, tmp_path / "fresh")
    fresh.data.mkdir(parents=True)
    (fresh.data / "vms").mkdir()
    shutil.copytree(d.data / "vms" / "b1", fresh.data / "vms" / "b1")
    fresh.start()
    try:
        # Without the provider the VM is locked, naming provider and key.
        info = fresh.cli("vm", "info", "b1")
        assert info["state"] == "locked" and "n1" in info["locked_reason"]
        code, err = fresh.cli_fail("vm", "decrypt", "b1")
        assert "locked" in err and "n1" in err
        code, err = fresh.cli_fail("kp", "restore", "--from", str(backup), input="wrong passphrase\n")
        assert code == 1
        fresh.cli("kp", "restore", "--from", str(backup), input=PASSPHRASE + "\n")
        assert fresh.guest_sha256("b1") == digest
        assert fresh.cli("vm", "info", "b1")["state"] == "off"
    finally:
        fresh.stop()
        shutil.rmtree(fresh.runtime, ignore_errors=True)


def test_standard_provider_locked_and_unlocked(d, image, kms_server, tmp_path):
    """A VM on a KMS: with the KMS down after a restart of vmseald, it is
    listed as locked, every operation is refused naming the provider and
    the key, nothing is deleted, and it unlocks by itself."""
    path, _, digest = image
    pki = kms_server.pki
    d.cli("kp", "add-standard", "kms1", "--server", f"127.0.0.1:{kms_server.port}",
          "--ca", str(pki / "ca.crt"), "--cert", str(pki / "client.crt"),
          "--key", str(pki / "client.key"))
    vm = d.cli("vm", "create", "l1", "--image", str(path), "--encrypt", "--provider", "kms1")
    assert vm["provider"] == "kms1"
    # While vmseald runs the KEK is cached: a KMS outage changes nothing.
    port = kms_server.port
    assert kms_server.stop() is None
    assert d.guest_sha256("l1") == digest
    d.stop()
    d.start()
    info = d.cli("vm", "info", "l1")
    assert info["state"] == "locked"
    assert "kms1" in info["locked_reason"] and vm["key_id"] in info["locked_reason"]
    for args in (("vm", "decrypt", "l1"), ("vm", "rekey", "l1", "--shallow"),
                 ("vm", "power-on", "l1"), ("vm", "delete", "l1")):
        code, err = d.cli_fail(*args)
        assert "locked" in err and "kms1" in err and vm["key_id"] in err, err
    assert (d.data / "vms" / "l1" / "vm.json").exists()
    kms_server.start(port=port)
    deadline = time.time() + 30
    while d.cli("vm", "info", "l1")["state"] == "locked":
        assert time.time() < deadline, "the VM did not unlock"
        time.sleep(0.5)
    assert d.guest_sha256("l1") == digest
    # New keys from the KMS are vCenter-like: check the attributes there.
    d.cli("vm", "rekey", "l1", "--shallow")
    assert d.guest_sha256("l1") == digest


def test_import_qcow2_image(d, image, tmp_path):
    """A qcow2 image (what most clouds ship) is imported as a LUKS disk;
    a qcow2 with a backing file is refused, nothing created."""
    path, _, digest = image
    q = tmp_path / "img.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(path), str(q)],
                   check=True, capture_output=True)
    vm = d.cli("vm", "create", "q1", "--image", str(q), "--encrypt")
    assert vm["disks"][0]["size"] == IMAGE_SIZE
    assert d.guest_sha256("q1") == digest
    luks_checks(d, "q1")
    names = {f.name for f in (d.data / "vms" / "q1").iterdir()}
    assert not any("import" in n for n in names), names  # the temporary raw is gone
    child = tmp_path / "child.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-b", str(q), "-F", "qcow2", str(child)],
                   check=True, capture_output=True)
    refused(d, "vm", "create", "q2", "--image", str(child), says="backing")
    assert not (d.data / "vms" / "q2").exists()


def test_snapshot_delete_drops_branch_layers(d, image):
    """After a revert, the frozen top of the abandoned branch goes with the
    last snapshot that kept it: deleting every snapshot, in either order,
    leaves one layer per disk and no file behind, so that the VM can be
    deep-rekeyed, cloned or decrypted again."""
    path, data, digest = image
    for name, order, extra in (("br1", ("x", "y"), ["--encrypt"]), ("br2", ("y", "x"), [])):
        d.cli("vm", "create", name, "--image", str(path), *extra)
        d.cli("vm", "snapshot", "create", name, "x")
        d.write_guest(name, 0, 0, 0x44, 4096)
        d.cli("vm", "snapshot", "create", name, "y")
        d.cli("vm", "snapshot", "revert", name, "x")
        d.write_guest(name, 0, 4096, 0x55, 4096)
        expect = sha256_with_write(data, 4096, 0x55, 4096)
        for snap in order:
            d.cli("vm", "snapshot", "delete", name, snap)
            assert d.guest_sha256(name) == expect
        vm = d.cli("vm", "info", name)
        assert vm["snapshots"] == [] and len(vm["disks"][0]["layers"]) == 1, vm["disks"]
        files = sorted(f.name for f in (d.data / "vms" / name).iterdir() if "disk" in f.name)
        assert files == [pathlib.Path(vm["disks"][0]["layers"][0]["file"]).name]
        if extra:
            assert vm["rekeyable"]
            d.cli("vm", "rekey", name, "--deep")
        else:
            d.cli("vm", "clone", name, name + "-c")
            assert d.guest_sha256(name + "-c") == expect
        assert d.guest_sha256(name) == expect


def unencrypted_tag(desc):
    """An unencrypted VM's tag: SHA-256 of the canonical JSON (sorted keys,
    compact, without the tag), which anyone can compute."""
    body = {k: v for k, v in desc.items() if k != "tag"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def test_chain_limit(d):
    """A disk chain holds at most 64 layers (DISK_CHAIN_MAX). A snapshot or an
    instant clone that would make the 65th is refused as a state of the VM
    (409, saying why), and changes nothing; it was a 400 "input exceeds the
    size limit" from deep in the disk room."""
    d.cli("vm", "create", "ch1", "--disk", "1M")
    vmdir = d.data / "vms" / "ch1"
    desc = json.loads((vmdir / "vm.json").read_text())
    assert unencrypted_tag(desc) == desc["tag"]
    # 63 overlays on the base layer, made with qemu-img directly.
    top = desc["layers"][0]
    prev, prev_fmt, n = vmdir / pathlib.Path(top["file"]).name, "raw", desc["next_layer"]
    for _ in range(63):
        n += 1
        f = vmdir / f"disk0-l{n}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", str(prev), "-F",
                        prev_fmt, str(f), "1M"], check=True)
        layer = {"id": f"l{n}", "disk": 0, "file": f"ch1/{f.name}", "format": "qcow2",
                 "parent": top["id"], "secret": None, "shared": False, "foreign": False}
        desc["layers"].append(layer)
        top, prev, prev_fmt = layer, f, "qcow2"
    desc["next_layer"] = n
    desc["disks"][0]["active"] = top["id"]
    desc["tag"] = unencrypted_tag(desc)
    (vmdir / "vm.json").write_text(json.dumps(desc, indent=2))
    assert len(d.cli("vm", "info", "ch1")["disks"][0]["layers"]) == 64
    before = sorted(f.name for f in vmdir.iterdir())
    refused(d, "vm", "snapshot", "create", "ch1", "s", says="64 layers")
    vm = d.cli("vm", "info", "ch1")
    assert len(vm["disks"][0]["layers"]) == 64 and vm["snapshots"] == []
    assert sorted(f.name for f in vmdir.iterdir()) == before
    refused(d, "vm", "clone", "ch1", "ch1-ic", "--instant", says="64 layers")
    assert not (d.data / "vms" / "ch1-ic").exists()
    assert d.cli("vm", "info", "ch1")["dependents"] == []
    d.cli("vm", "delete", "ch1")


def test_tampered_files_are_integrity_errors(d):
    """A sealed file or a wrapped key that does not open is damage or
    tampering on the datastore: HTTP 500 "integrity", like a bad tag, and not
    400 "authentication_failed" (a caller's wrong passphrase)."""
    d.cli("vm", "create", "tamp1", "--disk", "1M", "--encrypt")
    vmdir = d.data / "vms" / "tamp1"
    cfg = next(f for f in vmdir.iterdir() if f.name.startswith("config"))
    good = cfg.read_bytes()
    cfg.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    status, body = d.api("GET", "/v1/vms/tamp1")
    assert status == 500 and body["error"]["code"] == "integrity", body
    cfg.write_bytes(good)
    assert d.api("GET", "/v1/vms/tamp1")[0] == 200
    vmj = vmdir / "vm.json"
    text = vmj.read_text()
    for field in ("file_key", "secret"):
        desc = json.loads(text)
        holder = desc["encryption"] if field == "file_key" else desc["layers"][0]
        w = base64.b64decode(holder[field])
        holder[field] = base64.b64encode(bytes([w[0] ^ 1]) + w[1:]).decode()
        vmj.write_text(json.dumps(desc, indent=2))
        status, body = d.api("GET", "/v1/vms/tamp1")
        assert status == 500 and body["error"]["code"] == "integrity", body
        assert "tamp1" in body["error"]["message"]
    vmj.write_text(text)
    assert d.api("GET", "/v1/vms/tamp1")[0] == 200


def test_runtime_dir_must_be_private(tmp_path):
    """The runtime directory holds decrypted variable stores: one others may
    read, or a symbolic link, is refused at start (its default name under
    /dev/shm is predictable: another user could have made it first)."""
    from conftest import BUILD_DIR
    rt = tempfile.mkdtemp(prefix="vmseal-test-", dir="/dev/shm")
    link = rt + "-link"
    try:
        os.chmod(rt, 0o755)
        nd = Vmseald(BUILD_DIR, tmp_path / "rt", runtime_dir=rt)
        with pytest.raises(RuntimeError, match="runtime directory"):
            nd.start()
        nd.proc = None
        os.chmod(rt, 0o700)
        nd.start()
        nd.stop()
        os.symlink(rt, link)
        nl = Vmseald(BUILD_DIR, tmp_path / "rt2", runtime_dir=link)
        with pytest.raises(RuntimeError, match="runtime directory"):
            nl.start()
    finally:
        shutil.rmtree(rt, ignore_errors=True)
        if os.path.lexists(link):
            os.unlink(link)


def test_key_destroy_refused_while_an_operation_issues_keys(d):
    """A key is recorded when it is issued, before the VM that uses it is
    committed. Destroying a VM's keys while an operation on it runs is
    refused (busy): it would otherwise destroy the key the operation is
    about to commit, leaving the VM under a destroyed key."""
    d.cli("vm", "create", "kd1", "--disk", "256M")
    status, body = d.api("POST", "/v1/vms/kd1/encrypt", {})
    assert status == 202, body
    task = body["task"]["id"]
    deadline = time.time() + 60
    while not any(k["vm"] == "kd1" for k in d.cli("key", "list")["keys"]):
        assert time.time() < deadline
        time.sleep(0.02)
    status, body = d.api("POST", "/v1/keys/destroy", {"vm": "kd1"})
    # busy while the encryption runs; once committed, the VM uses the key.
    assert status == 409 and body["error"]["code"] in ("busy", "vm_state"), body
    while d.api("GET", f"/v1/tasks/{task}")[1]["task"]["state"] == "running":
        assert time.time() < deadline
        time.sleep(0.1)
    assert d.api("GET", f"/v1/tasks/{task}")[1]["task"]["state"] == "success"
    keys = [k for k in d.cli("key", "list")["keys"] if k["vm"] == "kd1"]
    assert len(keys) == 1 and not keys[0]["destroyed"] and keys[0]["vms"] == ["kd1"]
    d.cli("vm", "delete", "kd1")


def test_sigterm_stops_operations_first(tmp_path):
    """SIGTERM while an operation runs: vmseald stops it (the bulk engine
    rolls back), waits for it, then exits 0. It used to free the host and
    the key providers under the running operation's thread, and leave the
    operation to the recovery of the next start."""
    from conftest import BUILD_DIR
    nd = Vmseald(BUILD_DIR, tmp_path / "term")
    nd.start()
    try:
        nd.add_native("n1")
        nd.cli("vm", "create", "big", "--disk", "512M")
        status, body = nd.api("POST", "/v1/vms/big/encrypt", {})
        assert status == 202, body
        vmdir = nd.data / "vms" / "big"
        deadline = time.time() + 30
        while not (vmdir / "journal").exists():  # under way
            assert time.time() < deadline
            time.sleep(0.01)
        nd.proc.send_signal(signal.SIGTERM)
        assert nd.proc.wait(timeout=90) == 0
        nd.proc = None
        assert not (vmdir / "journal").exists(), sorted(f.name for f in vmdir.iterdir())
        assert "AddressSanitizer" not in nd.log_text()
        nd.start()
        assert "interrupted operation" not in nd.log_text()
        vm = nd.cli("vm", "info", "big")
        files = sorted(f.name for f in vmdir.iterdir())
        assert len([f for f in files if f.startswith("disk")]) == 1, files
        if not vm["encrypted"]:  # cancelled and rolled back: it can run again
            nd.cli("vm", "encrypt", "big")
    finally:
        nd.stop()
        shutil.rmtree(nd.runtime, ignore_errors=True)


def test_image_size_limits(d, tmp_path):
    """An imported image is a disk like any other: 512 bytes to 64 TiB. A
    qcow2 header may claim any size, all of which would be converted and
    encrypted (written as encrypted zeros where the image has holes)."""
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    refused(d, "vm", "create", "im0", "--image", str(empty), says="512-byte")
    assert not (d.data / "vms" / "im0").exists()
    huge = tmp_path / "huge.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(huge), "65T"], check=True)
    refused(d, "vm", "create", "im1", "--image", str(huge), "--encrypt", says="64 TiB")
    assert not (d.data / "vms" / "im1").exists()


def test_recovery_never_follows_links(tmp_path):
    """Recovery empties what a crash left in the datastore (a deleted VM's
    .trash-* directory, a create that never committed), never through a
    symbolic link planted there: it removes the link, not what it points
    at (here, a directory of someone else's files)."""
    from conftest import BUILD_DIR
    nd = Vmseald(BUILD_DIR, tmp_path / "links")
    nd.start()
    nd.stop()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    # A valid journal, so that the link below looks like an interrupted create.
    (victim / "journal").write_text(json.dumps(
        {"op": "create", "started": "2026-11-23T10:00:00Z", "snapshot": "", "merge_from": "",
         "merge_into": "", "disk": 0}))
    trash = nd.data / "vms" / ".trash-0192f3a0-7c1e-4b8a-9d2f-6e5a4b3c2d1e"
    vmlink = nd.data / "vms" / "evil"
    os.symlink(victim, trash)
    os.symlink(victim, vmlink)
    nd.start()
    try:
        assert sorted(f.name for f in victim.iterdir()) == ["journal", "precious"]
        assert not os.path.lexists(trash) and not os.path.lexists(vmlink)
    finally:
        nd.stop()
        shutil.rmtree(nd.runtime, ignore_errors=True)


def test_bad_vm_name_in_a_route_is_400(d):
    """An invalid VM name in the path of an operation is refused at once
    (400), like in a body; it used to start a task (202) that failed."""
    for method, route, body in (("POST", "/v1/vms/-x/encrypt", {}),
                                ("POST", "/v1/vms/-x/decrypt", {}),
                                ("DELETE", "/v1/vms/.x", None),
                                ("POST", "/v1/vms/-x/snapshots", {"name": "s"}),
                                ("DELETE", "/v1/vms/-x/snapshots/s", None),
                                ("POST", "/v1/vms/-x/power-on", {}),
                                ("POST", "/v1/vms/-x/clone", {"name": "y"}),
                                ("POST", "/v1/vms/-x/rekey", {}),
                                ("POST", "/v1/vms/-x/disks", {"size": 512}),
                                ("POST", "/v1/vms/-x/disks/0/export", {"path": "/tmp/x"})):
        status, answer = d.api(method, route, body)
        assert status == 400 and answer["error"]["code"] == "invalid_request", (route, answer)
        assert "VM name" in answer["error"]["message"]
