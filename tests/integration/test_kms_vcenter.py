"""Replay what a real vCenter 7.0.3 sent to its Standard Key Provider
(tests/data/vcenter-7.0.3, see its README.md) against vmseal-kms: the same
58 requests on the same 21 TLS connections, with the capture's Unique
Identifiers "1" and "2" replaced by the ones our server hands out."""
import json
import pathlib
import ssl
import time
from collections import defaultdict

from kms import (
    AES, KEY_FORMAT_RAW, ObjectType, Op, OPERATION_NAMES, State, Status, Tag, Type,
    call, child, children, decode_message, encode, find_all, get_attributes,
    kmip_roundtrip, parse_response, replace, tls_connect,
)

CAPTURE = pathlib.Path(__file__).resolve().parents[1] / "data" / "vcenter-7.0.3" / "requests.jsonl"
VCENTER_VERSION = (1, 1)


def vcenter_connect(server):
    """Like vCenter 7: TLS 1.2 (its KMIP client does not offer 1.3)."""
    return tls_connect(server, server.client_crt, server.client_key,
                       max_version=ssl.TLSVersion.TLSv1_2)


def load_capture():
    records = [json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip()]
    assert [r["seq"] for r in records] == list(range(len(records)))
    return records


def by_connection(records):
    conns = defaultdict(list)
    for r in records:
        conns[r["connection"]].append(r)
    return sorted(conns.items())


def request_items(msg):
    return children(msg, Tag.BATCH_ITEM)


def operation(bi):
    return child(bi, Tag.OPERATION).value


def batch_id(bi):
    found = child(bi, Tag.UNIQUE_BATCH_ITEM_ID)
    return found.value if found else None


def request_payload(bi):
    return child(bi, Tag.REQUEST_PAYLOAD)


def substitute_uids(msg, uids: dict):
    """Replace the capture's Unique Identifier text strings by ours."""
    def fn(item):
        if item.tag == Tag.UNIQUE_IDENTIFIER and item.type == Type.TEXT_STRING:
            assert item.value in uids, \
                f"request refers to {item.value!r} before the Create that made it"
            return item._replace(value=uids[item.value])
        return item
    return replace(msg, fn)


def test_capture_decodes_and_reencodes_exactly():
    """The codec the replay relies on: every captured request decodes to
    the operations the capture names and re-encodes to the same bytes."""
    records = load_capture()
    assert len(records) == 58
    assert len(by_connection(records)) == 21
    for r in records:
        raw = bytes.fromhex(r["request_hex"])
        msg = decode_message(raw)
        assert msg.tag == Tag.REQUEST_MESSAGE
        assert encode(msg) == raw, f"seq {r['seq']} does not re-encode identically"
        assert [operation(bi) for bi in request_items(msg)] == \
            [OPERATION_NAMES[name] for name in r["operations"]], f"seq {r['seq']}"
    # A substitution to a longer identifier re-encodes every enclosing length.
    # ("1" takes 8 bytes with its padding, 37 characters take 40.)
    seq29 = decode_message(bytes.fromhex(records[29]["request_hex"]))
    edited = substitute_uids(seq29, {"1": "x" * 37})
    longer = encode(edited)
    assert len(longer) == len(encode(seq29)) + 32
    assert int.from_bytes(longer[4:8], "big") == len(longer) - 8
    assert decode_message(longer) == edited


def attribute_names_asked(payload):
    return [a.value for a in children(payload, Tag.ATTRIBUTE_NAME)]


def check_semantics(exchanges, uids):
    """What the README says each step needs, checked on the replay's
    (record, request message, Response) triples."""
    added = defaultdict(dict)  # our uid -> {custom attribute: value} so far
    key_material = {}
    for rec, msg, resp in exchanges:
        where = f"seq {rec['seq']} ({', '.join(rec['operations'])})"
        for bi, res in zip(request_items(msg), resp.items):
            op, req = operation(bi), request_payload(bi)
            payload = res.ok()
            if op == Op.DISCOVER_VERSIONS:
                versions = [(child(v, Tag.PROTOCOL_VERSION_MAJOR).value,
                             child(v, Tag.PROTOCOL_VERSION_MINOR).value)
                            for v in children(payload, Tag.PROTOCOL_VERSION)]
                assert VCENTER_VERSION in versions, f"{where}: {versions}"
            elif op == Op.QUERY:
                vendor = child(payload, Tag.VENDOR_IDENTIFICATION)
                assert vendor is not None and vendor.value, f"{where}: no Vendor Identification"
            elif op == Op.CREATE:
                assert child(payload, Tag.OBJECT_TYPE).value == ObjectType.SYMMETRIC_KEY, where
            elif op == Op.GET_ATTRIBUTES:
                uid = child(req, Tag.UNIQUE_IDENTIFIER).value
                assert res.uid() == uid, f"{where}: answered for {res.uid()!r}, not {uid!r}"
                got = res.attributes()
                names = attribute_names_asked(req)
                assert set(got) <= set(names), f"{where}: not asked for: {got}"
                for name in names:
                    if name == "State":
                        # vCenter activates what it finds Pre-Active.
                        assert got.get(name) == [State.PRE_ACTIVE], f"{where}: {got}"
                    elif name in added[uid]:
                        assert got.get(name) == [added[uid][name]], f"{where}: {got}"
                    else:
                        # The README's point: Success, the UID, no Attribute.
                        assert name not in got, f"{where}: {name} on a fresh key: {got}"
            elif op == Op.ADD_ATTRIBUTE:
                uid = child(req, Tag.UNIQUE_IDENTIFIER).value
                assert res.uid() == uid, where
                sent = child(req, Tag.ATTRIBUTE)
                name = child(sent, Tag.ATTRIBUTE_NAME).value
                value = child(sent, Tag.ATTRIBUTE_VALUE).value
                echoed = child(payload, Tag.ATTRIBUTE)
                assert echoed is not None, f"{where}: Add Attribute response without Attribute"
                assert child(echoed, Tag.ATTRIBUTE_NAME).value == name, where
                added[uid][name] = value
            elif op == Op.GET:
                uid = child(req, Tag.UNIQUE_IDENTIFIER).value
                assert res.uid() == uid, where
                assert child(payload, Tag.OBJECT_TYPE).value == ObjectType.SYMMETRIC_KEY, where
                block = child(child(payload, Tag.SYMMETRIC_KEY), Tag.KEY_BLOCK)
                assert block is not None, f"{where}: no Symmetric Key / Key Block"
                assert child(block, Tag.KEY_FORMAT_TYPE).value == KEY_FORMAT_RAW, \
                    f"{where}: vCenter asked for no format: Raw is the answer"
                material = find_all(block, Tag.KEY_MATERIAL)
                assert len(material) == 1 and material[0].type == Type.BYTE_STRING, where
                assert len(material[0].value) == 32, f"{where}: {len(material[0].value)} bytes"
                assert child(block, Tag.CRYPTOGRAPHIC_ALGORITHM).value == AES, where
                assert child(block, Tag.CRYPTOGRAPHIC_LENGTH).value == 256, where
                key_material[uid] = material[0].value
            elif op == Op.ACTIVATE:
                assert res.uid() == child(req, Tag.UNIQUE_IDENTIFIER).value, where
    assert sorted(key_material) == sorted(uids.values()), "vCenter fetched both keys"
    assert len(set(key_material.values())) == 2, "the two keys have the same material"
    return added


def test_vcenter_7_0_3_replay(kms_server, capsys):
    records = load_capture()
    uids = {}  # the capture's "1", "2" -> ours
    exchanges = []
    started = time.monotonic()
    for number, recs in by_connection(records):
        with vcenter_connect(kms_server) as sock:
            for rec in recs:
                where = f"connection {number}, seq {rec['seq']} ({', '.join(rec['operations'])})"
                msg = substitute_uids(decode_message(bytes.fromhex(rec["request_hex"])), uids)
                resp = parse_response(kmip_roundtrip(sock, encode(msg)))
                assert resp.version == VCENTER_VERSION, f"{where}: answered in {resp.version}"
                sent = request_items(msg)
                assert len(resp.items) == len(sent), f"{where}: {len(resp.items)} items"
                for bi, res in zip(sent, resp.items):
                    assert res.status == Status.SUCCESS, f"{where}: {res.describe()}"
                    assert res.operation == operation(bi), f"{where}: {res.describe()}"
                    assert res.batch_id == batch_id(bi), \
                        f"{where}: Unique Batch Item ID {res.batch_id!r}, sent {batch_id(bi)!r}"
                    if res.operation == Op.CREATE:
                        uids[str(len(uids) + 1)] = res.uid()
                exchanges.append((rec, msg, resp))
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nvCenter 7.0.3 replay: {len(records)} requests on "
              f"{len(by_connection(records))} TLS connections in {elapsed:.3f} s")

    assert len(uids) == 2 and uids["1"] != uids["2"], uids
    added = check_semantics(exchanges, uids)

    # Afterwards, on a new connection: both keys Active, every attribute
    # vCenter added is there with its value.
    assert len(added) == 2 and all(len(a) == 6 for a in added.values()), added
    with vcenter_connect(kms_server) as sock:
        for uid, attrs in added.items():
            res = call(sock, get_attributes(uid, "State", *attrs), version=VCENTER_VERSION)
            got = res.attributes()
            assert got.pop("State") == [State.ACTIVE], f"{uid}: {res.attributes()}"
            assert got == {name: [value] for name, value in attrs.items()}, uid


def test_batch_item_ids_are_echoed_per_item(kms_server):
    """The three-item Add Attribute batch with the items' IDs shuffled: each
    response item must carry its own request item's ID, in order."""
    records = load_capture()
    create = decode_message(bytes.fromhex(records[27]["request_hex"]))
    batch = decode_message(bytes.fromhex(records[32]["request_hex"]))
    with vcenter_connect(kms_server) as sock:
        created = parse_response(kmip_roundtrip(sock, encode(create))).items[0]
        uid = created.uid()
        ids = [bytes.fromhex(h) for h in ("0300000000000000", "ff", "514c4b4301000000aa")]
        it = iter(ids)

        def fn(item):
            if item.tag == Tag.UNIQUE_BATCH_ITEM_ID:
                return item._replace(value=next(it))
            if item.tag == Tag.UNIQUE_IDENTIFIER:
                return item._replace(value=uid)
            return item
        resp = parse_response(kmip_roundtrip(sock, encode(replace(batch, fn))))
    assert [r.batch_id for r in resp.items] == ids
    assert all(r.status == Status.SUCCESS for r in resp.items), \
        [r.describe() for r in resp.items]
