#!/usr/bin/env python3
"""Bulk seeder for benchmarks: nested groups, projects and deploy tokens, fast.

The CLI is the only supported writer, but it takes ~2 ms per `token create`, so 10^6 deploy
tokens would take most of an hour. This script writes the same rows directly, in the schema
and formats the server reads (schema.sql, src/store/sqlite/*.rs, src/domain/deploy_token.rs):

  - groups / projects: `path` of `/`-separated segments, `parent_id` / `group_id` the
    enclosing group, `visibility` private, `created_at` RFC 3339 with seconds and `Z`;
  - deploy_tokens: exactly one of project_id / group_id, `username` NULL (the default
    `wvs+deploy-token-<id>`), `token_digest` the 32-byte SHA-256 of a secret
    `wvsdt-` + base64url(24 random bytes) without padding, `scopes` comma-separated scope
    names, `expires_at` NULL or YYYY-MM-DD.

It never creates the schema: run it on a database the binary made (any CLI command
migrates it), so the columns are the ones of the binary under test. It refuses a database
whose `user_version` it does not know.

    python3 bench/seed_db.py DB --groups-top 100 --fanout 10 --projects-per-leaf 10 \
        --tokens 1000000 [--probe-out FILE]

The tree: `--groups-top` top-level groups `sg<i>`, each with `--fanout` subgroups, each with
`--fanout` subgroups again (3 levels), and `--projects-per-leaf` projects in every leaf group
(`sg3/s4/t5/p6`). The defaults give 100 + 1,000 + 10,000 groups and 100,000 projects.
Tokens alternate between project tokens (spread over all projects) and group tokens
(spread over all groups), with the scope sets the bench uses.

`--probe-out FILE` writes `username:secret:project` of one more token, a project token
with read_registry on the last project, so a benchmark can check that seeded rows authenticate like CLI-made
ones.
"""

import argparse
import base64
import hashlib
import os
import sqlite3
import sys
import time

# 3 added users, memberships, PATs, sessions, audit events and deploy_tokens.sealed_secret,
# which stays NULL for every token not named wvs-deploy-token: the rows written here are unchanged.
KNOWN_SCHEMA_VERSIONS = {2, 3}
SCOPE_SETS = [
    "read_registry",
    "read_registry,write_registry",
    "read_repository",
    "read_package_registry,write_package_registry",
    "read_repository,read_registry",
]
CREATED_AT = "2025-01-01T00:00:00Z"


def secret(rng_bytes):
    return "wvsdt-" + base64.urlsafe_b64encode(rng_bytes).decode().rstrip("=")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db")
    ap.add_argument("--groups-top", type=int, default=100)
    ap.add_argument("--fanout", type=int, default=10)
    ap.add_argument("--projects-per-leaf", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--probe-out")
    a = ap.parse_args()

    started = time.monotonic()
    con = sqlite3.connect(a.db, isolation_level=None)
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version not in KNOWN_SCHEMA_VERSIONS:
        sys.exit(f"seed_db.py: schema version {version} unknown (knows {sorted(KNOWN_SCHEMA_VERSIONS)})")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = OFF")
    con.execute("BEGIN IMMEDIATE")

    # Groups: three levels under prefix sg/s/t.
    def add_group(path, parent_id):
        cur = con.execute(
            "INSERT INTO groups (path, parent_id, created_at) VALUES (?, ?, ?)",
            (path, parent_id, CREATED_AT),
        )
        return cur.lastrowid

    group_ids = []
    leaves = []  # (id, path)
    for i in range(a.groups_top):
        top = f"sg{i}"
        tid = add_group(top, None)
        group_ids.append(tid)
        for j in range(a.fanout):
            mid = f"{top}/s{j}"
            mid_id = add_group(mid, tid)
            group_ids.append(mid_id)
            for k in range(a.fanout):
                leaf = f"{mid}/t{k}"
                leaf_id = add_group(leaf, mid_id)
                group_ids.append(leaf_id)
                leaves.append((leaf_id, leaf))

    project_ids = []
    for leaf_id, leaf in leaves:
        for p in range(a.projects_per_leaf):
            cur = con.execute(
                "INSERT INTO projects (path, group_id, visibility, created_at) VALUES (?, ?, 'private', ?)",
                (f"{leaf}/p{p}", leaf_id, CREATED_AT),
            )
            project_ids.append(cur.lastrowid)

    def rows():
        for n in range(a.tokens):
            # Only the digest is stored; the secret is thrown away as the CLI prints it once.
            digest = hashlib.sha256(secret(os.urandom(24)).encode()).digest()
            if n % 2 == 0 and project_ids:
                owner = (project_ids[(n // 2) % len(project_ids)], None)
            else:
                owner = (None, group_ids[(n // 2) % len(group_ids)])
            expires = "2099-12-31" if n % 7 == 0 else None
            scopes = SCOPE_SETS[n % len(SCOPE_SETS)]
            yield (owner[0], owner[1], f"seed-{n}", digest, scopes, expires, CREATED_AT)

    con.executemany(
        "INSERT INTO deploy_tokens (project_id, group_id, name, token_digest, scopes, expires_at, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    con.execute("COMMIT")

    if a.probe_out and project_ids:
        # A project token with read_registry that the server must accept: written on its own.
        s = secret(os.urandom(24))
        cur = con.execute(
            "INSERT INTO deploy_tokens (project_id, group_id, name, token_digest, scopes, created_at) "
            "VALUES (?, NULL, 'seed-probe', ?, 'read_registry', ?)",
            (project_ids[-1], hashlib.sha256(s.encode()).digest(), CREATED_AT),
        )
        probe_path = f"{leaves[-1][1]}/p{a.projects_per_leaf - 1}"
        with open(a.probe_out, "w") as f:
            f.write(f"wvs+deploy-token-{cur.lastrowid}:{s}:{probe_path}\n")

    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("groups", "projects", "deploy_tokens")]
    con.close()
    print(
        f"seed_db.py: {counts[0]} groups, {counts[1]} projects, {counts[2]} deploy tokens "
        f"in the database ({time.monotonic() - started:.1f}s)"
    )


if __name__ == "__main__":
    main()
