//! PostgreSQL schemas, as addition-only migrations (old and new nodes run side by side during a
//! rolling deploy). The control database holds what is small and global; every shard database
//! holds what grows, each row with its logical shard in a `shard` column so one logical shard can
//! be selected, copied and verified on its own.

/// The control database: forums, accounts, bans, the shard map.
pub const CONTROL: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE forums (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    shard INTEGER NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE accounts (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    email TEXT,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_staff BOOLEAN NOT NULL DEFAULT false,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_username ON accounts (lower(username));
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email));
CREATE TABLE forum_moderators (
    forum_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    PRIMARY KEY (forum_id, account_id)
);
CREATE INDEX forum_moderators_account ON forum_moderators (account_id);
CREATE TABLE bans (
    id BIGSERIAL PRIMARY KEY,
    forum_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (forum_id, kind, value)
);
-- Physical shard servers: a primary and its streaming replicas.
CREATE TABLE shard_servers (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    primary_dsn TEXT NOT NULL,
    replica_dsns TEXT[] NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
-- Logical shards lo..=hi live on server_id, unless an override says otherwise.
CREATE TABLE shard_ranges (
    lo INTEGER PRIMARY KEY,
    hi INTEGER NOT NULL,
    server_id INTEGER NOT NULL REFERENCES shard_servers (id),
    CHECK (lo <= hi AND lo >= 0 AND hi < 4096)
);
CREATE TABLE shard_overrides (
    logical INTEGER PRIMARY KEY CHECK (logical >= 0 AND logical < 4096),
    server_id INTEGER NOT NULL REFERENCES shard_servers (id)
);
-- Bumped by every change to the three tables above; nodes poll it and reload on change.
CREATE TABLE shard_map_version (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    version BIGINT NOT NULL
);
INSERT INTO shard_map_version (version) VALUES (1);
-- Shard moves in progress (or finished), so an interrupted move resumes where it stopped.
CREATE TABLE shard_moves (
    logical INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL,
    target_id INTEGER NOT NULL,
    phase TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
"#,
    ),
    (
        // Sessions end when an account's generation moves (logout, a moderator's removal).
        2,
        r#"
ALTER TABLE accounts ADD COLUMN session_gen BIGINT NOT NULL DEFAULT 0;
"#,
    ),
    (
        // Names and addresses compare with ASCII case folding whatever the database's locale
        // (the rule SQLite's NOCASE keeps; `confab_store::rules::email_key`). The one migration
        // that drops anything: it swaps two indexes for their folded twins, created first, so
        // uniqueness holds throughout and an older node's queries still run.
        3,
        r#"
CREATE UNIQUE INDEX accounts_username_fold ON accounts (lower(username COLLATE "C"));
CREATE UNIQUE INDEX accounts_email_fold ON accounts (lower(email COLLATE "C"));
DROP INDEX accounts_username;
DROP INDEX accounts_email;
"#,
    ),
    (
        // Feature switches (`confab_core::switch`): one record per (name, forum); forum 0 is
        // the global record.
        4,
        r#"
CREATE TABLE switches (
    name TEXT NOT NULL,
    forum_id BIGINT NOT NULL DEFAULT 0,
    is_on BOOLEAN NOT NULL,
    percent SMALLINT,
    staff BOOLEAN NOT NULL DEFAULT false,
    changed_by TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (name, forum_id)
);
"#,
    ),
    (
        // This deployment's identity, made once: every shard database records the deployment
        // that owns it (`deployment_owner`), so `confab shards add` can refuse a database that
        // another deployment uses.
        5,
        r#"
CREATE TABLE deployment (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO deployment (id, created_at)
VALUES (md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text),
        (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
"#,
    ),
    (
        // The check of the secret the deployment's nodes sign with (a keyed hash of it, never
        // the secret), and when a node last claimed it: a node with another secret is refused
        // while the recorded one is in use (`ControlStore::claim_secret`).
        6,
        r#"
ALTER TABLE deployment ADD COLUMN secret_check TEXT, ADD COLUMN secret_seen_at BIGINT;
"#,
    ),
    (
        // SSO from a forum's site: the forum's SSO secret (never in the settings JSON, so the
        // API never returns it), and the profile URL and avatar an SSO account's site sends.
        7,
        r#"
ALTER TABLE forums ADD COLUMN sso_secret TEXT;
ALTER TABLE accounts ADD COLUMN url TEXT, ADD COLUMN avatar_url TEXT;
"#,
    ),
    (
        // The dashboard's imports (an upload imported in the background on the node that
        // received it): their progress and outcome, read by whichever node a poll reaches.
        8,
        r#"
CREATE TABLE imports (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    forum_id BIGINT NOT NULL,
    actor BIGINT,
    format TEXT NOT NULL,
    file_name TEXT NOT NULL,
    bytes BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    posts_read BIGINT NOT NULL DEFAULT 0,
    comments_total BIGINT NOT NULL DEFAULT 0,
    comments_written BIGINT NOT NULL DEFAULT 0,
    summary TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX imports_forum ON imports (forum_id, id);
"#,
    ),
    (
        // Shadow bans (`confab_core::modrules`): the author still posts, their new comments
        // are hidden from everyone but themselves and the moderators.
        9,
        r#"
ALTER TABLE bans ADD COLUMN shadow BOOLEAN NOT NULL DEFAULT false;
"#,
    ),
    (
        // Proof-of-work challenges already used (`confab_core::challenge`): in the control
        // database, so a challenge is accepted once across the fleet; rows go when their
        // challenge expires (pruned by later spends).
        10,
        r#"
CREATE TABLE used_challenges (
    id TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    tag TEXT
);
CREATE INDEX used_challenges_expiry ON used_challenges (expires_at);
"#,
    ),
    (
        // The single-use mailed data links of readers' own data (`confab_store::gdpr`).
        11,
        r#"
CREATE TABLE used_links (
    key TEXT PRIMARY KEY,
    used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
"#,
    ),
    (
        // Bans that say who made them, from which comment, and what they match as moderators
        // see it (`confab_core::bans`: e-mails and addresses masked).
        12,
        r#"
ALTER TABLE bans ADD COLUMN created_by BIGINT;
ALTER TABLE bans ADD COLUMN comment_id BIGINT;
ALTER TABLE bans ADD COLUMN shown TEXT;
"#,
    ),
    (
        // Sign-in identities (`crate::identity`): (provider, subject) -> account; display
        // names are looked up to make a new account's unique.
        13,
        r#"
CREATE TABLE identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX identities_account ON identities (account_id);
CREATE INDEX accounts_display_name ON accounts (lower(display_name COLLATE "C"));
"#,
    ),
];

/// Every shard database. The tables, in the order a shard move copies them.
pub const SHARD_TABLES: &[(&str, &str)] = &[
    ("threads", "id"),
    ("comments", "id"),
    ("votes", "comment_id, voter"),
    ("flags", "comment_id, flagger"),
    ("mod_log", "id"),
    ("idempotency", "scope, key"),
    ("tasks", "id"),
    ("task_effects", "task_id, key"),
    ("subscriptions", "forum_id, email"),
    ("reply_notify", "comment_id"),
    ("thread_aliases", "forum_id, ident"),
    ("imported", "forum_id, source, source_id"),
    ("spam_facts", "comment_id"),
    ("thread_follows", "thread_id, account_id"),
    ("reactions", "target_id, reactor, emoji"),
    ("images", "id"),
];

pub const SHARD: &[(i64, &str)] = &[
    (
        1,
        r#"
-- Ids as ARCHITECTURE.md lays them out (41 bits of ms since 2026-01-01, 12 bits of logical
-- shard, 11 bits of sequence), the sequence taken from this database so many nodes never collide.
CREATE SEQUENCE confab_id_seq;
CREATE FUNCTION confab_next_id(shard INTEGER) RETURNS BIGINT LANGUAGE sql VOLATILE AS $$
    SELECT ((floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT - 1767225600000) << 23)
         | ((shard::BIGINT & 4095) << 11)
         | (nextval('confab_id_seq') % 2048)
$$;
-- Write fences for shard moves: 'moving' (writers wait), 'moved' (writers re-route).
CREATE TABLE shard_fence (
    logical INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    since BIGINT NOT NULL
);
-- The first statement of every write transaction: waits while a move takes the fence (the mover
-- holds the exclusive advisory lock only for the instant it sets the fence), then refuses if
-- the logical shard is fenced here. Holding the shared lock to commit means a move's fence
-- never overlaps a write in flight.
CREATE FUNCTION confab_write_shard(logical INTEGER) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE st TEXT;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(20260101, logical);
    SELECT state INTO st FROM shard_fence WHERE shard_fence.logical = confab_write_shard.logical;
    IF st = 'moving' THEN
        RAISE EXCEPTION 'logical shard % is being moved', logical USING ERRCODE = 'CF001';
    ELSIF st IS NOT NULL THEN
        RAISE EXCEPTION 'logical shard % has moved', logical USING ERRCODE = 'CF002';
    END IF;
END $$;
CREATE TABLE threads (
    id BIGINT PRIMARY KEY,
    shard INTEGER NOT NULL,
    forum_id BIGINT NOT NULL,
    ident TEXT NOT NULL,
    url TEXT,
    title TEXT,
    closed BOOLEAN NOT NULL DEFAULT false,
    comment_count BIGINT NOT NULL DEFAULT 0,
    hidden_count BIGINT NOT NULL DEFAULT 0,
    seq BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (forum_id, ident)
);
CREATE INDEX threads_shard ON threads (shard);
CREATE TABLE comments (
    id BIGINT PRIMARY KEY,
    shard INTEGER NOT NULL,
    thread_id BIGINT NOT NULL,
    forum_id BIGINT NOT NULL,
    parent_id BIGINT,
    depth INTEGER NOT NULL,
    account_id BIGINT,
    anon_id TEXT,
    guest_name TEXT,
    guest_email TEXT,
    guest_url TEXT,
    body_md TEXT NOT NULL,
    body_html TEXT NOT NULL,
    status TEXT NOT NULL,
    likes BIGINT NOT NULL DEFAULT 0,
    dislikes BIGINT NOT NULL DEFAULT 0,
    score BIGINT NOT NULL DEFAULT 0,
    reply_count BIGINT NOT NULL DEFAULT 0,
    flag_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    edited_at BIGINT,
    ip_hash TEXT NOT NULL
);
CREATE INDEX comments_shard ON comments (shard);
CREATE INDEX comments_thread_id ON comments (thread_id, parent_id, id);
CREATE INDEX comments_thread_best ON comments (thread_id, parent_id, score DESC, id);
CREATE INDEX comments_forum_status ON comments (forum_id, status, id);
CREATE INDEX comments_forum_id ON comments (forum_id, id);
CREATE INDEX comments_forum_flagged ON comments (forum_id, id) WHERE flag_count > 0;
CREATE INDEX comments_hidden ON comments (thread_id) WHERE status IN ('pending', 'spam');
CREATE TABLE votes (
    comment_id BIGINT NOT NULL,
    voter TEXT NOT NULL,
    shard INTEGER NOT NULL,
    value INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (comment_id, voter)
);
CREATE INDEX votes_shard ON votes (shard);
CREATE TABLE flags (
    comment_id BIGINT NOT NULL,
    flagger TEXT NOT NULL,
    shard INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (comment_id, flagger)
);
CREATE INDEX flags_shard ON flags (shard);
CREATE TABLE mod_log (
    id BIGINT PRIMARY KEY,
    shard INTEGER NOT NULL,
    forum_id BIGINT NOT NULL,
    actor BIGINT,
    action TEXT NOT NULL,
    comment_id BIGINT,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX mod_log_shard ON mod_log (shard);
CREATE INDEX mod_log_forum ON mod_log (forum_id, id);
CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    shard INTEGER NOT NULL,
    comment_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_shard ON idempotency (shard);
CREATE INDEX idempotency_created ON idempotency (created_at);
CREATE TABLE tasks (
    id BIGINT PRIMARY KEY,
    shard INTEGER NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    locked_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tasks_shard ON tasks (shard);
CREATE INDEX tasks_due ON tasks (run_at, id) WHERE state = 'queued';
CREATE INDEX tasks_leased ON tasks (locked_until, id) WHERE state = 'running';
CREATE INDEX tasks_state ON tasks (state, id);
CREATE TABLE task_effects (
    task_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    shard INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, key)
);
CREATE INDEX task_effects_shard ON task_effects (shard);
-- Addresses are stored lower-cased (they match without regard to case).
CREATE TABLE subscriptions (
    forum_id BIGINT NOT NULL,
    email TEXT NOT NULL,
    shard INTEGER NOT NULL,
    state TEXT NOT NULL,
    confirm_sent_at BIGINT,
    confirm_task BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (forum_id, email)
);
CREATE INDEX subscriptions_shard ON subscriptions (shard);
CREATE TABLE reply_notify (
    comment_id BIGINT PRIMARY KEY,
    shard INTEGER NOT NULL,
    forum_id BIGINT NOT NULL,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX reply_notify_shard ON reply_notify (shard);
"#,
    ),
    (
        // The request an idempotency key was first used for, and who asked for (and confirmed)
        // reply mail.
        2,
        r#"
ALTER TABLE idempotency ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE reply_notify ADD COLUMN owner TEXT NOT NULL DEFAULT '';
"#,
    ),
    (
        // Which deployment owns this database, and as which server: written by `confab shards
        // add` (and, for servers added before this migration, by the first node that opens
        // the deployment after it).
        3,
        r#"
CREATE TABLE deployment_owner (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    deployment_id TEXT NOT NULL,
    server_name TEXT NOT NULL,
    claimed_at BIGINT NOT NULL
);
"#,
    ),
    (
        // Imports (`confab import`): a thread answers to several idents (its aliases, besides
        // `threads.ident`), and each imported comment remembers its id in the source system.
        4,
        r#"
CREATE TABLE thread_aliases (
    forum_id BIGINT NOT NULL,
    ident TEXT NOT NULL,
    thread_id BIGINT NOT NULL,
    shard INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (forum_id, ident)
);
CREATE INDEX thread_aliases_thread ON thread_aliases (thread_id);
CREATE INDEX thread_aliases_shard ON thread_aliases (shard);
ALTER TABLE threads ADD COLUMN aliased BOOLEAN NOT NULL DEFAULT false;
CREATE TABLE imported (
    forum_id BIGINT NOT NULL,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    comment_id BIGINT NOT NULL,
    shard INTEGER NOT NULL,
    PRIMARY KEY (forum_id, source, source_id)
);
CREATE INDEX imported_shard ON imported (shard);
"#,
    ),
    (
        // Moderation rules (`confab_core::modrules`): why a comment was hidden, and the
        // indexes the new-commenter and duplicate rules count with.
        5,
        r#"
ALTER TABLE comments ADD COLUMN held_reason TEXT;
CREATE INDEX comments_forum_account ON comments (forum_id, account_id, status) WHERE account_id IS NOT NULL;
CREATE INDEX comments_forum_guest_email ON comments (forum_id, lower(guest_email), status) WHERE guest_email IS NOT NULL;
CREATE INDEX comments_forum_ip ON comments (forum_id, ip_hash, created_at);
"#,
    ),
    (
        // Readers' own data (`confab_store::gdpr`): an account's comments per forum in id
        // order, a voter's votes and flags.
        6,
        r#"
CREATE INDEX comments_forum_account_id ON comments (forum_id, account_id, id) WHERE account_id IS NOT NULL;
CREATE INDEX votes_voter ON votes (voter, comment_id);
CREATE INDEX flags_flagger ON flags (flagger, comment_id);
"#,
    ),
    (
        // The outside spam check: the request a comment came with, as the checker is told it
        // (kept for forums with a check, so a moderator's later verdict can be reported).
        7,
        r#"
CREATE TABLE spam_facts (
    comment_id BIGINT PRIMARY KEY,
    shard INTEGER NOT NULL,
    user_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    referrer TEXT NOT NULL,
    permalink TEXT NOT NULL,
    lang TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX spam_facts_shard ON spam_facts (shard);
CREATE INDEX spam_facts_created ON spam_facts (created_at);
"#,
    ),
    (
        // A moderator's pinned comment, shown first on its thread's first page.
        8,
        r#"
ALTER TABLE threads ADD COLUMN pinned_id BIGINT;
"#,
    ),
    (
        // Readers who follow a thread (`crate::notify`): each new published comment in it is
        // mailed to them.
        9,
        r#"
CREATE TABLE thread_follows (
    thread_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    shard INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (thread_id, account_id)
);
CREATE INDEX thread_follows_shard ON thread_follows (shard);
"#,
    ),
    (
        // Reactions (`confab_core::reaction`) and featured comments: the counts on the comment's
        // or thread's row (a page read costs no extra statement), one row per reader and
        // reaction (`target_id`: a comment's or a thread's id; ids never collide), and the
        // thread's featured comments for its "Featured" listing.
        10,
        r#"
ALTER TABLE comments ADD COLUMN reactions TEXT NOT NULL DEFAULT '{}';
ALTER TABLE comments ADD COLUMN featured_at BIGINT;
ALTER TABLE threads ADD COLUMN reactions TEXT NOT NULL DEFAULT '{}';
CREATE TABLE reactions (
    target_id BIGINT NOT NULL,
    reactor TEXT NOT NULL,
    emoji TEXT NOT NULL,
    shard INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (target_id, reactor, emoji)
);
CREATE INDEX reactions_reactor ON reactions (reactor, target_id);
CREATE INDEX reactions_shard ON reactions (shard);
CREATE INDEX comments_featured ON comments (thread_id, id) WHERE featured_at IS NOT NULL;
"#,
    ),
    (
        // Pictures attached to comments (`crate::media`): the re-encoded bytes, unattached
        // until a comment takes them; the comment keeps its pictures' references in its row.
        11,
        r#"
ALTER TABLE comments ADD COLUMN images TEXT;
CREATE TABLE images (
    id BIGINT PRIMARY KEY,
    shard INTEGER NOT NULL,
    forum_id BIGINT NOT NULL,
    comment_id BIGINT,
    hash TEXT NOT NULL,
    format TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    data BYTEA NOT NULL,
    account_id BIGINT,
    anon_id TEXT,
    ip_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX images_shard ON images (shard);
CREATE INDEX images_comment ON images (comment_id) WHERE comment_id IS NOT NULL;
CREATE INDEX images_unattached ON images (created_at) WHERE comment_id IS NULL;
"#,
    ),
];
