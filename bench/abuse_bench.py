#!/usr/bin/env python3
"""Issue 18's attacks, measured: one script, run against two builds side by side.

    python3 bench/abuse_bench.py OLD_BINARY NEW_BINARY [--only lockout,hashing,...]

Each scenario starts a fresh installation (temporary data and keys directories) and a server
on a free 127.0.0.1 port, attacks it the way the security review did, and prints what it saw
for each binary. Counts, bytes and memory are figures; the latency figures need an idle
machine (nothing else running: the server and the attack share its 2 cores).

Only loopback addresses, only processes it started, bounded loops everywhere.
"""

import argparse
import base64
import concurrent.futures as cf
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import re
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(user, secret):
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


class Install:
    """A data dir, a keys dir and the binary; `cli` runs a command, `serve` the server."""

    def __init__(self, binary):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="abuse-bench-")
        self.data = os.path.join(self.dir, "data")
        self.keys = os.path.join(self.dir, "keys")
        self.server = None
        self.port = None
        self.log_path = None

    def cli(self, *args, stdin=None, check=True):
        out = subprocess.run(
            [self.binary, "--data-dir", self.data, "--keys-dir", self.keys, *args],
            input=stdin, capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            raise RuntimeError(f"{args}: {out.stderr.strip()}")
        return out

    def seed(self):
        self.cli("keys", "init")
        self.cli("group", "create", "acme")
        self.cli("project", "create", "acme/app")
        self.cli("project", "create", "acme/pub", "--visibility", "public")
        t = json.loads(self.cli("token", "create", "--project", "acme/app", "--name", "ci",
                                "--scopes", "read_registry,read_repository", "--json").stdout)
        self.token = (t["username"], t["token"])
        self.cli("user", "create", "alice", "--admin", "--password-stdin",
                 stdin="correct horse battery staple\n")
        self.cli("user", "add-member", "alice", "--group", "acme", "--role", "owner")
        self.cli("user", "create", "bob", "--password-stdin", stdin="another good password\n")
        self.cli("user", "add-member", "bob", "--group", "acme", "--role", "developer")
        return self

    def serve(self, *extra, wrapper=(), env=None):
        self.port = free_port()
        self.log_path = os.path.join(self.dir, f"serve-{self.port}.log")
        log = open(self.log_path, "w")
        e = dict(os.environ, RUST_LOG="info")
        e.update(env or {})
        self.server = subprocess.Popen(
            [*wrapper, self.binary, "--data-dir", self.data, "--keys-dir", self.keys, "serve",
             "--listen", f"127.0.0.1:{self.port}", "--workers", "2",
             "--trusted-proxy", "127.0.0.1", *extra],
            stdout=subprocess.DEVNULL, stderr=log, env=e)
        for _ in range(300):
            try:
                if self.get("/-/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, headers=None, body=None, conn=None, timeout=30):
        c = conn or self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, data, dict(r.getheaders())
        finally:
            if conn is None:
                c.close()

    def get(self, path, headers=None, **kw):
        return self.request("GET", path, headers, **kw)

    def token_status(self, auth, forwarded=None, conn=None, scope="repository:acme/app:pull"):
        h = {"Authorization": auth}
        if forwarded:
            h["X-Forwarded-For"] = forwarded
        path = f"/jwt/auth?service=container_registry&scope={scope}"
        return self.get(path, h, conn=conn)[0]

    def sign_in(self, username, password, return_to="/", forwarded=None, full=False):
        """A browser's sign-in: the page (for its CSRF cookie), then the form."""
        h = {"X-Forwarded-For": forwarded} if forwarded else {}
        page, _, headers = self.get("/-/sign_in", h)
        if page != 200:  # e.g. 429 from the per-client cap on requests in flight
            return f"page {page}"
        cookie = re.search(r"wvs_sign_in_csrf=([^;]+)", headers.get("set-cookie", "")
                           or headers.get("Set-Cookie", ""))
        token = cookie.group(1) if cookie else ""
        form = urllib.parse.urlencode({"username": username, "password": password,
                                       "return_to": return_to, "csrf_token": token})
        h.update({"Content-Type": "application/x-www-form-urlencoded",
                  "Cookie": f"wvs_sign_in_csrf={token}"})
        try:
            status, _, headers = self.request("POST", "/-/sign_in", h, form.encode())
        except OSError as e:
            return type(e).__name__
        return (status, headers.get("location") or headers.get("Location")) if full else status

    def lfs_object(self, content, project="acme/pub"):
        """Stores `content` as an LFS object of the project, as a push would; its oid."""
        oid = hashlib.sha256(content).hexdigest()
        d = os.path.join(self.data, "repositories", project + ".git", "lfs", "objects",
                         oid[:2], oid[2:4])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, oid), "wb") as f:
            f.write(content)
        return oid

    def lfs_batch(self, objects, conn=None):
        body = json.dumps({"operation": "download", "transfers": ["basic"],
                           "objects": objects}).encode()
        return self.request("POST", "/acme/pub.git/info/lfs/objects/batch",
                            {"Accept": "application/vnd.git-lfs+json",
                             "Content-Type": "application/vnd.git-lfs+json"}, body, conn=conn)

    def rss_kb(self, field="VmHWM"):
        try:
            with open(f"/proc/{self.server.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def children(self):
        """Processes whose parent is the server, and their resident memory in kB."""
        n, rss = 0, 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != self.server.pid:
                    continue
                n += 1
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss += int(line.split()[1])
            except (OSError, IndexError, ValueError):
                continue
        return n, rss

    def log_bytes(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def stop(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(40)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def in_parallel(n, fn, workers=None):
    with cf.ThreadPoolExecutor(max_workers=workers or n) as pool:
        return list(pool.map(fn, range(n)))


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else 0


def token_latency_ms(inst, seconds=3.0):
    """p50 of good token requests, one keep-alive connection, for `seconds`."""
    c, samples, end = inst.conn(), [], time.time() + seconds
    auth = basic(*inst.token)
    while time.time() < end and len(samples) < 100_000:
        t = time.perf_counter()
        inst.token_status(auth, conn=c)
        samples.append((time.perf_counter() - t) * 1000)
    c.close()
    return round(percentile(samples, 0.5), 2)


def distinct_failures(inst, clients, threads, net):
    """`clients` distinct clients (a forwarded address under 10.`net` and a username each)
    fail once each, over `threads` keep-alive connections."""
    per = clients // threads

    def chunk(k):
        c = inst.conn()
        for i in range(k * per, (k + 1) * per):
            inst.token_status(basic(f"u{i}", "wvsdt-guess"), conn=c,
                              forwarded=f"10.{net + (i >> 16)}.{(i >> 8) & 255}.{i & 255}")
        c.close()
    in_parallel(threads, chunk)


def under_load(inst, threads, send, measure, rounds=100_000):
    """`measure()` while `threads` clients each call `send(conn, k)` in a loop (bounded)."""
    stop = threading.Event()

    def client(k):
        c = inst.conn()
        for _ in range(rounds):
            if stop.is_set():
                break
            send(c, k)
        c.close()
    running = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
    for t in running:
        t.start()
    time.sleep(0.5)
    try:
        return measure()
    finally:
        stop.set()
        for t in running:
            t.join()


def git_seed(inst, project="acme/pub"):
    """One commit in the project's bare repository, pushed from a work tree by file://."""
    work = os.path.join(inst.dir, "work")
    bare = os.path.join(inst.data, "repositories", project + ".git")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@x")
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "x"],
                 ["push", "-q", "file://" + bare, "main"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True)


# --- the scenarios: each returns {figure: value} -------------------------------------------

def lockout(binary):
    """Item 1: 30 wrong secrets for the real token's username from 30 forwarded addresses,
    then the real token; and 200 parallel good requests while one client floods."""
    inst = Install(binary).seed().serve()
    try:
        user, secret = inst.token
        for i in range(30):
            inst.token_status(basic(user, "wvsdt-wrong"), forwarded=f"10.9.0.{i + 1}")
        after_ban = inst.token_status(basic(user, secret))
        good = under_load(
            inst, 1, lambda c, _: inst.token_status(basic("intruder", "wvsdt-guess"), conn=c),
            lambda: in_parallel(200, lambda _: inst.token_status(basic(user, secret)),
                                workers=32), rounds=20_000)
        return {"real token after 30 wrong from 30 addresses": after_ban,
                "good requests refused during a flood (of 200)": sum(s != 200 for s in good)}
    finally:
        inst.close()


def distinct_clients(binary):
    """Item 2: 60,000 distinct clients (each a new forwarded address and a new username: 1.2 x
    10^5 throttle keys, past the old table's 10^5 places) fail once each; at once after, 60
    wrong secrets from one address: how many are refused with 429 (the ban working)."""
    inst = Install(binary).seed().serve()
    try:
        auth = basic("intruder", "wvsdt-guess")
        start = time.perf_counter()
        distinct_failures(inst, 60_000, 8, net=0)
        took = time.perf_counter() - start
        statuses = [inst.token_status(auth, forwarded="192.0.2.1") for _ in range(60)]
        return {"failures/s over 60,000 distinct clients": round(60_000 / took),
                "429 of 60 wrong secrets from one address afterwards": statuses.count(429),
                "server peak RSS MB": round(inst.rss_kb() / 1024, 1)}
    finally:
        inst.close()


def hashing(binary):
    """Item 3: 200 concurrent wrong-password sign-ins at /-/sign_in from one address, then 64
    concurrent valid ones: answers, peak RSS; and good-token p50 while 4 clients send
    passwords to /jwt/auth."""
    inst = Install(binary).seed().serve()
    try:
        base = inst.rss_kb("VmRSS")
        wrong = in_parallel(200, lambda i: inst.sign_in("alice", f"wrong-password-{i}",
                                                        forwarded="198.51.100.1"))
        peak_wrong = inst.rss_kb()
        valid = in_parallel(64, lambda i: inst.sign_in(
            "bob", "another good password", forwarded=f"198.51.100.{i + 2}"))
        peak = inst.rss_kb()
        time.sleep(1)
        after = inst.rss_kb("VmRSS")
        quiet = token_latency_ms(inst)
        loaded = under_load(
            inst, 4, lambda c, k: inst.token_status(basic("bob", "another good password"),
                                                    forwarded=f"203.0.113.{k + 1}", conn=c),
            lambda: token_latency_ms(inst), rounds=10_000)
        return {"200 wrong passwords: 401s": wrong.count(401),
                "200 wrong passwords: 429s": wrong.count(429),
                "200 wrong passwords: other answers": ",".join(sorted(
                    {f"{w} x{wrong.count(w)}" for w in wrong if w not in (401, 429)})) or "none",
                "64 valid passwords: signed in (303)": valid.count(303),
                "RSS MB before": round(base / 1024, 1),
                "peak RSS MB after wrong ones": round(peak_wrong / 1024, 1),
                "peak RSS MB after valid ones": round(peak / 1024, 1),
                "RSS MB 1 s later": round(after / 1024, 1),
                "token p50 ms, idle": quiet,
                "token p50 ms, 4 password clients": loaded}
    finally:
        inst.close()


def stalled_git(binary):
    """Item 4: 300 anonymous upload-pack POSTs to a public project that stop mid-body; then
    an anonymous clone. And 1,100 stalled POSTs under a 1,024-descriptor limit; then
    `/-/health`."""
    inst = Install(binary).seed()
    git_seed(inst)
    inst.serve()
    out = {}
    try:
        socks = []
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", inst.port))
            s.sendall(b"POST /acme/pub.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n"
                      + f"X-Forwarded-For: 10.7.{i >> 8}.{i & 255}\r\n".encode() +
                      b"Content-Type: application/x-git-upload-pack-request\r\n"
                      b"Content-Length: 100000\r\n\r\n0032want ")
            socks.append(s)
        time.sleep(2)
        n, rss = inst.children()
        out["git processes held by 300 stalled POSTs"] = n
        out["server + git RSS MB"] = round((inst.rss_kb("VmRSS") + rss) / 1024, 1)
        clone = subprocess.run(
            ["git", "clone", "-q", f"http://127.0.0.1:{inst.port}/acme/pub.git",
             os.path.join(inst.dir, "clone")], capture_output=True, timeout=60,
            env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
        out["anonymous clone meanwhile"] = "ok" if clone.returncode == 0 else \
            "failed: " + clone.stderr.decode(errors="replace").strip()[-60:]
        for s in socks:
            s.close()
        inst.stop()
        for label, address in (("one address", lambda i: "10.6.6.6"),
                               ("1,100 addresses",
                                lambda i: f"10.8.{i >> 8}.{i & 255}")):
            inst.serve(wrapper=("prlimit", "--nofile=1024:1024", "--"))
            socks = []
            for i in range(1100):
                try:
                    s = socket.create_connection(("127.0.0.1", inst.port), timeout=2)
                    s.sendall(b"POST /jwt/auth HTTP/1.1\r\nHost: x\r\n"
                              + f"X-Forwarded-For: {address(i)}\r\n".encode() +
                              b"Content-Length: 100000\r\n\r\ngrant_type=")
                    socks.append(s)
                except OSError:
                    pass
            time.sleep(1)
            out[f"server descriptors, 1,100 stalled POSTs from {label}"] = len(
                os.listdir(f"/proc/{inst.server.pid}/fd"))
            t = time.perf_counter()
            try:
                status = inst.get("/-/health", timeout=20)[0]
            except OSError:
                status = "no answer in 20 s"
            out[f"/-/health meanwhile ({label})"] = status
            out[f"/-/health latency s ({label})"] = round(time.perf_counter() - t, 2)
            for s in socks:
                s.close()
            inst.stop()
        return out
    finally:
        inst.close()


def lfs_amplification(binary):
    """Item 5: one batch with 730 copies of one object: links signed, bytes, time; good-token
    p50 while four anonymous connections send such batches, or batches of 100 distinct
    stored objects (100 signatures each)."""
    inst = Install(binary).seed().serve()
    try:
        content = b"an lfs object\n"
        objects = [{"oid": inst.lfs_object(content), "size": len(content)}] * 730
        t = time.perf_counter()
        status, data, _ = inst.lfs_batch(objects)
        took = (time.perf_counter() - t) * 1000
        links = data.count(b'"href"')
        quiet = token_latency_ms(inst)
        loaded = under_load(
            inst, 4, lambda c, _: inst.lfs_batch(objects, conn=c),
            lambda: token_latency_ms(inst))
        distinct = [{"oid": inst.lfs_object(b"object %d\n" % i), "size": len(b"object %d\n" % i)}
                    for i in range(100)]
        signed = inst.lfs_batch(distinct)[1].count(b'"href"')
        loaded_distinct = under_load(
            inst, 4, lambda c, _: inst.lfs_batch(distinct, conn=c),
            lambda: token_latency_ms(inst))
        return {"batch status": status, "links signed for 730 copies": links,
                "answer bytes": len(data), "answer ms": round(took, 1),
                "token p50 ms, idle": quiet, "token p50 ms, 4 anonymous batch clients": loaded,
                "links signed for 100 distinct objects": signed,
                "token p50 ms, 4 anonymous clients asking 100 distinct": loaded_distinct}
    finally:
        inst.close()


def flood_trace(binary):
    """Item 6: one banned client retrying for 8 s: log bytes, audit rows, WAL size; and
    3,000 distinct failing clients: audit rows."""
    inst = Install(binary).seed().serve()
    try:
        wal = os.path.join(inst.data, "wvs.db-wal")
        audit_before = len(inst.cli("audit", "--limit", "1000000").stdout.splitlines())
        log_before = inst.log_bytes()
        end = time.time() + 8

        def banned(_):
            c, n = inst.conn(), 0
            while time.time() < end and n < 1_000_000:
                inst.token_status(basic("intruder", "wvsdt-guess"), forwarded="10.1.1.1", conn=c)
                n += 1
            c.close()
            return n
        sent = sum(in_parallel(4, banned))
        log_one = inst.log_bytes() - log_before
        distinct_failures(inst, 3_000, 4, net=2)
        audit_after = len(inst.cli("audit", "--limit", "1000000").stdout.splitlines())
        return {"requests by one banned client in 8 s": sent,
                "log bytes they wrote": log_one,
                "audit rows for them and 3,000 distinct failing clients":
                    audit_after - audit_before,
                "WAL MB": round(os.path.getsize(wal) / 2**20, 1) if os.path.exists(wal) else 0}
    finally:
        inst.close()


def small_holes(binary):
    """Item 7: a PAT typed as the username; a deploy token named like a user; a scope with
    `..`; a return_to with CR/LF."""
    inst = Install(binary).seed()
    pat = inst.cli("user", "token", "create", "alice", "--name", "p", "--scopes",
                   "read_registry", "--json").stdout
    pat = json.loads(pat)["token"]
    root = inst.cli("token", "create", "--project", "acme/app", "--name", "r", "--scopes",
                    "read_registry", "--username", "alice", check=False)
    inst.serve()
    try:
        inst.token_status(basic(pat, "x"))
        time.sleep(0.3)
        with open(inst.log_path) as f:
            leaked = pat in f.read()
        leaked_audit = pat in inst.cli("audit").stdout
        user, secret = inst.token
        status, data, _ = inst.get(
            "/jwt/auth?service=container_registry&scope=repository:acme/app/../pub:pull",
            {"Authorization": basic(user, secret)})
        granted = "n/a"
        if status == 200:
            tok = json.loads(data)["token"].split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)))
            granted = json.dumps(claims.get("access"))
        sign_in = inst.sign_in("bob", "another good password",
                               return_to="/-/\r\nSet-Cookie: x", full=True)
        return {"PAT-as-username in the log": leaked, "... in the audit log": leaked_audit,
                "deploy token with a user's name": "created" if root.returncode == 0
                else "refused",
                "scope acme/app/../pub": f"{status} {granted}",
                "sign-in with CR/LF in return_to": sign_in}
    finally:
        inst.close()


def durability(binary):
    """Item 8: what a reported write costs: 200 deploy-token creates through the API, one
    at a time (synchronous = NORMAL before, FULL after)."""
    inst = Install(binary).seed()
    pat = json.loads(inst.cli("user", "token", "create", "alice", "--name", "api", "--scopes",
                              "api", "--json").stdout)["token"]
    inst.serve()
    try:
        c = inst.conn()
        times = []
        for i in range(200):
            t = time.perf_counter()
            status = inst.request("POST", "/api/v4/projects/acme%2Fapp/deploy_tokens",
                                  {"PRIVATE-TOKEN": pat, "Content-Type": "application/json"},
                                  json.dumps({"name": f"t{i}", "scopes": ["read_registry"]}),
                                  conn=c)[0]
            times.append((time.perf_counter() - t) * 1000)
            assert status == 201, status
        c.close()
        return {"create p50 ms": round(statistics.median(times), 2),
                "create p90 ms": round(percentile(times, 0.9), 2)}
    finally:
        inst.close()


def key_retirement(binary):
    """Item 9: a token issued, a new key activated, the old one retired at once."""
    inst = Install(binary).seed().serve()
    try:
        user, secret = inst.token
        status, data, _ = inst.get("/jwt/auth?service=container_registry&scope=repository:acme/app:pull",
                                   {"Authorization": basic(user, secret)})
        old = json.loads(inst.cli("keys", "list", "--json").stdout)
        old_kid = [k for k in old if k.get("state") == "active" or k.get("active")]
        old_kid = (old_kid or old)[0]["kid"]
        inst.cli("keys", "rotate")
        new = [k["kid"] for k in json.loads(inst.cli("keys", "list", "--json").stdout)
               if k["kid"] != old_kid][0]
        inst.cli("keys", "activate", new)
        retire = inst.cli("keys", "retire", old_kid, check=False)
        return {"keys retire right after activate": "refused" if retire.returncode else
                "retired (tokens it signed now fail)"}
    finally:
        inst.close()


def offboarding(binary):
    """Item 11: is there a `user block`?"""
    inst = Install(binary).seed()
    try:
        r = inst.cli("user", "block", "alice", check=False)
        return {"user block alice": "blocked" if r.returncode == 0 else r.stderr.strip()[:60]}
    finally:
        inst.close()


def shutdown(binary):
    """Item 12: SIGTERM while a 300 MB LFS download streams to a slow reader."""
    inst = Install(binary).seed().serve()
    try:
        content = os.urandom(1 << 20) * 300
        _, data, _ = inst.lfs_batch([{"oid": inst.lfs_object(content), "size": len(content)}])
        action = json.loads(data)["objects"][0]["actions"]["download"]
        c = inst.conn(60)
        c.request("GET", action["href"].split(str(inst.port), 1)[1], headers=action.get("header", {}))
        r = c.getresponse()
        got = len(r.read(1 << 20))
        inst.server.send_signal(signal.SIGTERM)
        t = time.perf_counter()
        while got < len(content):
            chunk = r.read(8 << 20)
            if not chunk:
                break
            got += len(chunk)
            time.sleep(0.02)
        code = inst.server.wait(60)
        return {"bytes received after SIGTERM (of 300 MiB)": f"{got / 2**20:.0f} MiB",
                "exit code": code, "exit after s": round(time.perf_counter() - t, 1)}
    finally:
        inst.close()


SCENARIOS = {
    "lockout": lockout, "distinct": distinct_clients, "hashing": hashing,
    "git": stalled_git, "lfs": lfs_amplification, "trace": flood_trace,
    "holes": small_holes, "durability": durability, "keys": key_retirement,
    "offboarding": offboarding, "shutdown": shutdown,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--only", default=",".join(SCENARIOS))
    a = p.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    for name in a.only.split(","):
        fn = SCENARIOS[name]
        results = {}
        for label, binary in (("before", a.old), ("after", a.new)):
            try:
                results[label] = fn(binary)
            except Exception as e:  # a scenario that breaks an old build is a figure too
                results[label] = {"error": f"{type(e).__name__}: {e}"[:120]}
        print(f"\n## {name}: {fn.__doc__.split(chr(10))[0]}", flush=True)
        keys = list(dict.fromkeys([*results["before"], *results["after"]]))
        for k in keys:
            print(f"  {k:<58} {str(results['before'].get(k, '-')):>14}  ->  "
                  f"{str(results['after'].get(k, '-'))}", flush=True)


if __name__ == "__main__":
    main()
