"""Tasks through vmseald's API (docs/api.md, Tasks), against a real vmseald:

  - a deep rekey of a 512 MiB encrypted VM cancelled at about 30 % ends
    "cancelled"; the VM still opens with its old key, qemu-img reads the
    same guest bytes through QEMU's LUKS driver, and nothing is left behind
    (no journal, no file vm.json does not reference);
  - the task list says who started each task (root, on the socket), filters
    by state and limit, refuses what it does not know;
  - cancel is refused for a task that cannot stop safely (a power-on), for
    a finished one (409) and for an unknown id (404);
  - another user sees and cancels root's tasks only with the privileges:
    System.Read on the task's VM to see it, Global.CancelTask to cancel;
  - vmseald killed (SIGKILL) during an encrypt: after the restart the task
    is closed and says "rolled_back" (error "interrupted", VM unencrypted)
    or "rolled_forward" (success, VM encrypted), as the VM is; the guest
    bytes are those from before; SIGTERM during an encrypt rolls it back
    and the task says so.
"""
import hashlib
import json
import shutil
import time

import pytest

from vmseald import Vmseald

MIB = 1 << 20
BIG = 512 * MIB
# The guest's data, imported at creation (a disk created empty and never
# written has no defined contents to compare: an encrypted one reads as
# whatever its holes decrypt to): (offset, byte, length), zeros elsewhere.
PATTERN = [(0, 0x11, MIB), (100 * MIB + 4096, 0x5A, MIB), (300 * MIB, 0xC3, 2 * MIB),
           (511 * MIB, 0x7E, MIB)]
PASSWORD = "bob's long password"


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    from conftest import BUILD_DIR
    daemon = Vmseald(BUILD_DIR, tmp_path_factory.mktemp("tasks"))
    daemon.start()
    daemon.add_native("n1")
    yield daemon
    daemon.stop()
    shutil.rmtree(daemon.runtime, ignore_errors=True)


def get_task(d, tid, token=None):
    status, body = d.api("GET", f"/v1/tasks/{tid}", token=token)
    assert status == 200, body
    return body["task"]


def wait_task(d, tid, until=None, timeout=600, poll=0.005):
    """The task once until(task) holds (default: it has ended)."""
    until = until or (lambda t: t["state"] not in ("queued", "running"))
    deadline = time.time() + timeout
    while True:
        t = get_task(d, tid)
        if until(t):
            return t
        assert time.time() < deadline, t
        time.sleep(poll)


def started(d, method, path, body=None):
    status, answer = d.api(method, path, body if body is not None else {})
    assert status == 202, answer
    return answer["task"]


def referenced_only(d, name):
    """The VM's directory holds vm.json and what it references, no journal."""
    desc = json.loads((d.data / "vms" / name / "vm.json").read_text())
    refs = {desc["config"]} | {l["file"] for l in desc["layers"] if not l["foreign"]}
    if desc["nvram"]:
        refs.add(desc["nvram"])
    for s in desc["snapshots"]:
        if s["nvram"]:
            refs.add(s["nvram"])
    present = {f"{name}/{f.name}" for f in (d.data / "vms" / name).iterdir()}
    extra = present - refs - {f"{name}/vm.json", f"{name}/console.log"}
    assert not extra, f"unreferenced files: {extra}"
    assert refs <= present, f"missing files: {refs - present}"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A sparse 512 MiB raw image with PATTERN, and the SHA-256 of its bytes."""
    path = tmp_path_factory.mktemp("img") / "guest.raw"
    with open(path, "wb") as f:
        f.truncate(BIG)
        for offset, byte, length in PATTERN:
            f.seek(offset)
            f.write(bytes([byte]) * length)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return path, h.hexdigest()


def test_cancel_deep_rekey_rolls_back(d, image):
    path, digest = image
    d.cli("vm", "create", "r1", "--image", str(path), "--encrypt")
    before = d.vm("r1")
    assert before["disks"][0]["size"] == BIG
    assert d.guest_sha256("r1") == digest

    t = started(d, "POST", "/v1/vms/r1/rekey", {"deep": True})
    assert t["operation"] == "vm.rekey" and t["target"] == "vm/r1" and t["user"] == "root"
    assert t["cancellable"] is True and t["state"] in ("queued", "running")
    assert t["finished"] is None and t["recovered"] is None
    tid = t["id"]
    t = wait_task(d, tid, until=lambda t: t["progress"] >= 30
                  or t["state"] not in ("queued", "running"))
    assert t["state"] == "running", f"the rekey ended before it could be cancelled: {t}"
    status, body = d.api("POST", f"/v1/tasks/{tid}/cancel", {})
    assert status == 202, body
    assert body["task"]["id"] == tid and body["task"]["state"] in ("running", "cancelled")

    t = wait_task(d, tid)
    assert t["state"] == "cancelled", t
    assert t["error"]["code"] == "cancelled", t
    assert t["result"] is None and t["recovered"] is None and t["finished"] is not None
    assert 30 <= t["progress"] < 100, t

    # The old key, the old files, the same guest bytes, nothing left over.
    after = d.vm("r1")
    assert after["encrypted"] and after["key_id"] == before["key_id"]
    assert after["provider"] == before["provider"]
    assert [l["file"] for l in after["disks"][0]["layers"]] == \
        [l["file"] for l in before["disks"][0]["layers"]]
    assert d.guest_sha256("r1") == digest
    referenced_only(d, "r1")
    assert not (d.data / "vms" / "r1" / "journal").exists()

    # Cancelled once: a second cancel is refused, the task does not change.
    status, body = d.api("POST", f"/v1/tasks/{tid}/cancel", {})
    assert status == 409 and body["error"]["code"] == "vm_state", body
    assert "has already ended (cancelled)" in body["error"]["message"]
    assert get_task(d, tid) == t

    # The rekey can run again, to its end.
    t2 = started(d, "POST", "/v1/vms/r1/rekey", {"deep": True})
    t2 = wait_task(d, t2["id"])
    assert t2["state"] == "success" and t2["progress"] == 100, t2
    assert d.vm("r1")["key_id"] != before["key_id"]
    assert d.guest_sha256("r1") == digest


def test_task_list(d):
    d.cli("vm", "create", "l1", "--disk", "1M")
    t = started(d, "POST", "/v1/vms/l1/encrypt")
    wait_task(d, t["id"])
    status, body = d.api("GET", "/v1/tasks")
    assert status == 200, body
    tasks = body["tasks"]
    assert tasks[0]["id"] == t["id"], "newest first"
    for x in tasks:
        assert set(x) == {"id", "operation", "target", "user", "state", "progress", "started",
                          "finished", "cancellable", "result", "error", "recovered"}, x
        assert x["user"] == "root"
    assert any(x["state"] == "cancelled" for x in tasks)

    status, body = d.api("GET", "/v1/tasks?state=cancelled")
    assert status == 200 and body["tasks"], body
    assert all(x["state"] == "cancelled" for x in body["tasks"])
    status, body = d.api("GET", "/v1/tasks?state=success&limit=1")
    assert status == 200 and len(body["tasks"]) == 1 and body["tasks"][0]["id"] == t["id"], body
    status, body = d.api("GET", "/v1/tasks?limit=2")
    assert status == 200 and len(body["tasks"]) == 2, body
    for query in ("state=done", "limit=0", "limit=-1", "limit=x", "limit=1&limit=2", "nope=1",
                  "state", "state=running%00"):
        status, body = d.api("GET", f"/v1/tasks?{query}")
        assert status == 400 and body["error"]["code"] == "invalid_request", (query, body)
    # The CLI's view of the same.
    listed = d.cli("task", "list")
    assert any(x["id"] == t["id"] and x["user"] == "root" for x in listed["tasks"]), listed


def test_cancel_refusals(d):
    status, body = d.api("POST", "/v1/tasks/t-00000000-0000-4000-8000-000000000000/cancel", {})
    assert status == 404 and body["error"]["code"] == "not_found", body
    status, body = d.api("GET", "/v1/tasks/t-00000000-0000-4000-8000-000000000000")
    assert status == 404 and body["error"]["code"] == "not_found", body
    status, body = d.api("POST", "/v1/tasks/nonsense/cancel", {})
    assert status == 404, body

    d.cli("vm", "create", "p1", "--disk", "1M")
    t = started(d, "POST", "/v1/vms/p1/power-on")
    assert t["cancellable"] is False and t["operation"] == "vm.power_on"
    status, body = d.api("POST", f"/v1/tasks/{t['id']}/cancel", {})
    assert status == 409 and body["error"]["code"] == "vm_state", body
    msg = body["error"]["message"]
    assert f"task {t['id']} (vm.power_on) cannot be cancelled safely" in msg or \
        "has already ended" in msg, msg
    done = wait_task(d, t["id"])
    assert done["state"] == "success", done
    status, body = d.api("POST", f"/v1/tasks/{t['id']}/cancel", {})
    assert status == 409 and "has already ended (success)" in body["error"]["message"], body
    # A body is refused like anywhere else.
    status, body = d.api("POST", f"/v1/tasks/{t['id']}/cancel", {"force": True})
    assert status == 400, body
    off = started(d, "POST", "/v1/vms/p1/power-off")
    assert wait_task(d, off["id"])["state"] == "success"


def test_other_users_tasks_need_privileges(d):
    d.cli("vm", "create", "o1", "--disk", "1M")
    t = started(d, "POST", "/v1/vms/o1/encrypt")
    wait_task(d, t["id"])
    status, body = d.api("POST", "/v1/users", {"name": "bob", "password": PASSWORD})
    assert status == 201, body
    status, body = d.api("POST", "/v1/session", {"user": "bob", "password": PASSWORD})
    assert status == 201, body
    bob = body["token"]

    # Nothing granted: bob sees none of root's tasks and may not read or cancel them.
    status, body = d.api("GET", "/v1/tasks", token=bob)
    assert status == 200 and body["tasks"] == [], body
    status, body = d.api("GET", f"/v1/tasks/{t['id']}", token=bob)
    assert status == 403 and body["error"]["code"] == "forbidden", body
    assert "System.Read" in body["error"]["message"], body
    status, body = d.api("POST", f"/v1/tasks/{t['id']}/cancel", {}, token=bob)
    assert status == 403 and "Global.CancelTask" in body["error"]["message"], body

    # Read-only on o1: its tasks, and no other VM's.
    status, body = d.api("POST", "/v1/permissions",
                         {"user": "bob", "role": "Read-only", "object": "vm/o1"})
    assert status == 200, body
    status, body = d.api("GET", "/v1/tasks", token=bob)
    assert status == 200 and body["tasks"], body
    assert {x["target"] for x in body["tasks"]} == {"vm/o1"}, body
    assert get_task(d, t["id"], token=bob)["user"] == "root"
    status, body = d.api("POST", f"/v1/tasks/{t['id']}/cancel", {}, token=bob)
    assert status == 403 and "Global.CancelTask" in body["error"]["message"], body

    # bob's own task: his, without any privilege to see or cancel it.
    status, body = d.api("POST", "/v1/permissions",
                         {"user": "bob", "role": "Administrator", "object": "vm/o1"})
    assert status == 200, body
    status, body = d.api("POST", "/v1/vms/o1/decrypt", {}, token=bob)
    assert status == 202, body
    mine = body["task"]
    assert mine["user"] == "bob"
    assert wait_task(d, mine["id"])["state"] == "success"
    status, body = d.api("POST", "/v1/permissions/remove", {"user": "bob", "object": "vm/o1"})
    assert status == 200, body
    status, body = d.api("GET", "/v1/tasks", token=bob)
    assert [x["id"] for x in body["tasks"]] == [mine["id"]], body
    assert get_task(d, mine["id"], token=bob)["user"] == "bob"
    status, body = d.api("POST", f"/v1/tasks/{mine['id']}/cancel", {}, token=bob)
    assert status == 409 and "has already ended" in body["error"]["message"], body


@pytest.fixture
def nd(tmp_path):
    from conftest import BUILD_DIR
    daemon = Vmseald(BUILD_DIR, tmp_path / "restart")
    daemon.start()
    daemon.add_native("n1")
    yield daemon
    daemon.stop()
    shutil.rmtree(daemon.runtime, ignore_errors=True)


def start_encrypt_and_wait(nd, name, progress):
    t = started(nd, "POST", f"/v1/vms/{name}/encrypt")
    wait_task(nd, t["id"], until=lambda x: x["progress"] >= progress
              or x["state"] not in ("queued", "running"))
    return t["id"]


def test_sigkill_during_encrypt_then_restart(nd, image):
    path, digest = image
    nd.cli("vm", "create", "e1", "--image", str(path))
    assert nd.guest_sha256("e1") == digest
    tid = start_encrypt_and_wait(nd, "e1", 20)
    nd.kill()
    nd.start()

    t = get_task(nd, tid)
    vm = nd.vm("e1")
    print(f"\nafter SIGKILL at 20 % or more: {t['state']}, recovered {t['recovered']}")
    if t["recovered"] == "rolled_back":
        assert t["state"] == "error" and t["error"]["code"] == "interrupted", t
        assert "rolled back" in t["error"]["message"], t
        assert vm["encrypted"] is False, vm
    else:
        # Killed after the commit (or the task had ended before the kill).
        assert t["recovered"] in ("rolled_forward", None), t
        assert t["state"] == "success" and t["error"] is None, t
        assert vm["encrypted"] is True, vm
    assert t["finished"] is not None
    assert t["recovered"] is not None, f"the kill came after the task had ended: {t}"
    assert nd.guest_sha256("e1") == digest
    referenced_only(nd, "e1")
    status, body = nd.api("GET", "/v1/tasks?state=running")
    assert status == 200 and body["tasks"] == [], body
    status, body = nd.api("GET", "/v1/tasks?state=queued")
    assert status == 200 and body["tasks"] == [], body
    # Closed: it cannot be cancelled, and a second restart leaves it as it is.
    status, body = nd.api("POST", f"/v1/tasks/{tid}/cancel", {})
    assert status == 409, body
    nd.stop()
    nd.start()
    assert get_task(nd, tid) == t


def test_sigterm_during_encrypt_rolls_back_and_says_so(nd, image):
    path, digest = image
    nd.cli("vm", "create", "e2", "--image", str(path))
    tid = start_encrypt_and_wait(nd, "e2", 10)
    nd.stop()  # SIGTERM: vmseald stops the operation first
    nd.start()
    t = get_task(nd, tid)
    if t["state"] == "success":  # it had finished before the signal
        assert t["recovered"] is None and nd.vm("e2")["encrypted"] is True
    else:
        assert t["state"] == "error" and t["recovered"] == "rolled_back", t
        assert t["error"] == {"code": "interrupted",
                              "message": "vmseald was stopping: the operation was rolled back"}, t
        assert nd.vm("e2")["encrypted"] is False
    assert nd.guest_sha256("e2") == digest
    referenced_only(nd, "e2")
