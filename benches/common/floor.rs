//! The per-call raw-SQL floor shared by the throughput benches (`batch`, `group_commit`): the
//! very statements the library sends for one record (billing `SELECT`, the user upsert with
//! `RETURNING`, the client-day upsert counting `unique_users`, the model upsert) as plain
//! prepared statements in one transaction on a dedicated connection. `record_usage.rs` and
//! `generations.rs` share [`Req`] and [`Day`] and keep floors of their own with more variants.

use chrono::NaiveDate;
use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use orgusage::{Decimal, UsageRecord};
use orgusage_db::statements::{Statement, UpsertClientDay, UpsertModelDay, UpsertUserDay};
const UPSERT_USER_DAY: &str = UpsertUserDay::SQL;
const UPSERT_CLIENT_DAY: &str = UpsertClientDay::SQL;
const UPSERT_MODEL_DAY: &str = UpsertModelDay::SQL;

use super::{MODELS, RawRef, Val, in_tx, stmt, with_raw};

const SEL_BILLING: &str = "SELECT timezone, markup_rate, monthly_limit, is_active \
     FROM client_organizations WHERE id = ? LIMIT ?";

/// One request: the library's record and the values the floor binds. The `record_usage` and
/// `generations` benches bind the same values in their own floors.
pub struct Req {
    /// What the library is given.
    pub record: UsageRecord,
    pub client: String,
    pub user: String,
    pub or_user: String,
    pub model: &'static str,
    pub provider: &'static str,
    pub input: i64,
    pub output: i64,
    pub raw: i64,
    pub markup: i64,
}

impl Req {
    /// User `user` of `client` calling model number `model` on `date`.
    pub fn new(client: &str, user: usize, model: usize, date: NaiveDate) -> Self {
        let r = Self::today(client, user, model);
        Self {
            record: r.record.on(date),
            ..r
        }
    }

    /// The same request booked on the store clock's today (the record names no date).
    pub fn today(client: &str, user: usize, model: usize) -> Self {
        let (model, provider) = MODELS[model];
        let (input, output) = (800 + 37 * user as i64, 200 + 11 * user as i64);
        // raw cost in nano-USD, a multiple of 10 so that x1.3 is exact
        let raw = (input * 3 + output * 15) * 1_000;
        let user_id = format!("user-{user:03}");
        let or_user = format!("or-{user_id}");
        Self {
            record: UsageRecord::new(client, &user_id, &or_user, model)
                .tokens(input, output)
                .raw_cost(Decimal::new(raw, 9))
                .provider(provider),
            client: client.to_string(),
            user: user_id,
            or_user,
            model,
            provider,
            input,
            output,
            raw,
            markup: raw / 10 * 13,
        }
    }
}

/// The day (client-local today of the test clock) and `now` every record is booked with.
#[derive(Clone, Copy)]
pub struct Day {
    pub date: NaiveDate,
    pub now: i64,
}

/// One record as plain SQL in one transaction (`BEGIN IMMEDIATE` on SQLite).
pub fn floor_record(conn: RawRef<'_>, r: &Req, date: NaiveDate, now: i64) -> i64 {
    let total = r.input + r.output;
    let user = [
        Val::Text(&r.client),
        Val::Date(date),
        Val::Text(&r.user),
        Val::Text(&r.or_user),
        Val::Int(total),
        Val::Int(r.input),
        Val::Int(r.output),
        Val::Int(r.raw),
        Val::Int(r.markup),
        Val::Int(now),
        Val::Int(now),
    ];
    let model = [
        Val::Text(&r.client),
        Val::Date(date),
        Val::Text(r.model),
        Val::Int(total),
        Val::Int(r.input),
        Val::Int(r.output),
        Val::Int(r.raw),
        Val::Int(r.markup),
        Val::OptText(Some(r.provider)),
        Val::Int(now),
        Val::Int(now),
    ];
    let billing = [Val::Text(&r.client), Val::Int(1)];
    with_raw!(conn, |c| in_tx(c, |c| {
        type Billing = (Text, BigInt, Nullable<BigInt>, Bool);
        let b: (String, i64, Option<i64>, bool) =
            stmt::<1, Billing>(SEL_BILLING, &billing, true).get_result(c)?;
        assert!(
            b.3 && b.2.is_none(),
            "bench clients are active, without limit"
        );
        let user_requests: i64 = stmt::<3, BigInt>(UPSERT_USER_DAY, &user, true).get_result(c)?;
        let daily = [
            Val::Text(&r.client),
            Val::Date(date),
            Val::Int(total),
            Val::Int(r.input),
            Val::Int(r.output),
            Val::Int(r.raw),
            Val::Int(r.markup),
            Val::Int(now),
            Val::Int(now),
            Val::Int(i64::from(user_requests == 1)),
        ];
        stmt::<2, ()>(UPSERT_CLIENT_DAY, &daily, true).execute(c)?;
        stmt::<4, ()>(UPSERT_MODEL_DAY, &model, true).execute(c)?;
        Ok(user_requests)
    }))
    .expect("floor record")
}

/// PostgreSQL: the same work as [`floor_record`] as ONE statement (`orgusage_db::statements::PgRecordOne`,
/// the library's own text), autocommit, on a dedicated connection: the floor of one round trip.
pub fn floor_one_statement(conn: RawRef<'_>, r: &Req, date: NaiveDate, now: i64) -> i64 {
    const PG_RECORD_ONE: &str = orgusage_db::statements::PgRecordOne::SQL;
    let total = r.input + r.output;
    let mut binds = vec![
        Val::Text(&r.client),
        Val::Int(1_300_000_000),
        Val::Text("Europe/Warsaw"),
    ];
    // No generation id: no ledger row (its eight binds, then the id for the check).
    binds.extend([
        Val::Text(&r.client),
        Val::OptText(None),
        Val::Date(date),
        Val::Int(now),
        Val::Int(r.raw),
        Val::Int(total),
        Val::Int(now),
        Val::Text(r.model),
        Val::OptText(None),
    ]);
    binds.extend([
        Val::Text(&r.client),
        Val::Date(date),
        Val::Text(&r.user),
        Val::Text(&r.or_user),
    ]);
    let sums = [
        Val::Int(total),
        Val::Int(r.input),
        Val::Int(r.output),
        Val::Int(r.raw),
        Val::Int(r.markup),
        Val::Int(now),
        Val::Int(now),
    ];
    binds.extend(sums);
    binds.push(Val::OptText(None));
    binds.extend([Val::Text(&r.client), Val::Date(date)]);
    binds.extend(sums);
    binds.extend([Val::Text(&r.client), Val::Date(date), Val::Text(r.model)]);
    binds.extend(&sums[..5]);
    binds.extend([Val::OptText(Some(r.provider)), Val::Int(now), Val::Int(now)]);
    // The user-month rollup: month start, OpenRouter user, the five amounts.
    binds.extend([
        Val::Date(chrono::Datelike::with_day(&date, 1).expect("day 1 exists")),
        Val::Text(&r.or_user),
    ]);
    binds.extend(&sums[..5]);
    let row: diesel::QueryResult<(i64, i64, i64)> = with_raw!(conn, |c| {
        stmt::<5, (BigInt, BigInt, BigInt)>(PG_RECORD_ONE, &binds, true).get_result(c)
    });
    let matched = row.expect("one-statement floor").0;
    assert_eq!(
        matched, 1,
        "bench clients are active, markup 1.3, Europe/Warsaw"
    );
    matched
}
