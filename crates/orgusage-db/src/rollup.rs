//! The read path of the month rollups (`client_user_monthly_usage`): which months of a report's
//! range are read as month rows and which as day rows, and the one statement that does it.
//!
//! A per-user report over `start..=end` used to aggregate every user-day row of the range: 300
//! users over a year are 109,500 rows, and on PostgreSQL, where rows of one client lie among
//! everyone else's in the heap, reading them grew with the table. The triggers of migration
//! `2026-11-29-000004_month_rollups` keep one row per (client, client-local month, user) equal to
//! the sums of its days, in the same transaction as every day write. The report now reads:
//!
//! * **whole months** of the range from the rollup (one row per user and month);
//! * each **edge month** (the range starts after its first or ends before its last day) from the
//!   rollup as well when the days of that month outside the range have no row, which is the
//!   common case of a range ending today (the rest of the month is in the future); otherwise
//!   from its day rows inside the range. The probe is an index seek (`EXISTS`), and it runs in
//!   the same statement, so in the same snapshot, as the reads it chooses between.
//!
//! So a year is at most 12-13 month rows per user plus, only when an edge month has rows on both
//! sides of the range's boundary, up to two months of day rows. The result equals the old
//! `GROUP BY user_id` over the day rows exactly, including `MAX(openrouter_user_id)` and the
//! `COUNT(*)` of days: a month row holds its days' greatest id and count, and a month is read from
//! it only when all of its days are inside the range.

use chrono::{Days, NaiveDate};
use orgusage_domain::timezone::{month_end, month_start};

use crate::statements::{join, joined_len, text};

/// Per-user totals over a range (see the module docs), one statement. Binds: [`user_binds`].
/// Returns `(user_id, MAX(openrouter_user_id), tokens, requests, raw, markup, days, overflowed)`
/// per user: the shape of the old day-row query plus 1 when a month row it used is flagged
/// `overflowed` (its sums left `i64`), which the caller reports as `Overflow`, as the old
/// query's `SUM` over those days did.
pub const USER_REPORT: &str = {
    const P: &[&str] = &[WHOLE_MONTHS, EDGE_MONTH, EDGE_MONTH, ") r GROUP BY user_id"];
    const B: [u8; joined_len(P)] = join(P);
    text(&B)
};

/// The whole months of [`USER_REPORT`] (binds: client, first and last whole month, flag).
const WHOLE_MONTHS: &str = "SELECT user_id, MAX(openrouter_user_id), \
    CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT), \
    CAST(COALESCE(SUM(total_requests), 0) AS BIGINT), \
    CAST(COALESCE(SUM(raw_cost), 0) AS BIGINT), \
    CAST(COALESCE(SUM(markup_cost), 0) AS BIGINT), \
    CAST(COALESCE(SUM(days), 0) AS BIGINT), CAST(MAX(ovf) AS BIGINT) FROM ( \
    SELECT user_id, openrouter_user_id, total_tokens, total_requests, raw_cost, markup_cost, \
    days_active AS days, CASE WHEN overflowed THEN 1 ELSE 0 END AS ovf \
    FROM client_user_monthly_usage \
    WHERE client_org_id = ? AND month_start BETWEEN ? AND ? AND days_active > 0 AND ? = 1 ";

/// One edge month of [`USER_REPORT`], the first or the last: its rollup row when the month has
/// no day rows outside the range, else its in-range day rows (binds: see [`user_binds`]).
const EDGE_MONTH: &str = "UNION ALL \
    SELECT user_id, openrouter_user_id, total_tokens, total_requests, raw_cost, markup_cost, \
    days_active, CASE WHEN overflowed THEN 1 ELSE 0 END FROM client_user_monthly_usage \
    WHERE client_org_id = ? AND month_start = ? AND days_active > 0 AND ? = 1 \
    AND NOT EXISTS (SELECT 1 FROM client_user_daily_usage \
    WHERE client_org_id = ? AND usage_date BETWEEN ? AND ?) \
    AND NOT EXISTS (SELECT 1 FROM client_user_daily_usage \
    WHERE client_org_id = ? AND usage_date BETWEEN ? AND ?) \
    UNION ALL \
    SELECT user_id, openrouter_user_id, total_tokens, total_requests, raw_cost, markup_cost, 1, 0 \
    FROM client_user_daily_usage WHERE client_org_id = ? AND usage_date BETWEEN ? AND ? AND ? = 1 \
    AND (EXISTS (SELECT 1 FROM client_user_daily_usage \
    WHERE client_org_id = ? AND usage_date BETWEEN ? AND ?) \
    OR EXISTS (SELECT 1 FROM client_user_daily_usage \
    WHERE client_org_id = ? AND usage_date BETWEEN ? AND ?)) ";

/// One bind of [`USER_REPORT`]: the client id, a date, or a 0/1 flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// The client id.
    Client,
    /// A date.
    Date(NaiveDate),
    /// A flag: 1 turns the part of the statement it guards on.
    Flag(i64),
}

/// An edge month of a range: the month and the part of it inside the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// First day of the month.
    pub month: NaiveDate,
    /// First day of the month inside the range.
    pub from: NaiveDate,
    /// Last day of the month inside the range.
    pub to: NaiveDate,
}

/// How a range `start..=end` splits into whole months and at most two edge months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthPlan {
    /// First and last `month_start` of the whole months, if any.
    pub whole: Option<(NaiveDate, NaiveDate)>,
    /// The edge month at the start of the range, or the only month of a range inside one month.
    pub first: Option<Edge>,
    /// The edge month at the end of the range (never the same month as `first`).
    pub last: Option<Edge>,
}

/// Splits `start..=end` (`start <= end`) into whole months and edge months.
pub fn plan(start: NaiveDate, end: NaiveDate) -> MonthPlan {
    let mut out = MonthPlan {
        whole: None,
        first: None,
        last: None,
    };
    let mut month = month_start(start);
    while month <= end {
        let from = start.max(month);
        let to = end.min(month_end(month));
        if from == month && to == month_end(month) {
            let first = out.whole.map_or(month, |w| w.0);
            out.whole = Some((first, month));
        } else if out.first.is_none() && out.whole.is_none() {
            out.first = Some(Edge { month, from, to });
        } else {
            out.last = Some(Edge { month, from, to });
        }
        match month_end(month).checked_add_days(Days::new(1)) {
            Some(next) => month = next,
            None => break,
        }
    }
    out
}

/// The days of `edge`'s month outside the range, as two inclusive spans; an empty span is
/// given as (last day, first day), which no `BETWEEN` matches.
fn outside(edge: &Edge) -> [(NaiveDate, NaiveDate); 2] {
    let (first, last) = (edge.month, month_end(edge.month));
    let empty = (last, first);
    let before = edge
        .from
        .checked_sub_days(Days::new(1))
        .filter(|_| edge.from > first)
        .map_or(empty, |d| (first, d));
    let after = edge
        .to
        .checked_add_days(Days::new(1))
        .filter(|_| edge.to < last)
        .map_or(empty, |d| (d, last));
    [before, after]
}

/// The binds of [`USER_REPORT`] for `start..=end`, in order.
pub fn user_binds(start: NaiveDate, end: NaiveDate) -> Vec<Bind> {
    let p = plan(start, end);
    let flag = |on: bool| Bind::Flag(i64::from(on));
    let mut b = Vec::with_capacity(40);
    let (w0, w1) = p.whole.unwrap_or((start, start));
    b.extend([
        Bind::Client,
        Bind::Date(w0),
        Bind::Date(w1),
        flag(p.whole.is_some()),
    ]);
    for edge in [p.first, p.last] {
        let e = edge.unwrap_or(Edge {
            month: month_start(start),
            from: start,
            to: start,
        });
        let [(a0, a1), (z0, z1)] = outside(&e);
        let probes = [
            Bind::Client,
            Bind::Date(a0),
            Bind::Date(a1),
            Bind::Client,
            Bind::Date(z0),
            Bind::Date(z1),
        ];
        b.extend([Bind::Client, Bind::Date(e.month), flag(edge.is_some())]);
        b.extend(probes);
        b.extend([
            Bind::Client,
            Bind::Date(e.from),
            Bind::Date(e.to),
            flag(edge.is_some()),
        ]);
        b.extend(probes);
    }
    debug_assert_eq!(b.len(), USER_REPORT.matches('?').count());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn a_year_ending_mid_month_is_eleven_whole_months_and_two_edges() {
        let p = plan(d("2024-07-25"), d("2025-07-24"));
        assert_eq!(p.whole, Some((d("2024-08-01"), d("2025-06-01"))));
        assert_eq!(
            p.first,
            Some(Edge {
                month: d("2024-07-01"),
                from: d("2024-07-25"),
                to: d("2024-07-31")
            })
        );
        assert_eq!(
            p.last,
            Some(Edge {
                month: d("2025-07-01"),
                from: d("2025-07-01"),
                to: d("2025-07-24")
            })
        );
        assert_eq!(
            user_binds(d("2024-07-25"), d("2025-07-24")).len(),
            USER_REPORT.matches('?').count()
        );
    }

    #[test]
    fn month_aligned_and_single_day_ranges() {
        let p = plan(d("2025-02-01"), d("2025-03-31"));
        assert_eq!(p.whole, Some((d("2025-02-01"), d("2025-03-01"))));
        assert_eq!((p.first, p.last), (None, None));
        let p = plan(d("2025-02-10"), d("2025-02-10"));
        assert_eq!(p.whole, None);
        let e = p.first.expect("one edge");
        assert_eq!(p.last, None);
        assert_eq!(
            outside(&e),
            [
                (d("2025-02-01"), d("2025-02-09")),
                (d("2025-02-11"), d("2025-02-28"))
            ]
        );
        let p = plan(d("2025-02-01"), d("2025-02-01"));
        let e = p.first.expect("one edge");
        assert_eq!(
            outside(&e),
            [
                (d("2025-02-28"), d("2025-02-01")),
                (d("2025-02-02"), d("2025-02-28"))
            ]
        );
    }
}
