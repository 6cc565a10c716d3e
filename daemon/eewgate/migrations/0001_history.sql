-- eewgate history, schema 1. See docs/adr/0008-history-store.md.
--
-- Conventions (later migrations follow them):
-- * Times are INTEGER unix milliseconds, UTC, in columns named *_ms. Displays convert to
--   JST. Integers compare and index cheaply and do not depend on a text format.
-- * Every table has `id INTEGER PRIMARY KEY AUTOINCREMENT`: ids are never reused, even
--   after retention purged the newest rows, so other records (issue 7's probe evidence)
--   and the web UI can refer to them. A table that refers to another does so with
--   `REFERENCES t(id) ON DELETE CASCADE`, so retention's deletes clean up after it.
-- * Codes are the stable snake_case strings of the JSON schemas (`verdict`, `outcome`,
--   `cause`, ...). Only `telegrams.verdict` is CHECKed; the other codes are open sets that
--   grow without a migration.
-- * Migrations are additive only (new tables, new nullable columns, new indexes), so an
--   older binary (an A/B firmware rollback) still reads and writes a newer database.
-- * Large blobs come last in their row: reading the other columns then never touches
--   the blob's overflow pages.

-- Every telegram received on any link: reports (the first copy and every duplicate, so
-- per-link arrival times are kept), rejected telegrams and garbage, raw.
CREATE TABLE telegrams (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    link        TEXT    NOT NULL,
    verdict     TEXT    NOT NULL
                CHECK (verdict IN ('accepted', 'duplicate', 'rejected', 'garbage')),
    -- Rejection reason code (`eewgate parse`'s `reason`) or the link's garbage reason.
    reason      TEXT,
    -- The rejection's sentence for people.
    message     TEXT,
    -- Report fields (accepted and duplicate).
    event_id    TEXT,
    serial      INTEGER,
    status      TEXT,   -- normal | training | test
    kind        TEXT,   -- forecast | warning | cancel | delivery_test
    format      TEXT,   -- jma_code | jma_xml | dmdata_json | wolfx_json
    product     TEXT,   -- code37, vxse45, ...
    actionable  INTEGER,
    -- Receive-to-report latency (framing done, parse and checks), microseconds.
    decode_us   INTEGER,
    raw         BLOB    NOT NULL
);
CREATE INDEX telegrams_received ON telegrams (received_ms);
CREATE INDEX telegrams_event ON telegrams (event_id, serial) WHERE event_id IS NOT NULL;

-- What the engine made of each input (`Decision`).
CREATE TABLE decisions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms    INTEGER NOT NULL,
    event_id TEXT,
    serial   INTEGER,
    label    TEXT    NOT NULL,  -- real | training | test | drill
    outcome  TEXT    NOT NULL,
    detail   TEXT
);
CREATE INDEX decisions_at ON decisions (at_ms);
CREATE INDEX decisions_event ON decisions (event_id) WHERE event_id IS NOT NULL;

-- Every output action the engine ordered (`Action`), its JSON in full plus the columns
-- people filter on.
CREATE TABLE actions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms             INTEGER NOT NULL,
    output            TEXT    NOT NULL,  -- relay:N | audio | led | mqtt
    action            TEXT    NOT NULL,  -- on | off | announce | countdown | stop | led | publish
    cause             TEXT    NOT NULL,
    event_id          TEXT,
    serial            INTEGER,
    label             TEXT    NOT NULL,
    training          INTEGER NOT NULL,
    intensity_class   TEXT,              -- "0" .. "7" as in the JSON ("5-", "6+")
    long_period_class INTEGER,
    warning           INTEGER NOT NULL,
    json              TEXT    NOT NULL
);
CREATE INDEX actions_at ON actions (at_ms);
CREATE INDEX actions_event ON actions (event_id) WHERE event_id IS NOT NULL;

-- One row per event that produced output actions: the "last N alerts" of the web UI
-- without scanning `actions`. Maintained in the same transaction as each action. Keyed
-- like the engine's events: a training event and a real one never share a row.
CREATE TABLE alerts (
    event_id          TEXT    NOT NULL,
    label             TEXT    NOT NULL,
    first_ms          INTEGER NOT NULL,   -- first action
    last_ms           INTEGER NOT NULL,   -- latest action
    first_serial      INTEGER,
    last_serial       INTEGER,
    max_rank          INTEGER,            -- 0 (class 0) .. 9 (class 7): comparable
    max_class         TEXT,               -- the same as text ("5-")
    max_long_period   INTEGER,
    warning           INTEGER NOT NULL,   -- a warning was part of the alarm at some point
    cancelled         INTEGER NOT NULL,   -- JMA cancelled the event
    ended             TEXT,               -- cancel | expiry | reset; NULL while running
    actions           INTEGER NOT NULL,
    PRIMARY KEY (event_id, label)
);
CREATE INDEX alerts_first ON alerts (first_ms);
CREATE INDEX alerts_last ON alerts (last_ms);

-- Link state changes and liveness summaries.
CREATE TABLE link_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    link   TEXT    NOT NULL,
    state  TEXT    NOT NULL,  -- up | down | silent | alive
    detail TEXT
);
CREATE INDEX link_events_at ON link_events (at_ms);
CREATE INDEX link_events_link ON link_events (link, at_ms);

-- Faults raised and cleared: time_sync, link, all_links, storage, ...
CREATE TABLE faults (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    active INTEGER NOT NULL,
    detail TEXT
);
CREATE INDEX faults_at ON faults (at_ms);
CREATE INDEX faults_kind ON faults (kind, at_ms);

-- The configuration file each time it changed (the newest row is never purged).
CREATE TABLE config_changes (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    sha256 TEXT    NOT NULL,  -- lowercase hex of the file's bytes
    text   TEXT    NOT NULL
);
CREATE INDEX config_changes_at ON config_changes (at_ms);
