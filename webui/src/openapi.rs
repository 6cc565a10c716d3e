//! The OpenAPI 3.1 document of the JSON API, written by hand and tested against the
//! router's route table.

use serde_json::{Value, json};

use crate::appliance::HistoryQuery;
use crate::history::{CSV_ALERT_COLUMNS, CSV_TELEGRAM_COLUMNS, EXPORT_MAX_ROWS};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

/// The filters of a history table (`telegrams` or `alerts`).
fn history_filters(table: &str) -> Vec<Value> {
    let mut p = vec![
        json!({ "name": "event_id", "in": "query", "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$" } }),
        json!({ "name": "from", "in": "query", "description": "First day (JST), inclusive.", "schema": { "type": "string", "format": "date" } }),
        json!({ "name": "to", "in": "query", "description": "Last day (JST), inclusive.", "schema": { "type": "string", "format": "date" } }),
    ];
    if table == "telegrams" {
        p.push(json!({ "name": "verdict", "in": "query", "description": "Only telegrams with this verdict (one value).", "schema": { "enum": HistoryQuery::VERDICTS } }));
        p.push(json!({ "name": "kind", "in": "query", "description": "Only reports of this kind (one value; rejected telegrams and garbage have none).", "schema": { "enum": HistoryQuery::KINDS } }));
    } else {
        p.push(json!({ "name": "label", "in": "query", "description": "Only alerts with this label (one value).", "schema": { "enum": HistoryQuery::LABELS } }));
    }
    p
}

fn history_params(table: &str) -> Value {
    let mut p = vec![
        json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500, "default": 50 } }),
        json!({ "name": "before_id", "in": "query", "description": "Keyset paging: records with a smaller id (the previous page's next_before_id).", "schema": { "type": "integer", "minimum": 1 } }),
    ];
    p.extend(history_filters(table));
    Value::Array(p)
}

fn history_get(summary: &str, table: &str) -> Value {
    json!({
        "get": {
            "summary": summary,
            "security": [{ "session": [] }],
            "parameters": history_params(table),
            "responses": {
                "200": { "description": "One page, newest first.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/HistoryPage" } } } },
                "400": error_response("A query parameter is invalid (the message says which)."),
                "401": error_response("No session.")
            }
        }
    })
}

fn history_export(table: &str) -> Value {
    let mut params = vec![
        json!({ "name": "format", "in": "query", "required": true, "schema": { "enum": ["csv", "json"] } }),
        json!({ "name": "before_id", "in": "query", "description": "Start below this id (X-Eewgate-Export-Next-Before-Id of a cut export).", "schema": { "type": "integer", "minimum": 1 } }),
    ];
    params.extend(history_filters(table));
    let columns = if table == "telegrams" {
        CSV_TELEGRAM_COLUMNS
    } else {
        CSV_ALERT_COLUMNS
    };
    let header =
        |description: &str, schema: Value| json!({ "description": description, "schema": schema });
    json!({
        "get": {
            "summary": format!(
                "Every {table} record the filters match, newest first, at most {EXPORT_MAX_ROWS}, as a download \
                 (Content-Disposition: attachment; filename=\"eewgate-{table}-YYYYMMDD.csv\" or .json, the date in JST). \
                 CSV: RFC 4180 (CRLF, header row, fields with a comma, quote or line break quoted), columns {}; \
                 text starting with = + - @ (or tab, CR) is prefixed with ' so that spreadsheets do not run it. \
                 JSON: one array of the records as the page API returns them.",
                columns.join(", ")
            ),
            "security": [{ "session": [] }],
            "parameters": params,
            "responses": {
                "200": {
                    "description": "The file.",
                    "headers": {
                        "X-Eewgate-Export-Rows": header("Records in the file.", json!({ "type": "integer" })),
                        "X-Eewgate-Export-Truncated": header("true when the bound cut the export.", json!({ "type": "boolean" })),
                        "X-Eewgate-Export-Next-Before-Id": header("When cut: the before_id that goes on.", json!({ "type": "integer" }))
                    },
                    "content": {
                        "text/csv": { "schema": { "type": "string" } },
                        "application/json": { "schema": { "type": "array", "items": { "type": "object" } } }
                    }
                },
                "400": error_response("A query parameter is invalid or format is missing (the message says which)."),
                "401": error_response("No session.")
            }
        }
    })
}

/// The document served at `/api/openapi.json`.
pub fn document() -> Value {
    let mut doc = base_document();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for more in [operation_paths(), self_test_paths(), drill_report_paths()] {
            if let Value::Object(more) = more {
                paths.extend(more);
            }
        }
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        && let Value::Object(more) = drill_report_schemas()
    {
        schemas.extend(more);
    }
    doc
}

/// The results a drill's channel can have.
pub const DRILL_CHANNEL_RESULTS: &[&str] = &[
    "ok",
    "failed",
    "not_observed",
    "pending",
    "not_triggered",
    "not_included",
];

/// The results of a drill as a whole.
pub const DRILL_RESULTS: &[&str] = &["ok", "failed", "in_progress", "pending", "nothing_operated"];

/// `DrillReport` (and its parts) and `DrillSummary`: what `GET /api/drills/reports/{id}`
/// and the list answer. The web UI's report page reads exactly these fields.
fn drill_report_schemas() -> Value {
    let time = json!({ "type": ["string", "null"], "format": "date-time" });
    let observation = json!({ "type": "object", "required": ["at", "action", "ok", "latency_us", "detail"], "properties": {
        "at": { "type": "string", "format": "date-time", "description": "When the output finished (or failed)." },
        "action": { "type": "string" },
        "ok": { "type": "boolean", "description": "Done as ordered." },
        "latency_us": { "type": ["integer", "null"], "description": "From the engine's decision to the effect." },
        "detail": { "type": ["string", "null"], "description": "What was done or why not (pin and read-back, clips, topic)." } } });
    let header = |with_channels: bool| {
        let mut required = vec![
            "id",
            "event_id",
            "kind",
            "recorded",
            "recorded_title",
            "started_at",
            "ended_at",
            "end",
            "duration_ms",
            "running",
            "max_class",
            "warning",
            "reports",
            "actions",
            "operator",
            "result",
            "counts",
            "appliance",
            "settings",
        ];
        if with_channels {
            required.push("channels");
        }
        let mut props = json!({
            "id": { "type": "integer", "description": "The paging key (before_id)." },
            "event_id": { "type": "string", "description": "The drill's event id: drill-<JST second> (synthetic), or the recorded event's id moved to the run's time (recorded)." },
            "kind": { "enum": ["synthetic", "recorded"] },
            "recorded": { "type": ["string", "null"], "description": "The recorded event replayed (GET /api/drills)." },
            "recorded_title": { "type": ["object", "null"], "properties": { "ja": { "type": "string" }, "en": { "type": "string" } } },
            "started_at": { "type": "string", "format": "date-time" },
            "ended_at": time,
            "end": { "type": ["string", "null"], "description": "cancel, expiry, reset, or interrupted (no ending recorded and no longer running)." },
            "duration_ms": { "type": ["integer", "null"] },
            "running": { "type": "boolean" },
            "max_class": { "type": ["string", "null"] },
            "warning": { "type": "boolean" },
            "reports": { "type": "integer", "description": "Reports the engine accepted (recorded drills)." },
            "actions": { "type": "integer" },
            "operator": { "type": ["object", "null"], "description": "The audit entry that started it: at, who, action, detail (the client address).", "properties": {
                "at": { "type": "string", "format": "date-time" }, "who": { "type": "string" }, "detail": { "type": ["string", "null"] } } },
            "result": { "enum": DRILL_RESULTS, "description": "failed when any channel failed or was not observed; ok when at least one channel was observed working and none failed." },
            "counts": { "type": "object", "description": "Channels per result.", "additionalProperties": { "type": "integer" } },
            "appliance": { "type": "object", "description": "The appliance and its site: host, version, site {lat, lon, area_code, area_name}.", "properties": {
                "host": { "type": "string" }, "version": { "type": "string" }, "site": { "type": ["object", "null"] } } },
            "settings": { "type": ["object", "null"], "description": "The settings the channels are taken from: source (at_drill: the version in force then; current: the file now), revision, at." }
        });
        if with_channels && let Some(p) = props.as_object_mut() {
            p.insert("channels".into(), json!({ "type": "array", "items": { "$ref": "#/components/schemas/DrillChannel" } }));
        }
        json!({ "type": "object", "required": required, "properties": props })
    };
    json!({
        "DrillReport": header(true),
        "DrillSummary": header(false),
        "DrillChannel": { "type": "object",
            "required": ["channel", "name", "readback", "excluded", "result", "problem", "expected", "unmatched", "evidence", "timings"],
            "properties": {
                "channel": { "type": "string", "description": "relay:N, audio, led, mqtt." },
                "name": { "type": ["string", "null"] },
                "readback": { "type": ["boolean", "null"], "description": "Relays: the contact is read back." },
                "excluded": { "enum": ["disabled", "not_in_drills", "not_configured", null], "description": "Why it does not take part in drills." },
                "result": { "enum": DRILL_CHANNEL_RESULTS, "description": "not_observed: an order has no recorded result (a failure, never ok)." },
                "problem": { "type": ["string", "null"], "description": "Why it failed, or what was not observed." },
                "expected": { "type": "array", "items": { "type": "object", "required": ["id", "at", "action", "cause", "serial", "what", "observed"], "properties": {
                    "at": { "type": "string", "format": "date-time", "description": "The engine's decision." },
                    "action": { "type": "string", "description": "on, off, announce, countdown, stop, led, publish." },
                    "cause": { "type": "string" },
                    "serial": { "type": ["integer", "null"] },
                    "what": { "type": "object", "description": "pulse_ms, pattern, state, driving, seconds, text_ja, text_en, intensity_class when the action has them." },
                    "observed": { "oneOf": [observation.clone(), { "type": "null" }] } } } },
                "unmatched": { "type": "array", "items": observation },
                "evidence": { "type": "array", "description": "What the drill proved (alarm evidence): method, ok, measurement_ms, detail.", "items": { "type": "object" } },
                "timings": { "type": "object", "required": ["first_action_at", "last_action_at", "first_effect_at", "last_effect_at", "first_latency_us", "max_latency_us", "span_ms", "closed_ms", "played_ms"], "properties": {
                    "first_action_at": time, "last_action_at": time, "first_effect_at": time, "last_effect_at": time,
                    "first_latency_us": { "type": ["integer", "null"], "description": "Decision to effect of the first order." },
                    "max_latency_us": { "type": ["integer", "null"] },
                    "span_ms": { "type": ["integer", "null"], "description": "First order to last effect." },
                    "closed_ms": { "type": ["integer", "null"], "description": "Relays: closed for." },
                    "played_ms": { "type": ["number", "null"], "description": "Audio: played to its end." } } } } }
    })
}

/// The drill report routes.
fn drill_report_paths() -> Value {
    json!({
        "/api/drills/reports": { "get": {
            "summary": "Past drills, newest first: each a drill report without its channels (the overall result and the counts per channel result). Not audited (reads only).",
            "security": [{ "session": [] }],
            "parameters": [
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } },
                { "name": "before_id", "in": "query", "description": "Keyset paging: drills with a smaller id (the previous page's next_before_id).", "schema": { "type": "integer", "minimum": 1 } }
            ],
            "responses": {
                "200": { "description": "One page.", "content": { "application/json": { "schema": { "type": "object", "required": ["items", "next_before_id"], "properties": {
                    "items": { "type": "array", "items": { "$ref": "#/components/schemas/DrillSummary" } },
                    "next_before_id": { "type": ["integer", "null"] } } } } } },
                "400": error_response("A query parameter is invalid."),
                "401": error_response("No session.")
            }
        } },
        "/api/drills/reports/{event_id}": { "get": {
            "summary": "One drill's report, the training record: every channel with what the engine ordered (expected, with decision times), what the output did and what was seen (observed: results and alarm evidence), the result (ok, failed, not observed, pending, not triggered, not included) and timings; the header with the appliance and site, the drill's kind and event, start and end, the operator from the audit trail and the overall result.",
            "security": [{ "session": [] }],
            "parameters": [{ "name": "event_id", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$" } }],
            "responses": {
                "200": { "description": "The report.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/DrillReport" } } } },
                "400": error_response("Not an event id."),
                "401": error_response("No session."),
                "404": error_response("No such drill in history (never was, or purged by retention).")
            }
        } }
    })
}

/// `output` of a self-test: its one accepted form.
fn output_schema() -> Value {
    json!({
        "type": "string",
        "pattern": "^(relay:([1-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])|led|audio|mqtt)$",
        "description": "relay:N (N from 1 to 255, no leading zero), led, audio or mqtt.",
        "examples": ["relay:1", "audio"]
    })
}

/// The per-output self-test routes (a third literal, for the macro's recursion limit).
fn self_test_paths() -> Value {
    json!({
            "/api/selftests": { "get": {
                "summary": "The outputs that can be self-tested, and whether self-tests are allowed now (not during an alert). The results are on the status model's `verification` (GET /api/status, /api/events).",
                "security": [{ "session": [] }],
                "responses": {
                    "200": { "description": "The self-tests.", "content": { "application/json": { "schema": { "type": "object", "required": ["allowed", "outputs"], "properties": {
                        "allowed": { "type": "boolean", "description": "False while an alert is in progress." },
                        "outputs": { "type": "array", "items": { "type": "object", "required": ["output", "enabled", "readback", "needs_confirmation"], "properties": {
                            "output": output_schema(),
                            "name": { "type": ["string", "null"], "description": "The output's name from the settings." },
                            "enabled": { "type": "boolean" },
                            "readback": { "type": "boolean", "description": "A relay contact whose state is read back." },
                            "needs_confirmation": { "type": "boolean", "description": "The appliance cannot observe the result itself: the operator's confirmation (POST /api/selftest/confirm) is the evidence." } } } } } } } } },
                    "401": error_response("No session.")
                }
            } },
            "/api/selftest": { "post": {
                "summary": "Exercise one output on its own and verify it (a relay closes briefly; the LED, a chime, a test message). Answers at once; the result follows on the status model as verification[output] with last.at at or after started_at. Audited (`self_test`; refusals by the appliance `self_test_refused`).",
                "security": [{ "session": [], "csrf": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["output"], "additionalProperties": false, "properties": {
                    "output": output_schema(),
                    "confirm": { "type": "boolean", "default": false, "description": "Must be true for relay:N: the contact may operate real equipment." } } } } } },
                "responses": {
                    "200": { "description": "Started.", "content": { "application/json": { "schema": { "type": "object", "required": ["ok", "output", "started_at", "needs_confirmation"], "properties": {
                        "ok": { "const": true }, "output": { "type": "string" }, "started_at": { "type": "string", "format": "date-time" },
                        "needs_confirmation": { "type": "boolean", "description": "Ask the operator whether it worked (POST /api/selftest/confirm)." } } } } } },
                    "400": error_response("`invalid_output` (not relay:N, led, audio or mqtt), `confirm_required` (a relay without \"confirm\": true), or an output this appliance does not have."),
                    "401": error_response("No session."),
                    "403": error_response("Missing or wrong CSRF token."),
                    "409": error_response("`alert_in_progress`, `output_disabled` (switched off in the settings), `busy` (being tested or used already) or `not_running`.")
                }
            } },
            "/api/selftest/confirm": { "post": {
                "summary": "Record the operator's observation after a self-test (it worked, or not, and a note): the evidence for an output that cannot observe itself; it follows on the status model with source and method `operator`. Audited (`self_test_confirmed`).",
                "security": [{ "session": [], "csrf": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["output", "ok"], "additionalProperties": false, "properties": {
                    "output": output_schema(),
                    "ok": { "type": "boolean", "description": "It worked." },
                    "note": { "type": ["string", "null"], "maxLength": 200, "description": "What was seen or heard; one line." } } } } } },
                "responses": {
                    "200": { "description": "Recorded.", "content": { "application/json": { "schema": { "type": "object", "required": ["ok", "output"], "properties": { "ok": { "const": true }, "output": { "type": "string" } } } } } },
                    "400": error_response("`invalid_output`, a note over 200 characters or with control characters, or an output this appliance does not have."),
                    "401": error_response("No session."),
                    "403": error_response("Missing or wrong CSRF token."),
                    "409": error_response("`output_disabled` or `not_running`.")
                }
            } }
    })
}

/// The settings, system, drill and operator routes (a second literal: one `json!` for
/// every path would pass the macro's recursion limit).
fn operation_paths() -> Value {
    json!({
            "/api/uploads/chime": { "post": {
                "summary": "Upload an operator's chime (16-bit PCM WAV, at most 10 s and 8 MiB); answers the path to give audio.chime. Audited.",
                "security": [{ "session": [], "csrf": [] }],
                "parameters": [{ "name": "name", "in": "query", "required": true, "description": "A plain file name ending in .wav: letters, digits, '.', '-', '_'; no path, no '..'.", "schema": { "type": "string", "maxLength": 64 } }],
                "requestBody": { "required": true, "content": { "audio/wav": { "schema": { "type": "string", "format": "binary" } } } },
                "responses": {
                    "200": { "description": "Stored.", "content": { "application/json": { "schema": { "type": "object", "properties": { "path": { "type": "string" }, "seconds": { "type": "number" } } } } } },
                    "400": error_response("`invalid_name` (a path, '..', not .wav) or not a usable WAV."),
                    "401": error_response("No session."),
                    "403": error_response("Missing or wrong CSRF token."),
                    "413": error_response("Larger than 8 MiB.")
                }
            } },
            "/api/uploads/certificate": { "post": {
                "summary": "Upload an HTTPS certificate chain and its private key (PEM); checked to work together, stored privately; answers the cert_file/key_file to give [webui] with https = true. Audited (the key never).",
                "security": [{ "session": [], "csrf": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["certificate", "key"], "properties": { "certificate": { "type": "string" }, "key": { "type": "string" } } } } } },
                "responses": {
                    "200": { "description": "Stored.", "content": { "application/json": { "schema": { "type": "object", "properties": { "cert_file": { "type": "string" }, "key_file": { "type": "string" }, "fingerprint": { "type": "string" } } } } } },
                    "400": error_response("Not a certificate and key that work together."),
                    "401": error_response("No session."),
                    "403": error_response("Missing or wrong CSRF token.")
                }
            } },
            "/api/system": { "get": {
                "summary": "Version, uptime, host, settings file, time and its sync source.",
                "security": [{ "session": [] }],
                "responses": { "200": { "description": "The system.", "content": { "application/json": { "schema": { "type": "object" } } } }, "401": error_response("No session.") }
            } },
            "/api/system/logs": { "get": {
                "summary": "The daemon's recent log lines (info and above, the last 5,000) as a text download. Audited.",
                "security": [{ "session": [] }],
                "responses": { "200": { "description": "A text file.", "content": { "text/plain": { "schema": { "type": "string" } } } }, "401": error_response("No session.") }
            } },
            "/api/system/config": { "get": {
                "summary": "The settings file as a download (import: PUT /api/settings with its text).",
                "security": [{ "session": [] }],
                "responses": { "200": { "description": "The TOML file.", "content": { "application/toml": { "schema": { "type": "string" } } } }, "401": error_response("No session.") }
            } },
            "/api/drills": { "get": {
                "summary": "The drills on offer: recorded events, which outputs include drills, and whether drills are allowed.",
                "security": [{ "session": [] }],
                "responses": { "200": { "description": "The drills.", "content": { "application/json": { "schema": { "type": "object" } } } }, "401": error_response("No session.") }
            } },
            "/api/drill": { "post": {
                "summary": "Start a drill through every output that includes drills, labelled `drill` everywhere: a recorded real event replayed (times as if now), or a synthetic alert. Audited.",
                "security": [{ "session": [], "csrf": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["confirm"], "properties": {
                    "confirm": { "type": "boolean", "description": "Must be true: contacts may operate real equipment." },
                    "recorded": { "type": "string" }, "class": { "type": "string" }, "seconds": { "type": "integer", "minimum": 1, "maximum": 120 }, "warning": { "type": "boolean" } } } } } },
                "responses": {
                    "200": { "description": "Started: `event_id` names the drill (its report: GET /api/drills/reports/{event_id}).", "content": { "application/json": { "schema": { "type": "object", "required": ["ok", "event_id"], "properties": { "ok": { "const": true }, "event_id": { "type": "string" } } } } } },
                    "400": error_response("No confirmation (`confirm_required`), neither or both of recorded and class, an unknown event or class."),
                    "401": error_response("No session."),
                    "403": error_response("Missing or wrong CSRF token."),
                    "409": error_response("`alert_in_progress` (a real alert runs) or `drill_disabled` (alert.drill = false).")
                }
            } },
            "/api/alert/reset": { "post": {
                "summary": "End every running alarm: contacts whose release rule allows a reset open, the voice stops. Audited.",
                "security": [{ "session": [], "csrf": [] }],
                "responses": { "200": { "description": "Done; the engine's decisions." }, "401": error_response("No session."), "403": error_response("Missing or wrong CSRF token."), "409": error_response("The daemon's tasks are restarting (`not_running`).") }
            } },
            "/api/alert/silence": { "post": {
                "summary": "Stop the voice now; contacts stay; a stronger update speaks again. Audited.",
                "security": [{ "session": [], "csrf": [] }],
                "responses": { "200": { "description": "Done; the engine's decisions." }, "401": error_response("No session."), "403": error_response("Missing or wrong CSRF token."), "409": error_response("The daemon's tasks are restarting (`not_running`).") }
            } },
            "/api/settings": {
                "get": {
                    "summary": "The settings file: its text, revision and parsed document (no secrets: those live in their own files).",
                    "security": [{ "session": [] }],
                    "responses": { "200": { "description": "The settings.", "content": { "application/json": { "schema": { "type": "object", "properties": {
                        "editable": { "type": "boolean" }, "path": { "type": ["string", "null"] }, "revision": { "type": "string" },
                        "text": { "type": "string" }, "document": { "type": "object" }, "apply_pending": { "type": ["string", "null"] } } } } } },
                        "401": error_response("No session.") }
                },
                "put": {
                    "summary": "Validate everything at once and, when valid, save atomically, audit with the diff, and apply (at once, or after the alert in progress).",
                    "security": [{ "session": [], "csrf": [] }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SettingsEdit" } } } },
                    "responses": {
                        "200": { "description": "Saved.", "content": { "application/json": { "schema": { "type": "object", "properties": {
                            "revision": { "type": "string" }, "diff": { "type": "array", "items": { "$ref": "#/components/schemas/SettingsDiff" } },
                            "apply": { "enum": ["now", "after_alert"] }, "notes": { "type": "array", "items": { "type": "string" } } } } } } },
                        "400": error_response("Neither or both of changes and text, or a malformed body."),
                        "401": error_response("No session."),
                        "403": error_response("Missing or wrong CSRF token."),
                        "409": error_response("Changed meanwhile (`check` has the current revision)."),
                        "422": error_response("Invalid: `check.problems` lists every problem with its path.")
                    }
                }
            },
            "/api/settings/check": { "post": {
                "summary": "Check an edit without saving: every problem with its path, and the diff.",
                "security": [{ "session": [], "csrf": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SettingsEdit" } } } },
                "responses": {
                    "200": { "description": "The check.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SettingsCheck" } } } },
                    "400": error_response("Neither or both of changes and text, or a malformed body."),
                    "401": error_response("No session."),
                    "403": error_response("Missing or wrong CSRF token.")
                }
            } },
            "/api/settings/whatif": { "post": {
                "summary": "What the edited settings would do, saving and operating nothing: reference earthquakes (a nearby M7 inland, a distant M8 offshore, a deep M6, a PLUM-only report, a training report) placed around the edited site and run through the alert engine — the site's predicted class and exactly which outputs operate, when. An empty edit previews the settings in force. Not audited (it changes nothing).",
                "security": [{ "session": [], "csrf": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SettingsEdit" } } } },
                "responses": {
                    "200": { "description": "The check and, when it found no problem, one preview per reference earthquake.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SettingsWhatIf" } } } },
                    "400": error_response("Both changes and text, or a malformed body."),
                    "401": error_response("No session."),
                    "403": error_response("Missing or wrong CSRF token.")
                }
            } }
    })
}

fn base_document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "eewgate local web UI API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON API of the appliance's web UI. Until the administrator password is set, only /api/setup/state and /api/setup are served (others answer 409 setup_required). State-changing requests of a session need the X-CSRF-Token header."
        },
        "components": {
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": "eewgate_session" },
                "csrf": { "type": "apiKey", "in": "header", "name": "X-CSRF-Token" }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": { "error": { "type": "string" }, "message": { "type": "string" } }
                },
                "HistoryPage": {
                    "type": "object",
                    "required": ["items", "next_before_id"],
                    "properties": {
                        "items": { "type": "array", "items": { "type": "object" } },
                        "next_before_id": { "type": ["integer", "null"] }
                    }
                },
                "SettingsEdit": {
                    "type": "object",
                    "description": "Key changes by dotted path (null removes a key so its default applies), or the whole file's text.",
                    "properties": {
                        "revision": { "type": ["string", "null"] },
                        "changes": { "type": "array", "maxItems": 500, "items": { "type": "object", "required": ["path", "value"], "properties": { "path": { "type": "string" }, "value": {} } } },
                        "text": { "type": ["string", "null"] }
                    }
                },
                "SettingsDiff": {
                    "type": "object",
                    "properties": { "path": { "type": "string" }, "old": { "type": ["string", "null"] }, "new": { "type": ["string", "null"] } }
                },
                "SettingsCheck": {
                    "type": "object",
                    "properties": {
                        "valid": { "type": "boolean" },
                        "problems": { "type": "array", "items": { "type": "object", "properties": { "path": { "type": "string" }, "message": { "type": "string" } } } },
                        "notes": { "type": "array", "items": { "type": "string" } },
                        "diff": { "type": "array", "items": { "$ref": "#/components/schemas/SettingsDiff" } },
                        "revision": { "type": "string" },
                        "conflict": { "type": "boolean" }
                    }
                },
                "SettingsWhatIf": {
                    "type": "object",
                    "properties": {
                        "check": { "$ref": "#/components/schemas/SettingsCheck" },
                        "previews": { "type": "array", "items": { "type": "object",
                            "description": "One reference earthquake: scenario (nearby_m7_inland, distant_m8_offshore, deep_m6, plum_only, training_nearby_m7), title_ja, title_en, received_at, epicentre, label, prediction {class, long_period_class, warning, arrival, seconds_to_s, class_basis, arrival_basis, notes}, acted, reason (why not: training_disabled, deep_event_ignored, below_every_output_rule, …), decisions, outputs [{output, name, enabled, fires, relay, held_at_end, actions [{offset_ms, …the action as eewgate replay prints it}]}].",
                            "required": ["scenario", "prediction", "acted", "outputs"] } }
                    }
                },
                "Session": {
                    "type": "object",
                    "properties": { "user": { "type": "string" }, "csrf_token": { "type": "string" }, "idle_timeout_s": { "type": "integer" } }
                }
            }
        },
        "paths": {
            "/api/setup/state": { "get": {
                "summary": "Whether first-boot setup is pending.",
                "responses": { "200": { "description": "Setup state.", "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "setup_required": { "type": "boolean" }, "min_password_chars": { "type": "integer" } } } } } } }
            } },
            "/api/setup": { "post": {
                "summary": "Set the administrator password with the one-time setup code from the console.",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["setup_code", "password"],
                    "properties": { "setup_code": { "type": "string" }, "password": { "type": "string", "minLength": 10, "maxLength": 256 } } } } } },
                "responses": {
                    "200": { "description": "Password set; log in next." },
                    "400": error_response("Password too short or too long, or a malformed body."),
                    "403": error_response("Wrong setup code, or a cross-origin request."),
                    "409": error_response("Already set up."),
                    "413": error_response("Body too large."),
                    "429": error_response("Too many failed attempts; see Retry-After.")
                }
            } },
            "/api/login": { "post": {
                "summary": "Log in; sets the eewgate_session cookie and returns the CSRF token.",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["password"], "properties": { "password": { "type": "string" } } } } } },
                "responses": {
                    "200": { "description": "Logged in.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Session" } } } },
                    "401": error_response("Wrong password."),
                    "409": error_response("Setup pending."),
                    "413": error_response("Body too large."),
                    "429": error_response("Too many failed attempts; see Retry-After.")
                }
            } },
            "/api/logout": { "post": {
                "summary": "End the session.",
                "security": [{ "session": [], "csrf": [] }],
                "responses": { "200": { "description": "Logged out." }, "401": error_response("No session."), "403": error_response("Missing or wrong CSRF token.") }
            } },
            "/api/session": { "get": {
                "summary": "The current session and its CSRF token.",
                "security": [{ "session": [] }],
                "responses": { "200": { "description": "The session.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Session" } } } }, "401": error_response("No session.") }
            } },
            "/api/status": { "get": {
                "summary": "A snapshot of the live status (links, time sync, watchdog, storage, outputs, current alert).",
                "security": [{ "session": [] }],
                "responses": { "200": { "description": "The status model.", "content": { "application/json": { "schema": { "type": "object" } } } }, "401": error_response("No session.") }
            } },
            "/api/events": { "get": {
                "summary": "Server-sent events: `status` with the snapshot on connect and on every change; keep-alive comments.",
                "security": [{ "session": [] }],
                "responses": { "200": { "description": "An event stream.", "content": { "text/event-stream": { "schema": { "type": "string" } } } }, "401": error_response("No session.") }
            } },
            "/api/history/telegrams": history_get("Received telegrams, newest first.", "telegrams"),
            "/api/history/alerts": history_get("Alerts, newest first.", "alerts"),
            "/api/history/telegrams/{id}/raw": { "get": {
                "summary": "One telegram's bytes exactly as received, as text (bytes that are not UTF-8 become U+FFFD), shown inline.",
                "security": [{ "session": [] }],
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } }],
                "responses": {
                    "200": { "description": "The telegram.", "content": { "text/plain": { "schema": { "type": "string" } } } },
                    "400": error_response("The id is not a positive whole number."),
                    "401": error_response("No session."),
                    "404": error_response("No such telegram (never received, or purged by retention).")
                }
            } },
            "/api/history/telegrams/export": history_export("telegrams"),
            "/api/history/alerts/export": history_export("alerts"),
            "/api/openapi.json": { "get": {
                "summary": "This document.",
                "responses": { "200": { "description": "OpenAPI 3.1.", "content": { "application/json": { "schema": { "type": "object" } } } } }
            } }
        }
    })
}
