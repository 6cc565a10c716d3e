-- eewgate history, schema 6: delivery assurance ages each channel by the newest successful
-- proof of each method (a read-back probe counts for two days, an operator's confirmation
-- for a month; a pin seen set counts for nothing), so the start-up summary needs the newest
-- ok row per (channel, method). This covering index serves it as one ordered walk over the
-- ok rows' index entries (about 100,000 a year with a 5-minute MQTT probe: milliseconds),
-- never touching the table.
CREATE INDEX evidence_ok_method ON evidence (ok, channel, method, at_ms);
