"""vmseal-kms against an independent KMIP client: Debian's PyKMIP 0.10
(kmip.pie.client.ProxyKmipClient), each operation and its refusals, once
with KMIP 1.2 (PyKMIP's default) and once with KMIP 2.0 (the newest version
PyKMIP 0.10 speaks; it knows no 2.1)."""
import os
import time

import warnings

import pytest

with warnings.catch_warnings():
    # kmip.pie's SQLAlchemy models warn about SQLAlchemy 2.0 on import.
    warnings.simplefilter("ignore")
    from kmip.core import enums
    from kmip.core.enums import AttributeType, CryptographicAlgorithm as Alg, ResultReason
    from kmip.core.factories.attributes import AttributeFactory
    from kmip.core.messages.contents import ProtocolVersion
    from kmip.pie import objects
    from kmip.pie.client import ProxyKmipClient
    from kmip.pie.exceptions import KmipOperationFailure

# PyKMIP 0.10 wraps its socket with ssl.wrap_socket() and ssl.PROTOCOL_SSLv23,
# both deprecated in Python 3.11 (and gone in 3.12).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KMIP_1_2 = enums.KMIPVersion.KMIP_1_2
KMIP_2_0 = enums.KMIPVersion.KMIP_2_0
ATTR = AttributeFactory()

# Result Reasons a refusal may carry. KMIP leaves some choice; these are the
# codes that mean the right thing in each version (Illegal Operation is 1.x
# only; Object Not Found / Wrong Key Lifecycle State etc. are 2.x only).
NOT_FOUND = {KMIP_1_2: {ResultReason.ITEM_NOT_FOUND},
             KMIP_2_0: {ResultReason.ITEM_NOT_FOUND, ResultReason.OBJECT_NOT_FOUND}}
GONE = {KMIP_1_2: NOT_FOUND[KMIP_1_2],
        KMIP_2_0: NOT_FOUND[KMIP_2_0] | {ResultReason.OBJECT_DESTROYED}}
WRONG_STATE = {KMIP_1_2: {ResultReason.PERMISSION_DENIED, ResultReason.ILLEGAL_OPERATION},
               KMIP_2_0: {ResultReason.PERMISSION_DENIED,
                          ResultReason.WRONG_KEY_LIFECYCLE_STATE}}
UNSUPPORTED = {KMIP_1_2: {ResultReason.INVALID_FIELD, ResultReason.FEATURE_NOT_SUPPORTED},
               KMIP_2_0: {ResultReason.INVALID_FIELD, ResultReason.FEATURE_NOT_SUPPORTED,
                          ResultReason.INVALID_ATTRIBUTE_VALUE,
                          ResultReason.UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS,
                          ResultReason.BAD_CRYPTOGRAPHIC_PARAMETERS}}


def make_client(server, version, ssl_version=None) -> ProxyKmipClient:
    """A PyKMIP client configured only by arguments. The config section
    named does not exist, so a stray ~/.pykmip/pykmip.conf or
    /etc/pykmip/pykmip.conf cannot change what is tested."""
    client = ProxyKmipClient(hostname="127.0.0.1", port=server.port,
                             cert=str(server.client_crt), key=str(server.client_key),
                             ca=str(server.ca_crt), ssl_version=ssl_version,
                             config="vmseal-integration-tests", kmip_version=version)
    client.proxy.timeout = 10  # seconds per socket operation (PyKMIP's default: 30)
    return client


@pytest.fixture(params=[KMIP_1_2, KMIP_2_0], ids=["kmip1.2", "kmip2.0"])
def version(request):
    return request.param


@pytest.fixture
def client(kms_server, version):
    with make_client(kms_server, version) as c:
        yield c


def refused(reasons, fn, *args, **kwargs) -> KmipOperationFailure:
    """Call fn, which must fail with a Result Reason in `reasons`."""
    with pytest.raises(KmipOperationFailure) as info:
        fn(*args, **kwargs)
    assert info.value.status == enums.ResultStatus.OPERATION_FAILED
    assert info.value.reason in reasons, \
        f"refused with {info.value.reason} ({info.value.message!r}), expected one of {reasons}"
    return info.value


def attributes(client, uid, *names) -> dict:
    """Get Attributes by name -> {name: [value, ...]} (PyKMIP's value objects;
    most have .value)."""
    got_uid, attrs = client.get_attributes(uid, list(names))
    assert got_uid == uid
    out = {}
    for a in attrs:
        out.setdefault(a.attribute_name.value, []).append(a.attribute_value)
    assert set(out) <= set(names), f"attributes not asked for: {set(out) - set(names)}"
    return out


def state(client, uid):
    values = attributes(client, uid, "State")["State"]
    assert len(values) == 1
    return values[0].value


def name_of(value) -> str:
    return value.name_value.value


# --- Discover Versions, Query ---------------------------------------------

def test_discover_versions_lists_1_0_to_2_1(client):
    result = client.proxy.discover_versions()
    assert result.result_status.value == enums.ResultStatus.SUCCESS
    versions = [(v.major, v.minor) for v in result.protocol_versions]
    assert len(versions) == len(set(versions)), f"duplicates in {versions}"
    assert {(1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (2, 0), (2, 1)} <= set(versions), versions


def test_discover_versions_keeps_only_what_both_speak(client):
    offered = [ProtocolVersion(9, 9), ProtocolVersion(1, 2), ProtocolVersion(0, 7)]
    result = client.proxy.discover_versions(protocol_versions=offered)
    assert result.result_status.value == enums.ResultStatus.SUCCESS
    assert [(v.major, v.minor) for v in result.protocol_versions] == [(1, 2)]


def test_query_operations_objects_and_server_information(client):
    Q = enums.QueryFunction
    result = client.proxy.query(query_functions=[
        Q.QUERY_OPERATIONS, Q.QUERY_OBJECTS, Q.QUERY_SERVER_INFORMATION])
    assert result.result_status.value == enums.ResultStatus.SUCCESS, result.result_message
    O = enums.Operation
    assert {O.CREATE, O.REGISTER, O.LOCATE, O.GET, O.GET_ATTRIBUTES, O.GET_ATTRIBUTE_LIST,
            O.ADD_ATTRIBUTE, O.ACTIVATE, O.REVOKE, O.DESTROY, O.QUERY,
            O.DISCOVER_VERSIONS} <= set(result.operations), result.operations
    assert {enums.ObjectType.SYMMETRIC_KEY, enums.ObjectType.SECRET_DATA} \
        <= set(result.object_types), result.object_types
    assert result.vendor_identification, "Query Server Information without Vendor Identification"


# --- Create ---------------------------------------------------------------

@pytest.mark.parametrize("bits", [128, 192, 256])
def test_create_aes(client, bits):
    uid = client.create(Alg.AES, bits, name=f"aes-{bits}")
    other = client.create(Alg.AES, bits)
    assert isinstance(uid, str) and uid and uid != other

    key = client.get(uid)
    assert isinstance(key, objects.SymmetricKey)
    assert key.key_format_type == enums.KeyFormatType.RAW
    assert key.cryptographic_algorithm == Alg.AES
    assert key.cryptographic_length == bits
    assert len(key.value) == bits // 8
    assert key.value != client.get(other).value, "two Creates gave the same key"

    got = attributes(client, uid, "Object Type", "Cryptographic Algorithm",
                     "Cryptographic Length", "Cryptographic Usage Mask", "Name", "State")
    assert got["Object Type"][0].value == enums.ObjectType.SYMMETRIC_KEY
    assert got["Cryptographic Algorithm"][0].value == Alg.AES
    assert got["Cryptographic Length"][0].value == bits
    # PyKMIP always asks for Encrypt|Decrypt (0x4|0x8).
    assert got["Cryptographic Usage Mask"][0].value == 0x0C
    assert [name_of(v) for v in got["Name"]] == [f"aes-{bits}"]
    assert got["State"][0].value == enums.State.PRE_ACTIVE


@pytest.mark.parametrize("algorithm,bits", [
    (Alg.AES, 100),      # not an AES key size
    (Alg.AES, 512),
    (Alg.RSA, 2048),     # not a symmetric algorithm
    (Alg.HMAC_SHA256, 7),
])
def test_create_unsupported_algorithm_or_length_is_refused(client, version, algorithm, bits):
    refused(UNSUPPORTED[version], client.create, algorithm, bits, name="refused")
    assert client.locate() == [], "a refused Create left an object behind"


# --- Register, Get --------------------------------------------------------

def test_register_symmetric_key_and_get_it_back(client):
    material = os.urandom(32)
    uid = client.register(objects.SymmetricKey(Alg.AES, 256, material, name="registered"))
    key = client.get(uid)
    assert isinstance(key, objects.SymmetricKey)
    assert key.value == material
    assert (key.cryptographic_algorithm, key.cryptographic_length) == (Alg.AES, 256)
    assert [name_of(v) for v in attributes(client, uid, "Name")["Name"]] == ["registered"]


def test_register_secret_data_and_get_it_back(client):
    secret = os.urandom(48)
    uid = client.register(objects.SecretData(secret, enums.SecretDataType.SEED, name="seed"))
    got = client.get(uid)
    assert isinstance(got, objects.SecretData)
    assert got.value == secret
    assert got.data_type == enums.SecretDataType.SEED
    assert attributes(client, uid, "Object Type")["Object Type"][0].value \
        == enums.ObjectType.SECRET_DATA


def test_get_of_unknown_id_is_item_not_found(client, version):
    client.create(Alg.AES, 256)  # the store is not empty
    for uid in ("no-such-object", "0", "1" * 200):
        refused(NOT_FOUND[version], client.get, uid)
        refused(NOT_FOUND[version], client.get_attributes, uid, ["State"])
        refused(NOT_FOUND[version], client.get_attribute_list, uid)
        refused(NOT_FOUND[version], client.activate, uid)
        refused(NOT_FOUND[version], client.destroy, uid)


# --- Locate ---------------------------------------------------------------

def test_locate_by_name_and_by_object_type(client):
    a = client.create(Alg.AES, 256, name="locate-a")
    b = client.create(Alg.AES, 128, name="locate-b")
    s = client.register(objects.SecretData(b"p4ssw0rd", enums.SecretDataType.PASSWORD,
                                           name="locate-s"))

    def named(n):
        return ATTR.create_attribute(AttributeType.NAME, n)

    def of_type(t):
        return ATTR.create_attribute(AttributeType.OBJECT_TYPE, t)

    assert client.locate(attributes=[named("locate-a")]) == [a]
    assert client.locate(attributes=[named("locate-s")]) == [s]
    assert client.locate(attributes=[named("locate")]) == [], "names match whole, not prefix"
    assert client.locate(attributes=[named("nobody")]) == []
    assert sorted(client.locate(attributes=[of_type(enums.ObjectType.SYMMETRIC_KEY)])) \
        == sorted([a, b])
    assert client.locate(attributes=[of_type(enums.ObjectType.SECRET_DATA)]) == [s]
    # Criteria combine with AND.
    assert client.locate(attributes=[named("locate-s"),
                                     of_type(enums.ObjectType.SYMMETRIC_KEY)]) == []
    assert client.locate(attributes=[named("locate-b"),
                                     of_type(enums.ObjectType.SYMMETRIC_KEY)]) == [b]
    assert sorted(client.locate()) == sorted([a, b, s])
    assert len(client.locate(maximum_items=2)) == 2


# --- Lifecycle: Activate, Revoke, Destroy -----------------------------------

def test_activate(client, version):
    uid = client.create(Alg.AES, 256)
    assert state(client, uid) == enums.State.PRE_ACTIVE
    assert "Activation Date" not in attributes(client, uid, "Activation Date")
    client.activate(uid)
    assert state(client, uid) == enums.State.ACTIVE
    assert "Activation Date" in attributes(client, uid, "Activation Date")
    refused(WRONG_STATE[version], client.activate, uid)
    assert state(client, uid) == enums.State.ACTIVE


def test_revoke_for_key_compromise_makes_it_compromised(client):
    uid = client.create(Alg.AES, 256)
    client.activate(uid)
    client.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, uid,
                  revocation_message="leaked in a test",
                  compromise_occurrence_date=int(time.time()) - 3600)
    assert state(client, uid) == enums.State.COMPROMISED


def test_revoke_for_cessation_deactivates(client):
    uid = client.create(Alg.AES, 256)
    client.activate(uid)
    client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
    assert state(client, uid) == enums.State.DEACTIVATED


def test_destroy_refuses_an_active_key_until_it_is_revoked(client, version):
    uid = client.create(Alg.AES, 256)
    client.activate(uid)
    material = client.get(uid).value
    refused(WRONG_STATE[version], client.destroy, uid)
    assert client.get(uid).value == material, "a refused Destroy touched the key"
    assert state(client, uid) == enums.State.ACTIVE

    client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
    client.destroy(uid)
    refused(GONE[version], client.get, uid)
    refused(GONE[version] | WRONG_STATE[version], client.destroy, uid)


def test_destroy_of_a_pre_active_key(client, version):
    keep = client.create(Alg.AES, 256, name="keep")
    uid = client.create(Alg.AES, 256, name="drop")
    client.destroy(uid)
    refused(GONE[version], client.get, uid)
    assert len(client.get(keep).value) == 32, "Destroy hit the wrong object"


def test_destroy_of_revoked_compromised_key(client, version):
    uid = client.create(Alg.AES, 128)
    client.activate(uid)
    client.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, uid,
                  compromise_occurrence_date=int(time.time()))
    client.destroy(uid)
    refused(GONE[version], client.get, uid)


# --- Attributes -----------------------------------------------------------

def test_get_attributes(client):
    uid = client.create(Alg.AES, 192, name="attrs")
    got = attributes(client, uid, "Unique Identifier", "Cryptographic Length", "Name")
    assert got["Unique Identifier"][0].value == uid
    assert got["Cryptographic Length"][0].value == 192
    assert name_of(got["Name"][0]) == "attrs"
    # An attribute the object does not have is simply not returned.
    assert attributes(client, uid, "Activation Date", "Cryptographic Length") \
        .keys() == {"Cryptographic Length"}


def test_get_attribute_list(client):
    uid = client.create(Alg.AES, 256, name="listed")
    names = client.get_attribute_list(uid)
    assert len(names) == len(set(names)), f"duplicates in {names}"
    # The ones the client set, and the ones KMIP says are always present.
    assert {"Unique Identifier", "Object Type", "Cryptographic Algorithm",
            "Cryptographic Length", "Cryptographic Usage Mask", "Name", "State",
            "Initial Date"} <= set(names), names
    assert "Activation Date" not in names
    client.activate(uid)
    assert "Activation Date" in client.get_attribute_list(uid)


# --- TLS ------------------------------------------------------------------

def test_tls_1_2_client(kms_server, version):
    """ESXi and vCenter 7 speak TLS 1.2; PyKMIP's default negotiates 1.3."""
    with make_client(kms_server, version, ssl_version="PROTOCOL_TLSv1_2") as c:
        assert c.proxy.socket.version() == "TLSv1.2"
        uid = c.create(Alg.AES, 256)
        assert len(c.get(uid).value) == 32
