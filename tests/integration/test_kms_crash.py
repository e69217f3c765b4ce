"""Crash safety of vmseal-kms: SIGKILL under a concurrent Create load, then
restart; every identifier whose Create was acknowledged must still be there,
with the same key material, and the server must come back clean."""
import os
import random
import threading
import time

from kms import (Op, Status, Tag, call, create_aes, find_all, get, tls_connect)

ROUNDS = 5
WRITERS = 16


def creator(server, acked, lock, stop):
    """Creates keys until the server dies or stop is set; records the
    identifiers whose Create was answered with Success."""
    try:
        sock = tls_connect(server, server.client_crt, server.client_key)
    except OSError:
        return
    with sock:
        while not stop.is_set():
            try:
                res = call(sock, create_aes(256))
            except (OSError, ConnectionError, ValueError):
                return  # the server is gone: nothing was acknowledged
            assert res.status == Status.SUCCESS, res.describe()
            with lock:
                acked.append(res.uid())


def material(sock, uid):
    res = call(sock, get(uid))
    assert res.status == Status.SUCCESS, f"acknowledged key {uid} lost: {res.describe()}"
    values = find_all(res.ok(), Tag.KEY_MATERIAL)
    assert values and len(values[0].value) == 32, f"{uid}: no 32-byte key material"
    return values[0].value


def test_sigkill_under_create_load_loses_nothing_acknowledged(kms_server):
    rng = random.Random(os.environ.get("VMSEAL_TEST_SEED", "kms-crash"))
    all_acked = []
    known_material = {}
    for round_ in range(ROUNDS):
        acked, lock, stop = [], threading.Lock(), threading.Event()
        threads = [threading.Thread(target=creator, args=(kms_server, acked, lock, stop))
                   for _ in range(WRITERS)]
        for t in threads:
            t.start()
        # Let the load build, remember some keys' material, then kill.
        time.sleep(rng.uniform(0.3, 0.8))
        with lock:
            sample = list(acked[:5])
        if sample:
            with tls_connect(kms_server, kms_server.client_crt, kms_server.client_key) as s:
                for uid in sample:
                    known_material[uid] = material(s, uid)
        time.sleep(rng.uniform(0.05, 0.5))
        kms_server.proc.kill()  # SIGKILL, mid-load
        kms_server.proc.wait()
        kms_server.proc = None
        stop.set()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a client hung after the server was killed"
        assert acked, f"round {round_}: no Create was acknowledged before the kill"
        all_acked.extend(acked)

        # Restart on the same data: everything acknowledged, in every round
        # so far, is there and unchanged.
        kms_server.start()
        with tls_connect(kms_server, kms_server.client_crt, kms_server.client_key) as s:
            for uid in all_acked:
                m = material(s, uid)
                if uid in known_material:
                    assert m == known_material[uid], f"{uid}: key material changed"
    print(f"{len(all_acked)} acknowledged Creates over {ROUNDS} SIGKILLs, all retrieved")
    assert len(all_acked) >= ROUNDS * WRITERS
