-- A hand-made Isso database whose comment 5 holds a date that is not one (see
-- crates/confab/tests/api/import_formats.rs): the import must be refused, naming the row.
CREATE TABLE threads (id INTEGER PRIMARY KEY, uri VARCHAR(256) UNIQUE, title VARCHAR(256));
CREATE TABLE comments (
    tid REFERENCES threads(id), id INTEGER PRIMARY KEY, parent INTEGER,
    created FLOAT NOT NULL, modified FLOAT, mode INTEGER, remote_addr VARCHAR,
    text VARCHAR, author VARCHAR, email VARCHAR, website VARCHAR,
    likes INTEGER DEFAULT 0, dislikes INTEGER DEFAULT 0, voters BLOB NOT NULL,
    notification INTEGER DEFAULT 0);
INSERT INTO threads VALUES (1, '/2019/hello-world/', 'Hello & welcome');
INSERT INTO threads VALUES (3, '/2019/new-post/', 'New');
INSERT INTO comments (tid, id, parent, created, mode, text, author, voters)
VALUES (3, 1, NULL, 1551438000.0, 1, 'Fine', 'Ann', x'00'),
       (3, 2, NULL, 1551438001.0, 1, 'Fine too', 'Bob', x'00'),
       (1, 5, NULL, 'yesterday', 1, 'When?', 'Cy', x'00');
