"""Who may talk to vmseal-kms, and what they may touch.

- Objects belong to the identity (certificate CN) that created them: a
  second client, issued by `vmseal-kms pki issue-client`, can neither read,
  find, change nor destroy the first one's key.
- Only certificates from the deployment's CA complete a handshake.
- Garbage after a good handshake gets Invalid Message or a closed
  connection, never a hang, and the server keeps serving everyone else."""
import socket
import ssl
import subprocess

import pytest

from kms import (
    KmsServer, Reason, State, Status, Tag, activate, add_attribute, call, children,
    create_aes, destroy, discover_versions, encode, find_all, get, get_attribute_list,
    get_attributes, kmip_roundtrip, locate, name_attribute, parse_response, read_message,
    request, revoke, struct_, integer, text, tls_connect, ConnectionClosed,
)

REFUSAL_SECONDS = 5
DENIED = {Reason.ITEM_NOT_FOUND, Reason.PERMISSION_DENIED}


def connect(server, who=None):
    crt, key = who or (server.client_crt, server.client_key)
    return tls_connect(server, crt, key)


def located(res) -> list[str]:
    return [c.value for c in children(res.ok(), Tag.UNIQUE_IDENTIFIER)]


def still_serving(server):
    """The process is alive and a new good client gets an answer."""
    server.assert_running()
    with connect(server) as sock:
        call(sock, discover_versions()).ok()


# --- Ownership ------------------------------------------------------------

def test_a_second_identity_cannot_touch_the_first_ones_key(kms_server):
    b = kms_server.issue_client("tenant-b")
    with connect(kms_server) as sock_a, connect(kms_server, b) as sock_b:
        key_a = call(sock_a, create_aes(256, name="key-of-a")).uid()
        key_b = call(sock_b, create_aes(256, name="key-of-b")).uid()
        material_a = find_all(call(sock_a, get(key_a)).ok(), Tag.KEY_MATERIAL)[0].value

        for what, item in [
            ("Get", get(key_a)),
            ("Get Attributes", get_attributes(key_a, "State", "Name")),
            ("Get Attribute List", get_attribute_list(key_a)),
            ("Add Attribute", add_attribute(key_a, "x-Name", text(0, "mallory"))),
            ("Activate", activate(key_a)),
            ("Revoke", revoke(key_a)),
            ("Destroy", destroy(key_a)),
        ]:
            res = call(sock_b, item)
            assert res.status == Status.OPERATION_FAILED, f"B's {what} of A's key: {res.describe()}"
            assert res.reason in DENIED, f"B's {what} of A's key: {res.describe()}"
            leaked = res.payload is not None and (
                find_all(res.payload, Tag.KEY_MATERIAL) or find_all(res.payload, Tag.ATTRIBUTE))
            assert not leaked, f"B's refused {what} still carried {res.payload}"

        # Locate: B sees its own key only, however it asks.
        assert located(call(sock_b, locate())) == [key_b]
        assert located(call(sock_b, locate(name_attribute("key-of-a")))) == []
        assert located(call(sock_b, locate(name_attribute("key-of-b")))) == [key_b]
        # And A sees only its own.
        assert located(call(sock_a, locate())) == [key_a]
        assert located(call(sock_a, locate(name_attribute("key-of-b")))) == []

        # A's key is untouched by all of the above, and A still has full use of it.
        assert find_all(call(sock_a, get(key_a)).ok(), Tag.KEY_MATERIAL)[0].value == material_a
        attrs = call(sock_a, get_attributes(key_a, "State", "x-Name")).attributes()
        assert attrs == {"State": [State.PRE_ACTIVE]}, attrs
        call(sock_a, activate(key_a)).ok()
        call(sock_a, revoke(key_a)).ok()
        call(sock_a, destroy(key_a)).ok()
        # B's own key is B's to use.
        assert len(find_all(call(sock_b, get(key_b)).ok(), Tag.KEY_MATERIAL)[0].value) == 32


def test_ownership_follows_the_certificate_not_the_connection(kms_server):
    """A key made on one connection is found on a new one with the same
    certificate: ownership is the identity's, not the session's."""
    with connect(kms_server) as sock:
        uid = call(sock, create_aes(128)).uid()
    with connect(kms_server) as sock:
        assert located(call(sock, locate())) == [uid]
        call(sock, get(uid)).ok()


# --- Handshakes -----------------------------------------------------------

def self_signed(tmp_path, cn="client"):
    """A certificate + key the server has never seen (same CN as the real
    client: identity must come from the chain, not the name)."""
    crt, key = tmp_path / f"self-{cn}.crt", tmp_path / f"self-{cn}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-subj", f"/CN={cn}", "-days", "1",
                    "-addext", "extendedKeyUsage=clientAuth"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def assert_refused(server, crt, key):
    """The handshake fails, or (TLS 1.3: the client's side of the handshake
    ends before the server has checked its certificate) the first request
    gets an alert or a closed connection. Never an answer, never a hang."""
    try:
        sock = tls_connect(server, crt, key, timeout=REFUSAL_SECONDS)
    except TimeoutError:
        pytest.fail(f"the handshake with {crt} hung for {REFUSAL_SECONDS} s")
    except ssl.SSLCertVerificationError as e:
        pytest.fail(f"this test's client could not verify the server: {e}")
    except (ssl.SSLError, ConnectionError):
        return
    with sock:
        try:
            data = kmip_roundtrip(sock, request(discover_versions()), timeout=REFUSAL_SECONDS)
        except TimeoutError:
            pytest.fail(f"the server neither answered nor closed for {REFUSAL_SECONDS} s ({crt})")
        except (ssl.SSLError, ConnectionError):
            return
    pytest.fail(f"the server answered a client presenting {crt}: {data.hex()}")


def test_untrusted_or_missing_certificates_cannot_connect(kms_server, kms_program, tmp_path):
    # A's connection exists before the bad handshakes and must survive them.
    with connect(kms_server) as sock_a:
        uid = call(sock_a, create_aes(256)).uid()

        assert_refused(kms_server, *self_signed(tmp_path))
        # A real vmseal-kms client certificate, from another deployment's CA.
        other = KmsServer(kms_program, tmp_path, name="other-deployment")
        other.init()
        assert_refused(kms_server, other.client_crt, other.client_key)
        # No certificate at all.
        assert_refused(kms_server, None, None)

        call(sock_a, get(uid)).ok()
    still_serving(kms_server)
    with connect(kms_server) as sock:
        call(sock, get(uid)).ok()


def test_plaintext_kmip_is_not_answered(kms_server):
    """A KMIP request without TLS: no KMIP response in clear, no hang."""
    with socket.create_connection(("127.0.0.1", kms_server.port),
                                  timeout=REFUSAL_SECONDS) as sock:
        sock.sendall(request(discover_versions()))
        try:
            reply = sock.recv(8)
        except TimeoutError:
            pytest.fail(f"no alert and no close for {REFUSAL_SECONDS} s")
        except ConnectionError:
            reply = b""
    assert not reply.startswith(b"\x42\x00\x7b"), "answered KMIP in clear text"
    still_serving(kms_server)


# --- Garbage after the handshake ------------------------------------------

GARBAGE = {
    "zeros": b"\x00" * 16,
    # A Request Message header announcing ~2 GiB, then a few bytes of it.
    "lying-length": bytes.fromhex("420078017ffffff0") + b"\x42" * 24,
    # A Request Message whose only child claims 0xf0 bytes; 8 follow.
    "child-overruns": bytes.fromhex("4200780100000010" "42007701000000f0") + bytes(8),
    # A Batch Count Integer of length 5 (Integers are 4).
    "bad-integer-length": bytes.fromhex("4200780100000018" "4200770100000010"
                                        "42000d0200000005" "0000000100000000"),
    # Well-formed TTLV, but a Response Message, not a request.
    "not-a-request": encode(struct_(Tag.RESPONSE_MESSAGE, integer(Tag.BATCH_COUNT, 1))),
    "http": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_gets_invalid_message_or_a_close(kms_server, garbage):
    with connect(kms_server) as sock_a:
        uid = call(sock_a, create_aes(256)).uid()
        with connect(kms_server) as sock:
            sock.sendall(garbage)
            try:
                reply = read_message(sock, timeout=REFUSAL_SECONDS)
            except TimeoutError:
                pytest.fail(f"neither an answer nor a close within {REFUSAL_SECONDS} s")
            except (ConnectionClosed, ConnectionError, ssl.SSLError):
                reply = None
            if reply is not None:
                resp = parse_response(reply)
                assert [(r.status, r.reason) for r in resp.items] == \
                    [(Status.OPERATION_FAILED, Reason.INVALID_MESSAGE)], \
                    [r.describe() for r in resp.items]
        # Everyone else is unaffected.
        call(sock_a, get(uid)).ok()
    still_serving(kms_server)
