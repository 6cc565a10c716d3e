-- eewgate history, schema 5: evidence (delivery assurance): every proof that an output or
-- a link works — a contact read back, a pin seen, a clip played to its end, a PUBACK, an
-- operator's confirmation — and every proof that failed. The newest row of a channel says
-- whether it is trusted now; its newest ok row says when it was last seen working.
-- `channel`, `source` and `method` are open sets of codes (not CHECKed); `ok` is, since the
-- newest ok row is looked up as `ok = 1`.
CREATE TABLE evidence (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms          INTEGER NOT NULL,
    channel        TEXT    NOT NULL,  -- relay:1 | audio | led | mqtt | link:primary | time | ...
    source         TEXT    NOT NULL,  -- self_test | operator | alarm | probe | continuous
    method         TEXT    NOT NULL,  -- readback | pin | playback | puback | roundtrip | operator | ...
    ok             INTEGER NOT NULL CHECK (ok IN (0, 1)),
    measurement_ms REAL,              -- what was measured (a read-back's delay, a round trip)
    detail         TEXT               -- for people
);
-- Every index ends with the rowid (see schema 4), so these are (channel, id) and
-- (channel, ok, id): a channel's newest row, its newest ok row, and a page of one channel
-- newest first (`channel = ? AND id < ? ORDER BY id DESC`) are each a single index range
-- walked from its end, however many rows a year holds. The channels themselves are found
-- by skipping through the first index, one seek per channel.
CREATE INDEX evidence_channel ON evidence (channel);
CREATE INDEX evidence_channel_ok ON evidence (channel, ok);
-- Retention.
CREATE INDEX evidence_at ON evidence (at_ms);
