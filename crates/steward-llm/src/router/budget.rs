//! Budgets that cannot be overspent.
//!
//! Before a paid call the router reserves its worst-case cost against every
//! budget that applies; the call goes ahead only if every budget still has
//! room for it. Afterwards the reservation is settled to the real cost. So
//! concurrent calls can never together spend past a limit, whatever order
//! they finish in.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// How often a budget starts over (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Daily,
    Monthly,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Monthly => "monthly",
        }
    }

    /// The start (Unix ms) of the period holding `now_ms`.
    pub fn start(self, now_ms: i64) -> i64 {
        let day = now_ms.div_euclid(86_400_000);
        match self {
            Period::Daily => day * 86_400_000,
            Period::Monthly => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m, 1) * 86_400_000
            }
        }
    }
}

/// What a budget covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "provider", rename_all = "lowercase")]
pub enum Scope {
    /// Every paid provider together.
    Overall,
    Provider(String),
}

impl Scope {
    fn covers(&self, provider: &str) -> bool {
        match self {
            Scope::Overall => true,
            Scope::Provider(p) => p == provider,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Scope::Overall => "the overall".to_string(),
            Scope::Provider(p) => format!("the {p}"),
        }
    }
}

/// One budget: a limit per period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRule {
    pub scope: Scope,
    pub period: Period,
    pub limit_micros: i64,
}

/// A budget's state, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetStatus {
    #[serde(flatten)]
    pub rule: BudgetRule,
    pub period_start: i64,
    pub spent_micros: i64,
    pub reserved_micros: i64,
    pub remaining_micros: i64,
}

#[derive(Debug)]
struct Account {
    rule: BudgetRule,
    period_start: i64,
    spent: i64,
    reserved: i64,
}

impl Account {
    /// Starts the account over when a new period has begun.
    fn roll(&mut self, now_ms: i64) {
        let start = self.rule.period.start(now_ms);
        if start != self.period_start {
            self.period_start = start;
            self.spent = 0;
        }
    }
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    /// The budget that had no room (none when the refusal had another cause).
    pub rule: Option<BudgetRule>,
    pub reason: String,
}

impl Exhausted {
    /// A refusal for another reason than a full budget.
    pub fn because(reason: String) -> Self {
        Exhausted { rule: None, reason }
    }
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Formats micros as currency units with four decimals.
pub fn money(micros: i64) -> String {
    format!("{:.4}", micros as f64 / 1e6)
}

/// Every budget's account.
#[derive(Debug, Default)]
pub struct BudgetBook {
    accounts: Mutex<Vec<Account>>,
}

/// A held reservation. Settle it with the real cost; dropping it unsettled
/// charges the whole reserved amount, which errs on the side of the budget.
#[derive(Debug)]
pub struct Reservation {
    book: Arc<BudgetBook>,
    /// (account index, period start) pairs it was taken against.
    held: Vec<(usize, i64)>,
    amount: i64,
    settled: bool,
}

impl BudgetBook {
    /// `spent` gives what the ledger already records for a rule's current
    /// period (so a restart does not reset the budgets).
    pub fn new(rules: Vec<BudgetRule>, now_ms: i64, spent: impl Fn(&BudgetRule, i64) -> i64) -> Self {
        let accounts = rules
            .into_iter()
            .map(|rule| {
                let period_start = rule.period.start(now_ms);
                let spent = spent(&rule, period_start);
                Account { rule, period_start, spent, reserved: 0 }
            })
            .collect();
        BudgetBook { accounts: Mutex::new(accounts) }
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Whether any budget covers `provider`.
    pub fn covers(&self, provider: &str) -> bool {
        self.lock().iter().any(|a| a.rule.scope.covers(provider))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Account>> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves `amount` against every budget covering `provider`, or
    /// refuses with the first budget that has no room.
    pub fn reserve(self: &Arc<Self>, provider: &str, amount: i64, now_ms: i64) -> Result<Reservation, Exhausted> {
        let mut accounts = self.lock();
        let mut held = Vec::new();
        for (i, a) in accounts.iter_mut().enumerate() {
            if !a.rule.scope.covers(provider) {
                continue;
            }
            a.roll(now_ms);
            if a.spent.saturating_add(a.reserved).saturating_add(amount) > a.rule.limit_micros {
                let reason = format!(
                    "{} {} budget of {} is spent ({} used, {} held by running requests, this request may cost up to {})",
                    a.rule.scope.describe(),
                    a.rule.period.as_str(),
                    money(a.rule.limit_micros),
                    money(a.spent),
                    money(a.reserved),
                    money(amount)
                );
                return Err(Exhausted { rule: Some(a.rule.clone()), reason });
            }
            held.push((i, a.period_start));
        }
        for (i, _) in &held {
            accounts[*i].reserved = accounts[*i].reserved.saturating_add(amount);
        }
        Ok(Reservation { book: self.clone(), held, amount, settled: false })
    }

    /// Records a cost that was not reserved (a call whose cost is known only
    /// afterwards); it still counts against later requests.
    pub fn charge(&self, provider: &str, cost: i64, now_ms: i64) {
        for a in self.lock().iter_mut().filter(|a| a.rule.scope.covers(provider)) {
            a.roll(now_ms);
            a.spent = a.spent.saturating_add(cost);
        }
    }

    pub fn status(&self, now_ms: i64) -> Vec<BudgetStatus> {
        self.lock()
            .iter_mut()
            .map(|a| {
                a.roll(now_ms);
                BudgetStatus {
                    rule: a.rule.clone(),
                    period_start: a.period_start,
                    spent_micros: a.spent,
                    reserved_micros: a.reserved,
                    remaining_micros: a.rule.limit_micros.saturating_sub(a.spent).saturating_sub(a.reserved).max(0),
                }
            })
            .collect()
    }
}

impl Reservation {
    /// What was reserved.
    pub fn amount(&self) -> i64 {
        self.amount
    }

    /// Replaces the reservation with the real cost.
    pub fn settle(mut self, cost: i64) {
        self.finish(cost);
    }

    fn finish(&mut self, cost: i64) {
        if self.settled {
            return;
        }
        self.settled = true;
        let mut accounts = self.book.lock();
        for (i, period_start) in &self.held {
            let a = &mut accounts[*i];
            a.reserved = a.reserved.saturating_sub(self.amount);
            // A cost that lands after its period ended belongs to the old one.
            if a.period_start == *period_start {
                a.spent = a.spent.saturating_add(cost);
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let amount = self.amount;
        self.finish(amount);
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    /// 2026-11-22T12:00Z
    const NOW: i64 = 20_779 * DAY + DAY / 2;

    fn book(limit: i64) -> Arc<BudgetBook> {
        Arc::new(BudgetBook::new(
            vec![
                BudgetRule { scope: Scope::Overall, period: Period::Monthly, limit_micros: limit },
                BudgetRule { scope: Scope::Provider("openai".into()), period: Period::Daily, limit_micros: limit / 2 },
            ],
            NOW,
            |_, _| 0,
        ))
    }

    #[test]
    fn periods_start_at_utc_midnight_and_on_the_first() {
        assert_eq!(Period::Daily.start(NOW), 20_779 * DAY);
        // 2026-11-01 is day 20758.
        assert_eq!(Period::Monthly.start(NOW), 20_758 * DAY);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn reservations_hold_room_until_settled() {
        let b = book(1_000);
        let r1 = b.reserve("openai", 400, NOW).unwrap();
        // The openai daily budget (500) has 100 left while r1 is held.
        let refused = b.reserve("openai", 200, NOW).unwrap_err();
        assert_eq!(refused.rule.as_ref().map(|r| r.scope.clone()), Some(Scope::Provider("openai".into())));
        assert!(refused.to_string().contains("daily budget of 0.0005"), "{refused}");
        // Another provider is only under the overall budget.
        let r2 = b.reserve("anthropic", 600, NOW).unwrap();
        r1.settle(150);
        r2.settle(600);
        let s = b.status(NOW);
        assert_eq!((s[0].spent_micros, s[0].reserved_micros, s[0].remaining_micros), (750, 0, 250));
        assert_eq!(s[1].spent_micros, 150);
    }

    #[test]
    fn a_dropped_reservation_charges_its_whole_amount() {
        let b = book(1_000);
        drop(b.reserve("anthropic", 300, NOW).unwrap());
        assert_eq!(b.status(NOW)[0].spent_micros, 300);
    }

    #[test]
    fn a_new_period_starts_over() {
        let b = book(1_000);
        b.reserve("openai", 450, NOW).unwrap().settle(450);
        assert!(b.reserve("openai", 100, NOW).is_err());
        assert!(b.reserve("openai", 100, NOW + DAY).is_ok(), "a new day resets the daily budget");
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let b = book(10_000);
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || b.reserve("anthropic", 700, NOW).map(|r| r.settle(700)).is_ok())
            })
            .collect();
        let granted = handles.into_iter().filter_map(|h| h.join().ok()).filter(|ok| *ok).count();
        assert_eq!(granted, 14, "10000 / 700 = 14 calls fit");
        assert!(b.status(NOW)[0].spent_micros <= 10_000);
    }
}
