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
