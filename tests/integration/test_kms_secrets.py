"""Key material never reaches a file in clear, and reconnecting clients
resume their TLS sessions (vCenter opens a connection per request)."""
import os
import socket
import ssl

import pytest

from kms import (ObjectType, Status, Tag, attribute, call, create_aes, enum, find_all, get,
                 integer, request, struct_, text, tls_connect, batch_item, Op, read_message,
                 parse_response)


def register_key(sock, material: bytes) -> str:
    """Registers a raw AES key through the tests' own TTLV encoder."""
    block = struct_(Tag.KEY_BLOCK,
                    enum(Tag.KEY_FORMAT_TYPE, 1),  # Raw
                    struct_(Tag.KEY_VALUE, item_bytes(Tag.KEY_MATERIAL, material)),
                    enum(Tag.CRYPTOGRAPHIC_ALGORITHM, 3),  # AES
                    integer(Tag.CRYPTOGRAPHIC_LENGTH, len(material) * 8))
    item = batch_item(Op.REGISTER,
                      enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
                      struct_(Tag.TEMPLATE_ATTRIBUTE,
                              attribute("Cryptographic Usage Mask", integer(0x42000B, 12))),
                      struct_(Tag.SYMMETRIC_KEY, block))
    res = call(sock, item)
    assert res.status == Status.SUCCESS, res.describe()
    return res.uid()


def item_bytes(tag, value: bytes):
    from kms import Item, Type
    return Item(tag, Type.BYTE_STRING, value)


def test_no_key_material_in_any_file(kms_server):
    known = os.urandom(32)
    seen = [known]
    with tls_connect(kms_server, kms_server.client_crt, kms_server.client_key) as s:
        uid = register_key(s, known)
        assert find_all(call(s, get(uid)).ok(), Tag.KEY_MATERIAL)[0].value == known
        for _ in range(20):
            created = call(s, create_aes(256)).uid()
            seen.append(find_all(call(s, get(created)).ok(), Tag.KEY_MATERIAL)[0].value)
    kms_server.stop()  # flush everything: WAL, audit, log
    files = [p for p in kms_server.data_dir.rglob("*") if p.is_file()] + [kms_server.log_path]
    assert any(p.name == "kms.db" for p in files)
    for p in files:
        data = p.read_bytes()
        for key in seen:
            assert key not in data, f"key material in clear in {p}"
            assert key.hex().encode() not in data, f"key material (hex) in {p}"
    kms_server.start()  # the fixture expects to stop a running server


# How a client resumes: TLS 1.2 with a session ticket (RFC 5077), TLS 1.2 by
# session ID, as clients without ticket support do (Java's, so vCenter 7),
# and TLS 1.3 with a PSK ticket (RFC 8446 §2.2).
RESUMPTIONS = {
    "tls1.2-ticket": (ssl.TLSVersion.TLSv1_2, 0),
    "tls1.2-session-id": (ssl.TLSVersion.TLSv1_2, ssl.OP_NO_TICKET),
    "tls1.3": (ssl.TLSVersion.TLSv1_3, 0),
}


@pytest.mark.parametrize("close_notify", [False, True], ids=["abrupt-close", "close-notify"])
@pytest.mark.parametrize("resumption", list(RESUMPTIONS))
def test_tls_sessions_are_resumed(kms_server, resumption, close_notify):
    """Each reconnection resumes the previous session, whether the client
    ended the last connection with close_notify or just closed it."""
    from kms import discover_versions
    version, options = RESUMPTIONS[resumption]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(kms_server.ca_crt))
    ctx.load_cert_chain(str(kms_server.client_crt), str(kms_server.client_key))
    ctx.maximum_version = version
    ctx.options |= options
    session = None
    resumed = 0
    for _ in range(5):
        raw = socket.create_connection(("127.0.0.1", kms_server.port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        try:
            # A request completes the handshake (and, in TLS 1.3, brings
            # the session ticket).
            s.sendall(request(discover_versions()))
            assert parse_response(read_message(s)).items[0].status == Status.SUCCESS
            assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                   ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
            resumed += s.session_reused
            session = s.session
            if close_notify:
                s = s.unwrap()  # sends close_notify, waits for the server's
        finally:
            s.close()
    assert resumed == 4, f"{resumption}: {resumed} of 4 reconnections resumed"
