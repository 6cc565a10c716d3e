//! The OpenAPI 3.1 document of the JSON API, written by hand and tested against the
//! router's route table.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn history_params() -> Value {
    json!([
        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500, "default": 50 } },
        { "name": "before_id", "in": "query", "description": "Keyset paging: records with a smaller id (the previous page's next_before_id).", "schema": { "type": "integer", "minimum": 1 } },
        { "name": "event_id", "in": "query", "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$" } },
        { "name": "from", "in": "query", "description": "First day (UTC), inclusive.", "schema": { "type": "string", "format": "date" } },
        { "name": "to", "in": "query", "description": "Last day (UTC), inclusive.", "schema": { "type": "string", "format": "date" } }
    ])
}

fn history_get(summary: &str) -> Value {
    json!({
        "get": {
            "summary": summary,
            "security": [{ "session": [] }],
            "parameters": history_params(),
            "responses": {
                "200": { "description": "One page, newest first.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/HistoryPage" } } } },
                "400": error_response("A query parameter is invalid (the message says which)."),
                "401": error_response("No session.")
            }
        }
    })
}

/// The document served at `/api/openapi.json`.
pub fn document() -> Value {
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
            "/api/history/telegrams": history_get("Received telegrams, newest first."),
            "/api/history/alerts": history_get("Alerts, newest first."),
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
            "/api/openapi.json": { "get": {
                "summary": "This document.",
                "responses": { "200": { "description": "OpenAPI 3.1.", "content": { "application/json": { "schema": { "type": "object" } } } } }
            } }
        }
    })
}
