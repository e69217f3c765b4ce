"""Key provider administration through vmseald's API (docs/api.md, "Key
providers", "Host"; docs/keyprov.md, "Establishing trust"), against a real
vmseal-kms and, where cheap, PyKMIP:

- the CSR flow: a provider created with its servers only is not
  configured and its health says so; the server's certificate is fetched
  and its fingerprint is the one `openssl x509 -fingerprint -sha256` prints
  for the KMS's server.crt; it is pinned; our CSR is signed by the KMS's CA
  (`vmseal-kms pki sign-csr`) and uploaded; health is then "ok" with the
  server's KMIP versions, and an encrypted VM is created with the provider;
  removing the provider is then refused, and nothing changes;
- the self-signed flow: vmseal-kms trusts our self-signed certificate once
  it is in its client_ca and pinned by fingerprint (docs/vcenter.md, 3c);
  before that, health reports a TLS error;
- PyKMIP, trusting its CA and uploading a certificate with its key;
- refusals: a wrong fingerprint confirmation, a signed certificate that is
  not for the pending CSR's key, garbage PEM texts, the last server, the
  default provider while others exist; an unreachable server reported as
  such within a few seconds.

Root over the socket is the administrator: privileges are tested elsewhere.
"""
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from kms import KmsServer, Status, call, discover_versions, free_port, tls_connect
from vmseald import Vmseald

MIB = 1 << 20
TASK_SECONDS = 300


@pytest.fixture
def d(tmp_path):
    from conftest import BUILD_DIR
    daemon = Vmseald(BUILD_DIR, tmp_path / "vmseald")
    daemon.start()
    yield daemon
    daemon.stop()
    shutil.rmtree(daemon.runtime, ignore_errors=True)


def ok(d, method, path, body=None, status=200):
    got, answer = d.api(method, path, body)
    assert got == status, f"{method} {path}: {got} {answer}"
    return answer


def refused(d, method, path, body, status, code, says=()):
    got, answer = d.api(method, path, body)
    assert got == status, f"{method} {path}: expected {status}, got {got} {answer}"
    assert answer["error"]["code"] == code, answer
    for s in ([says] if isinstance(says, str) else says):
        assert s in answer["error"]["message"], answer
    return answer["error"]["message"]


def openssl_fingerprint(cert_path) -> str:
    """What an operator compares: `openssl x509 -fingerprint -sha256`, as
    lower-case hex without colons."""
    out = subprocess.run(["openssl", "x509", "-in", str(cert_path), "-noout", "-fingerprint",
                          "-sha256"], capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1].replace(":", "").lower()


def pem_fingerprint(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def sign_csr(kms, csr_pem: str, tmp_path, name="vmseal.csr") -> str:
    path = tmp_path / name
    path.write_text(csr_pem)
    signed = subprocess.run([kms.binary, "pki", "sign-csr", "--data-dir", str(kms.data_dir),
                             str(path)], capture_output=True, text=True, timeout=60)
    assert signed.returncode == 0, signed.stderr
    assert "BEGIN CERTIFICATE" in signed.stdout
    return signed.stdout


def servers_of(provider):
    return {s["address"]: s for s in provider["servers"]}


def wait_task(d, task):
    deadline = time.time() + TASK_SECONDS
    while task["state"] in ("queued", "running"):
        assert time.time() < deadline, f"task {task['id']} did not finish"
        time.sleep(0.2)
        task = ok(d, "GET", f"/v1/tasks/{task['id']}")["task"]
    return task


def providers_json(d) -> bytes:
    return (d.data / "providers.json").read_bytes()


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    return free_port()


# --------------------------------------------------------------------------
# The CSR flow, with the server's certificate pinned

def test_csr_flow_with_pinned_server_certificate(d, kms_server, tmp_path):
    addr = f"127.0.0.1:{kms_server.port}"
    p = ok(d, "POST", "/v1/providers", {"name": "kms", "type": "standard", "servers": [addr]},
           status=201)["provider"]
    assert p["configured"] is False and p["trust"] is None and p["client_certificate"] is None
    assert p["default"] is True

    listed = ok(d, "GET", "/v1/providers")["providers"]
    assert [x["name"] for x in listed] == ["kms"]
    health = servers_of(listed[0])[addr]
    assert health["status"] == "not_configured", health
    assert "not configured" in health["error"]

    # We trust the KMS: its certificate, confirmed by its fingerprint.
    sc = ok(d, "POST", "/v1/providers/kms/server-certificate", {})["server_certificate"]
    assert sc["address"] == addr
    assert sc["sha256"] == openssl_fingerprint(kms_server.pki / "server.crt")
    assert sc["sha256"] == pem_fingerprint(sc["pem"])
    assert sc["sha256_colons"].replace(":", "").lower() == sc["sha256"]
    assert "vmseal-kms development CA" in sc["issuer"]
    assert sc["chain_length"] >= 1
    assert ok(d, "POST", "/v1/providers/kms/server-certificate", {"address": addr}
              )["server_certificate"]["sha256"] == sc["sha256"]
    p = ok(d, "POST", "/v1/providers/kms/trust",
           {"server_certificate_pem": sc["pem"], "fingerprint": sc["sha256_colons"]})["provider"]
    assert p["trust"] == "pinned" and p["pinned_sha256"] == sc["sha256"]
    assert p["configured"] is False

    # The KMS trusts us: our CSR, signed by its CA.
    answer = ok(d, "POST", "/v1/providers/kms/client/csr", {})
    assert "BEGIN CERTIFICATE REQUEST" in answer["csr_pem"]
    assert answer["provider"]["csr_pending"] is True
    signed = sign_csr(kms_server, answer["csr_pem"], tmp_path)
    p = ok(d, "POST", "/v1/providers/kms/client/certificate",
           {"certificate_pem": signed})["provider"]
    assert p["configured"] is True and p["csr_pending"] is False
    assert p["client_certificate"]["sha256"] == pem_fingerprint(signed)
    assert "vmseal-kms development CA" in p["client_certificate"]["issuer"]
    # The private key stayed here, sealed.
    for f in (d.data / "providers" / "kms").iterdir():
        assert b"PRIVATE KEY" not in f.read_bytes(), f

    p = ok(d, "GET", "/v1/providers/kms")["provider"]
    health = servers_of(p)[addr]
    assert health["status"] == "ok", health
    assert "1.4" in health["versions"] and health["error"] is None
    assert isinstance(health["latency_ms"], int)

    # An encrypted VM with it (the host enters encryption mode on the way,
    # its key from the default provider: this one).
    task = ok(d, "POST", "/v1/vms", {"name": "kpvm", "disks": [MIB], "encrypt": True,
                                     "provider": "kms"}, status=202)["task"]
    task = wait_task(d, task)
    assert task["state"] == "success", task
    vm = ok(d, "GET", "/v1/vms/kpvm")["vm"]
    assert vm["encrypted"] is True and vm["provider"] == "kms"
    host = ok(d, "GET", "/v1/host")["host"]
    assert host["encryption_mode"] == "safe" and host["host_key"]["provider"] == "kms"
    assert host["vms"] == 1 and host["providers"] == 1
    # Both keys are at the KMS: what vCenter's host and VM keys look like.
    kms_audit = (kms_server.data_dir / "audit.log").read_text()
    assert vm["key_id"] in kms_audit and host["host_key"]["key_id"] in kms_audit

    # In use: removal refused, nothing changed.
    before = providers_json(d)
    refused(d, "DELETE", "/v1/providers/kms", None, 409, "vm_state",
            "provider 'kms' is in use by VM 'kpvm'")
    assert providers_json(d) == before
    assert (d.data / "providers" / "kms" / "key.sealed").exists()
    assert ok(d, "GET", "/v1/providers/kms?health=0")["provider"]["configured"] is True
    assert ok(d, "GET", "/v1/vms/kpvm")["vm"]["state"] == "off"


# --------------------------------------------------------------------------
# The self-signed flow: the KMS pins our certificate

def test_self_signed_flow(d, kms_program, tmp_path):
    kms = KmsServer(kms_program, tmp_path)
    kms.init()
    kms.start()
    try:
        addr = f"127.0.0.1:{kms.port}"
        ok(d, "POST", "/v1/providers", {"name": "kms", "type": "standard", "servers": [addr]},
           status=201)
        # We trust the KMS by its CA this time ("upload a CA").
        p = ok(d, "POST", "/v1/providers/kms/trust",
               {"ca_pem": (kms.pki / "ca.crt").read_text()})["provider"]
        assert p["trust"] == "ca"
        answer = ok(d, "POST", "/v1/providers/kms/client/self-signed", {})
        cert = answer["certificate_pem"]
        assert answer["provider"]["configured"] is True
        fp = pem_fingerprint(cert)
        assert answer["provider"]["client_certificate"]["sha256"] == fp
        subject = answer["provider"]["client_certificate"]["subject"]
        assert subject == answer["provider"]["client_certificate"]["issuer"]

        # Not registered at the KMS yet: the TLS handshake fails, and says so.
        health = servers_of(ok(d, "GET", "/v1/providers/kms")["provider"])[addr]
        assert health["status"] == "tls_error", health
        refused(d, "POST", "/v1/host/encryption", {}, 502, "provider_unavailable")

        # Register it (docs/vcenter.md, 3c): in client_ca, and pinned.
        assert kms.stop() is None
        (kms.data_dir / "client-ca.pem").write_text((kms.pki / "ca.crt").read_text() + cert)
        conf = kms.data_dir / "kms.conf"
        text = conf.read_text()
        assert "client_ca = pki/ca.crt" in text and "pinned_clients =" in text
        conf.write_text(text.replace("client_ca = pki/ca.crt", "client_ca = client-ca.pem")
                        .replace("pinned_clients =", f"pinned_clients = {fp}"))
        kms.start(port=kms.port)

        health = servers_of(ok(d, "GET", "/v1/providers/kms")["provider"])[addr]
        assert health["status"] == "ok", health
        host = ok(d, "POST", "/v1/host/encryption", {})["host"]
        assert host["encryption_mode"] == "safe" and host["host_key"]["provider"] == "kms"
        # Idempotent: the same key.
        again = ok(d, "POST", "/v1/host/encryption", {})["host"]
        assert again["host_key"] == host["host_key"]
        last = json.loads((kms.data_dir / "audit.log").read_text().splitlines()[-1])
        assert last["identity"] == subject.removeprefix("CN=")
        # The KMS's own development client is not pinned: only ours gets in.
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with tls_connect(kms, kms.client_crt, kms.client_key) as s:
                assert call(s, discover_versions()).status != Status.SUCCESS
    finally:
        kms.stop()


# --------------------------------------------------------------------------
# PyKMIP: trust its CA, upload a certificate with its key

def test_pykmip_ca_and_uploaded_certificate(d, kms_program, tmp_path):
    from test_keyprov_standard import PyKmipServer
    pki = KmsServer(kms_program, tmp_path, name="pki")
    pki.init()
    pyk = PyKmipServer(pki.pki, tmp_path)
    pyk.start()
    try:
        addr = f"127.0.0.1:{pyk.port}"
        ok(d, "POST", "/v1/providers", {"name": "pyk", "type": "standard", "servers": [addr]},
           status=201)
        ok(d, "POST", "/v1/providers/pyk/trust", {"ca_pem": pyk.ca_crt.read_text()})
        p = ok(d, "POST", "/v1/providers/pyk/client/certificate",
               {"certificate_pem": pyk.client_crt.read_text(),
                "key_pem": pyk.client_key.read_text()})["provider"]
        assert p["configured"] is True
        assert p["client_certificate"]["sha256"] == openssl_fingerprint(pyk.client_crt)
        health = servers_of(ok(d, "GET", "/v1/providers")["providers"][0])[addr]
        assert health["status"] == "ok", (health, pyk.log())
        assert health["versions"], health
        host = ok(d, "POST", "/v1/host/encryption", {})["host"]
        assert host["host_key"]["provider"] == "pyk"
    finally:
        pyk.stop()


# --------------------------------------------------------------------------
# Refusals

def test_refusals_change_nothing(d, kms_server, tmp_path):
    addr = f"127.0.0.1:{kms_server.port}"
    ok(d, "POST", "/v1/providers", {"name": "kms", "type": "standard", "servers": [addr]},
       status=201)
    sc = ok(d, "POST", "/v1/providers/kms/server-certificate", {})["server_certificate"]
    before = providers_json(d)

    # A fingerprint that is not the certificate's: refused, trust unchanged.
    wrong = "00" * 32
    refused(d, "POST", "/v1/providers/kms/trust",
            {"server_certificate_pem": sc["pem"], "fingerprint": wrong}, 400, "invalid_request",
            ["is not the certificate's", sc["sha256"]])
    refused(d, "POST", "/v1/providers/kms/trust",
            {"server_certificate_pem": sc["pem"], "fingerprint": "12:34"}, 400,
            "invalid_request", "64 hexadecimal digits")
    refused(d, "POST", "/v1/providers/kms/trust", {"server_certificate_pem": sc["pem"]}, 400,
            "invalid_request")
    refused(d, "POST", "/v1/providers/kms/trust", {"ca_pem": "garbage"}, 400, "invalid_request",
            "no certificate")
    refused(d, "POST", "/v1/providers/kms/trust",
            {"ca_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
            400, "invalid_request")
    refused(d, "POST", "/v1/providers/kms/trust", {"ca_pem": sc["pem"], "extra": 1}, 400,
            "invalid_request", "unknown field")
    refused(d, "POST", "/v1/providers/kms/server-certificate", {"address": "127.0.0.1:1"}, 404,
            "not_found")
    assert providers_json(d) == before
    assert ok(d, "GET", "/v1/providers/kms?health=0")["provider"]["trust"] is None

    # A signed certificate that is not for the pending request's key: the
    # request made before the latest one, or another client's.
    csr1 = ok(d, "POST", "/v1/providers/kms/client/csr", {})["csr_pem"]
    signed1 = sign_csr(kms_server, csr1, tmp_path, "one.csr")
    ok(d, "POST", "/v1/providers/kms/client/csr", {})
    refused(d, "POST", "/v1/providers/kms/client/certificate", {"certificate_pem": signed1},
            400, "invalid_request", "pending request's key")
    other_crt, other_key = kms_server.issue_client("other")
    refused(d, "POST", "/v1/providers/kms/client/certificate",
            {"certificate_pem": other_crt.read_text()}, 400, "invalid_request",
            "pending request's key")
    # Certificate and key that do not belong together; garbage.
    refused(d, "POST", "/v1/providers/kms/client/certificate",
            {"certificate_pem": signed1, "key_pem": other_key.read_text()}, 400,
            "invalid_request", "not the certificate's")
    refused(d, "POST", "/v1/providers/kms/client/certificate",
            {"certificate_pem": "hello", "key_pem": other_key.read_text()}, 400,
            "invalid_request")
    refused(d, "POST", "/v1/providers/kms/client/certificate",
            {"certificate_pem": other_crt.read_text(), "key_pem": "not a key"}, 400,
            "invalid_request", "private key")
    refused(d, "POST", "/v1/providers/kms/client/certificate",
            {"certificate_pem": other_crt.read_text() + other_key.read_text()}, 400,
            "invalid_request", "private key")
    p = ok(d, "GET", "/v1/providers/kms?health=0")["provider"]
    assert p["client_certificate"] is None and p["csr_pending"] is True
    assert not (d.data / "providers" / "kms" / "cert.pem").exists()

    # Certificates on a native provider make no sense; half a one-step
    # standard provider is refused.
    ok(d, "POST", "/v1/providers", {"name": "nkp", "type": "native"}, status=201)
    refused(d, "POST", "/v1/providers/nkp/client/csr", {}, 400, "invalid_request", "native")
    refused(d, "POST", "/v1/providers", {"name": "half", "type": "standard", "servers": [addr],
                                         "ca_pem": sc["pem"]}, 400, "invalid_request",
            "together")
    refused(d, "POST", "/v1/providers", {"name": "onestep", "type": "standard",
                                         "servers": [addr], "ca_pem": "garbage",
                                         "cert_pem": other_crt.read_text(),
                                         "key_pem": other_key.read_text()}, 400,
            "invalid_request", "no certificate")
    refused(d, "POST", "/v1/providers", {"name": "onestep", "type": "standard",
                                         "servers": [addr], "ca_pem": sc["pem"],
                                         "cert_pem": signed1, "key_pem": other_key.read_text()},
            400, "invalid_request", "key mismatch")
    assert not (d.data / "providers" / "onestep").exists()

    # Servers: the last one stays; IPv6 without brackets or percent-encoded.
    refused(d, "DELETE", f"/v1/providers/kms/servers/{addr}", None, 409, "not_allowed",
            "last server")
    ok(d, "POST", "/v1/providers/kms/servers", {"address": "[::1]:5696"}, status=201)
    refused(d, "POST", "/v1/providers/kms/servers", {"address": "[::1]:5696"}, 409, "exists")
    refused(d, "POST", "/v1/providers/kms/servers", {"address": "no-port"}, 400,
            "invalid_request")
    ok(d, "DELETE", "/v1/providers/kms/servers/::1:5696")
    ok(d, "POST", "/v1/providers/kms/servers", {"address": "[::1]:5697"}, status=201)
    ok(d, "DELETE", "/v1/providers/kms/servers/%5B%3A%3A1%5D%3A5697")
    refused(d, "DELETE", "/v1/providers/kms/servers/127.0.0.1:9", None, 404, "not_found")
    assert [s["address"] for s in
            ok(d, "GET", "/v1/providers/kms?health=0")["provider"]["servers"]] == [addr]

    # The default goes last.
    refused(d, "DELETE", "/v1/providers/kms", None, 409, "not_allowed", "default")
    ok(d, "DELETE", "/v1/providers/nkp")
    assert not (d.data / "providers" / "nkp" / "root.sealed").exists()
    ok(d, "DELETE", "/v1/providers/kms")
    assert ok(d, "GET", "/v1/providers")["providers"] == []
    assert not (d.data / "providers" / "kms").exists()
    refused(d, "DELETE", "/v1/providers/kms", None, 404, "not_found")


def test_unreachable_server_answers_fast(d, kms_server, tmp_path):
    """A configured provider whose second server's port is closed: listing
    says "unreachable" for it and "ok" for the first, at once."""
    addr = f"127.0.0.1:{kms_server.port}"
    dead = f"127.0.0.1:{closed_port()}"
    ok(d, "POST", "/v1/providers", {"name": "kms", "type": "standard", "servers": [addr, dead]},
       status=201)
    ok(d, "POST", "/v1/providers/kms/trust", {"ca_pem": kms_server.ca_crt.read_text()})
    ok(d, "POST", "/v1/providers/kms/client/certificate",
       {"certificate_pem": kms_server.client_crt.read_text(),
        "key_pem": kms_server.client_key.read_text()})
    start = time.monotonic()
    p = ok(d, "GET", "/v1/providers")["providers"][0]
    elapsed = time.monotonic() - start
    assert elapsed < 3, elapsed
    assert servers_of(p)[addr]["status"] == "ok"
    assert servers_of(p)[dead]["status"] == "unreachable"
    assert "cannot connect" in servers_of(p)[dead]["error"]
    # Without the health checks: addresses only.
    p = ok(d, "GET", "/v1/providers?health=0")["providers"][0]
    assert all(s["status"] is None for s in p["servers"])
    refused(d, "GET", "/v1/providers?health=maybe", None, 400, "invalid_request")
    # The KMS down: both unreachable, still at once.
    assert kms_server.stop() is None
    start = time.monotonic()
    p = ok(d, "GET", "/v1/providers/kms")["provider"]
    assert time.monotonic() - start < 3
    assert {s["status"] for s in p["servers"]} == {"unreachable"}
    kms_server.start(port=kms_server.port)
