-- eewgate history, schema 4: indexes for the web UI's history filters (issue 6).
--
-- A filtered page is `... WHERE verdict = ? AND id < ? ORDER BY id DESC LIMIT n`. In SQLite
-- every index ends with the rowid, so an index on (verdict) is one on (verdict, id): the
-- page is a single index range walked newest first, however rare the verdict is over a
-- year of data (no scan past the rows of the other verdicts, no sort). The same for the
-- report kind (NULL for rejected telegrams and garbage, hence partial) and the alert's label.
CREATE INDEX telegrams_verdict ON telegrams (verdict);
CREATE INDEX telegrams_kind ON telegrams (kind) WHERE kind IS NOT NULL;
CREATE INDEX alerts_label ON alerts (label);
