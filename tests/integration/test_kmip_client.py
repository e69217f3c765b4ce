"""The blocking KMIP client library (src/kmip/client.c) against a real
server: the key provider's whole flow in KMIP 1.4 and 2.0, failing over
past a server that is down, and failing clearly when none answers."""
import hashlib
import socket
import subprocess

import pytest

from kms import Status, Tag, call, find_all, free_port, get, tls_connect


def run_tool(helper, server, *servers, version="1.4"):
    args = [str(helper("kmip_client_tool")), "--ca", str(server.ca_crt),
            "--cert", str(server.client_crt), "--key", str(server.client_key),
            "--name", "localhost", "--version", version]
    for s in servers:
        args += ["--server", s]
    proc = subprocess.run(args, capture_output=True, timeout=120)
    out = dict(line.split("=", 1) for line in proc.stdout.decode().splitlines() if "=" in line)
    return proc.returncode, out


@pytest.mark.parametrize("version", ["1.4", "2.0"])
def test_key_provider_flow_with_failover(helper, kms_server, version):
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    live = f"127.0.0.1:{kms_server.port}"
    status, out = run_tool(helper, kms_server, dead, live, version=version)
    assert status == 0, out
    assert out["done"] == "1"
    assert out["state_created"] == "Pre-Active"
    assert out["state_activated"] == "Active"
    assert out["key_bytes"] == "32"
    assert out["destroy_active"] == "refused"
    assert out["get_destroyed"] == "refused"
    assert out["probe0"] == "down" and out["probe1"] == "2.1"


def test_key_matches_what_another_client_reads(helper, kms_server):
    """The bytes the library returned are the server's key: an independent
    client (the tests' own TTLV code) reads the same material. Compared by
    SHA-256; the tool never prints the key."""
    args = [str(helper("kmip_client_tool")), "--ca", str(kms_server.ca_crt),
            "--cert", str(kms_server.client_crt), "--key", str(kms_server.client_key),
            "--name", "localhost", "--keep", "--server", f"127.0.0.1:{kms_server.port}"]
    proc = subprocess.run(args, capture_output=True, timeout=120)
    out = dict(line.split("=", 1) for line in proc.stdout.decode().splitlines() if "=" in line)
    assert proc.returncode == 0, out
    with tls_connect(kms_server, kms_server.client_crt, kms_server.client_key) as s:
        res = call(s, get(out["uid"]))
        assert res.status == Status.SUCCESS, res.describe()
        material = find_all(res.ok(), Tag.KEY_MATERIAL)[0].value
    assert hashlib.sha256(material).hexdigest() == out["key_sha256"]


def test_no_server_answers(helper, kms_server):
    status, out = run_tool(helper, kms_server, f"127.0.0.1:{free_port()}",
                           f"127.0.0.1:{free_port()}")
    assert status == 1
    assert out["failed"] == "create"
    assert "no KMIP server answered" in out["error"]
    assert out["error"].count("cannot connect") == 2


def test_untrusted_server_is_refused(helper, kms_server, tmp_path):
    """A server whose certificate does not chain to our CA is not spoken to."""
    other_ca = tmp_path / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / "k"),
                    "-out", str(other_ca), "-subj", "/CN=other", "-days", "1"],
                   check=True, capture_output=True)
    args = [str(helper("kmip_client_tool")), "--ca", str(other_ca),
            "--cert", str(kms_server.client_crt), "--key", str(kms_server.client_key),
            "--name", "localhost", "--server", f"127.0.0.1:{kms_server.port}"]
    proc = subprocess.run(args, capture_output=True, timeout=60)
    out = dict(line.split("=", 1) for line in proc.stdout.decode().splitlines() if "=" in line)
    assert proc.returncode == 1
    assert "server certificate" in out["error"]
