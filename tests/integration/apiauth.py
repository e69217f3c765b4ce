"""Calls vmseald's API as a given user: tokens from POST /v1/session, sent
as "Authorization: Bearer" over the Unix socket (the same routes as HTTPS).

    a = ApiAuth(d)                          # d: a started Vmseald
    a.user("bob", "password-bob")           # created by root (the socket's uid 0)
    tok = a.login("bob", "password-bob")
    status, body = a.call(tok, "POST", "/v1/vms/web1/decrypt", {})
    a.grant("bob", ["Cryptographer.Decrypt"], obj="vm/web1")   # a role made for it
"""
import hashlib
import json
import os
import time

from vmseald import UnixHTTPConnection


class ApiAuth:
    def __init__(self, d):
        self.d = d
        self.roles = 0

    def call(self, token, method, path, body=None, timeout=120):
        conn = UnixHTTPConnection(str(self.d.socket), timeout=timeout)
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        retry = resp.getheader("Retry-After")
        conn.close()
        out = json.loads(text) if text.strip() else None
        if retry is not None and isinstance(out, dict):
            out["_retry_after"] = int(retry)
        return resp.status, out

    def root(self, method, path, body=None):
        status, out = self.d.api(method, path, body)
        assert status < 300, f"{method} {path} as root: {status} {out}"
        return out

    def user(self, name, password):
        return self.root("POST", "/v1/users", {"name": name, "password": password})

    def login(self, name, password, ttl=None):
        body = {"user": name, "password": password}
        if ttl is not None:
            body["ttl"] = ttl
        status, out = self.call(None, "POST", "/v1/session", body)
        assert status == 201, f"login {name}: {status} {out}"
        assert out["token"].startswith("vst_")
        return out["token"]

    def grant(self, name, privileges, obj="/", group=False):
        """Gives name a fresh role holding exactly privileges on obj."""
        self.roles += 1
        role = f"r{self.roles}"
        self.root("POST", "/v1/roles", {"name": role, "privileges": sorted(privileges)})
        self.root("POST", "/v1/permissions",
                  {("group" if group else "user"): name, "role": role, "object": obj})
        return role

    def revoke_all(self, name, obj="/"):
        self.d.api("POST", "/v1/permissions/remove", {"user": name, "object": obj})

    def privileges(self):
        return [p["name"] for p in self.root("GET", "/v1/privileges")["privileges"]]

    def wait(self, token, task, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, out = self.call(token, "GET", f"/v1/tasks/{task['id']}")
            assert status == 200, out
            t = out["task"]
            if t["state"] not in ("queued", "running"):
                return t
            time.sleep(0.1)
        raise AssertionError(f"task {task['id']} did not finish")


def disk_state(data_dir):
    """What a refused call must not change: every file under the VM
    datastore and the key/provider files, with its size and SHA-256."""
    state = {}
    roots = [data_dir / "vms"]
    for name in ("keys.json", "providers.json"):
        if (data_dir / name).exists():
            state[name] = hashlib.sha256((data_dir / name).read_bytes()).hexdigest()
    for root in roots:
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for f in sorted(filenames):
                p = os.path.join(dirpath, f)
                h = hashlib.sha256()
                with open(p, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                state[os.path.relpath(p, data_dir)] = (os.path.getsize(p), h.hexdigest())
    return state
