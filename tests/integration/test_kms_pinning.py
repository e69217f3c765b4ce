"""Pinned client certificates: with [tls] pinned_clients set, only those
certificates are accepted, even among those the CA signed."""
import hashlib
import ssl
import subprocess

import pytest

from kms import KmsServer, Status, call, discover_versions, tls_connect


def fingerprint(cert_path) -> str:
    der = ssl.PEM_cert_to_DER_cert(open(cert_path).read())
    return hashlib.sha256(der).hexdigest()


def test_only_pinned_certificates_are_served(kms_program, tmp_path):
    server = KmsServer(kms_program, tmp_path)
    server.init()
    other_crt, other_key = server.issue_client("not-pinned")
    conf = server.data_dir / "kms.conf"
    conf.write_text(conf.read_text().replace(
        "pinned_clients =", f"pinned_clients = {fingerprint(server.client_crt)}"))
    with server:
        with tls_connect(server, server.client_crt, server.client_key) as s:
            assert call(s, discover_versions()).status == Status.SUCCESS
        # Signed by the same CA, but not pinned: the server closes it.
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with tls_connect(server, other_crt, other_key) as s:
                call(s, discover_versions())
        assert "is not pinned" in server.log()


def test_a_bad_fingerprint_in_the_configuration_is_refused(kms_program, tmp_path):
    server = KmsServer(kms_program, tmp_path)
    server.init()
    conf = server.data_dir / "kms.conf"
    conf.write_text(conf.read_text().replace("pinned_clients =", "pinned_clients = AB:CD"))
    proc = subprocess.run([str(kms_program), "serve", "--data-dir", str(server.data_dir),
                           "--listen", "127.0.0.1:1"], capture_output=True, timeout=30)
    assert proc.returncode == 1
    assert b"pinned_clients" in proc.stderr and b"64 hex digits" in proc.stderr
