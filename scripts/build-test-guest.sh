#!/usr/bin/env bash
# Build vmseal's test guest from the Debian packages installed on this host:
# a busybox initramfs, a unified kernel image (UKI) and a bootable EFI system
# partition disk image. The guest hashes its data disks and prints the result
# on the serial console, then powers off; docs/testing-guest.md describes it
# and how to boot it.
#
#   scripts/build-test-guest.sh OUTDIR
#
# OUTDIR receives:
#   initramfs.cpio   newc archive, uncompressed (2.2 MB; gzip would halve it
#                    but inflating it under TCG costs more than reading it)
#   vmlinuz          the kernel, as found in /boot
#   guest.efi        the UKI: systemd-stub + .osrel .cmdline .linux .initrd
#   esp.img          raw GPT disk, one EFI system partition (FAT32) holding
#                    \EFI\BOOT\BOOTX64.EFI = guest.efi
#   guest.json       manifest (written last: its presence marks a complete set)
#
# The build is keyed on its inputs (this script, kernel, modules, busybox,
# stub, command line): when guest.json records the same key, nothing is
# rebuilt. Concurrent callers serialise on OUTDIR/.lock. Everything is built
# in a temporary directory under OUTDIR and renamed into place.
#
# Environment (all optional):
#   VMSEAL_GUEST_KVER     kernel version to use (default: newest /boot/vmlinuz-*
#                         with a matching /lib/modules/<kver>/modules.dep)
#   VMSEAL_GUEST_STUB     systemd EFI stub (default: systemd-boot-efi's)
#   VMSEAL_GUEST_BUSYBOX  static busybox (default: /bin/busybox)
#   VMSEAL_GUEST_CMDLINE  kernel command line in the UKI (for experiments;
#                         the default is what the tests expect)
#   SOURCE_DATE_EPOCH     timestamp of the files in the images (default
#                         315532800 = 1980-01-01, the earliest FAT can store)
set -euo pipefail

die() { echo "build-test-guest: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
outdir=$1

PY=/usr/bin/python3
stub=${VMSEAL_GUEST_STUB:-/usr/lib/systemd/boot/efi/linuxx64.efi.stub}
busybox=${VMSEAL_GUEST_BUSYBOX:-/bin/busybox}
# 315532800 = 1980-01-01T00:00:00Z, the FAT epoch.
epoch=${SOURCE_DATE_EPOCH:-315532800}

# console=ttyS0: the only console (QEMU's first serial port, 16550 at 0x3f8).
# quiet: fewer bytes through an emulated UART. panic=-1: a panic reboots at
# once and QEMU's -no-reboot turns that into an exit, so a broken guest ends
# the VM instead of hanging until the harness's timeout.
# Under Secure Boot the stub ignores any command line given by the loader and
# uses this one, so everything the guest needs is here.
cmdline=${VMSEAL_GUEST_CMDLINE:-"console=ttyS0 quiet panic=-1"}

# The drivers the guest needs: virtio-blk over virtio-pci, and efivarfs to
# read the Secure Boot state (the serial console, TPM TIS/CRB and securityfs
# are built in). Their dependencies come from modules.dep.
want_modules=(virtio_pci virtio_blk efivarfs)

# Fixed identifiers so that two builds from the same inputs are identical.
disk_guid=5a1e7e57-0000-4000-8000-766d7365616c   # "vmseal" in the node
esp_part_guid=5a1e7e57-0001-4000-8000-766d7365616c
fat_volid=5EA17E57
esp_size_mib=64

for tool in objcopy sfdisk mkfs.vfat mmd mcopy mdir sha256sum flock; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh installs it)"
done
[ -x "$PY" ] || die "$PY is missing"
[ -f "$stub" ] || die "$stub is missing (package systemd-boot-efi)"
[ -x "$busybox" ] || die "$busybox is missing (package busybox-static)"

# --- kernel ------------------------------------------------------------------
if [ -n "${VMSEAL_GUEST_KVER:-}" ]; then
  kver=$VMSEAL_GUEST_KVER
else
  kver=
  for k in $(for f in /boot/vmlinuz-*; do [ -f "$f" ] && echo "${f#/boot/vmlinuz-}"; done | sort -V); do
    [ -f "/lib/modules/$k/modules.dep" ] && kver=$k
  done
  [ -n "$kver" ] || die "no /boot/vmlinuz-* with /lib/modules/<version>/modules.dep (package linux-image-amd64)"
fi
kernel=/boot/vmlinuz-$kver
moddir=/lib/modules/$kver
[ -f "$kernel" ] || die "$kernel is missing"
[ -r "$kernel" ] || die "$kernel is not readable by $(id -un) (some distributions install it 0600)"
[ -f "$moddir/modules.dep" ] || die "$moddir/modules.dep is missing"

# Resolve the modules to load, dependencies first (post-order walk of
# modules.dep; a module already built into the kernel needs no file).
declare -A dep_of=() by_name=() seen=()
while IFS= read -r line; do
  path=${line%%:*}
  name=${path##*/}; name=${name%%.ko*}; name=${name//-/_}
  by_name[$name]=$path
  dep_of[$path]=${line#*:}
done <"$moddir/modules.dep"

load_order=()
visit() {
  local path=$1 d
  [ -n "${seen[$path]:-}" ] && return 0
  seen[$path]=1
  for d in ${dep_of[$path]}; do visit "$d"; done
  load_order+=("$path")
}
for m in "${want_modules[@]}"; do
  if [ -n "${by_name[$m]:-}" ]; then
    visit "${by_name[$m]}"
  elif grep -q "/$m.ko" "$moddir/modules.builtin" 2>/dev/null; then
    :  # built in
  else
    die "module $m is neither in $moddir/modules.dep nor built in"
  fi
done
# Debian 12 ships modules uncompressed; later releases compress them (the
# signature is inside the compressed payload, so unpacking keeps it valid).
unpack_module() {  # unpack_module SRC DEST
  case $1 in
    *.ko) cp "$1" "$2" ;;
    *.ko.xz) xz -dc "$1" >"$2" ;;
    *.ko.zst) zstd -qdc "$1" >"$2" ;;
    *.ko.gz) gzip -dc "$1" >"$2" ;;
    *) die "$1: unknown module compression" ;;
  esac
}

# --- up to date? --------------------------------------------------------------
# The key covers every input's content, so a kernel update or an edit of this
# script rebuilds; a rebuild with the same inputs gives the same key.
inputs=("$0" "$kernel" "$busybox" "$stub")
for p in "${load_order[@]}"; do inputs+=("$moddir/$p"); done
key=$( { printf 'cmdline=%s\nepoch=%s\nkver=%s\n' "$cmdline" "$epoch" "$kver"
         sha256sum "${inputs[@]}" | awk '{print $1}'; } | sha256sum | awk '{print $1}')

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
exec 9>"$outdir/.lock"
flock 9

if [ -f "$outdir/guest.json" ] &&
   "$PY" - "$outdir" "$key" <<'EOF'
import json, os, sys
out, key = sys.argv[1], sys.argv[2]
try:
    m = json.load(open(os.path.join(out, "guest.json")))
except (OSError, ValueError):
    sys.exit(1)
def present(f):
    p = os.path.join(out, f["file"])
    return os.path.isfile(p) and os.path.getsize(p) == f["size"]
sys.exit(0 if m.get("key") == key and all(map(present, m["files"].values())) else 1)
EOF
then
  echo "build-test-guest: $outdir is up to date (key ${key:0:12})" >&2
  exit 0
fi

work=$(mktemp -d "$outdir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build-test-guest: building kernel $kver into $outdir" >&2

# --- initramfs ----------------------------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,lib/modules,etc}
cp "$busybox" "$root/bin/busybox"
for p in "${load_order[@]}"; do
  m=${p##*/}; m=${m%%.ko*}.ko
  unpack_module "$moddir/$p" "$root/lib/modules/$m"
  echo "$m" >>"$root/etc/modules.order"
done

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
# vmseal test guest: report the SHA-256 and size of every data disk (vdb,
# vdc, ...) on the serial console, then power off. vda is the boot disk.
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

while read -r m; do
  insmod "/lib/modules/$m" || echo "VMSEAL-GUEST-ERROR=insmod $m failed"
done </etc/modules.order

# Output goes through the tty layer; drain it before powering off or the last
# lines can be lost (busybox stty sets attributes with TCSADRAIN).
finish() {
  echo "VMSEAL-GUEST-DONE"
  stty -F /dev/console -echo 2>/dev/null
  sync
  poweroff -f
}

echo "VMSEAL-GUEST-READY"
echo "VMSEAL-KERNEL=$(uname -r)"

# Trusted launch: what the firmware told the kernel, and what a TPM holds.
# SecureBoot is a 1-byte EFI variable after 4 bytes of attributes.
sb=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c
if [ -d /sys/firmware/efi ] && mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null &&
   [ -f $sb ]; then
  # Split on purpose: attributes (4 bytes), then the value. (od -j cannot
  # seek in efivarfs.)
  # shellcheck disable=SC2046
  set -- $(od -An -tu1 $sb)
  echo "VMSEAL-SECUREBOOT=$5"
fi
if mount -t securityfs securityfs /sys/kernel/security 2>/dev/null &&
   [ -f /sys/kernel/security/lockdown ]; then
  lockdown=$(cat /sys/kernel/security/lockdown)
  lockdown=${lockdown#*[}
  echo "VMSEAL-LOCKDOWN=${lockdown%%]*}"
fi
if [ -d /sys/class/tpm/tpm0/pcr-sha256 ]; then
  for n in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    echo "VMSEAL-PCR-SHA256-$n=$(cat /sys/class/tpm/tpm0/pcr-sha256/$n)"
  done
fi

# virtio-blk devices are probed while insmod runs, so they are normally there
# already; still allow a bounded wait of 5 s for vdb.
n=0
while [ ! -b /dev/vdb ] && [ $n -lt 50 ]; do
  sleep 0.1
  n=$((n + 1))
done

if [ ! -b /dev/vdb ]; then
  echo "VMSEAL-DATA-MISSING=/dev/vdb"
fi

for dev in /dev/vd[b-z]; do
  [ -b "$dev" ] || continue
  name=${dev#/dev/}
  size=$(blockdev --getsize64 "$dev")
  sum=$(sha256sum "$dev") || echo "VMSEAL-DISK-$name-ERROR=read failed"
  sum=${sum%% *}
  serial=$(cat "/sys/block/$name/serial" 2>/dev/null)
  if [ "$name" = vdb ]; then
    echo "VMSEAL-DATA-SHA256=$sum"
    echo "VMSEAL-DATA-SIZE=$size"
  fi
  echo "VMSEAL-DISK-$name-SHA256=$sum"
  echo "VMSEAL-DISK-$name-SIZE=$size"
  [ -n "$serial" ] && echo "VMSEAL-DISK-$name-SERIAL=$serial"
done
finish
INIT
chmod 0755 "$root/init"

# A newc archive written here rather than by cpio(1): fixed owner, times and
# inode numbers, sorted names, so the same inputs give the same bytes; and
# /dev/console, which the kernel opens for /init's output before /init runs
# (an archive can hold a device node without root).
"$PY" - "$root" "$work/initramfs.cpio" "$epoch" <<'EOF'
import os, stat, sys
root, out, mtime = sys.argv[1], sys.argv[2], int(sys.argv[3])
entries = ["dev/console"]
for d, dirs, files in os.walk(root):
    dirs.sort()
    for n in sorted(dirs + files):
        entries.append(os.path.relpath(os.path.join(d, n), root))
entries.sort()
def hdr(ino, mode, nlink, size, name, rdev=(0, 0)):
    fields = [ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    h = b"070701" + b"".join(b"%08X" % v for v in fields) + name.encode() + b"\0"
    return h + b"\0" * (-len(h) % 4)
with open(out, "wb") as f:
    for ino, rel in enumerate(entries, start=1):
        if rel == "dev/console":
            f.write(hdr(ino, stat.S_IFCHR | 0o600, 1, 0, rel, rdev=(5, 1)))
            continue
        p = os.path.join(root, rel)
        st = os.lstat(p)
        if stat.S_ISDIR(st.st_mode):
            f.write(hdr(ino, stat.S_IFDIR | 0o755, 2, 0, rel))
            continue
        data = open(p, "rb").read()
        perm = 0o755 if st.st_mode & 0o111 else 0o644
        f.write(hdr(ino, stat.S_IFREG | perm, 1, len(data), rel))
        f.write(data + b"\0" * (-len(data) % 4))
    f.write(hdr(0, 0, 1, 0, "TRAILER!!!"))
EOF

# --- unified kernel image -----------------------------------------------------
# systemd 252's stub finds .osrel, .cmdline, .linux and .initrd by name in its
# own loaded image, so each must be a loadable section with a virtual address
# past the stub's last section and clear of the others (what ukify does).
cp "$kernel" "$work/vmlinuz"
printf '%s' "$cmdline" >"$work/cmdline.txt"
cat >"$work/os-release" <<EOF
NAME="vmseal test guest"
ID=vmseal-test-guest
PRETTY_NAME="vmseal test guest (kernel $kver)"
VERSION_ID="$kver"
EOF

read -r stub_end sect_align < <("$PY" - "$stub" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
pe = struct.unpack_from("<I", d, 0x3c)[0]
assert d[pe:pe + 4] == b"PE\0\0", "not a PE image"
nsect = struct.unpack_from("<H", d, pe + 6)[0]
optsz = struct.unpack_from("<H", d, pe + 20)[0]
opt = pe + 24
align = struct.unpack_from("<I", d, opt + 32)[0]
end = 0
for i in range(nsect):
    s = opt + optsz + 40 * i
    vsize, vaddr = struct.unpack_from("<II", d, s + 8)
    end = max(end, vaddr + vsize)
print(end, align)
EOF
)
align=$(( sect_align > 4096 ? sect_align : 4096 ))
up() { echo $(( ($1 + align - 1) / align * align )); }
vma=$(up "$stub_end")
objcopy_args=()
sections_json=
for s in osrel:os-release cmdline:cmdline.txt linux:vmlinuz initrd:initramfs.cpio; do
  sect=.${s%%:*}; file=$work/${s#*:}
  size=$(stat -c %s "$file")
  objcopy_args+=(--add-section "$sect=$file" --change-section-vma "$sect=$(printf '0x%x' "$vma")")
  sections_json+="${sections_json:+,}\"$sect\":{\"vma\":$vma,\"size\":$size}"
  vma=$(up $(( vma + size )))
done
objcopy "${objcopy_args[@]}" "$stub" "$work/guest.efi"
# objcopy stamps the PE header with the current time (binutils 2.40 ignores
# SOURCE_DATE_EPOCH here): put the stub's own stamp back and recompute the
# PE checksum, then check that every section landed where it was meant to.
"$PY" - "$stub" "$work/guest.efi" <<'EOF' || die "the UKI is malformed"
import struct, sys
stub = open(sys.argv[1], "rb").read()
d = bytearray(open(sys.argv[2], "rb").read())
pe = struct.unpack_from("<I", d, 0x3c)[0]
stub_pe = struct.unpack_from("<I", stub, 0x3c)[0]
d[pe + 8:pe + 12] = stub[stub_pe + 8:stub_pe + 12]         # TimeDateStamp
nsect, optsz = struct.unpack_from("<H", d, pe + 6)[0], struct.unpack_from("<H", d, pe + 20)[0]
opt = pe + 24
sects, prev_end = {}, 0
for i in range(nsect):
    s = opt + optsz + 40 * i
    name = bytes(d[s:s + 8]).rstrip(b"\0").decode()
    vsize, vaddr = struct.unpack_from("<II", d, s + 8)
    assert vaddr >= prev_end, f"section {name} overlaps the one before it"
    prev_end = vaddr + vsize
    sects[name] = vaddr
for name in (".osrel", ".cmdline", ".linux", ".initrd"):
    assert name in sects, f"{name} is missing"
# PE checksum (as imagehlp's CheckSumMappedFile): 16-bit one's-complement-
# style sum of the file with the checksum field taken as zero, plus its length.
ck = opt + 64
d[ck:ck + 4] = b"\0\0\0\0"
data = bytes(d) + (b"\0" if len(d) % 2 else b"")
total = sum(struct.unpack(f"<{len(data) // 2}H", data))
while total >> 16:
    total = (total & 0xFFFF) + (total >> 16)
struct.pack_into("<I", d, ck, total + len(d))
open(sys.argv[2], "wb").write(d)
EOF

# --- EFI system partition disk ----------------------------------------------
# GPT with one partition from 1 MiB to 1 MiB before the end (the backup GPT
# lives in the last 33 sectors). The FAT is made in its own file, since
# mkfs.vfat cannot write at an offset without a loop device, then copied in.
part_start=2048
part_sectors=$(( (esp_size_mib - 2) * 2048 ))
truncate -s "${esp_size_mib}M" "$work/esp.img"
sfdisk --quiet --no-reread --no-tell-kernel "$work/esp.img" >/dev/null <<EOF
label: gpt
label-id: $disk_guid
first-lba: 2048
start=$part_start, size=$part_sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$esp_part_guid, name="EFI system partition"
EOF

fat=$work/fat.img
truncate -s $(( part_sectors * 512 )) "$fat"
# FAT32 with 512-byte clusters (62 MiB is too small for FAT32's minimum
# cluster count otherwise); --invariant fixes the dates mkfs would take from
# the clock.
SOURCE_DATE_EPOCH=$epoch mkfs.vfat -F 32 -s 1 -S 512 -n VMSEALESP -i "$fat_volid" \
  --invariant "$fat" >/dev/null
touch -d "@$epoch" "$work/guest.efi"
export SOURCE_DATE_EPOCH=$epoch MTOOLS_SKIP_CHECK=1
mmd -i "$fat" ::/EFI ::/EFI/BOOT
mcopy -m -i "$fat" "$work/guest.efi" ::/EFI/BOOT/BOOTX64.EFI
mdir -i "$fat" ::/EFI/BOOT/BOOTX64.EFI >/dev/null || die "BOOTX64.EFI did not land on the ESP"
dd if="$fat" of="$work/esp.img" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$fat"

# --- manifest, then move into place ------------------------------------------
"$PY" - "$work" "$key" "$kver" "$cmdline" "$part_start" "$part_sectors" \
       "$disk_guid" "$esp_part_guid" "{$sections_json}" "${load_order[@]}" <<'EOF'
import hashlib, json, os, sys
work, key, kver, cmdline, pstart, psect, dguid, pguid, sections = sys.argv[1:10]
mods = [os.path.basename(m).split(".ko")[0] + ".ko" for m in sys.argv[10:]]
def info(name, what):
    p = os.path.join(work, name)
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return {"file": name, "size": os.path.getsize(p), "sha256": h.hexdigest(), "what": what}
m = {
    "format": 1,
    "key": key,
    "kernel_version": kver,
    "cmdline": cmdline,
    "modules": mods,
    "files": {
        "esp": info("esp.img", "raw GPT disk; EFI system partition with \\EFI\\BOOT\\BOOTX64.EFI = the UKI"),
        "uki": info("guest.efi", "unified kernel image (systemd-stub 252), unsigned"),
        "kernel": info("vmlinuz", "the kernel inside the UKI"),
        "initramfs": info("initramfs.cpio", "newc cpio, uncompressed: busybox, virtio modules, /init"),
    },
    "uki_sections": json.loads(sections),
    "esp_partition": {"start_lba": int(pstart), "sectors": int(psect), "disk_guid": dguid,
                      "partition_guid": pguid, "filesystem": "FAT32", "path": "/EFI/BOOT/BOOTX64.EFI"},
    "console": {"serial": "ttyS0 (first 16550)", "ready": "VMSEAL-GUEST-READY",
                "done": "VMSEAL-GUEST-DONE"},
    "docs": "docs/testing-guest.md",
}
with open(os.path.join(work, "guest.json.new"), "w") as f:
    json.dump(m, f, indent=2, sort_keys=True)
    f.write("\n")
EOF

# guest.json goes first (so a half-replaced set is never taken as current)
# and comes back last; each file is renamed, so none is ever half written.
rm -f "$outdir/guest.json"
for f in initramfs.cpio vmlinuz guest.efi esp.img; do
  mv -f "$work/$f" "$outdir/$f"
done
mv -f "$work/guest.json.new" "$outdir/guest.json"
echo "build-test-guest: done ($outdir)" >&2
