"""Privileges, roles and permissions against a real vmseald (issue 5).

For each cryptographic operation, a user lacking each one of the privileges
it needs is refused (HTTP 403 naming that privilege and the object) and no
file of the datastore changes; the same user holding all of them succeeds.
The privileges expected here are the issue's and vSphere's rules, written
out independently of src/server/privileges.c so that a wrong table fails.
Then the built-in roles, permissions on VMs and folders with propagation,
the no-escalation rule, every route refusing a caller without a token or a
privilege, and the audit log.
"""
import json
import shutil

import pytest

from apiauth import ApiAuth, disk_state
from vmseald import Vmseald

MIB = 1 << 20
PW = "correct horse battery"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from conftest import BUILD_DIR
    d = Vmseald(BUILD_DIR, tmp_path_factory.mktemp("vmseald"))
    d.start()
    d.add_native("n1")
    a = ApiAuth(d)
    a.user("alice", PW)
    a.user("bob", PW)
    tokens = {"alice": a.login("alice", PW), "bob": a.login("bob", PW)}
    yield d, a, tokens
    d.stop()
    shutil.rmtree(d.runtime, ignore_errors=True)


def create(a, name, encrypt, disks=(16 * MIB,)):
    status, out = a.d.api("POST", "/v1/vms", {"name": name, "disks": list(disks),
                                              "encrypt": encrypt})
    assert status == 202, out
    return out["task"]


def root_wait(a, task):
    import time
    for _ in range(3000):
        status, out = a.d.api("GET", f"/v1/tasks/{task['id']}")
        assert status == 200, out
        if out["task"]["state"] not in ("queued", "running"):
            assert out["task"]["state"] == "success", out["task"]
            return out["task"]
        time.sleep(0.1)
    raise AssertionError("task did not finish")


def root_vm(a, name, encrypt):
    status, out = a.d.api("GET", f"/v1/vms/{name}")
    if status == 200:
        return out["vm"]
    return root_wait(a, create(a, name, encrypt))["result"]


# Operation -> (method, path, body, the privileges it needs, object named).
# {enc}: an encrypted VM, {plain}: an unencrypted one; both exist.
OPS = {
    "encrypt": ("POST", "/v1/vms/{plain}/encrypt", {},
                ["Cryptographer.Encrypt"], "vm/{plain}"),
    "decrypt": ("POST", "/v1/vms/{enc}/decrypt", {},
                ["Cryptographer.Decrypt"], "vm/{enc}"),
    "clone keep": ("POST", "/v1/vms/{enc}/clone", {"name": "c-keep"},
                   ["VirtualMachine.Provisioning.Clone", "VirtualMachine.Inventory.Create",
                    "Cryptographer.Clone"], None),
    "clone recrypt": ("POST", "/v1/vms/{enc}/clone", {"name": "c-re", "mode": "recrypt"},
                      ["VirtualMachine.Provisioning.Clone", "VirtualMachine.Inventory.Create",
                       "Cryptographer.Clone", "Cryptographer.Recrypt"], None),
    "clone decrypt": ("POST", "/v1/vms/{enc}/clone", {"name": "c-de", "mode": "decrypt"},
                      ["VirtualMachine.Provisioning.Clone", "VirtualMachine.Inventory.Create",
                       "Cryptographer.Clone", "Cryptographer.Decrypt"], None),
    "clone encrypt": ("POST", "/v1/vms/{plain}/clone", {"name": "c-en", "mode": "encrypt"},
                      ["VirtualMachine.Provisioning.Clone", "VirtualMachine.Inventory.Create",
                       "Cryptographer.Encrypt"], None),
    "shallow rekey": ("POST", "/v1/vms/{enc}/rekey", {},
                      ["Cryptographer.Recrypt"], "vm/{enc}"),
    "deep rekey": ("POST", "/v1/vms/{enc}/rekey", {"deep": True},
                   ["Cryptographer.Recrypt"], "vm/{enc}"),
    "add disk": ("POST", "/v1/vms/{enc}/disks", {"size": 8 * MIB},
                 ["VirtualMachine.Config.AddNewDisk", "Cryptographer.AddDisk"], "vm/{enc}"),
    "export": ("POST", "/v1/vms/{enc}/disks/0/export", {"path": "{tmp}/export.raw"},
               ["VirtualMachine.Provisioning.DiskRandomRead", "Cryptographer.Access",
                "Datastore.FileManagement"], None),
    "disk secret": ("POST", "/v1/vms/{enc}/disks/0/secret", {"path": "{tmp}/secret.txt"},
                    ["Cryptographer.Access", "Cryptographer.ManageKeys",
                     "Datastore.FileManagement"], None),
    "create encrypted": ("POST", "/v1/vms", {"name": "n-enc", "disks": [8 * MIB],
                                             "encrypt": True},
                         ["VirtualMachine.Inventory.Create", "VirtualMachine.Config.AddNewDisk",
                          "Cryptographer.EncryptNew"], "/"),
    "policy encrypt": ("POST", "/v1/vms/{plain}/policy", {"policy": "VM Encryption Policy"},
                       ["StorageProfile.Apply", "Cryptographer.Encrypt"], None),
    "policy decrypt": ("POST", "/v1/vms/{enc}/policy", {"policy": None},
                       ["StorageProfile.Apply", "Cryptographer.Decrypt"], None),
    "key destroy": ("POST", "/v1/keys/destroy", {"vm": "{enc}"},
                    ["Cryptographer.ManageKeys"], "/"),
    "provider add": ("POST", "/v1/providers", {"name": "n9", "type": "native"},
                     ["Cryptographer.ManageKeyServers"], "/"),
    "provider backup": ("POST", "/v1/providers/n1/backup", {"passphrase": "x" * 12},
                        ["Cryptographer.ManageKeyServers", "Cryptographer.ManageKeys"], "/"),
}


def fill(value, names):
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    return value


@pytest.mark.parametrize("op", sorted(OPS))
def test_each_missing_privilege_is_refused_and_nothing_changes(env, op, tmp_path):
    d, a, tokens = env
    names = {"enc": "p-enc", "plain": "p-plain", "tmp": str(tmp_path)}
    root_vm(a, "p-enc", True)
    root_vm(a, "p-plain", False)
    # The host is in encryption mode already (p-enc made it so): the
    # RegisterHost rule has its own test below.
    method, path, body, needed, obj = OPS[op]
    path, body = fill(path, names), fill(body, names)
    for missing in needed:
        holds = [p for p in needed if p != missing] + ["System.Read", "System.View"]
        a.grant("alice", holds)
        before = disk_state(d.data)
        status, out = a.call(tokens["alice"], method, path, body)
        assert status == 403, f"{op} without {missing}: {status} {out}"
        assert out["error"]["code"] == "forbidden"
        msg = out["error"]["message"]
        assert f"lacks privilege {missing} on " in msg, msg
        if obj is not None:
            assert msg.endswith(" on " + fill(obj, names)), msg
        assert "alice" in msg
        assert disk_state(d.data) == before, f"{op} refused without {missing} changed files"
        assert not (tmp_path / "export.raw").exists() and not (tmp_path / "secret.txt").exists()
    # With every privilege it needs (and nothing else), it is allowed.
    a.grant("alice", needed + ["System.Read"])
    status, out = a.call(tokens["alice"], method, path, body)
    if op == "key destroy":
        # Past the privileges, the rule of crypto-shredding: not while a VM uses it.
        assert status == 409 and out["error"]["code"] == "vm_state", out
    else:
        assert status in (200, 201, 202), f"{op} with {needed}: {status} {out}"
    if status == 202:
        t = a.wait(tokens["alice"], out["task"])
        assert t["state"] == "success", t
        assert t["user"] == "alice"
    # Put things back for the next operation.
    if op in ("decrypt", "policy decrypt"):
        root_wait(a, a.root("POST", "/v1/vms/p-enc/encrypt", {})["task"])
    if op in ("encrypt", "policy encrypt"):
        root_wait(a, a.root("POST", "/v1/vms/p-plain/decrypt", {})["task"])
    if op.startswith("clone"):
        root_wait(a, a.root("DELETE", f"/v1/vms/{body['name']}")["task"])
    if op == "create encrypted":
        root_wait(a, a.root("DELETE", "/v1/vms/n-enc")["task"])
    a.revoke_all("alice")


def test_register_host_is_needed_on_a_host_not_in_encryption_mode(tmp_path):
    from conftest import BUILD_DIR
    d = Vmseald(BUILD_DIR, tmp_path / "d")
    d.start()
    try:
        d.add_native("n1")
        a = ApiAuth(d)
        a.user("carol", PW)
        tok = a.login("carol", PW)
        host = a.root("GET", "/v1/host")["host"]
        assert host["encryption_mode"] == "none"
        a.grant("carol", ["VirtualMachine.Inventory.Create", "VirtualMachine.Config.AddNewDisk",
                          "Cryptographer.EncryptNew", "System.Read"])
        before = disk_state(d.data)
        status, out = a.call(tok, "POST", "/v1/vms", {"name": "e1", "disks": [8 * MIB],
                                                      "encrypt": True})
        assert status == 403 and "Cryptographer.RegisterHost on /" in out["error"]["message"]
        assert disk_state(d.data) == before
        assert a.root("GET", "/v1/host")["host"]["encryption_mode"] == "none"
        # An unencrypted VM needs no crypto privilege and leaves the host as it is.
        status, out = a.call(tok, "POST", "/v1/vms", {"name": "p1", "disks": [8 * MIB]})
        assert status == 202 and a.wait(tok, out["task"])["state"] == "success"
        assert a.root("GET", "/v1/host")["host"]["encryption_mode"] == "none"
        a.grant("carol", ["VirtualMachine.Inventory.Create", "VirtualMachine.Config.AddNewDisk",
                          "Cryptographer.EncryptNew", "Cryptographer.RegisterHost",
                          "System.Read"])
        status, out = a.call(tok, "POST", "/v1/vms", {"name": "e1", "disks": [8 * MIB],
                                                      "encrypt": True})
        assert status == 202 and a.wait(tok, out["task"])["state"] == "success"
        host = a.root("GET", "/v1/host")["host"]
        assert host["encryption_mode"] == "safe" and host["host_key"]["provider"] == "n1"
        # Now in encryption mode: EncryptNew alone is enough.
        a.grant("carol", ["VirtualMachine.Inventory.Create", "VirtualMachine.Config.AddNewDisk",
                          "Cryptographer.EncryptNew", "System.Read"])
        status, out = a.call(tok, "POST", "/v1/vms", {"name": "e2", "disks": [8 * MIB],
                                                      "encrypt": True})
        assert status == 202 and a.wait(tok, out["task"])["state"] == "success"
    finally:
        d.stop()
        shutil.rmtree(d.runtime, ignore_errors=True)


def role_of(a, name):
    return next(r for r in a.root("GET", "/v1/roles")["roles"] if r["name"] == name)


def test_builtin_roles(env):
    d, a, tokens = env
    roles = {r["name"]: r for r in a.root("GET", "/v1/roles")["roles"]}
    assert {"Administrator", "Read-only", "No cryptography administrator"} <= set(roles)
    every = set(a.privileges())
    assert set(roles["Administrator"]["privileges"]) == every
    assert set(roles["No cryptography administrator"]["privileges"]) == \
        {p for p in every if not p.startswith("Cryptographer.")}
    assert set(roles["Read-only"]["privileges"]) == {"System.View", "System.Read",
                                                     "StorageProfile.View"}
    for name in roles:
        if roles[name]["builtin"]:
            status, out = d.api("DELETE", "/v1/roles/" + name.replace(" ", "%20"))
            assert status == 409 and out["error"]["code"] == "not_allowed", out


def test_read_only_sees_but_changes_nothing(env):
    d, a, tokens = env
    root_vm(a, "ro-enc", True)
    a.root("POST", "/v1/permissions", {"user": "bob", "role": "Read-only", "object": "/"})
    tok = tokens["bob"]
    status, out = a.call(tok, "GET", "/v1/vms")
    assert status == 200 and "ro-enc" in [v["name"] for v in out["vms"]]
    status, out = a.call(tok, "GET", "/v1/vms/ro-enc")
    assert status == 200 and out["vm"]["encrypted"]
    before = disk_state(d.data)
    for method, path, body, priv in [
            ("POST", "/v1/vms/ro-enc/power-on", {}, "VirtualMachine.Interact.PowerOn"),
            ("POST", "/v1/vms/ro-enc/snapshots", {"name": "s"},
             "VirtualMachine.State.CreateSnapshot"),
            ("DELETE", "/v1/vms/ro-enc", None, "VirtualMachine.Inventory.Delete"),
            ("POST", "/v1/vms/ro-enc/decrypt", {}, "Cryptographer.Decrypt"),
            ("GET", "/v1/providers", None, "Cryptographer.ReadKeyServersInfo"),
            ("GET", "/v1/keys", None, "Cryptographer.ManageKeys"),
            ("POST", "/v1/users", {"name": "eve", "password": PW},
             "Authorization.ModifyUsers")]:
        status, out = a.call(tok, method, path, body)
        assert status == 403, (path, out)
        assert f"lacks privilege {priv}" in out["error"]["message"], out
    assert disk_state(d.data) == before
    a.revoke_all("bob")


def test_no_cryptography_administrator(env):
    d, a, tokens = env
    root_vm(a, "nc-enc", True)
    a.root("POST", "/v1/permissions", {"user": "bob", "role": "No cryptography administrator",
                                       "object": "/"})
    tok = tokens["bob"]
    # Everyday work on an encrypted VM needs no cryptographic privilege.
    status, out = a.call(tok, "POST", "/v1/vms/nc-enc/snapshots", {"name": "s1"})
    assert status == 202 and a.wait(tok, out["task"])["state"] == "success"
    status, out = a.call(tok, "DELETE", "/v1/vms/nc-enc/snapshots/s1")
    assert status == 202 and a.wait(tok, out["task"])["state"] == "success"
    status, out = a.call(tok, "POST", "/v1/vms", {"name": "nc-plain", "disks": [8 * MIB]})
    assert status == 202 and a.wait(tok, out["task"])["state"] == "success"
    # Anything cryptographic is refused.
    before = disk_state(d.data)
    for method, path, body, priv in [
            ("POST", "/v1/vms/nc-enc/decrypt", {}, "Cryptographer.Decrypt"),
            ("POST", "/v1/vms/nc-plain/encrypt", {}, "Cryptographer.Encrypt"),
            ("POST", "/v1/vms/nc-enc/clone", {"name": "x"}, "Cryptographer.Clone"),
            ("POST", "/v1/vms/nc-enc/rekey", {}, "Cryptographer.Recrypt"),
            ("POST", "/v1/vms/nc-enc/disks", {"size": MIB}, "Cryptographer.AddDisk"),
            ("POST", "/v1/vms", {"name": "y", "encrypt": True}, "Cryptographer.EncryptNew"),
            ("GET", "/v1/providers", None, "Cryptographer.ReadKeyServersInfo")]:
        status, out = a.call(tok, method, path, body)
        assert status == 403, (path, out)
        assert f"lacks privilege {priv}" in out["error"]["message"], out
    assert disk_state(d.data) == before
    # No escalation: it may manage permissions, but not hand out what it lacks.
    status, out = a.call(tok, "POST", "/v1/permissions",
                         {"user": "bob", "role": "Administrator", "object": "/"})
    assert status == 403 and "Cryptographer." in out["error"]["message"], out
    status, out = a.call(tok, "POST", "/v1/roles",
                         {"name": "sneaky", "privileges": ["Cryptographer.Decrypt"]})
    assert status == 403 and "Cryptographer.Decrypt" in out["error"]["message"], out
    # It can hand out what it holds.
    status, out = a.call(tok, "POST", "/v1/permissions",
                         {"user": "alice", "role": "Read-only", "object": "/"})
    assert status == 200, out
    a.revoke_all("alice")
    a.revoke_all("bob")


def test_permissions_on_a_vm_and_a_folder_propagate(env):
    d, a, tokens = env
    root_vm(a, "pv-a", True)
    root_vm(a, "pv-b", True)
    tok = tokens["bob"]
    a.root("POST", "/v1/permissions", {"user": "bob", "role": "Administrator",
                                       "object": "vm/pv-a"})
    status, out = a.call(tok, "GET", "/v1/vms")
    names = [v["name"] for v in out["vms"]]
    assert "pv-a" in names and "pv-b" not in names
    status, out = a.call(tok, "POST", "/v1/vms/pv-b/rekey", {})
    assert status == 403 and out["error"]["message"].endswith("on vm/pv-b"), out
    status, out = a.call(tok, "POST", "/v1/vms/pv-a/rekey", {})
    assert status == 202 and a.wait(tok, out["task"])["state"] == "success"
    # A VM the caller cannot see is refused, not reported missing.
    status, out = a.call(tok, "GET", "/v1/vms/no-such-vm")
    assert status == 403, out
    # A permission needs an object that exists, and says so plainly.
    status, out = d.api("POST", "/v1/permissions", {"user": "bob", "role": "Read-only",
                                                     "object": "vm/no-such-vm"})
    assert status == 404 and out["error"]["message"] == "no VM named 'no-such-vm'", out
    status, out = d.api("POST", "/v1/permissions", {"user": "bob", "role": "Read-only",
                                                     "object": "folder/none"})
    assert status == 404, out
    status, out = d.api("POST", "/v1/permissions", {"user": "bob", "role": "Read-only",
                                                     "object": "datastore/x"})
    assert status == 400, out
    # Folder: a permission on it reaches the VMs moved into it.
    a.root("POST", "/v1/folders", {"name": "f1"})
    a.root("POST", "/v1/permissions", {"user": "bob", "role": "Read-only",
                                       "object": "folder/f1"})
    assert a.call(tok, "GET", "/v1/vms/pv-b")[0] == 403
    a.root("POST", "/v1/vms/pv-b/move", {"folder": "f1"})
    status, out = a.call(tok, "GET", "/v1/vms/pv-b")
    assert status == 200 and out["vm"]["folder"] == "f1"
    status, out = a.call(tok, "POST", "/v1/vms/pv-b/rekey", {})
    assert status == 403 and "Cryptographer.Recrypt on vm/pv-b" in out["error"]["message"]
    # A folder holding VMs cannot be deleted.
    status, out = d.api("DELETE", "/v1/folders/f1")
    assert status == 409, out
    a.root("POST", "/v1/vms/pv-b/move", {"folder": None})
    assert a.call(tok, "GET", "/v1/vms/pv-b")[0] == 403
    # Group permissions apply to members.
    a.root("POST", "/v1/users/alice/groups", {"group": "ops"})
    a.root("POST", "/v1/permissions", {"group": "ops", "role": "Read-only", "object": "/"})
    status, out = a.call(tokens["alice"], "GET", "/v1/vms/pv-b")
    assert status == 200, out
    a.root("POST", "/v1/permissions/remove", {"group": "ops", "object": "/"})
    assert a.call(tokens["alice"], "GET", "/v1/vms/pv-b")[0] == 403
    a.root("POST", "/v1/permissions/remove", {"user": "bob", "object": "vm/pv-a"})
    a.root("POST", "/v1/permissions/remove", {"user": "bob", "object": "folder/f1"})


# Every route: its method, a path and a body that would be valid.
ROUTES = [
    ("GET", "/v1/vms/x", None), ("POST", "/v1/vms", {"name": "z"}),
    ("DELETE", "/v1/vms/x", None), ("POST", "/v1/vms/x/encrypt", {}),
    ("POST", "/v1/vms/x/decrypt", {}), ("POST", "/v1/vms/x/clone", {"name": "y"}),
    ("POST", "/v1/vms/x/rekey", {}), ("POST", "/v1/vms/x/template", {"template": True}),
    ("POST", "/v1/vms/x/move", {"folder": None}),
    ("POST", "/v1/vms/x/policy", {"policy": None}), ("POST", "/v1/vms/x/disks", {"size": 1}),
    ("POST", "/v1/vms/x/disks/0/export", {"path": "/tmp/x"}),
    ("POST", "/v1/vms/x/disks/0/secret", {"path": "/tmp/x"}),
    ("POST", "/v1/vms/x/snapshots", {"name": "s"}), ("DELETE", "/v1/vms/x/snapshots/s", None),
    ("POST", "/v1/vms/x/snapshots/s/revert", {}), ("POST", "/v1/vms/x/power-on", {}),
    ("POST", "/v1/vms/x/power-off", {}),
    ("GET", "/v1/users", None), ("POST", "/v1/users", {"name": "q", "password": PW}),
    ("DELETE", "/v1/users/alice", None), ("POST", "/v1/users/alice/password", {"password": PW}),
    ("POST", "/v1/users/alice/groups", {"group": "g"}),
    ("DELETE", "/v1/users/alice/groups/g", None),
    ("GET", "/v1/roles", None), ("POST", "/v1/roles", {"name": "q", "privileges": []}),
    ("DELETE", "/v1/roles/r1", None),
    ("GET", "/v1/permissions", None),
    ("POST", "/v1/permissions", {"user": "bob", "role": "Read-only"}),
    ("POST", "/v1/permissions/remove", {"user": "alice"}),
    ("GET", "/v1/folders", None), ("POST", "/v1/folders", {"name": "q"}),
    ("DELETE", "/v1/folders/f1", None),
    ("GET", "/v1/policies", None), ("POST", "/v1/policies", {"name": "q", "provider": "n1"}),
    ("DELETE", "/v1/policies/q", None),
    ("GET", "/v1/providers", None), ("POST", "/v1/providers", {"name": "q", "type": "native"}),
    ("POST", "/v1/providers/n1/default", {}),
    ("POST", "/v1/providers/n1/backup", {"passphrase": "x" * 12}),
    ("GET", "/v1/keys", None), ("POST", "/v1/keys/destroy", {"vm": "x"}),
    ("GET", "/v1/host", None), ("POST", "/v1/host/encryption", {}),
    ("GET", "/v1/tokens?all=1", None),
]
OPEN = [("GET", "/v1/session"), ("GET", "/v1/privileges"), ("GET", "/v1/tokens"),
        ("GET", "/v1/tasks"), ("GET", "/v1/vms")]


def test_every_route_refuses_a_caller_without_a_valid_token(env):
    d, a, tokens = env
    for method, path, body in ROUTES + [(m, p, None) for m, p in OPEN]:
        status, out = a.call("vst_" + "A" * 43, method, path, body)
        assert status == 401 and out["error"]["code"] == "unauthenticated", (path, out)


def test_every_route_refuses_a_user_without_privileges(env):
    d, a, tokens = env
    a.user("nobody1", PW)
    tok = a.login("nobody1", PW)
    before = disk_state(d.data)
    for method, path, body in ROUTES:
        status, out = a.call(tok, method, path, body)
        assert status == 403, (method, path, status, out)
        assert "lacks privilege " in out["error"]["message"], out
    assert disk_state(d.data) == before
    # What any caller may do: their own session, tokens and tasks; the VM list
    # is filtered to nothing.
    for method, path in OPEN:
        status, out = a.call(tok, method, path)
        assert status == 200, (path, out)
    assert a.call(tok, "GET", "/v1/vms")[1]["vms"] == []
    assert a.call(tok, "GET", "/v1/session")[1]["session"]["user"] == "nobody1"


def test_audit_log_has_allowed_and_denied_calls_without_secrets(env):
    d, a, tokens = env
    lines = [json.loads(line) for line in (d.data / "audit.log").read_text().splitlines()]
    denied = [x for x in lines if x["result"] == "denied"]
    assert denied and all(x["missing"] and x["object"] and x["user"] for x in denied)
    assert any(x["result"] == "allowed" and x["user"] == "alice" for x in lines)
    assert any(x["result"] == "unauthenticated" for x in lines)
    text = (d.data / "audit.log").read_text()
    assert PW not in text and "vst_" not in text
    for tok in tokens.values():
        assert tok not in text
