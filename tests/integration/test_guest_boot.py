"""The test guest boots under QEMU (TCG) with OVMF and reports its disks.

Two boots: plain raw disks, then every disk (the ESP too) LUKS1-encrypted and
opened by QEMU's luks driver. Each checks the guest's SHA-256 of what it read
against hashlib's over the plaintext; a tampered copy of the data disk must
give a different hash. Under Secure Boot the firmware must refuse the
unsigned image (firmware only, no kernel). The rest needs no boot: a wrong
LUKS secret stops QEMU before the guest starts; the console parser refuses
confused output; the build is reused when its inputs have not changed.
"""
import hashlib
import os
import secrets

import pytest

from guest import (OVMF_CODE_SECBOOT, OVMF_VARS_MS, SECURE_BOOT_ARGS, Disk, GuestError,
                   GuestNotBooted, boot, build_guest, make_luks_image, parse_serial)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def random_disk(path, size):
    path.write_bytes(os.urandom(size))
    return path


def disk_secret() -> str:
    # 256 random bits in text form: QEMU reads secrets as UTF-8 text.
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def guest():
    return build_guest()


def test_build_is_cached_and_complete(guest):
    again = build_guest(guest.dir)
    assert again.manifest == guest.manifest
    for role in ("esp", "uki", "kernel", "initramfs"):
        info = guest.manifest["files"][role]
        assert guest.file(role).stat().st_size == info["size"]
    assert sha256(guest.uki) == guest.manifest["files"]["uki"]["sha256"]
    # The UKI is what the ESP boots: its bytes are inside the FAT partition.
    uki = guest.uki.read_bytes()
    esp = guest.esp.read_bytes()
    assert uki[:4096] in esp
    assert guest.manifest["cmdline"].startswith("console=ttyS0")


def test_plain_disks(guest, tmp_path):
    data = random_disk(tmp_path / "data.img", 4 << 20)
    tampered = tmp_path / "tampered.img"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01         # one bit, in the middle
    tampered.write_bytes(raw)

    r = boot(guest, [Disk(data, serial="vmseal-data"), Disk(tampered)], workdir=tmp_path)
    print(f"plain boot: {r.elapsed:.1f} s")

    assert r.ready and r.done
    assert r.values["KERNEL"] == guest.manifest["kernel_version"]
    assert r.data_sha256 == sha256(data)
    assert r.data_size == data.stat().st_size
    assert r.disk("vdb") == {"sha256": sha256(data), "size": 4 << 20, "serial": "vmseal-data"}
    assert r.disk("vdc")["sha256"] == sha256(tampered)
    assert r.disk("vdc")["sha256"] != r.data_sha256
    assert set(r.disks()) == {"vdb", "vdc"}
    assert not r.data_missing
    # OVMF_VARS_4M.fd has no keys: Secure Boot off, no lockdown, no TPM.
    assert r.values["SECUREBOOT"] == "0"
    assert r.values["LOCKDOWN"] == "none"
    assert not any(k.startswith("PCR-") for k in r.values)


def test_luks_disks(guest, tmp_path):
    """OVMF boots from a LUKS1 ESP that QEMU decrypts, and the guest reads the
    plaintext of a LUKS1 data disk."""
    data = random_disk(tmp_path / "data.img", 3 << 20)
    esp_secret, data_secret = disk_secret(), disk_secret()
    esp_luks, data_luks = tmp_path / "esp.luks", tmp_path / "data.luks"
    make_luks_image(guest.esp, esp_luks, esp_secret)
    make_luks_image(data, data_luks, data_secret)
    # The images hold ciphertext: no 4 KiB block of the plaintext is in them.
    blob = data_luks.read_bytes()
    assert data.read_bytes()[:4096] not in blob
    assert guest.uki.read_bytes()[:4096] not in esp_luks.read_bytes()

    r = boot(guest, [Disk(data_luks, "luks", data_secret)],
             boot_disk=Disk(esp_luks, "luks", esp_secret), workdir=tmp_path)
    print(f"luks boot: {r.elapsed:.1f} s")

    assert r.ready and r.done
    assert r.data_sha256 == sha256(data)
    assert r.data_size == 3 << 20
    assert r.data_sha256 != sha256(data_luks)
    # The secrets went through pipes: not in QEMU's arguments.
    assert not any(esp_secret in a or data_secret in a for a in r.argv)


def test_luks_wrong_secret_stops_qemu(guest, tmp_path):
    data = random_disk(tmp_path / "data.img", 1 << 20)
    secret = disk_secret()
    make_luks_image(data, tmp_path / "data.luks", secret)
    with pytest.raises(GuestError, match="QEMU exited") as e:
        boot(guest, [Disk(tmp_path / "data.luks", "luks", disk_secret())], timeout=60)
    assert "Invalid password" in str(e.value) or "keyslot" in str(e.value)
    assert secret not in str(e.value)


def test_luks_secret_must_be_text(guest, tmp_path):
    """QEMU refuses a secret that is not UTF-8: raw random bytes cannot be a
    LUKS passphrase for QEMU, whatever cryptsetup accepts."""
    data = random_disk(tmp_path / "data.img", 1 << 20)
    with pytest.raises(GuestError, match="not valid UTF-8"):
        make_luks_image(data, tmp_path / "data.luks", b"\xff\xfe" + os.urandom(30))


def test_secure_boot_refuses_the_unsigned_uki(guest, tmp_path):
    """With Secure Boot on (Microsoft's keys), OVMF must refuse the unsigned
    UKI, and the harness must say so at once rather than wait for OVMF's
    "press any key" prompt to time out."""
    with pytest.raises(GuestNotBooted) as e:
        boot(guest, ovmf_code=OVMF_CODE_SECBOOT, ovmf_vars=OVMF_VARS_MS,
             extra=SECURE_BOOT_ARGS, workdir=tmp_path, timeout=120)
    assert "Access Denied" in e.value.firmware_errors
    assert "VMSEAL-GUEST-READY" not in (tmp_path / "serial.log").read_text(errors="replace")


def test_parse_serial():
    log = ("\x1b[2J\x1b[01;01HBdsDxe: starting Boot0001\r\n"
           "VMSEAL-GUEST-READY\r\n"
           "VMSEAL-DATA-SHA256=ab12\r\n"
           "[    2.1] some kernel line VMSEAL-DISK-vdb-SIZE=512\r\n"
           "VMSEAL-GUEST-DONE\r\n")
    values, flags = parse_serial(log)
    assert flags == {"GUEST-READY", "GUEST-DONE"}
    assert values == {"DATA-SHA256": "ab12", "DISK-vdb-SIZE": "512"}
    assert parse_serial("nothing here") == ({}, set())
    with pytest.raises(GuestError, match="twice"):
        parse_serial("VMSEAL-DATA-SHA256=aa\nVMSEAL-DATA-SHA256=bb\n")
