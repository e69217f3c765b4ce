"""End to end: a guest boots under QEMU (TCG here) with OVMF from an
encrypted disk that vmseald built, and reads a second encrypted disk.

The guest (scripts/build-test-guest.sh: a unified kernel image with a
busybox initramfs on a FAT EFI system partition) prints the SHA-256 of its
data disk /dev/vdb on the serial console and powers off. QEMU opens both
LUKS disks itself, with passphrases handed over inherited pipes; the UEFI
variable store is decrypted on a tmpfs while the VM runs and sealed again
when the guest powers off.
"""
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from vmseald import Vmseald, write_guest_file

MIB = 1 << 20
BOOT_TIMEOUT = int(os.environ.get("VMSEAL_BOOT_TIMEOUT", "600"))


@pytest.fixture(scope="module")
def guest():
    from conftest import BUILD_DIR, SOURCE_DIR
    out = pathlib.Path(BUILD_DIR) / "test-guest"
    subprocess.run(["bash", str(SOURCE_DIR / "scripts" / "build-test-guest.sh"), str(out)],
                   check=True, capture_output=True, timeout=900)
    esp = out / "esp.img"
    assert esp.is_file()
    return esp


@pytest.fixture
def d(tmp_path):
    from conftest import BUILD_DIR
    daemon = Vmseald(BUILD_DIR, tmp_path / "v")
    daemon.start()
    daemon.add_native("n1")
    yield daemon
    daemon.stop()
    shutil.rmtree(daemon.runtime, ignore_errors=True)


def boot_and_read(d, name):
    """Powers the VM on; returns the console once the guest powered off."""
    console = d.data / "vms" / name / "console.log"
    start = time.monotonic()
    d.cli("vm", "power-on", name)
    while True:
        text = console.read_text(errors="replace") if console.exists() else ""
        state = d.vm(name)["state"]
        if state == "off" and "VMSEAL-DATA-SHA256" in text:
            return text, time.monotonic() - start
        if time.monotonic() - start > BOOT_TIMEOUT:
            d.cli("vm", "power-off", name)
            pytest.fail(f"the guest did not finish in {BOOT_TIMEOUT} s; console:\n{text[-3000:]}")
        time.sleep(1)


def test_boot_from_encrypted_disk(d, guest, tmp_path):
    data = os.urandom(4 * MIB)
    data_file = tmp_path / "data.raw"
    data_file.write_bytes(data)
    vm = d.cli("vm", "create", "g1", "--image", str(guest), "--disk", "4M", "--encrypt",
               "--memory", "256M")
    assert vm["encrypted"] and [x["layers"][0]["format"] for x in vm["disks"]] == ["luks", "luks"]
    write_guest_file(d, "g1", 1, data_file)
    console, seconds = boot_and_read(d, "g1")
    m = re.search(r"VMSEAL-DATA-SHA256=([0-9a-f]{64})", console)
    assert m, console[-2000:]
    assert m.group(1) == hashlib.sha256(data).hexdigest()
    print(f"\nboot to hash to power-off under this accelerator: {seconds:.1f} s")
    # Powered off by its guest: the variable store is sealed again.
    nv = [f for f in (d.data / "vms" / "g1").iterdir() if f.name.startswith("nvram")]
    assert len(nv) == 1 and nv[0].suffix == ".enc"
    assert not any(pathlib.Path(d.runtime).iterdir())

    # The same guest after a deep rekey and a recrypting clone: new DEKs,
    # same bytes for the guest.
    d.cli("vm", "rekey", "g1", "--deep")
    d.cli("vm", "clone", "g1", "g2", "--recrypt")
    console2, _ = boot_and_read(d, "g2")
    m2 = re.search(r"VMSEAL-DATA-SHA256=([0-9a-f]{64})", console2)
    assert m2 and m2.group(1) == hashlib.sha256(data).hexdigest()


def test_boot_sees_a_changed_disk(d, guest, tmp_path):
    """The hash on the console is the guest's own reading: change the data,
    the hash changes."""
    data = bytearray(os.urandom(1 * MIB))
    f = tmp_path / "d.raw"
    f.write_bytes(data)
    d.cli("vm", "create", "g3", "--image", str(guest), "--disk", "1M", "--encrypt")
    write_guest_file(d, "g3", 1, f)
    data[12345] ^= 0xFF
    f.write_bytes(data)
    write_guest_file(d, "g3", 1, f)
    console, _ = boot_and_read(d, "g3")
    m = re.search(r"VMSEAL-DATA-SHA256=([0-9a-f]{64})", console)
    assert m and m.group(1) == hashlib.sha256(bytes(data)).hexdigest()
