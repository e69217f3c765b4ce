"""vmseal's bulk engine (disk_copy) against QEMU's own luks driver.

What the engine writes, QEMU reads; what QEMU wrote, the engine reads:

- a plaintext disk with holes, encrypted by the engine, reads in qemu-img
  exactly as the plaintext (holes as zeros: encrypted zeros);
- a LUKS disk filled by `qemu-img convert`, recrypted by the engine under a
  new DEK and secret, reads in qemu-img as the plaintext; decrypted by the
  engine, it is the plaintext byte for byte;
- a sparse LUKS disk written by qemu-io at a few places: recrypted, the
  written places read back in qemu-io under the new secret and the rest of
  the payload stays unallocated; decrypted, the written places hold the data
  and the rest are holes;
- a wrong secret for the source fails before anything is written.

The engine's own contract (short sources, cancellation, threads, progress)
is tests/unit/test_engine.c.

Secrets reach the helper (engine_tool) on stdin only; qemu-img and qemu-io
get them as 0600 files (the LUKS passphrase: the secret in hex, luks1.h).
"""
import hashlib
import json
import os
import subprocess

import pytest

QEMU_IMG = "/usr/bin/qemu-img"
QEMU_IO = "/usr/bin/qemu-io"
MIB = 1 << 20
PAYLOAD = 2 * MIB  # LUKS1_PAYLOAD_OFFSET_BYTES

for _tool in (QEMU_IMG, QEMU_IO):
    if not os.access(_tool, os.X_OK):
        pytest.skip(f"{_tool} is missing (scripts/deps.sh installs qemu-utils)",
                    allow_module_level=True)


@pytest.fixture
def engine(helper):
    path = os.path.abspath(helper("engine_tool"))

    def run(*args, secrets=(), check=True):
        p = subprocess.run([path, *map(str, args)], input=b"".join(secrets),
                           capture_output=True, timeout=600)
        if check and p.returncode != 0:
            pytest.fail(f"engine_tool {' '.join(map(str, args))}: {p.stderr.decode()}")
        return p
    return run


def secret_objects(tmp_path, secrets: dict) -> list:
    """--object arguments for {id: secret}, each in a 0600 passphrase file."""
    args = []
    for sid, secret in secrets.items():
        f = tmp_path / f"{sid}.pass"
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, secret.hex().encode())
        os.close(fd)
        args += ["--object", f"secret,id={sid},file={f},format=raw"]
    return args


def luks_opts(path, sid):
    return f"driver=luks,key-secret={sid},file.filename={path}"


def raw_opts(path):
    return f"driver=raw,file.filename={path}"


def qemu_img(*args):
    p = subprocess.run([QEMU_IMG, *map(str, args)], capture_output=True, timeout=600)
    return p.returncode, p.stdout.decode() + p.stderr.decode()


def qemu_io(tmp_path, path, sid, secret, *commands):
    args = [QEMU_IO, *secret_objects(tmp_path, {sid: secret})]
    for c in commands:
        args += ["-c", c]
    spec = {"driver": "luks", "key-secret": sid,
            "file": {"driver": "file", "filename": str(path)}}
    args.append("json:" + json.dumps(spec))
    p = subprocess.run(args, capture_output=True, timeout=120)
    out = p.stdout.decode() + p.stderr.decode()
    return p.returncode == 0 and "fail" not in out.lower() and "error" not in out.lower(), out


def same_as_plain(tmp_path, plain, luks, sid, secret) -> bool:
    """qemu-img compare: the LUKS disk's guest view equals the plaintext."""
    rc, out = qemu_img("compare", "-q", *secret_objects(tmp_path, {sid: secret}),
                       "--image-opts", raw_opts(plain), luks_opts(luks, sid))
    assert rc in (0, 1), out
    return rc == 0


def is_hole(path, off, length) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:  # ENXIO: nothing but holes up to the end
            return True
        return d >= off + length
    finally:
        os.close(fd)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def make_plain(path, size, pieces):
    """A sparse plaintext disk: random data at each (offset, length)."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off, length in pieces:
            f.seek(off)
            f.write(os.urandom(length))


# A 40 MiB + 3 sectors disk: data at the start, across chunk boundaries, in
# the middle; holes elsewhere, including a long one at the end.
SIZE = 40 * MIB + 3 * 512
PIECES = [(0, 3 * MIB + 4096), (6 * MIB - 8192, 5 * MIB), (20 * MIB, 64 * 1024),
          (31 * MIB, 1 * MIB)]


def test_encrypt_reads_back_in_qemu(engine, tmp_path):
    plain, luks = tmp_path / "plain.img", tmp_path / "disk.luks"
    make_plain(plain, SIZE, PIECES)
    s1 = os.urandom(32)
    out = engine("copy", "encrypt", plain, luks, 3, 1 * MIB, secrets=[s1]).stdout.decode()
    assert out.splitlines()[-1] == "ok"
    progress = [tuple(map(int, line.split()[1:])) for line in out.splitlines()
                if line.startswith("progress ")]
    assert progress and progress[-1] == (SIZE, SIZE)

    assert same_as_plain(tmp_path, plain, luks, "s1", s1)
    # plaintext holes into LUKS: written as encrypted zeros, nothing sparse
    assert not is_hole(luks, PAYLOAD + SIZE - MIB, MIB)
    assert os.stat(luks).st_size == PAYLOAD + SIZE
    # ...and a different secret is not accepted by QEMU
    rc, _ = qemu_img("compare", "-q", *secret_objects(tmp_path, {"bad": os.urandom(32)}),
                     "--image-opts", raw_opts(plain), luks_opts(luks, "bad"))
    assert rc not in (0, 1)


def test_recrypt_of_qemu_written_disk(engine, tmp_path):
    plain = tmp_path / "plain.img"
    a, b, back = tmp_path / "a.luks", tmp_path / "b.luks", tmp_path / "back.img"
    make_plain(plain, SIZE, [(0, SIZE)])
    s1, s2 = os.urandom(32), os.urandom(32)
    engine("mkluks", a, SIZE, secrets=[s1])
    rc, out = qemu_img("convert", "-n", *secret_objects(tmp_path, {"s1": s1}),
                       "--image-opts", raw_opts(plain), "--target-image-opts",
                       luks_opts(a, "s1"))
    assert rc == 0, out

    engine("copy", "recrypt", a, b, 2, secrets=[s1, s2])
    assert same_as_plain(tmp_path, plain, b, "s2", s2)
    # the old secret does not open the new disk
    rc, _ = qemu_img("compare", "-q", *secret_objects(tmp_path, {"s1": s1}),
                     "--image-opts", raw_opts(plain), luks_opts(b, "s1"))
    assert rc not in (0, 1)
    # the payload changed completely: another DEK
    with open(a, "rb") as fa, open(b, "rb") as fb:
        fa.seek(PAYLOAD)
        fb.seek(PAYLOAD)
        assert fa.read(MIB) != fb.read(MIB)

    engine("copy", "decrypt", b, back, secrets=[s2])
    assert sha256(back) == sha256(plain)


def test_sparse_luks_written_by_qemu_io(engine, tmp_path):
    c, d, e = tmp_path / "c.luks", tmp_path / "d.luks", tmp_path / "e.img"
    s1, s2 = os.urandom(32), os.urandom(32)
    size = 64 * MIB
    engine("mkluks", c, size, secrets=[s1])
    ok, out = qemu_io(tmp_path, c, "s1", s1, "write -P 0xab 1M 3M", "write -P 0xcd 40M 64k")
    assert ok, out

    engine("copy", "recrypt", c, d, 2, 1 * MIB, secrets=[s1, s2])
    ok, out = qemu_io(tmp_path, d, "s2", s2, "read -P 0xab 1M 3M", "read -P 0xcd 40M 64k")
    assert ok, out
    # never written by the guest: stays unallocated
    for off, length in ((0, MIB), (4 * MIB, 36 * MIB), (40 * MIB + 64 * 1024, 23 * MIB)):
        assert is_hole(d, PAYLOAD + off, length), (off, length)
    assert not is_hole(d, PAYLOAD + MIB, 3 * MIB)

    engine("copy", "decrypt", d, e, secrets=[s2])
    with open(e, "rb") as f:
        f.seek(MIB)
        assert f.read(3 * MIB) == b"\xab" * (3 * MIB)
        f.seek(40 * MIB)
        assert f.read(64 * 1024) == b"\xcd" * (64 * 1024)
    for off, length in ((0, MIB), (4 * MIB, 36 * MIB), (40 * MIB + 64 * 1024, 23 * MIB)):
        assert is_hole(e, off, length), (off, length)
    assert os.stat(e).st_blocks * 512 < 8 * MIB


def test_wrong_source_secret_writes_nothing(engine, tmp_path):
    plain, a, b = tmp_path / "plain.img", tmp_path / "a.luks", tmp_path / "b.img"
    make_plain(plain, 4 * MIB, [(0, 4 * MIB)])
    s1 = os.urandom(32)
    engine("copy", "encrypt", plain, a, secrets=[s1])
    p = engine("copy", "decrypt", a, b, secrets=[os.urandom(32)], check=False)
    assert p.returncode == 1
    assert "ERR_LUKS_KEY" in p.stderr.decode()
    assert not b.exists()
