//! Built-in tools that need nothing but the engine itself.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use steward_protocol::Effect;

use crate::clock::Clock;
use crate::tool::{Tool, ToolContext, ToolError, ToolSpec};

/// `get_current_time`: the current date and time in UTC. Models have no
/// clock; this is the simplest tool that makes answers about "now" honest.
pub struct CurrentTime {
    spec: ToolSpec,
    clock: Arc<dyn Clock>,
}

impl CurrentTime {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        CurrentTime {
            spec: ToolSpec {
                name: "get_current_time".into(),
                description: "Returns the current date and time (UTC, RFC 3339) and the Unix time in seconds.".into(),
                parameters: serde_json::json!({"type": "object", "properties": {}, "additionalProperties": false}),
                effect: Effect::Read,
                timeout: Duration::from_secs(2),
                output_cap: 1024,
                domain: None,
            },
            clock,
        }
    }
}

#[async_trait]
impl Tool for CurrentTime {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, _arguments: serde_json::Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        let ms = self.clock.now_ms();
        Ok(serde_json::json!({"utc": rfc3339(ms), "unix": ms.div_euclid(1000)}).to_string())
    }
}

/// Formats Unix milliseconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's civil-from-days algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_392_123_000), "2026-11-23T00:02:03Z");
    }
}
