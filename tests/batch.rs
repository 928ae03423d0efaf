//! The batch path (`record_usage_batch`, `record_generations`, `ingest_generations`) on SQLite and
//! PostgreSQL: the same totals as one-by-one recording, per-item errors, exactly once, the monthly
//! limit flagged by one record, the overflow guard, chunks, and concurrent batches of two stores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};

use orgusage::usage::BATCH_CHUNK;
use orgusage::{ClientOrganizationForm, Error, GenerationOutcome, Store, UsageRecord};
use orgusage_testkit::backend_tests;
use orgusage_testkit::{client, date};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const MODELS: [&str; 3] = [
    "anthropic/claude-sonnet-4",
    "openai/gpt-4.1",
    "google/gemini-2.5-pro",
];

/// A deterministic spread of records: users, models, two days, odd costs (markup 1.3 rounds).
/// A client with a monthly limit.
fn limited(store: &Store, name: &str, limit: Decimal) -> String {
    let form = ClientOrganizationForm {
        monthly_limit: Some(limit),
        ..ClientOrganizationForm::new(name)
    };
    orgusage_testkit::client_with(store, form)
}

fn records(c: &str, n: usize) -> Vec<UsageRecord> {
    (0..n)
        .map(|i| {
            let mut r = UsageRecord::new(
                c,
                format!("u{}", i % 7),
                format!("or-u{}", i % 7),
                MODELS[i % 3],
            )
            .on(date(2025, 7, 24 + (i % 2) as u32))
            .tokens(100 + i as i64, 7 * i as i64)
            .raw_cost(Decimal::new(1_234_567 + 1_000 * i as i64, 9));
            if i % 5 == 0 {
                r = r.provider("prov");
            }
            r
        })
        .collect()
}

/// Every stored figure of a client over July 2025, with the client id blanked out.
fn snapshot(store: &Store, c: &str) -> String {
    let (from, to) = (date(2025, 7, 1), date(2025, 7, 31));
    let u = store.usage();
    let mut days = u.get_daily_usage(c, from, to).unwrap();
    for d in &mut days {
        d.created_at = 0;
        d.updated_at = 0;
        d.client_org_id.clear();
    }
    let users = u.get_usage_by_user(c, Some(from), Some(to)).unwrap();
    let models = u.get_usage_by_model(c, Some(from), Some(to)).unwrap();
    format!("{days:?}\n{users:?}\n{models:?}")
}

backend_tests! {
    fn batch_writes_the_same_totals_as_one_by_one(t) {
        let (a, b) = (client(&t.store, "a"), client(&t.store, "b"));
        // Some rows exist before the batch: unique_users must count only new users.
        for r in &records(&a, 3) { t.store.usage().record_usage(r).unwrap(); }
        for r in &records(&b, 3) { t.store.usage().record_usage(r).unwrap(); }
        let one: Vec<_> = records(&a, 40).into_iter().map(|r| t.store.usage().record_usage(&r).unwrap()).collect();
        let many: Vec<_> = t.store.usage().record_usage_batch(&records(&b, 40)).into_iter().map(Result::unwrap).collect();
        assert_eq!(one, many);
        assert_eq!(snapshot(&t.store, &a), snapshot(&t.store, &b));
        let day = t.store.usage().get_daily_usage(&b, date(2025, 7, 24), date(2025, 7, 24)).unwrap();
        assert_eq!(day[0].unique_users, 7);
        let v = t.store.usage().validate_no_double_counting(&b, date(2025, 7, 25)).unwrap();
        assert!(v.valid, "{v:?}");
    }

    fn more_than_one_chunk_is_exact(t) {
        let (a, b) = (client(&t.store, "a"), client(&t.store, "b"));
        let n = BATCH_CHUNK * 2 + 17;
        for r in &records(&a, n) { t.store.usage().record_usage(r).unwrap(); }
        let done = t.store.usage().record_usage_batch(&records(&b, n));
        assert_eq!(done.len(), n);
        assert!(done.iter().all(Result::is_ok));
        assert_eq!(snapshot(&t.store, &a), snapshot(&t.store, &b));
    }

    fn invalid_items_fail_alone(t) {
        let c = client(&t.store, "c");
        let gone = client(&t.store, "gone");
        t.store.clients().deactivate_client(&gone).unwrap();
        let ok = records(&c, 2);
        let batch = vec![
            ok[0].clone(),
            ok[1].clone().tokens(-1, 0),
            UsageRecord::new("no-such-client", "u", "o", MODELS[0]),
            UsageRecord::new(&gone, "u", "o", MODELS[0]).raw_cost(dec!(1)),
            UsageRecord::new(&c, "", "o", MODELS[0]),
            UsageRecord::new(&c, "u", "o", MODELS[0]).on(date(1900, 1, 1)),
            ok[1].clone(),
        ];
        let done = t.store.usage().record_usage_batch(&batch);
        assert!(done[0].is_ok() && done[6].is_ok());
        assert!(matches!(done[1], Err(Error::InvalidInput { .. })), "{:?}", done[1]);
        assert!(matches!(done[2], Err(Error::NotFound { .. })), "{:?}", done[2]);
        assert!(matches!(done[3], Err(Error::NotFound { .. })), "{:?}", done[3]);
        assert!(matches!(done[4], Err(Error::InvalidInput { .. })), "{:?}", done[4]);
        assert!(matches!(done[5], Err(Error::InvalidInput { .. })), "{:?}", done[5]);
        let days = t.store.usage().get_daily_usage(&c, date(2025, 7, 1), date(2025, 7, 31)).unwrap();
        assert_eq!(days.iter().map(|d| d.total_requests).sum::<i64>(), 2);
        assert_eq!(t.store.usage().get_daily_usage(&gone, date(1900, 1, 1), date(2100, 1, 1)).unwrap().len(), 0);
    }

    fn generations_are_billed_once(t) {
        let c = client(&t.store, "g");
        let recs = records(&c, 6);
        assert!(t.store.usage().record_generation("old", &recs[0]).unwrap().is_recorded());
        let items: Vec<(String, UsageRecord)> = vec![
            ("old".into(), recs[1].clone()),            // already in the ledger
            ("g1".into(), recs[2].clone()),
            ("g1".into(), recs[3].clone()),             // repeated in the batch
            ("g2".into(), recs[4].clone().tokens(-5, 0)), // invalid: its id stays free
            ("g2".into(), recs[4].clone()),             // ... so this one is billed
            ("".into(), recs[5].clone()),               // invalid id
            ("g3".into(), UsageRecord::new("nobody", "u", "o", MODELS[0])),
        ];
        let done = t.store.usage().record_generations(&items);
        assert_eq!(done[0].as_ref().unwrap(), &GenerationOutcome::Duplicate);
        assert!(done[1].as_ref().unwrap().is_recorded());
        assert_eq!(done[2].as_ref().unwrap(), &GenerationOutcome::Duplicate);
        assert!(matches!(done[3], Err(Error::InvalidInput { .. })));
        assert!(done[4].as_ref().unwrap().is_recorded());
        assert!(matches!(done[5], Err(Error::InvalidInput { .. })));
        assert!(matches!(done[6], Err(Error::NotFound { .. })));
        let stats = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap();
        assert_eq!(stats.total_processed, 3);
        let expected: Decimal = [&recs[0], &recs[2], &recs[4]].iter().map(|r| r.raw_cost).sum();
        assert_eq!(stats.total_cost, expected);
        let days = t.store.usage().get_daily_usage(&c, date(2025, 7, 1), date(2025, 7, 31)).unwrap();
        assert_eq!(days.iter().map(|d| d.total_requests).sum::<i64>(), 3);
        assert_eq!(days.iter().map(|d| d.raw_cost).sum::<Decimal>(), expected);
        // The whole batch again: all duplicates or the same errors, nothing more billed.
        let again = t.store.usage().record_generations(&items);
        assert!(again[1].as_ref().unwrap() == &GenerationOutcome::Duplicate);
        assert!(again[4].as_ref().unwrap() == &GenerationOutcome::Duplicate);
        let stats = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap();
        assert_eq!(stats.total_processed, 3);
    }

    fn a_batch_crossing_the_limit_flags_one_record(t) {
        let c = limited(&t.store, "lim", dec!(1.00));
        let day = t.store.usage().get_monthly_limit_status(&c).unwrap().month_start;
        // 0.30 raw x 1.3 = 0.39 marked up: the third record reaches 1.17 >= 1.00.
        let rec = |u: &str| UsageRecord::new(&c, u, "o", MODELS[0]).on(day).raw_cost(dec!(0.30));
        let batch: Vec<_> = (0..6).map(|i| rec(&format!("u{i}"))).collect();
        let done: Vec<_> = t.store.usage().record_usage_batch(&batch).into_iter().map(Result::unwrap).collect();
        let flags: Vec<bool> = done.iter().map(|d| d.limit_crossed).collect();
        assert_eq!(flags, [false, false, true, false, false, false]);
        assert_eq!(done[1].monthly_limit.as_ref().unwrap().spent, dec!(0.78));
        assert!(!done[1].monthly_limit.as_ref().unwrap().exceeded);
        assert_eq!(done[5].monthly_limit.as_ref().unwrap().spent, dec!(2.34));
        let more = t.store.usage().record_usage_batch(&batch[..2]);
        assert!(more.iter().all(|d| !d.as_ref().unwrap().limit_crossed));
        assert_eq!(t.store.usage().get_monthly_limit_status(&c).unwrap().spent, dec!(3.12));
    }

    fn overflowing_day_fails_only_its_records(t) {
        let (a, b) = (client(&t.store, "big"), client(&t.store, "small"));
        let day = date(2025, 7, 24);
        let rec = |c: &str| UsageRecord::new(c, "u", "o", MODELS[0]).on(day).tokens(10, 10);
        t.store.usage().record_usage(&rec(&a)).unwrap();
        t.execute_sql(&format!(
            "UPDATE client_daily_usage SET total_tokens = 9223372036854775800 WHERE client_org_id = '{a}'"
        ));
        let done = t.store.usage().record_usage_batch(&[rec(&a), rec(&b), rec(&b)]);
        assert!(matches!(done[0], Err(Error::Overflow(_))), "{:?}", done[0]);
        assert!(done[1].is_ok() && done[2].is_ok());
        let rows = t.store.usage().get_daily_usage(&b, day, day).unwrap();
        assert_eq!((rows[0].total_requests, rows[0].unique_users), (2, 1));
        let rows = t.store.usage().get_daily_usage(&a, day, day).unwrap();
        assert_eq!(rows[0].total_requests, 1);
    }

    fn concurrent_batches_of_two_stores_bill_once(t) {
        let other = t.second_instance();
        let c = limited(&t.store, "conc", dec!(5));
        let day = t.store.usage().get_monthly_limit_status(&c).unwrap().month_start;
        // Both stores send the same 300 ids, in different orders, split in batches of 50.
        let items: Vec<(String, UsageRecord)> = (0..300)
            .map(|i| {
                let r = UsageRecord::new(&c, format!("u{}", i % 11), "o", MODELS[i % 3])
                    .on(day + chrono::Days::new((i % 3) as u64))
                    .tokens(3, 4)
                    .raw_cost(dec!(0.033333333));
                (format!("gen-{i}"), r)
            })
            .collect();
        let barrier = Arc::new(Barrier::new(4));
        let stores = [t.store.clone(), other.clone(), t.store.clone(), other];
        let handles: Vec<_> = stores
            .into_iter()
            .enumerate()
            .map(|(k, s)| {
                let mut mine = items.clone();
                if k % 2 == 1 { mine.reverse(); }
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut recorded = 0;
                    let mut crossed = 0;
                    for part in mine.chunks(50) {
                        for o in s.usage().record_generations(part) {
                            if let GenerationOutcome::Recorded(u) = o.unwrap() {
                                recorded += 1;
                                crossed += usize::from(u.limit_crossed);
                            }
                        }
                    }
                    (recorded, crossed)
                })
            })
            .collect();
        let (mut recorded, mut crossed) = (0, 0);
        for h in handles {
            let (r, x) = h.join().unwrap();
            recorded += r;
            crossed += x;
        }
        assert_eq!(recorded, 300);
        // 0.033333333 x 1.3 = 0.0433333329, rounded once to 0.043333333; x 300 >= 5: crossed once.
        assert_eq!(crossed, 1);
        let status = t.store.usage().get_monthly_limit_status(&c).unwrap();
        assert_eq!(status.spent, dec!(12.9999999));
        let days = t.store.usage().get_daily_usage(&c, day, day + chrono::Days::new(2)).unwrap();
        assert_eq!(days.iter().map(|d| d.total_requests).sum::<i64>(), 300);
        assert_eq!(days.iter().map(|d| d.unique_users).sum::<i64>(), 33);
        assert_eq!(days.iter().map(|d| d.raw_cost).sum::<Decimal>(), dec!(9.9999999));
    }
}

#[cfg(feature = "openrouter")]
backend_tests! {
    fn ingest_generations_matches_one_by_one(t) {
        use orgusage::ClientRef;
        use orgusage::openrouter::parse_generation_list;
        let json = std::fs::read_to_string("examples/data/openrouter_generations.json").unwrap();
        let gens = parse_generation_list(&json).unwrap();
        let (a, b) = (client(&t.store, "ia"), client(&t.store, "ib"));
        let one: Vec<_> = gens.iter().map(|g| t.store.ingest_generation(ClientRef::Id(&a), g).map_err(|e| e.to_string())).collect();
        let many: Vec<_> = t.store.ingest_generations(ClientRef::Id(&b), &gens).unwrap().into_iter().map(|r| r.map_err(|e| e.to_string())).collect();
        assert_eq!(one.len(), many.len());
        for (x, y) in one.iter().zip(&many) {
            assert_eq!(x.is_ok(), y.is_ok(), "{x:?} vs {y:?}");
        }
        let from = date(2000, 1, 1);
        let to = date(2100, 1, 1);
        let sa = t.store.generations().get_processed_generations_stats(&a, Some(from), Some(to)).unwrap();
        let sb = t.store.generations().get_processed_generations_stats(&b, Some(from), Some(to)).unwrap();
        assert_eq!((sa.total_processed, sa.total_cost, sa.total_tokens), (sb.total_processed, sb.total_cost, sb.total_tokens));
        assert!(matches!(t.store.ingest_generations(ClientRef::Id("nobody"), &gens), Err(Error::NotFound { .. })));
    }
}
