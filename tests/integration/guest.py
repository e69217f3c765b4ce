"""vmseal's test guest, for integration tests that boot a VM.

The guest (scripts/build-test-guest.sh, docs/testing-guest.md) is a UEFI
disk: an EFI system partition whose BOOTX64.EFI is a unified kernel image
(systemd-stub + Debian's kernel + a busybox initramfs). Booted by OVMF under
QEMU, it prints on the serial console the SHA-256 and size of every data disk
(vdb, vdc, ...) and powers off.

    from guest import Disk, boot, build_guest, make_luks_image

    g = build_guest()                       # cached in $VMSEAL_BUILD_DIR/test-guest
    r = boot(g, [Disk(data_img)])           # ESP as vda, data_img as vdb
    assert r.data_sha256 == hashlib.sha256(data_img.read_bytes()).hexdigest()

Pieces for code that runs its own QEMU: qemu_command() gives the argument
list (and which secret pipes to pass), parse_serial() reads a console log.
Secrets reach QEMU, qemu-img and cryptsetup through pipes, never through a
file, an argument or the environment.
"""
from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Iterable, Optional, Sequence, Union

SOURCE_DIR = pathlib.Path(os.environ.get("VMSEAL_SOURCE_DIR",
                                         pathlib.Path(__file__).resolve().parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("VMSEAL_BUILD_DIR", SOURCE_DIR / "build" / "dev"))
BUILD_SCRIPT = SOURCE_DIR / "scripts" / "build-test-guest.sh"

QEMU = "qemu-system-x86_64"
QEMU_IMG = "qemu-img"
OVMF_CODE = pathlib.Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = pathlib.Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# Secure Boot: the SMM build of the firmware, with Microsoft's keys enrolled
# and Secure Boot on in OVMF_VARS_4M.ms.fd. That build needs SMM and a
# pflash that only SMM code may write: pass SECURE_BOOT_ARGS as extra.
OVMF_CODE_SECBOOT = pathlib.Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
OVMF_VARS_MS = pathlib.Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
SECURE_BOOT_ARGS = ("-machine", "q35,smm=on",
                    "-global", "driver=cfi.pflash01,property=secure,value=on")

# With 128 MiB the boot stops silently once OVMF has started the UKI (no
# output, no exit); 256 MiB boots.
DEFAULT_MEMORY_MIB = 256
# A boot takes ~10 s of CPU under TCG; a loaded CI host (2 cores, parallel
# tests) can triple the wall time. Beyond this something is wrong.
DEFAULT_TIMEOUT = float(os.environ.get("VMSEAL_GUEST_TIMEOUT", "240"))

Secret = Union[bytes, str]


class GuestError(Exception):
    """The guest could not be built or booted, or did not finish; the message
    carries the QEMU command, its output and the tail of the serial console."""


class GuestNotBooted(GuestError):
    """OVMF found nothing it could boot. firmware_errors lists the reasons it
    gave for each boot option it tried, e.g. ["Access Denied"] when Secure
    Boot refused an unsigned or badly signed image."""

    def __init__(self, firmware_errors: list, message: str):
        super().__init__(message)
        self.firmware_errors = firmware_errors


@dataclasses.dataclass(frozen=True)
class Guest:
    """A built guest: the directory of scripts/build-test-guest.sh."""
    dir: pathlib.Path
    manifest: dict

    def file(self, role: str) -> pathlib.Path:
        """Path of one artifact: "esp", "uki", "kernel" or "initramfs"."""
        return self.dir / self.manifest["files"][role]["file"]

    @property
    def esp(self) -> pathlib.Path:
        return self.file("esp")

    @property
    def uki(self) -> pathlib.Path:
        return self.file("uki")


@dataclasses.dataclass
class Disk:
    """A disk for the VM, on a virtio-blk-pci device.

    format: "raw", "luks" (QEMU's luks driver over a raw file: a LUKS1 image
    as vmseal writes them) or "qcow2" (with secret: a LUKS-encrypted qcow2).
    secret: the passphrase of a luks or encrypted qcow2 image. QEMU requires it
    to be valid UTF-8 (it reads secrets as text), so a random disk secret is
    used in a text form (hex, base64), not as raw bytes.
    backing: for a qcow2 overlay (snapshot, linked clone), its backing image,
    given explicitly because an encrypted backing image needs its own secret,
    which the overlay's header cannot name. read_only and serial of a backing
    image are ignored.
    """
    path: Union[str, os.PathLike]
    format: str = "raw"
    secret: Optional[Secret] = None
    read_only: bool = True
    serial: Optional[str] = None
    backing: Optional["Disk"] = None   # a qcow2 overlay's backing image


@dataclasses.dataclass
class BootResult:
    returncode: int
    elapsed: float            # seconds, QEMU start to exit
    serial: str               # the whole console log
    values: dict              # "DATA-SHA256" -> "...", from VMSEAL-<key>=<value> lines
    flags: set                # "GUEST-READY", "GUEST-DONE", ... (VMSEAL-<flag> lines)
    argv: list

    @property
    def ready(self) -> bool:
        return "GUEST-READY" in self.flags

    @property
    def done(self) -> bool:
        return "GUEST-DONE" in self.flags

    @property
    def data_sha256(self) -> Optional[str]:
        return self.values.get("DATA-SHA256")

    @property
    def data_size(self) -> Optional[int]:
        v = self.values.get("DATA-SIZE")
        return int(v) if v is not None else None

    @property
    def data_missing(self) -> bool:
        return "DATA-MISSING" in self.values

    def disk(self, name: str) -> dict:
        """{"sha256": ..., "size": int, "serial": ...} for "vdb", "vdc", ...
        (empty if the guest did not report that disk)."""
        out = {}
        for key in ("SHA256", "SIZE", "SERIAL"):
            v = self.values.get(f"DISK-{name}-{key}")
            if v is not None:
                out[key.lower()] = int(v) if key == "SIZE" else v
        return out

    def disks(self) -> dict:
        names = {k.split("-")[1] for k in self.values if k.startswith("DISK-")}
        return {n: self.disk(n) for n in sorted(names)}


# --- building ----------------------------------------------------------------

def build_guest(outdir: Union[str, os.PathLike, None] = None) -> Guest:
    """Build the guest into outdir (default $VMSEAL_BUILD_DIR/test-guest), or
    reuse it when it is up to date with its inputs; return it."""
    outdir = pathlib.Path(outdir) if outdir is not None else BUILD_DIR / "test-guest"
    p = subprocess.run(["bash", str(BUILD_SCRIPT), str(outdir)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600)
    if p.returncode != 0:
        raise GuestError(f"{BUILD_SCRIPT} {outdir} failed ({p.returncode}):\n{p.stdout}")
    manifest = json.loads((outdir / "guest.json").read_text())
    return Guest(outdir.resolve(), manifest)


# --- secrets through pipes ----------------------------------------------------

def _secret_bytes(secret: Secret) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


class _Pipes:
    """Read ends of pipes pre-filled with secrets, to be inherited by a child
    (QEMU reads /dev/fd/N to end of file). Closed on exit."""

    def __init__(self):
        self.fds: list[int] = []

    def add(self, secret: Secret) -> str:
        data = _secret_bytes(secret)
        if len(data) > 60000:      # must fit the pipe buffer: nobody reads yet
            raise ValueError("secret too long for a pipe")
        r, w = os.pipe()
        try:
            os.write(w, data)
        finally:
            os.close(w)
        self.fds.append(r)
        return f"/dev/fd/{r}"

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- LUKS images ------------------------------------------------------------

LUKS1_PAYLOAD_SECTORS = 4096   # 2 MiB: cryptsetup's LUKS1 default with a 512-bit key


def make_luks_image(plain: Union[str, os.PathLike], luks: Union[str, os.PathLike],
                    secret: Secret, iterations: int = 1000) -> None:
    """Write plain's bytes into a new LUKS1 image at luks (aes-xts-plain64,
    512-bit key, sha256), unlocked by secret.

    cryptsetup formats it (no root or loop device is needed to format a
    regular file) with fixed PBKDF2 iterations: qemu-img create -f luks
    calibrates the iteration count and fails now and then on a busy host with
    "Unable to get accurate CPU usage". qemu-img then writes the data through
    QEMU's own luks driver, which is also the proof that QEMU reads the header.
    """
    plain, luks = pathlib.Path(plain), pathlib.Path(luks)
    size = plain.stat().st_size
    if size % 512:
        raise ValueError(f"{plain}: size {size} is not a multiple of 512")
    with open(luks, "wb") as f:
        f.truncate(size + LUKS1_PAYLOAD_SECTORS * 512)
    # --key-file - : the whole of stdin is the key, no newline handling.
    p = subprocess.run(["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks1",
                        "--cipher", "aes-xts-plain64", "--key-size", "512", "--hash", "sha256",
                        "--pbkdf-force-iterations", str(iterations),
                        "--align-payload", str(LUKS1_PAYLOAD_SECTORS),
                        "--key-file", "-", str(luks)],
                       input=_secret_bytes(secret), capture_output=True, timeout=120)
    if p.returncode != 0:
        raise GuestError(f"cryptsetup luksFormat {luks}: {p.stderr.decode(errors='replace')}")
    with _Pipes() as pipes:
        secret_file = pipes.add(secret)
        p = subprocess.run([QEMU_IMG, "convert", "-n",
                            "--object", f"secret,id=sec0,file={secret_file},format=raw",
                            "-f", "raw", str(plain), "--target-image-opts",
                            f"driver=luks,key-secret=sec0,file.driver=file,"
                            f"file.filename={_opt(luks)}"],
                           pass_fds=pipes.fds, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise GuestError(f"qemu-img convert {plain} -> {luks}: {p.stderr}")


def _opt(value: Union[str, os.PathLike]) -> str:
    """Escape a value for QEMU's key=value option syntax (',' doubles)."""
    return str(value).replace(",", ",,")


# --- the QEMU command line ------------------------------------------------------

def qemu_command(boot_disk: Disk, data_disks: Sequence[Disk], vars_path: Union[str, os.PathLike],
                 serial: str, pipes: _Pipes, memory_mib: int = DEFAULT_MEMORY_MIB,
                 ovmf_code: Union[str, os.PathLike] = OVMF_CODE,
                 extra: Iterable[str] = ()) -> list:
    """The argument list that boots the guest: q35, TCG, OVMF from pflash
    (code read-only, vars_path writable: give each VM its own copy), no
    default devices, the boot disk as vda with bootindex 0, then the data disks
    as vdb, vdc, ... in order. serial is a QEMU -serial backend ("file:PATH",
    "stdio", "chardev:ID"). Secrets of encrypted disks are added to pipes,
    whose fds the caller must pass to QEMU (pass_fds) and close afterwards."""
    argv = [QEMU,
            "-nodefaults", "-no-user-config",
            "-machine", "q35", "-accel", "tcg",
            "-m", str(memory_mib),
            "-display", "none",
            "-no-reboot",
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={_opt(ovmf_code)}",
            "-drive", f"if=pflash,format=raw,unit=1,file={_opt(vars_path)}",
            "-boot", "strict=on",
            "-serial", serial]
    for i, disk in enumerate([boot_disk, *data_disks]):
        node = f"disk{i}"
        opts = _blockdev_opts(disk, node, pipes, argv)
        argv += ["-blockdev", opts]
        dev = f"virtio-blk-pci,drive={node},id=vd{i}"
        if i == 0:
            dev += ",bootindex=0"
        if disk.serial:
            dev += f",serial={_opt(disk.serial)}"
        argv += ["-device", dev]
    argv += list(extra)
    return argv


def _blockdev_opts(disk: Disk, node: str, pipes: _Pipes, argv: list) -> str:
    ro = "on" if disk.read_only else "off"
    return f"node-name={node},read-only={ro}," + ",".join(_node_opts(disk, node, pipes, argv))


def _node_opts(disk: Disk, node: str, pipes: _Pipes, argv: list, prefix: str = "") -> list:
    """-blockdev options of one image (and, with prefix "backing.", of its
    backing image), adding a secret object per encrypted layer to argv."""
    opts = [f"{prefix}driver={disk.format}",
            f"{prefix}file.driver=file", f"{prefix}file.filename={_opt(disk.path)}"]
    if disk.format not in ("raw", "luks", "qcow2"):
        raise ValueError(f"{disk.path}: unknown format {disk.format!r}")
    if disk.secret is not None:
        if disk.format == "raw":
            raise ValueError(f"{disk.path}: a raw disk takes no secret")
        sid = f"{node}-{prefix.count('backing')}-secret"
        argv += ["-object", f"secret,id={sid},file={pipes.add(disk.secret)},format=raw"]
        if disk.format == "luks":
            opts.append(f"{prefix}key-secret={sid}")
        else:
            opts += [f"{prefix}encrypt.format=luks", f"{prefix}encrypt.key-secret={sid}"]
    elif disk.format == "luks":
        raise ValueError(f"{disk.path}: a luks disk needs its secret")
    if disk.backing is not None:
        if disk.format != "qcow2":
            raise ValueError(f"{disk.path}: only a qcow2 image has a backing image")
        opts += _node_opts(disk.backing, node, pipes, argv, prefix + "backing.")
    return opts


# --- the serial console -------------------------------------------------------

_LINE = re.compile(r"VMSEAL-([A-Za-z0-9][A-Za-z0-9_-]*)(?:=(\S*))?")


def parse_serial(text: str) -> tuple:
    """(values, flags) from a console log: VMSEAL-<key>=<value> lines give
    values[key] = value, VMSEAL-<flag> lines give flags. Firmware escape
    codes or kernel messages before the marker on the same line are ignored.
    A key seen twice with different values is an error (a confused guest)."""
    values, flags = {}, set()
    for line in text.replace("\r", "\n").split("\n"):
        m = _LINE.search(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if value is None:
            flags.add(key)
        elif values.setdefault(key, value) != value:
            raise GuestError(f"the guest reported {key} twice: {values[key]} and {value}")
    return values, flags


# --- booting ------------------------------------------------------------------

def boot(guest: Guest, data_disks: Sequence[Disk] = (), boot_disk: Optional[Disk] = None,
         workdir: Union[str, os.PathLike, None] = None, timeout: float = DEFAULT_TIMEOUT,
         memory_mib: int = DEFAULT_MEMORY_MIB, ovmf_code: Union[str, os.PathLike] = OVMF_CODE,
         ovmf_vars: Union[str, os.PathLike] = OVMF_VARS, extra: Iterable[str] = (),
         check: bool = True) -> BootResult:
    """Boot the guest and return what it printed.

    boot_disk defaults to the guest's ESP, raw and read-only (so that any
    number of VMs can share it). Each boot gets a fresh copy of ovmf_vars in
    workdir (default: a temporary directory, removed afterwards); the console
    goes to workdir/serial.log, QEMU's own output to workdir/qemu.log.

    Raises GuestNotBooted as soon as the firmware says it found nothing it
    could boot (e.g. Secure Boot refused the image: OVMF would then wait for a
    key press forever); GuestError if QEMU fails, or runs past timeout
    seconds (it is killed), or, with check, if the guest did not reach
    VMSEAL-GUEST-DONE.
    """
    if boot_disk is None:
        boot_disk = Disk(guest.esp)
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="vmseal-guest-")
        workdir = tmp.name
    workdir = pathlib.Path(workdir)
    try:
        vars_path = workdir / "OVMF_VARS.fd"
        serial_path = workdir / "serial.log"
        qemu_log = workdir / "qemu.log"
        shutil.copyfile(ovmf_vars, vars_path)
        serial_path.unlink(missing_ok=True)
        with _Pipes() as pipes, open(qemu_log, "wb") as log:
            argv = qemu_command(boot_disk, data_disks, vars_path, f"file:{serial_path}", pipes,
                                memory_mib=memory_mib, ovmf_code=ovmf_code, extra=extra)
            start = time.monotonic()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, pass_fds=pipes.fds,
                                    preexec_fn=_die_with_parent)
            pipes.close()
            try:
                outcome, refused = _watch(proc, serial_path, start + timeout)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            elapsed = time.monotonic() - start
        if outcome == "refused":
            raise GuestNotBooted(refused, _report(
                f"the firmware booted nothing: {', '.join(refused) or 'no boot option'}",
                argv, qemu_log, serial_path))
        if outcome == "timeout":
            raise GuestError(_report(f"the guest did not power off within {timeout:.0f} s",
                                     argv, qemu_log, serial_path))
        serial = serial_path.read_text(errors="replace") if serial_path.exists() else ""
        if proc.returncode != 0:
            raise GuestError(_report(f"QEMU exited with {proc.returncode}",
                                     argv, qemu_log, serial_path))
        values, flags = parse_serial(serial)
        result = BootResult(proc.returncode, elapsed, serial, values, flags, argv)
        if check and not result.done:
            raise GuestError(_report("the guest stopped before VMSEAL-GUEST-DONE",
                                     argv, qemu_log, serial_path))
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


# OVMF's BdsDxe prints these on the console (PlatformBootManagerLib).
_BDS_FAILED = re.compile(r"BdsDxe: failed to (?:load|start) .*: (.+?)\s*$", re.M)
_BDS_NOTHING = "BdsDxe: No bootable option or device was found."


def _die_with_parent():
    """In the child: get SIGKILL when the test process dies (killed by a CTest
    timeout, say), so that no VM outlives its test on a 2-core CI host."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG


def _watch(proc: subprocess.Popen, serial_path: pathlib.Path, deadline: float):
    """Wait for QEMU to exit, the firmware to give up booting, or the
    deadline: ("exited", None), ("refused", [reasons]) or ("timeout", None)."""
    while True:
        try:
            proc.wait(timeout=0.25)
            return "exited", None
        except subprocess.TimeoutExpired:
            pass
        try:
            text = serial_path.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        if _BDS_NOTHING in text:
            return "refused", [m.group(1) for m in _BDS_FAILED.finditer(text.replace("\r", ""))]
        if time.monotonic() >= deadline:
            return "timeout", None


def _report(what: str, argv: list, qemu_log: pathlib.Path, serial_path: pathlib.Path) -> str:
    def read(p):
        return p.read_text(errors="replace") if p.exists() else "(none)"
    tail = "\n".join(read(serial_path).replace("\r", "").splitlines()[-40:])
    return (f"{what}\ncommand: {' '.join(argv)}\n"
            f"--- QEMU output ---\n{read(qemu_log)}"
            f"--- serial console (last 40 lines) ---\n{tail}")


# --- by hand ------------------------------------------------------------------

def _main(argv: Sequence[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(
        prog="guest.py", description="Build or boot vmseal's test guest (docs/testing-guest.md).")
    ap.add_argument("--dir", help="guest directory (default $VMSEAL_BUILD_DIR/test-guest)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build", help="build the guest (or find it up to date)")
    b = sub.add_parser("boot", help="boot it with raw data disks; print what it reports")
    b.add_argument("disks", nargs="*", help="raw data disk images (vdb, vdc, ...)")
    b.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    c = sub.add_parser("command", help="print the QEMU command line for raw data disks")
    c.add_argument("disks", nargs="*")
    args = ap.parse_args(argv)
    g = build_guest(args.dir)
    if args.cmd == "build":
        print(g.dir)
    elif args.cmd == "boot":
        r = boot(g, [Disk(d) for d in args.disks], timeout=args.timeout)
        for k in sorted(r.flags):
            print(f"VMSEAL-{k}")
        for k, v in sorted(r.values.items()):
            print(f"VMSEAL-{k}={v}")
        print(f"# {r.elapsed:.1f} s")
    else:
        with _Pipes() as pipes:
            print(" ".join(qemu_command(Disk(g.esp), [Disk(d) for d in args.disks],
                                        "OVMF_VARS.fd", "stdio", pipes)))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(_main(sys.argv[1:]))
