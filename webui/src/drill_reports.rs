//! The drill reports (issue 7): the record of each drill, channel by channel.
//!
//! - `GET /api/drills/reports` — `limit` (1..=100, default 20) and `before_id`: past
//!   drills, newest first, as `{"items", "next_before_id"}` like the history pages.
//! - `GET /api/drills/reports/{event_id}` — one drill's report (JSON); 404 when history
//!   has no such drill.
//!
//! Read-only: they need the session, like the history routes, and change nothing (not
//! audited). The report's fields are the appliance's (see `Appliance::drill_report`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::appliance::{Appliance, DrillReportsQuery};
use crate::server::{Admin, ApiError, AppState};

/// Whether `id` is an event id as the history takes it: 1 to 64 letters, digits, `-`, `_`.
pub(crate) fn valid_event_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The query of a page of drills.
pub(crate) fn parse_query(params: &BTreeMap<String, String>) -> Result<DrillReportsQuery, String> {
    let mut q = DrillReportsQuery::default();
    for (k, v) in params {
        match k.as_str() {
            "limit" => q.limit = crate::server::parse_limit(v, DrillReportsQuery::MAX_LIMIT)?,
            "before_id" => q.before_id = Some(crate::server::parse_before_id(v)?),
            other => {
                return Err(format!(
                    "unknown parameter {other:?} (use limit, before_id)"
                ));
            }
        }
    }
    Ok(q)
}

/// `GET /api/drills/reports`.
pub(crate) async fn list<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let q = parse_query(&params).map_err(ApiError::bad_request)?;
    let limit = usize::try_from(q.limit).unwrap_or(usize::MAX);
    let items = shared
        .appliance
        .drill_reports(q)
        .await
        .map_err(ApiError::internal)?;
    // A short page is the last one.
    let next = if items.len() >= limit {
        items
            .last()
            .and_then(|i| i.get("id"))
            .and_then(Value::as_i64)
    } else {
        None
    };
    Ok(Json(json!({ "items": items, "next_before_id": next })))
}

/// `GET /api/drills/reports/{event_id}`.
pub(crate) async fn one<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if !valid_event_id(&id) {
        return Err(ApiError::bad_request(
            "the event id must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    let report = shared
        .appliance
        .drill_report(id.clone())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no drill {id} in history (it may have been purged)"),
            )
        })?;
    Ok(Json(report))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn queries_and_ids_are_checked() {
        let p = |pairs: &[(&str, &str)]| {
            parse_query(
                &pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        assert_eq!(p(&[]).unwrap(), DrillReportsQuery::default());
        let q = p(&[("limit", "5"), ("before_id", "9")]).unwrap();
        assert_eq!((q.limit, q.before_id), (5, Some(9)));
        for bad in [
            [("limit", "0")],
            [("limit", "101")],
            [("before_id", "-1")],
            [("event_id", "x")],
        ] {
            assert!(p(&bad).is_err(), "{bad:?}");
        }
        assert!(valid_event_id("drill-20261204120000"));
        assert!(valid_event_id("20240417231454"));
        for bad in ["", "a/b", "..", "drill 1", &"x".repeat(65)] {
            assert!(!valid_event_id(bad), "{bad:?}");
        }
    }
}
