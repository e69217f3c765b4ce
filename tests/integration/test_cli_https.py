"""The vmseal CLI against a real vmseald over HTTPS, exactly as the issue's
command lines are written: login stores a token under $HOME/.config/vmseal
(0600), later commands with the same --server (or VMSEAL_SERVER) use it, a
refused command exits non-zero naming the missing privilege and the object,
logout revokes the token. Also user, role and permission administration
from the CLI, and task list/watch."""
import json
import os
import shutil
import stat
import subprocess

import pytest

from vmseald import Vmseald

MIB = 1 << 20
PW = "correct horse battery"


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    from conftest import BUILD_DIR
    daemon = Vmseald(BUILD_DIR, tmp_path_factory.mktemp("vmseald"), https=True)
    daemon.start()
    daemon.add_native("n1")
    yield daemon
    daemon.stop()
    shutil.rmtree(daemon.runtime, ignore_errors=True)


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def vmseal(d, home, *args, server=True, ca=False, env_server=False):
    """Runs vmseal as a remote user would: HOME is theirs, no socket."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(home)}
    url = f"https://127.0.0.1:{d.https_port}"
    pre = []
    if env_server:
        env["VMSEAL_SERVER"] = url
    elif server:
        pre += ["--server", url]
    if ca:
        pre += ["--ca", str(d.ca)]
    return subprocess.run([str(d.build / "bin" / "vmseal"), *pre, *args], capture_output=True,
                          text=True, env=env, timeout=600)


def root_cli(d, *args):
    return d.cli(*args)


def test_login_refusal_and_logout_over_https(d, home, tmp_path):
    pwfile = tmp_path / "pw"
    pwfile.write_text(PW + "\n")
    # Administration through the CLI, as root on the socket.
    root_cli(d, "user", "create", "bob", "--password-file", str(pwfile))
    assert "bob" in [u["name"] for u in root_cli(d, "user", "list")["users"]]
    root_cli(d, "role", "create", "viewer-power", "--privilege", "System.Read",
             "--privilege", "VirtualMachine.Interact.PowerOn")
    roles = {r["name"] for r in root_cli(d, "role", "list")["roles"]}
    assert {"Administrator", "Read-only", "No cryptography administrator",
            "viewer-power"} <= roles
    root_cli(d, "vm", "create", "web1", "--disk", str(8 * MIB), "--encrypt")
    root_cli(d, "permission", "set", "--user", "bob", "--role", "viewer-power",
             "--object", "vm/web1")
    perms = root_cli(d, "permission", "list")["permissions"]
    assert {"principal": "bob", "group": False, "role": "viewer-power", "object": "vm/web1",
            "propagate": True} in perms

    # Without a token: refused, with a hint.
    p = vmseal(d, home, "vm", "list", ca=True)
    assert p.returncode != 0 and "login" in p.stderr
    # A wrong password.
    bad = tmp_path / "bad"
    bad.write_text("not the password\n")
    p = vmseal(d, home, "login", "--user", "bob", "--password-file", str(bad), ca=True)
    assert p.returncode != 0
    assert not (home / ".config" / "vmseal").exists() or \
        not any((home / ".config" / "vmseal").iterdir())
    # Login stores the token, 0600 in a 0700 directory; the password is not in it.
    p = vmseal(d, home, "login", "--user", "bob", "--password-file", str(pwfile), ca=True)
    assert p.returncode == 0, p.stderr
    cfg = home / ".config" / "vmseal"
    files = [f for f in cfg.iterdir() if f.is_file()]
    assert files
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o700
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert PW not in f.read_text()
    # Later commands with the same --server use it (the CA is remembered too),
    # or with VMSEAL_SERVER.
    p = vmseal(d, home, "--json", "vm", "list")
    assert p.returncode == 0, p.stderr
    assert [v["name"] for v in json.loads(p.stdout)["vms"]] == ["web1"]
    p = vmseal(d, home, "--json", "whoami", env_server=True)
    assert p.returncode == 0 and json.loads(p.stdout)["user"] == "bob", p.stderr
    # A refused command exits non-zero and names the privilege and the object;
    # nothing changed.
    before = d.vm("web1")
    p = vmseal(d, home, "vm", "decrypt", "web1")
    assert p.returncode == 1, p
    assert "Cryptographer.Decrypt" in p.stderr and "vm/web1" in p.stderr, p.stderr
    assert d.vm("web1") == before
    p = vmseal(d, home, "vm", "create", "web2", "--disk", str(MIB))
    assert p.returncode == 1 and "VirtualMachine.Inventory.Create" in p.stderr
    assert "on /" in p.stderr
    # Tasks: bob sees his own and those on objects he may read (web1), not
    # the others; root sees all.
    root_cli(d, "vm", "create", "other", "--disk", str(MIB))
    p = vmseal(d, home, "--json", "task", "list")
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout)["tasks"]
    assert seen and {t["target"] for t in seen} == {"vm/web1"}, seen
    tasks = root_cli(d, "task", "list")["tasks"]
    assert {"vm/web1", "vm/other"} <= {t["target"] for t in tasks}
    # Logout revokes: the stolen token no longer works.
    token = json.loads(files[0].read_text())
    tok = next(iter(token.values()))["token"]
    p = vmseal(d, home, "logout")
    assert p.returncode == 0, p.stderr
    status, out, _ = d.api_https("GET", "/v1/vms", token=tok)
    assert status == 401
    p = vmseal(d, home, "vm", "list")
    assert p.returncode != 0


def test_task_watch_follows_a_task(d, home, tmp_path):
    status, body = d.api("POST", "/v1/vms", {"name": "w1", "disks": [16 * MIB],
                                             "encrypt": True})
    assert status == 202
    task = body["task"]["id"]
    p = d.run_cli("task", "watch", task)
    assert p.returncode == 0, p.stderr
    t = json.loads(p.stdout)
    t = t.get("task", t)
    assert t["state"] == "success" and t["progress"] == 100
    p = d.run_cli("task", "watch", "t-no-such-task")
    assert p.returncode != 0
    # A task that failed makes watch exit 1 with its error.
    status, body = d.api("POST", "/v1/vms/w1/snapshots/none/revert", {})
    assert status == 202
    p = d.run_cli("task", "watch", body["task"]["id"])
    assert p.returncode == 1 and "none" in p.stderr, p
