//! The final verification and report, recomputed from the source and the target on every run
//! (so a resumed import reports the same as an uninterrupted one). Read-only on both sides.

use std::collections::{BTreeMap, BTreeSet};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use orgusage_domain::money::units_to_decimal;

use crate::error::Result;
use crate::phases::{convert_client, merge_day, resolve_mappings};
use crate::report::*;
use crate::rows::{DAY_COLS, SrcDay, float_exact};
use crate::run::Run;
use crate::state;

#[derive(QueryableByName)]
struct SrcMonth {
    #[diesel(sql_type = Text)]
    c: String,
    #[diesel(sql_type = Text)]
    m: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    t: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    r: Option<i64>,
    #[diesel(sql_type = Nullable<Double>)]
    rc: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    mc: Option<f64>,
}

#[derive(QueryableByName)]
struct TgtMonth {
    #[diesel(sql_type = Text)]
    c: String,
    #[diesel(sql_type = Text)]
    m: String,
    #[diesel(sql_type = BigInt)]
    t: i64,
    #[diesel(sql_type = BigInt)]
    r: i64,
    #[diesel(sql_type = BigInt)]
    rc: i64,
    #[diesel(sql_type = BigInt)]
    mc: i64,
}

#[derive(QueryableByName)]
struct KeyCount {
    #[diesel(sql_type = Text)]
    c: String,
    #[diesel(sql_type = Text)]
    d: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Double>)]
    v: Option<f64>,
}

#[derive(QueryableByName)]
struct DayLevels {
    #[diesel(sql_type = Text)]
    c: String,
    #[diesel(sql_type = Text)]
    d: String,
    #[diesel(sql_type = BigInt)]
    t0: i64,
    #[diesel(sql_type = BigInt)]
    r0: i64,
    #[diesel(sql_type = BigInt)]
    rc0: i64,
    #[diesel(sql_type = BigInt)]
    mc0: i64,
    #[diesel(sql_type = BigInt)]
    t1: i64,
    #[diesel(sql_type = BigInt)]
    r1: i64,
    #[diesel(sql_type = BigInt)]
    rc1: i64,
    #[diesel(sql_type = BigInt)]
    mc1: i64,
    #[diesel(sql_type = BigInt)]
    t2: i64,
    #[diesel(sql_type = BigInt)]
    r2: i64,
    #[diesel(sql_type = BigInt)]
    rc2: i64,
    #[diesel(sql_type = BigInt)]
    mc2: i64,
}

fn units(t: i64, r: i64, rc: i64, mc: i64) -> Totals {
    Totals {
        tokens: t,
        requests: r,
        raw_cost: units_to_decimal(rc),
        markup_cost: units_to_decimal(mc),
    }
}

fn add(a: &mut Totals, b: &Totals, sign: i64) {
    a.tokens += sign * b.tokens;
    a.requests += sign * b.requests;
    a.raw_cost += rust_decimal::Decimal::from(sign) * b.raw_cost;
    a.markup_cost += rust_decimal::Decimal::from(sign) * b.markup_cost;
}

const TARGET_TABLES: [&str; 8] = [
    "global_settings",
    "client_organizations",
    "user_client_mapping",
    "client_daily_usage",
    "client_user_daily_usage",
    "client_model_daily_usage",
    "processed_generations",
    "processed_generation_cleanup_log",
];

fn month_sums(run: &Run<'_>, table: &str) -> Result<BTreeMap<(String, String), Totals>> {
    let sql = format!(
        "SELECT client_org_id AS c, substr(CAST(usage_date AS TEXT), 1, 7) AS m, \
         CAST(SUM(total_tokens) AS BIGINT) AS t, CAST(SUM(total_requests) AS BIGINT) AS r, \
         CAST(SUM(raw_cost) AS BIGINT) AS rc, CAST(SUM(markup_cost) AS BIGINT) AS mc \
         FROM {table} GROUP BY client_org_id, substr(CAST(usage_date AS TEXT), 1, 7)"
    );
    let rows: Vec<TgtMonth> = orgusage_db::bulk::query(&run.db, &sql, &[])?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.c, r.m), units(r.t, r.r, r.rc, r.mc)))
        .collect())
}

/// Builds the report. Every list is complete in its count and capped in its lines.
pub(crate) fn verify(run: &mut Run<'_>, counts: Vec<(String, u64)>) -> Result<ImportReport> {
    let _span = tracing::info_span!("orgusage.import.verify").entered();
    let limit = run.opts.report_limit;
    let shape = run.shape.clone();
    let mut rep = ImportReport {
        options: Some(run.opts.clone()),
        target_backend: run.db.backend().name().into(),
        ..ImportReport::default()
    };
    rep.source = SourceShape {
        backend: run.src.backend().name().into(),
        prefix: shape.prefix.clone(),
        has_timezone: shape.has_column("client_organizations", "timezone"),
        has_live_counters: shape.has("client_live_counters"),
        has_user_and_model_tables: shape.has("client_user_daily_usage")
            && shape.has("client_model_daily_usage"),
        has_ledger: shape.has("processed_generations"),
        has_cleanup_log: shape.has("processed_generation_cleanup_log"),
        rows: counts,
    };
    for t in TARGET_TABLES {
        let n = state::count(
            &run.db,
            &format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {t}"),
        )?;
        rep.target_rows.push((t.to_string(), n.max(0) as u64));
    }
    rep.provisioning_key_kept = state::count(
        &run.db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM global_settings \
         WHERE openrouter_provisioning_key IS NOT NULL",
    )? > 0;

    // Clients and mappings: the same decisions as the import made.
    let known = run.known_clients()?;
    if shape.has("client_organizations") {
        for c in run.source_clients()? {
            let (_, tz) = convert_client(&c, run.opts, run.now, &mut rep.client_fixes)?;
            rep.timezone_mappings.extend(tz);
        }
    }
    let maps = run.source_mappings()?;
    rep.mapping_conflicts = resolve_mappings(&maps, &|c| known.contains(c), run.now).1;

    // Rows of unknown clients.
    for t in [
        "user_client_mapping",
        "client_daily_usage",
        "client_user_daily_usage",
        "client_model_daily_usage",
        "client_live_counters",
        "processed_generations",
    ] {
        if !shape.has(t) {
            continue;
        }
        let sql = format!(
            "SELECT client_org_id AS c, '' AS d, CAST(COUNT(*) AS BIGINT) AS n, \
             CAST(NULL AS DOUBLE PRECISION) AS v FROM {} GROUP BY client_org_id",
            shape.table(t)
        );
        let rows: Vec<KeyCount> = run.src.load("orphans", &sql, &[])?;
        for r in rows.into_iter().filter(|r| !known.contains(&r.c)) {
            rep.orphans.push(Orphans {
                table: t.to_string(),
                client_org_id: r.c,
                rows: r.n.max(0) as u64,
            });
        }
    }

    // Source month sums (floats as stored, converted exactly), adjusted by the policies.
    let mut src_months: BTreeMap<(String, String), Totals> = BTreeMap::new();
    let mut adjustments: BTreeMap<(String, String), Totals> = BTreeMap::new();
    if shape.has("client_daily_usage") {
        let daily = shape.table("client_daily_usage");
        let sql = format!(
            "SELECT client_org_id AS c, substr(CAST(usage_date AS TEXT), 1, 7) AS m, \
             CAST(SUM(total_tokens) AS BIGINT) AS t, CAST(SUM(total_requests) AS BIGINT) AS r, \
             CAST(SUM(raw_cost) AS DOUBLE PRECISION) AS rc, \
             CAST(SUM(markup_cost) AS DOUBLE PRECISION) AS mc \
             FROM {daily} GROUP BY client_org_id, substr(CAST(usage_date AS TEXT), 1, 7)"
        );
        let rows: Vec<SrcMonth> = run.src.load("month sums", &sql, &[])?;
        for r in rows.into_iter().filter(|r| known.contains(&r.c)) {
            src_months.insert(
                (r.c, r.m),
                Totals {
                    tokens: r.t.unwrap_or(0),
                    requests: r.r.unwrap_or(0),
                    raw_cost: float_exact(r.rc.unwrap_or(0.0)),
                    markup_cost: float_exact(r.mc.unwrap_or(0.0)),
                },
            );
        }
        // Days stored twice (B6).
        let sql = format!(
            "SELECT client_org_id AS c, CAST(usage_date AS TEXT) AS d, CAST(COUNT(*) AS BIGINT) AS n, \
             CAST(NULL AS DOUBLE PRECISION) AS v FROM {daily} GROUP BY client_org_id, usage_date \
             HAVING COUNT(*) > 1 ORDER BY client_org_id, usage_date"
        );
        let dups: Vec<KeyCount> = run.src.load("duplicate days", &sql, &[])?;
        let group_sql = format!(
            "SELECT {} FROM {daily} WHERE client_org_id = ? AND usage_date = {} ORDER BY id",
            shape.select("client_daily_usage", DAY_COLS),
            run.date_param()
        );
        for k in dups.into_iter().filter(|k| known.contains(&k.c)) {
            let group: Vec<SrcDay> =
                run.src
                    .load("duplicate day", &group_sql, &[k.c.clone(), k.d.clone()])?;
            let merged = merge_day(&group, run.opts.duplicate_days)?;
            let month = k.d.get(..7).unwrap_or(&k.d).to_string();
            add(
                adjustments.entry((k.c.clone(), month)).or_default(),
                &merged.dropped,
                -1,
            );
            rep.duplicate_days_total += 1;
            if rep.duplicate_days.len() < limit {
                rep.duplicate_days.push(DuplicateDay {
                    client_org_id: k.c,
                    usage_date: k.d,
                    ids: group.iter().map(|g| g.id.clone()).collect(),
                    kept: merged.kept,
                    dropped: merged.dropped,
                });
            }
        }
    }
    for (line, row, u) in run.live_counter_plan()? {
        if let Some(row) = row {
            let month = row.usage_date.to_string()[..7].to_string();
            let mut exact = u.totals();
            exact.raw_cost -= u.rounding_raw;
            exact.markup_cost -= u.rounding_markup;
            add(
                adjustments
                    .entry((row.client_org_id.clone(), month))
                    .or_default(),
                &exact,
                1,
            );
        }
        rep.live_counters.push(line);
    }

    // Ledger days that hold marked-up cost (B22).
    if shape.has("processed_generations") {
        let sql = format!(
            "SELECT client_org_id AS c, CAST(generation_date AS TEXT) AS d, \
             CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(total_cost) AS DOUBLE PRECISION) AS v \
             FROM {} GROUP BY client_org_id, generation_date ORDER BY client_org_id, generation_date",
            shape.table("processed_generations")
        );
        let days: Vec<KeyCount> = run.src.load("ledger days", &sql, &[])?;
        for k in days.into_iter().filter(|k| known.contains(&k.c)) {
            let (marked, sc) = run.ledger_day(&k.c, &k.d)?;
            let Some((raw, markup)) = marked else {
                continue;
            };
            rep.ledger_marked_up_days_total += 1;
            let converted = run.opts.ledger_costs == crate::LedgerCostRule::CorrectMarkedUpDays;
            if converted {
                rep.ledger_rows_converted += sc.n.max(0) as u64;
            }
            if rep.ledger_marked_up_days.len() < limit {
                rep.ledger_marked_up_days.push(LedgerDay {
                    client_org_id: k.c,
                    generation_date: k.d,
                    rows: sc.n.max(0) as u64,
                    ledger_sum: float_exact(k.v.unwrap_or(0.0)),
                    day_raw_cost: units_to_decimal(raw),
                    day_markup_cost: units_to_decimal(markup),
                    action: if converted {
                        "converted_to_raw"
                    } else {
                        "kept_as_raw"
                    }
                    .into(),
                });
            }
        }
    }

    // The three levels of every imported day (Month-Total checks), exact; a cost difference of
    // at most one nano-USD per finer row is the per-row rounding, not an inconsistency.
    let mut bad_months = BTreeSet::new();
    let has_users = shape.has("client_user_daily_usage");
    let has_models = shape.has("client_model_daily_usage");
    if has_users || has_models {
        let mut conds = Vec::new();
        for (on, l) in [(has_users, 1), (has_models, 2)] {
            if on {
                conds.push(format!(
                    "t0 <> t{l} OR r0 <> r{l} OR ABS(rc0 - rc{l}) > n{l} OR ABS(mc0 - mc{l}) > n{l}"
                ));
            }
        }
        let lvl = |l: u8, col: &str| {
            format!("CAST(SUM(CASE WHEN l = {l} THEN {col} ELSE 0 END) AS BIGINT)")
        };
        let mut cols = Vec::new();
        for l in 0..3u8 {
            for (c, s) in [("t", "t"), ("r", "r"), ("rc", "rc"), ("mc", "mc")] {
                cols.push(format!("{} AS {c}{l}", lvl(l, s)));
            }
            cols.push(format!("{} AS n{l}", lvl(l, "1")));
        }
        let sql = format!(
            "SELECT c, d, t0, r0, rc0, mc0, t1, r1, rc1, mc1, t2, r2, rc2, mc2 FROM ( \
             SELECT client_org_id AS c, CAST(usage_date AS TEXT) AS d, {} FROM ( \
             SELECT 0 AS l, client_org_id, usage_date, total_tokens AS t, total_requests AS r, \
             raw_cost AS rc, markup_cost AS mc FROM client_daily_usage UNION ALL \
             SELECT 1, client_org_id, usage_date, total_tokens, total_requests, raw_cost, markup_cost \
             FROM client_user_daily_usage UNION ALL \
             SELECT 2, client_org_id, usage_date, total_tokens, total_requests, raw_cost, markup_cost \
             FROM client_model_daily_usage) x GROUP BY client_org_id, usage_date) s \
             WHERE {} ORDER BY c, d",
            cols.join(", "),
            conds.join(" OR ")
        );
        let days: Vec<DayLevels> = orgusage_db::bulk::query(&run.db, &sql, &[])?;
        for d in days {
            bad_months.insert((d.c.clone(), d.d.get(..7).unwrap_or(&d.d).to_string()));
            rep.inconsistent_days_total += 1;
            if rep.inconsistent_days.len() < limit {
                rep.inconsistent_days.push(InconsistentDay {
                    client: units(d.t0, d.r0, d.rc0, d.mc0),
                    users: units(d.t1, d.r1, d.rc1, d.mc1),
                    models: units(d.t2, d.r2, d.rc2, d.mc2),
                    client_org_id: d.c,
                    usage_date: d.d,
                });
            }
        }
    }

    // Per client and month.
    let imported = month_sums(run, "client_daily_usage")?;
    let keys: BTreeSet<_> = imported.keys().chain(src_months.keys()).cloned().collect();
    for key in keys {
        let source = src_months.get(&key).cloned().unwrap_or_default();
        let adj = adjustments.get(&key).cloned().unwrap_or_default();
        let got = imported.get(&key).cloned().unwrap_or_default();
        let mut expected = source.clone();
        add(&mut expected, &adj, 1);
        let (rr, rm) = run.rounding.get(&key).cloned().unwrap_or_default();
        rep.months.push(MonthVerification {
            levels_agree: !bad_months.contains(&key),
            client_org_id: key.0,
            month: key.1,
            difference: got.minus(&expected),
            source_as_stored: source,
            adjustments: adj,
            imported: got,
            rounding: Totals {
                raw_cost: rr,
                markup_cost: rm,
                ..Totals::default()
            },
        });
    }
    Ok(rep)
}
