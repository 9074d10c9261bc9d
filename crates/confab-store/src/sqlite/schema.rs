//! SQLite schema, as addition-only migrations: a version is applied once and never changed, so
//! an older binary keeps working against a newer file during a rolling upgrade.

/// `(version, sql)`, applied in order inside one transaction each.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE forums (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    shard INTEGER NOT NULL,
    settings TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email TEXT UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_staff INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE forum_moderators (
    forum_id INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    PRIMARY KEY (forum_id, account_id)
) WITHOUT ROWID;
CREATE INDEX forum_moderators_account ON forum_moderators (account_id);
CREATE TABLE bans (
    id INTEGER PRIMARY KEY,
    forum_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (forum_id, kind, value)
);
CREATE TABLE threads (
    id INTEGER PRIMARY KEY,
    shard INTEGER NOT NULL,
    forum_id INTEGER NOT NULL,
    ident TEXT NOT NULL,
    url TEXT,
    title TEXT,
    closed INTEGER NOT NULL DEFAULT 0,
    comment_count INTEGER NOT NULL DEFAULT 0,
    hidden_count INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (forum_id, ident)
);
CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    shard INTEGER NOT NULL,
    thread_id INTEGER NOT NULL,
    forum_id INTEGER NOT NULL,
    parent_id INTEGER,
    depth INTEGER NOT NULL,
    account_id INTEGER,
    anon_id TEXT,
    guest_name TEXT,
    guest_email TEXT,
    guest_url TEXT,
    body_md TEXT NOT NULL,
    body_html TEXT NOT NULL,
    status TEXT NOT NULL,
    likes INTEGER NOT NULL DEFAULT 0,
    dislikes INTEGER NOT NULL DEFAULT 0,
    score INTEGER NOT NULL DEFAULT 0,
    reply_count INTEGER NOT NULL DEFAULT 0,
    flag_count INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    edited_at INTEGER,
    ip_hash TEXT NOT NULL
);
CREATE INDEX comments_thread_id ON comments (thread_id, parent_id, id);
CREATE INDEX comments_thread_best ON comments (thread_id, parent_id, score DESC, id);
CREATE INDEX comments_forum_status ON comments (forum_id, status, id);
CREATE INDEX comments_forum_id ON comments (forum_id, id);
CREATE INDEX comments_forum_flagged ON comments (forum_id, id) WHERE flag_count > 0;
CREATE INDEX comments_hidden ON comments (thread_id) WHERE status IN ('pending', 'spam');
CREATE TABLE votes (
    comment_id INTEGER NOT NULL,
    voter TEXT NOT NULL,
    value INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (comment_id, voter)
) WITHOUT ROWID;
CREATE TABLE flags (
    comment_id INTEGER NOT NULL,
    flagger TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (comment_id, flagger)
) WITHOUT ROWID;
CREATE TABLE mod_log (
    id INTEGER PRIMARY KEY,
    forum_id INTEGER NOT NULL,
    actor INTEGER,
    action TEXT NOT NULL,
    comment_id INTEGER,
    detail TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX mod_log_forum ON mod_log (forum_id, id);
CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    comment_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
"#,
    ),
    (
        // The task outbox (written in the same transaction as the change that causes it), the
        // effects that tasks recorded, and reply-notification subscriptions (double opt-in).
        2,
        r#"
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    shard INTEGER NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    run_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    locked_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX tasks_due ON tasks (run_at, id) WHERE state = 'queued';
CREATE INDEX tasks_leased ON tasks (locked_until, id) WHERE state = 'running';
CREATE INDEX tasks_state ON tasks (state, id);
CREATE TABLE task_effects (
    task_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, key)
) WITHOUT ROWID;
CREATE TABLE subscriptions (
    forum_id INTEGER NOT NULL,
    email TEXT NOT NULL COLLATE NOCASE,
    shard INTEGER NOT NULL,
    state TEXT NOT NULL,
    confirm_sent_at INTEGER,
    confirm_task INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (forum_id, email)
) WITHOUT ROWID;
CREATE TABLE reply_notify (
    comment_id INTEGER PRIMARY KEY,
    shard INTEGER NOT NULL,
    forum_id INTEGER NOT NULL,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#,
    ),
    (
        // Hardening: an account's session generation (sessions end when it moves), the request an
        // idempotency key was first used for, and who asked for (and confirmed) reply mail.
        3,
        r#"
ALTER TABLE accounts ADD COLUMN session_gen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE idempotency ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE reply_notify ADD COLUMN owner TEXT NOT NULL DEFAULT '';
"#,
    ),
    (
        // Feature switches (`confab_core::switch`): one record per (name, forum); forum 0 is
        // the global record.
        4,
        r#"
CREATE TABLE switches (
    name TEXT NOT NULL,
    forum_id INTEGER NOT NULL DEFAULT 0,
    is_on INTEGER NOT NULL,
    percent INTEGER,
    staff INTEGER NOT NULL DEFAULT 0,
    changed_by TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (name, forum_id)
) WITHOUT ROWID;
"#,
    ),
    (
        // SSO from a forum's site: the forum's SSO secret (never in the settings JSON, so the
        // API never returns it), and the profile URL and avatar an SSO account's site sends.
        5,
        r#"
ALTER TABLE forums ADD COLUMN sso_secret TEXT;
ALTER TABLE accounts ADD COLUMN url TEXT;
ALTER TABLE accounts ADD COLUMN avatar_url TEXT;
"#,
    ),
    (
        // Imports (`confab import`): a thread answers to several idents (its aliases, besides
        // `threads.ident`), and each imported comment remembers its id in the source system,
        // so importing the same export again adds nothing.
        6,
        r#"
CREATE TABLE thread_aliases (
    forum_id INTEGER NOT NULL,
    ident TEXT NOT NULL,
    thread_id INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (forum_id, ident)
) WITHOUT ROWID;
CREATE INDEX thread_aliases_thread ON thread_aliases (thread_id);
ALTER TABLE threads ADD COLUMN aliased INTEGER NOT NULL DEFAULT 0;
CREATE TABLE imported (
    forum_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    comment_id INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    PRIMARY KEY (forum_id, source, source_id)
) WITHOUT ROWID;
"#,
    ),
    (
        // The dashboard's imports (an upload imported in the background): their progress and
        // outcome, read by whichever node the dashboard's poll reaches.
        7,
        r#"
CREATE TABLE imports (
    id INTEGER PRIMARY KEY,
    forum_id INTEGER NOT NULL,
    actor INTEGER,
    format TEXT NOT NULL,
    file_name TEXT NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    posts_read INTEGER NOT NULL DEFAULT 0,
    comments_total INTEGER NOT NULL DEFAULT 0,
    comments_written INTEGER NOT NULL DEFAULT 0,
    summary TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE INDEX imports_forum ON imports (forum_id, id);
"#,
    ),
    (
        // Moderation rules (`confab_core::modrules`): why a comment was hidden, shadow bans,
        // and the indexes the new-commenter and duplicate rules count with.
        8,
        r#"
ALTER TABLE comments ADD COLUMN held_reason TEXT;
ALTER TABLE bans ADD COLUMN shadow INTEGER NOT NULL DEFAULT 0;
CREATE INDEX comments_forum_account ON comments (forum_id, account_id, status) WHERE account_id IS NOT NULL;
CREATE INDEX comments_forum_guest_email ON comments (forum_id, guest_email COLLATE NOCASE, status) WHERE guest_email IS NOT NULL;
CREATE INDEX comments_forum_ip ON comments (forum_id, ip_hash, created_at);
"#,
    ),
    (
        // Proof-of-work challenges already used (`confab_core::challenge`): each is accepted
        // once; rows go when their challenge expires (pruned by later spends).
        9,
        r#"
CREATE TABLE used_challenges (
    id TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    tag TEXT
) WITHOUT ROWID;
CREATE INDEX used_challenges_expiry ON used_challenges (expires_at);
"#,
    ),
    (
        // Readers' own data (`confab_store::gdpr`): an account's comments per forum in id
        // order, a voter's votes and flags, and the single-use mailed data links.
        10,
        r#"
CREATE INDEX comments_forum_account_id ON comments (forum_id, account_id, id) WHERE account_id IS NOT NULL;
CREATE INDEX votes_voter ON votes (voter, comment_id);
CREATE INDEX flags_flagger ON flags (flagger, comment_id);
CREATE TABLE used_links (
    key TEXT PRIMARY KEY,
    used_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    ),
    (
        // The outside spam check: the request a comment came with, as the checker is told it
        // (kept for forums with a check, so a moderator's later verdict can be reported).
        11,
        r#"
CREATE TABLE spam_facts (
    comment_id INTEGER PRIMARY KEY,
    shard INTEGER NOT NULL,
    user_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    referrer TEXT NOT NULL,
    permalink TEXT NOT NULL,
    lang TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX spam_facts_created ON spam_facts (created_at);
"#,
    ),
    (
        // Bans that say who made them, from which comment, and what they match as moderators
        // see it (`confab_core::bans`: e-mails and addresses masked).
        12,
        r#"
ALTER TABLE bans ADD COLUMN created_by INTEGER;
ALTER TABLE bans ADD COLUMN comment_id INTEGER;
ALTER TABLE bans ADD COLUMN shown TEXT;
-- A moderator's pinned comment, shown first on its thread's first page.
ALTER TABLE threads ADD COLUMN pinned_id INTEGER;
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
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX identities_account ON identities (account_id);
CREATE INDEX accounts_display_name ON accounts (display_name COLLATE NOCASE);
"#,
    ),
    (
        // Readers who follow a thread (`crate::notify`): each new published comment in it is
        // mailed to them. Keeps the thread's logical shard, as every shard table does.
        14,
        r#"
CREATE TABLE thread_follows (
    thread_id INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (thread_id, account_id)
) WITHOUT ROWID;
"#,
    ),
    (
        // Reactions (`confab_core::reaction`) and featured comments: the counts on the comment's
        // or thread's row (a page read costs no extra statement), one row per reader and
        // reaction (`target_id`: a comment's or a thread's id; ids never collide), and the
        // thread's featured comments for its "Featured" listing.
        15,
        r#"
ALTER TABLE comments ADD COLUMN reactions TEXT NOT NULL DEFAULT '{}';
ALTER TABLE comments ADD COLUMN featured_at INTEGER;
ALTER TABLE threads ADD COLUMN reactions TEXT NOT NULL DEFAULT '{}';
CREATE TABLE reactions (
    target_id INTEGER NOT NULL,
    reactor TEXT NOT NULL,
    emoji TEXT NOT NULL,
    shard INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (target_id, reactor, emoji)
) WITHOUT ROWID;
CREATE INDEX reactions_reactor ON reactions (reactor, target_id);
CREATE INDEX comments_featured ON comments (thread_id, id) WHERE featured_at IS NOT NULL;
"#,
    ),
    (
        // Pictures attached to comments (`crate::media`): the re-encoded bytes, unattached
        // until a comment takes them; the comment keeps its pictures' references in its row.
        16,
        r#"
ALTER TABLE comments ADD COLUMN images TEXT;
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    shard INTEGER NOT NULL,
    forum_id INTEGER NOT NULL,
    comment_id INTEGER,
    hash TEXT NOT NULL,
    format TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    data BLOB NOT NULL,
    account_id INTEGER,
    anon_id TEXT,
    ip_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX images_comment ON images (comment_id) WHERE comment_id IS NOT NULL;
CREATE INDEX images_unattached ON images (created_at) WHERE comment_id IS NULL;
"#,
    ),
];
