-- A hand-made Isso database (loaded into a fresh SQLite file by
-- crates/confab/tests/api/import_formats.rs), in Isso's schema, with every case the importer
-- must handle. Names, addresses and texts are invented.
CREATE TABLE preferences (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE threads (id INTEGER PRIMARY KEY, uri VARCHAR(256) UNIQUE, title VARCHAR(256));
CREATE TABLE comments (
    tid REFERENCES threads(id), id INTEGER PRIMARY KEY, parent INTEGER,
    created FLOAT NOT NULL, modified FLOAT, mode INTEGER, remote_addr VARCHAR,
    text VARCHAR, author VARCHAR, email VARCHAR, website VARCHAR,
    likes INTEGER DEFAULT 0, dislikes INTEGER DEFAULT 0, voters BLOB NOT NULL,
    notification INTEGER DEFAULT 0);
INSERT INTO preferences VALUES ('session-key', '0123456789abcdef');
INSERT INTO threads VALUES (1, '/2019/hello-world/', 'Hello & welcome');
INSERT INTO threads VALUES (2, '/about/', 'About');

-- A reply with a lower id than its parent (1 answers 2).
INSERT INTO comments (tid, id, parent, created, modified, mode, remote_addr, text, author, email, website, voters)
VALUES (1, 1, 2, 1551438000.0, NULL, 1, '192.0.2.0', 'Replying to Ann,
listed before her comment.', 'Bob', 'bob@example.org', NULL, x'00');

-- Markdown with everything that must survive and everything that must not.
INSERT INTO comments (tid, id, parent, created, modified, mode, remote_addr, text, author, email, website, voters)
VALUES (1, 2, NULL, 1551434400.0, NULL, 1, '192.0.2.0', 'Hi! A **Bold** claim, in *italic*, with [a link](https://example.org/page) and `x < y`.  
A second line, caf&eacute; &#8212; Tom & Jerry.

> quoted

<script>alert(''x'')</script>

An [evil link](javascript:alert(1)) and <span onclick="alert(2)">click me</span>', 'Ann', 'ann@example.com', 'https://ann.example.com/', x'00');

-- Deleted (Isso keeps a deleted comment that has replies, its text emptied), and its reply.
INSERT INTO comments (tid, id, parent, created, modified, mode, remote_addr, text, author, email, website, voters)
VALUES (1, 3, NULL, 1551441600.0, 1551441700.0, 4, '192.0.2.0', '', NULL, NULL, NULL, x'00');
INSERT INTO comments (tid, id, parent, created, modified, mode, remote_addr, text, author, email, website, voters)
VALUES (1, 4, 3, 1551445200.0, NULL, 1, '192.0.2.0', 'Answering the deleted comment', 'Dora', NULL, NULL, x'00');

-- Waiting for a moderator.
INSERT INTO comments (tid, id, parent, created, modified, mode, remote_addr, text, author, email, website, voters)
VALUES (1, 5, NULL, 1551448800.0, NULL, 2, '192.0.2.0', 'Waiting for a moderator', 'Eve', 'eve@example.com', NULL, x'00');

-- No name (Isso allows anonymous comments); a fraction of a second.
INSERT INTO comments (tid, id, parent, created, modified, mode, remote_addr, text, author, email, website, voters)
VALUES (1, 6, NULL, 1551515400.5, NULL, 1, '192.0.2.0', 'No name given', NULL, 'quiet@example.com', NULL, x'00');

-- Another thread.
INSERT INTO comments (tid, id, parent, created, modified, mode, remote_addr, text, author, email, website, voters)
VALUES (2, 7, NULL, 1554112800.0, NULL, 1, '192.0.2.0', 'On the about page', 'Gus', NULL, NULL, x'00');

-- Deleted with no replies: hidden.
INSERT INTO comments (tid, id, parent, created, modified, mode, remote_addr, text, author, email, website, voters)
VALUES (1, 8, NULL, 1551520000.0, NULL, 4, '192.0.2.0', '', NULL, NULL, NULL, x'00');
