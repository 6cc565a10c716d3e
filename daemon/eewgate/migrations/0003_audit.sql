-- eewgate history, schema 3: the audit trail of the web UI (and, later, of every change an
-- administrator makes): who did what, when. Never a password, hash, setup code, session
-- id or token — the web UI guarantees that before an entry gets here.
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    who    TEXT    NOT NULL,  -- admin | setup
    action TEXT    NOT NULL,  -- setup | setup_failed | login | login_failed | logout | ...
    detail TEXT               -- the client address, why it failed
);
CREATE INDEX audit_at ON audit (at_ms);
