"""Crash safety of core's atomic file write: SIGKILL at random moments while
a file is being rewritten; afterwards the file must hold one complete
generation, never a torn one, and never one older than the last write that
was acknowledged."""
import os
import random
import re
import signal
import subprocess
import time

ROUNDS = 60
HEADER = re.compile(rb"gen (\d+) len (\d+)\n")


def expected_content(gen: int) -> bytes:
    length = 4096 + (gen * 7919) % (1 << 20)
    body = bytes(((gen * 31 + i) & 0xFF) for i in range(length))
    return b"gen %d len %d\n" % (gen, length) + body


def check_file(path, durable: int) -> int:
    """durable: the newest generation known to be on disk (acknowledged in
    this round, or found there before it started)."""
    data = open(path, "rb").read()
    m = HEADER.match(data)
    assert m, f"file does not start with a header: {data[:40]!r}"
    gen = int(m.group(1))
    # That generation, or the one in flight after it, must be there.
    assert gen >= durable, f"acknowledged generation {durable} lost: found {gen}"
    assert gen <= durable + 1, f"generation {gen} was never started"
    assert data == expected_content(gen), f"generation {gen} is torn or corrupt"
    return gen


def test_sigkill_never_tears_or_loses_a_file(helper, tmp_path):
    rng = random.Random(os.environ.get("VMSEAL_TEST_SEED", "atomic"))
    path = tmp_path / "vm.json"
    kills_mid_write = 0
    on_disk = 0  # generation on disk before this round
    for _ in range(ROUNDS):
        # Like a restarted daemon, the writer carries on from what is there.
        proc = subprocess.Popen([helper("atomic_writer"), str(path), str(on_disk + 1)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Let it get going, then kill it at a random instant.
        time.sleep(rng.uniform(0.005, 0.08))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err.decode()
        acks = [int(line.split()[1]) for line in out.decode().splitlines()
                if line.startswith("ack ")]
        durable = acks[-1] if acks else on_disk
        if not path.exists():
            assert durable == 0, "a file that was acknowledged has vanished"
            continue
        gen = check_file(path, durable)
        on_disk = gen
        if gen == durable + 1 or any(p.name.startswith("vm.json.tmp-") for p in tmp_path.iterdir()):
            kills_mid_write += 1
        # Clear leftovers from the killed write; the next round starts over.
        for p in tmp_path.iterdir():
            if p.name.startswith("vm.json.tmp-"):
                p.unlink()
    # The test means something only if kills really landed mid-write.
    assert kills_mid_write > ROUNDS // 4, f"only {kills_mid_write} kills landed mid-write"


def test_writer_reports_errors(helper, tmp_path):
    """A path in a missing directory: the helper reports the failure."""
    proc = subprocess.run([helper("atomic_writer"), str(tmp_path / "no" / "f"), "1"],
                          capture_output=True, timeout=30)
    assert proc.returncode == 1
    assert b"No such file or directory" in proc.stderr
    proc = subprocess.run([helper("atomic_writer"), str(tmp_path / "f"), "x"],
                          capture_output=True, timeout=30)
    assert proc.returncode == 2 and b"usage" in proc.stderr


SYSCALL = re.compile(r'^\d+ +(openat|write|fsync|rename|close)\((.*)\) += (-?\d+)')


def test_durability_order_of_system_calls(helper, tmp_path):
    """SIGKILL leaves the page cache intact, so the test above would pass
    without any fsync. The order that makes a write survive power loss is
    checked here, on the system calls themselves: the temporary file is
    written and fsynced before the rename, and the directory is fsynced
    after it, before the write is acknowledged."""
    path = tmp_path / "vm.json"
    trace = tmp_path / "trace"
    proc = subprocess.Popen(["strace", "-f", "-o", str(trace), "-e",
                             "trace=openat,write,fsync,rename,close",
                             str(helper("atomic_writer")), str(path), "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    # Wait for three acknowledged writes, then stop.
    for _ in range(3):
        assert proc.stdout.readline().startswith(b"ack ")
    proc.kill()
    proc.wait()

    calls = []
    for line in trace.read_text().splitlines():
        m = SYSCALL.match(line)
        if m:
            calls.append((m.group(1), m.group(2), int(m.group(3))))
    tmp_prefix = str(path) + ".tmp-"
    # Follow the first complete write through the trace.
    opened = next(i for i, c in enumerate(calls)
                  if c[0] == "openat" and tmp_prefix in c[1] and "O_EXCL" in c[1])
    fd = calls[opened][2]
    rest = calls[opened + 1:]
    fsync_file = next(i for i, c in enumerate(rest) if c[0] == "fsync" and c[1] == str(fd))
    renamed = next(i for i, c in enumerate(rest) if c[0] == "rename")
    assert tmp_prefix in rest[renamed][1] and rest[renamed][1].endswith(f'"{path}"')
    assert any(c[0] == "write" and c[1].startswith(f"{fd},") for c in rest[:fsync_file]), \
        "data must be written before the fsync"
    assert fsync_file < renamed, "the temporary file must be fsynced before the rename"
    dir_open = next(i for i, c in enumerate(rest[renamed:]) if c[0] == "openat"
                    and "O_DIRECTORY" in c[1] and f'"{tmp_path}"' in c[1]) + renamed
    dir_fd = rest[dir_open][2]
    assert any(c[0] == "fsync" and c[1] == str(dir_fd) for c in rest[dir_open:dir_open + 3]), \
        "the directory must be fsynced after the rename"
    # The file was created with O_EXCL|O_NOFOLLOW: nothing planted is followed.
    assert "O_NOFOLLOW" in calls[opened][1]
