"""Connections that do nothing, or dribble, cost the server no thread and do
not starve anyone: with 1500 silent TCP connections, 200 idle TLS sessions
and a slow writer open, a new client is answered promptly; and the server
closes the silent ones after handshake_timeout and the idle ones after
idle_timeout. With several network threads, concurrent clients all get
their answers."""
import os
import socket
import ssl
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from kms import (KmsServer, Status, Tag, call, create_aes, discover_versions, find_all, get,
                 tls_connect)

SILENT = 1500
IDLE_TLS = 200


def closed_by_peer(sock) -> bool:
    """True if the server has closed (or reset) the connection."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return False  # nothing to read yet: still open
    except (ConnectionResetError, ssl.SSLError, OSError):
        return True
    finally:
        sock.setblocking(True)


@pytest.fixture
def short_timeouts_server(kms_program, tmp_path):
    server = KmsServer(kms_program, tmp_path)
    server.init()
    conf = server.data_dir / "kms.conf"
    text = conf.read_text()
    text = text.replace("idle_timeout = 120s", "idle_timeout = 4s")
    text = text.replace("handshake_timeout = 10s", "handshake_timeout = 2s")
    conf.write_text(text)
    with server:
        yield server


def test_idle_and_slow_connections_do_not_starve_others(short_timeouts_server):
    server = short_timeouts_server
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(SILENT)]
    idle = [tls_connect(server, server.client_crt, server.client_key) for _ in range(IDLE_TLS)]
    # A slow writer: the first 5 bytes of a request, then nothing.
    slow = tls_connect(server, server.client_crt, server.client_key)
    slow.sendall(b"\x42\x00\x78\x01\x00")

    worst = 0.0
    with tls_connect(server, server.client_crt, server.client_key) as s:
        for _ in range(30):
            t0 = time.monotonic()
            assert call(s, discover_versions()).status == Status.SUCCESS
            res = call(s, create_aes(256))
            assert res.status == Status.SUCCESS
            assert call(s, get(res.uid())).status == Status.SUCCESS
            worst = max(worst, time.monotonic() - t0)
    print(f"worst Discover+Create+Get with {SILENT + IDLE_TLS + 1} idle connections: "
          f"{worst * 1000:.0f} ms")
    assert worst < 2.0, f"a round trip took {worst:.2f} s with idle connections open"

    # The server sheds them on its own: silent TCP after the handshake
    # timeout, idle TLS (and the slow writer) after the idle timeout.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(closed_by_peer(c) for c in silent) and all(closed_by_peer(c) for c in idle) \
                and closed_by_peer(slow):
            break
        time.sleep(0.5)
    assert all(closed_by_peer(c) for c in silent), "silent TCP connections were not closed"
    assert all(closed_by_peer(c) for c in idle), "idle TLS connections were not closed"
    assert closed_by_peer(slow), "the slow writer was not closed"
    for c in silent + idle + [slow]:
        c.close()
    # And it still serves.
    with tls_connect(server, server.client_crt, server.client_key) as s:
        assert call(s, discover_versions()).status == Status.SUCCESS


NETWORK_THREADS = 3
CLIENTS = 6
ROUNDS = 15


def server_with(kms_program, tmp_path, line: str, replacement: str) -> KmsServer:
    """A fresh server whose kms.conf, as init wrote it, has `line`, replaced."""
    server = KmsServer(kms_program, tmp_path)
    server.init()
    conf = server.data_dir / "kms.conf"
    text = conf.read_text()
    assert line in text
    conf.write_text(text.replace(line, replacement))
    return server


def serve_once(server: KmsServer) -> subprocess.CompletedProcess:
    """Runs `serve` on the server's data directory, expecting it to stop."""
    return subprocess.run([server.binary, "serve", "--data-dir", str(server.data_dir),
                           "--listen", "127.0.0.1:1"], capture_output=True, timeout=30)


def test_clients_spread_over_network_threads_all_get_their_answers(kms_program, tmp_path):
    """With several network threads, concurrent clients, each on its own
    persistent connection and on fresh ones, get every answer right: writes
    go to the workers and come back to the thread that owns the connection.
    The server then stops cleanly (the fixture checks its exit status)."""
    server = server_with(kms_program, tmp_path, "network_threads = 0",
                         f"network_threads = {NETWORK_THREADS}")

    def client(n: int) -> int:
        done = 0
        with tls_connect(server, server.client_crt, server.client_key) as s:
            for _ in range(ROUNDS):
                uid = call(s, create_aes(256)).uid()  # a worker
                with tls_connect(server, server.client_crt, server.client_key) as fresh:
                    res = call(fresh, get(uid))  # answered on a network thread
                    assert res.status == Status.SUCCESS, res.describe()
                    assert find_all(res.ok(), Tag.UNIQUE_IDENTIFIER)[0].value == uid
                done += 1
        return done

    with server:
        with ThreadPoolExecutor(CLIENTS) as pool:
            assert list(pool.map(client, range(CLIENTS))) == [ROUNDS] * CLIENTS
        assert f"network_threads={NETWORK_THREADS}" in server.log()


def test_network_threads_out_of_range_is_refused(kms_program, tmp_path):
    proc = serve_once(server_with(kms_program, tmp_path, "network_threads = 0",
                                  "network_threads = 65"))
    assert proc.returncode == 1
    assert b"network_threads" in proc.stderr


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("busy_poll_us", [0, 50, 10000])
def test_busy_polling_answers_and_stops_when_requests_stop(kms_program, tmp_path, busy_poll_us):
    """Whatever busy_poll_us is, back-to-back requests on one connection are
    answered; and once they stop, the network threads go to sleep: an idle
    server burns no CPU, even after polling for 10 ms after every answer."""
    server = server_with(kms_program, tmp_path, "busy_poll_us = 50",
                         f"busy_poll_us = {busy_poll_us}")
    with server:
        with tls_connect(server, server.client_crt, server.client_key) as s:
            uid = call(s, create_aes(256)).uid()
            for _ in range(500):
                res = call(s, get(uid))
                assert res.status == Status.SUCCESS, res.describe()
            time.sleep(0.2)  # past any polling window
            before = cpu_seconds(server.proc.pid)
            time.sleep(2.0)
            idle_cpu = cpu_seconds(server.proc.pid) - before
            assert call(s, get(uid)).status == Status.SUCCESS
        print(f"busy_poll_us={busy_poll_us}: {idle_cpu:.2f} CPU s in 2 s idle")
        assert idle_cpu < 0.2, f"an idle server used {idle_cpu:.2f} s of CPU in 2 s"


@pytest.mark.parametrize("value", ["10001", "-1", "fast"])
def test_busy_poll_out_of_range_is_refused(kms_program, tmp_path, value):
    proc = serve_once(server_with(kms_program, tmp_path, "busy_poll_us = 50",
                                  f"busy_poll_us = {value}"))
    assert proc.returncode == 1
    assert b"busy_poll_us" in proc.stderr
