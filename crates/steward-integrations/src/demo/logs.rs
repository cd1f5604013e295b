//! The demo house's system log: the everyday noise of a real installation,
//! plus the traces of the planted problems (the car charger's lost
//! connection, the garden irrigation valve's flat battery).

use steward_core::home::{LogEntry, LogLevel};

use super::sim::{DAY_MS, HOUR_MS, MINUTE_MS, TICK_MS};
use super::Scenario;

struct Line {
    level: LogLevel,
    logger: &'static str,
    source: &'static str,
    message: &'static str,
    count: u32,
    first: i64,
    last: i64,
    exception: Option<&'static str>,
}

impl Line {
    fn entry(self) -> LogEntry {
        LogEntry {
            level: self.level,
            logger: self.logger.into(),
            source: self.source.into(),
            message: self.message.into(),
            count: self.count,
            first_occurred: self.first,
            timestamp: self.last,
            exception: self.exception.map(String::from),
        }
    }
}

pub(crate) fn seed(scenario: &Scenario, start: i64, now: i64) -> Vec<LogEntry> {
    let (outage_start, outage_end) = scenario.charger_outage;
    let failed_polls = ((outage_end - outage_start) / TICK_MS) as u32;
    let lost = scenario.valve_lost_at;
    let lines = [
        Line {
            level: LogLevel::Warning,
            logger: "homeassistant.helpers.template",
            source: "helpers/template.py:2749",
            message: "Template variable warning: 'dict object' has no attribute 'battery_level' when rendering \
'{{ state_attr('vacuum.robot_vacuum', 'battery_level') }}'",
            count: 41,
            first: start + 10 * MINUTE_MS,
            last: now - 2 * HOUR_MS,
            exception: None,
        },
        Line {
            level: LogLevel::Warning,
            logger: "homeassistant.components.http.ban",
            source: "components/http/ban.py:136",
            message: "Login attempt or request with invalid authentication from 192.168.1.77 (192.168.1.77). \
Requested URL: '/api/states'.",
            count: 1,
            first: now - 2 * DAY_MS - 3 * HOUR_MS,
            last: now - 2 * DAY_MS - 3 * HOUR_MS,
            exception: None,
        },
        Line {
            level: LogLevel::Error,
            logger: "custom_components.soundvision.media_player",
            source: "custom_components/soundvision/media_player.py:211",
            message: "Failed to connect to Kitchen Speaker at 192.168.1.42:8009; retrying in 30 seconds",
            count: 6,
            first: now - 3 * DAY_MS - 5 * HOUR_MS,
            last: now - 3 * DAY_MS - 4 * HOUR_MS - 30 * MINUTE_MS,
            exception: None,
        },
        Line {
            level: LogLevel::Warning,
            logger: "custom_components.voltbox",
            source: "custom_components/voltbox/__init__.py:88",
            message: "Car Charger went offline: no answer from 192.168.1.60; its sensors will not update until it \
reconnects",
            count: 1,
            first: outage_start,
            last: outage_start,
            exception: None,
        },
        Line {
            level: LogLevel::Error,
            logger: "custom_components.voltbox.coordinator",
            source: "helpers/update_coordinator.py:380",
            message: "Error fetching Voltbox charger data: Cannot connect to host 192.168.1.60:443 ssl:default \
[Connect call failed ('192.168.1.60', 443)]",
            count: failed_polls,
            first: outage_start,
            last: outage_end - TICK_MS,
            exception: Some(
                "Traceback (most recent call last):\n  File \"custom_components/voltbox/api.py\", line 64, in \
fetch\n    async with self._session.get(url) as response:\naiohttp.client_exceptions.ClientConnectorError: \
Cannot connect to host 192.168.1.60:443 ssl:default [Connect call failed ('192.168.1.60', 443)]",
            ),
        },
        Line {
            level: LogLevel::Info,
            logger: "custom_components.voltbox.coordinator",
            source: "helpers/update_coordinator.py:412",
            message: "Fetching Voltbox charger data recovered",
            count: 1,
            first: outage_end,
            last: outage_end,
            exception: None,
        },
        Line {
            level: LogLevel::Warning,
            logger: "homeassistant.components.zha.core.device",
            source: "components/zha/core/device.py:436",
            message: "Garden Irrigation Valve (00:15:8d:00:06:7a:1f:42) reports a low battery: 3%",
            count: 4,
            first: lost - 30 * HOUR_MS,
            last: lost - 6 * HOUR_MS,
            exception: None,
        },
        Line {
            level: LogLevel::Warning,
            logger: "homeassistant.components.zha.core.device",
            source: "components/zha/core/device.py:402",
            message: "Garden Irrigation Valve (00:15:8d:00:06:7a:1f:42) stopped responding; marking it unavailable",
            count: 1,
            first: lost,
            last: lost,
            exception: None,
        },
    ];
    let mut entries: Vec<LogEntry> = lines.into_iter().map(Line::entry).collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
    entries
}
