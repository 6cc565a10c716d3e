-- eewgate history, schema 2: what each output actually did with each action.
--
-- `actions` records what the engine ordered, at the step's `now`; this table records what
-- the output then did and how long after the order: a relay's pin edge and its read-back,
-- an announcement played, an MQTT publish acknowledged — or why not. It is the evidence
-- behind "every action and its latency goes to history".
CREATE TABLE output_results (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,  -- when the output finished (or failed)
    output      TEXT    NOT NULL,  -- relay:N | audio | led | mqtt
    action      TEXT    NOT NULL,  -- the action's code (on, off, announce, publish, ...)
    event_id    TEXT,
    serial      INTEGER,
    ok          INTEGER NOT NULL,
    -- From the engine's decision (`actions.at_ms`) to the output's effect, microseconds.
    latency_us  INTEGER,
    detail      TEXT               -- the fault, or what was done (clips, topic, pin level)
);
CREATE INDEX output_results_at ON output_results (at_ms);
CREATE INDEX output_results_event ON output_results (event_id) WHERE event_id IS NOT NULL;
