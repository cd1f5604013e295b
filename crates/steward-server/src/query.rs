//! Query strings, with errors in the usual shape.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;

use crate::error::ApiError;

/// The query parameters, or a 400 saying why they cannot be read.
pub(crate) fn query_map(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::invalid(format!("invalid query string: {}", e.body_text())))
}

/// A whole-number parameter within `range`, `default` when absent.
pub(crate) fn number_param(
    query: &HashMap<String, String>,
    name: &str,
    default: u32,
    range: RangeInclusive<u32>,
) -> Result<u32, ApiError> {
    match query.get(name) {
        None => Ok(default),
        Some(s) => s.parse::<u32>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
            ApiError::invalid(format!("{name} must be a number from {} to {}, not '{s}'", range.start(), range.end()))
                .with_param(name)
        }),
    }
}
