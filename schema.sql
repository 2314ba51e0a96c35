-- wvs-auth SQLite schema.
--
-- Applied on first start and versioned with `PRAGMA user_version`: every block below starts
-- with `-- migrate: N` and runs once, in order, inside a transaction, when the database's
-- user_version is below N. Never edit a block that has shipped; add a new one, so an existing
-- database migrates without losing rows.

-- migrate: 1
CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    path        TEXT    NOT NULL UNIQUE,
    parent_id   INTEGER REFERENCES groups(id),
    created_at  TEXT    NOT NULL
);

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    path        TEXT    NOT NULL UNIQUE,
    group_id    INTEGER REFERENCES groups(id),
    visibility  TEXT    NOT NULL DEFAULT 'private'
                CHECK (visibility IN ('private', 'internal', 'public')),
    created_at  TEXT    NOT NULL
);

CREATE TABLE deploy_tokens (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER REFERENCES projects(id),
    group_id      INTEGER REFERENCES groups(id),
    name          TEXT    NOT NULL,
    username      TEXT,            -- NULL: the default `wvs+deploy-token-{id}`
    token_digest  BLOB    NOT NULL UNIQUE,   -- SHA-256 of the secret; the secret is never stored
    scopes        TEXT    NOT NULL,          -- comma-separated
    expires_at    TEXT,            -- YYYY-MM-DD; refused from 00:00:00Z of that date
    created_at    TEXT    NOT NULL,
    revoked_at    TEXT,
    last_used_at  TEXT,
    created_by    INTEGER,         -- user id; NULL for the CLI, and tokens outlive their creator
    CHECK ((project_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX deploy_tokens_project ON deploy_tokens(project_id);
CREATE INDEX deploy_tokens_group ON deploy_tokens(group_id);

-- migrate: 2
-- Dependency Proxy (SPEC §2): off by default, so existing groups gain nothing silently.
ALTER TABLE groups ADD COLUMN dependency_proxy INTEGER NOT NULL DEFAULT 0
    CHECK (dependency_proxy IN (0, 1));

-- migrate: 3
-- People (SPEC §1): users, their roles, personal access tokens, browser sessions, the audit
-- log, and the sealed secret of the one CI deploy token.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT,            -- argon2id PHC string; NULL: no password sign-in
    is_admin       INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at     TEXT    NOT NULL
);

CREATE TABLE memberships (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_id    INTEGER REFERENCES groups(id),
    project_id  INTEGER REFERENCES projects(id),
    role        TEXT    NOT NULL
                CHECK (role IN ('guest', 'reporter', 'developer', 'maintainer', 'owner')),
    created_at  TEXT    NOT NULL,
    CHECK ((project_id IS NULL) <> (group_id IS NULL)),
    UNIQUE (user_id, group_id),
    UNIQUE (user_id, project_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE personal_access_tokens (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    token_digest  BLOB    NOT NULL UNIQUE,   -- SHA-256 of the secret
    scopes        TEXT    NOT NULL,          -- comma-separated
    expires_at    TEXT,                      -- YYYY-MM-DD; refused from 00:00:00Z of that date
    created_at    TEXT    NOT NULL,
    revoked_at    TEXT,
    last_used_at  TEXT
);
CREATE INDEX personal_access_tokens_user ON personal_access_tokens(user_id);

CREATE TABLE sessions (
    id_digest   BLOB    PRIMARY KEY,         -- SHA-256 of the cookie value
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL
);

CREATE TABLE audit_events (
    id               INTEGER PRIMARY KEY,
    at               TEXT    NOT NULL,
    action           TEXT    NOT NULL,
    actor            TEXT,               -- username at the time, or "cli"; NULL: unknown
    actor_user_id    INTEGER,            -- no foreign key: the log outlives users
    deploy_token_id  INTEGER,
    target           TEXT,               -- project or group path
    detail           TEXT
);
CREATE INDEX audit_events_at ON audit_events(at);

-- Only the project token named `wvs-deploy-token` has one: AES-256-GCM, key in the keys dir.
ALTER TABLE deploy_tokens ADD COLUMN sealed_secret BLOB;

-- migrate: 4
-- Package registries (SPEC §6): one row per package version of a format in a project, one
-- per file of it. File contents live under <data-dir>/packages/, content-addressed by
-- SHA-256; the digests the formats serve are kept with the row.
CREATE TABLE packages (
    id               INTEGER PRIMARY KEY,
    project_id       INTEGER NOT NULL REFERENCES projects(id),
    format           TEXT    NOT NULL,   -- generic, pypi, npm, …
    name             TEXT    NOT NULL,   -- as published
    normalized_name  TEXT    NOT NULL,   -- the format's canonical form (PEP 503 for PyPI)
    version          TEXT    NOT NULL,
    metadata         TEXT,               -- format-specific JSON (npm's version manifest, …)
    created_at       TEXT    NOT NULL,
    created_by       TEXT,               -- principal's name at the time
    UNIQUE (project_id, format, normalized_name, version)
);
CREATE INDEX packages_name ON packages(format, normalized_name);

CREATE TABLE package_files (
    id               INTEGER PRIMARY KEY,
    package_id       INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    file_name        TEXT    NOT NULL,
    size             INTEGER NOT NULL,
    sha256           TEXT    NOT NULL,   -- hex; also the blob's name
    sha1             TEXT    NOT NULL,
    md5              TEXT    NOT NULL,
    sha512           TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    uploaded_by      TEXT,               -- principal's name at the time
    deploy_token_id  INTEGER,            -- the uploading deploy token, if one
    user_id          INTEGER,            -- the uploading user, if one
    UNIQUE (package_id, file_name)
);
CREATE INDEX package_files_sha256 ON package_files(sha256);

-- npm dist-tags: a name per package (and project) pointing at one of its versions.
CREATE TABLE package_tags (
    project_id       INTEGER NOT NULL REFERENCES projects(id),
    format           TEXT    NOT NULL,
    normalized_name  TEXT    NOT NULL,
    tag              TEXT    NOT NULL,
    version          TEXT    NOT NULL,
    PRIMARY KEY (project_id, format, normalized_name, tag)
);

-- migrate: 5
-- Offboarding (issue 18): a blocked user's password, personal access tokens and sessions
-- stop on the next request; the deploy tokens they created keep working.
ALTER TABLE users ADD COLUMN blocked_at TEXT;

-- migrate: 6
-- One-shot messages of the settings pages (a new token's secret shown once after the
-- redirect), kept here so any instance behind a balancer can show them: AES-256-GCM sealed
-- under the key in the keys directory, deleted when read, and with their session.
CREATE TABLE flashes (
    id              INTEGER PRIMARY KEY,
    session_digest  BLOB    NOT NULL REFERENCES sessions(id_digest) ON DELETE CASCADE,
    page            TEXT    NOT NULL,
    sealed          BLOB    NOT NULL,
    created_at      TEXT    NOT NULL
);
CREATE INDEX flashes_session ON flashes(session_digest, page);
