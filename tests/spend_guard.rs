//! The spend guard (issue 11, step 1): `authorize` + settle + `release` + expiry, and the
//! concurrency guarantee with 16 threads across two stores on one database, on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier, Mutex};

use chrono::Duration;
use orgusage::spend::Authorization;
use orgusage::{ClientOrganizationForm, Decimal, Error, Store, UsageRecord};
use orgusage_testkit::backend_tests;
use rust_decimal_macros::dec;

fn limited(store: &Store, limit: Decimal, markup: Decimal) -> String {
    let form = ClientOrganizationForm {
        markup_rate: markup,
        monthly_limit: Some(limit),
        ..ClientOrganizationForm::new("Limited")
    };
    store
        .clients()
        .create_client(&form, &format!("sk-or-v1-{}", uuid_like()).into(), None)
        .unwrap()
        .id
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn spent(store: &Store, client: &str) -> Decimal {
    store
        .usage()
        .get_monthly_limit_status(client)
        .unwrap()
        .spent
}

/// What one racing thread saw.
#[derive(Default)]
struct Tally {
    granted: u32,
    refused: u32,
    /// Σ max(0, actual marked-up cost − reserved amount) over settled reservations.
    excess: Decimal,
}

/// 16 threads (8 per store) race `authorize` → record (or release) against a 10 USD limit.
/// `actual(i, j, estimate)` is the raw cost the request "really" had.
fn race(
    t: &orgusage_testkit::TestStore,
    actual: fn(usize, usize, Decimal) -> Option<Decimal>,
) -> (String, Tally) {
    const THREADS: usize = 16;
    const ATTEMPTS: usize = 25;
    let client = limited(&t.store, dec!(10), dec!(1.5));
    let second = t.second_instance();
    let barrier = Arc::new(Barrier::new(THREADS));
    let total = Arc::new(Mutex::new(Tally::default()));
    let joins: Vec<_> = (0..THREADS)
        .map(|i| {
            let store = if i % 2 == 0 {
                t.store.clone()
            } else {
                second.clone()
            };
            let (barrier, total, client) = (barrier.clone(), total.clone(), client.clone());
            std::thread::spawn(move || {
                let mut mine = Tally::default();
                barrier.wait();
                for j in 0..ATTEMPTS {
                    let estimate = dec!(0.1); // 0.15 marked up
                    match store.spend().authorize(&client, estimate).unwrap() {
                        Authorization::Reserved(r) => {
                            mine.granted += 1;
                            let Some(cost) = actual(i, j, estimate) else {
                                assert!(store.spend().release(&r.id).unwrap());
                                continue;
                            };
                            let rec = UsageRecord::new(&client, format!("u{i}"), "or", "m/x")
                                .raw_cost(cost)
                                .settles(&r.id);
                            let markup = if j % 2 == 0 {
                                store.usage().record_usage(&rec).unwrap().markup_cost
                            } else {
                                let done = store
                                    .usage()
                                    .record_generation(&format!("gen-{i}-{j}"), &rec)
                                    .unwrap();
                                match done {
                                    orgusage::GenerationOutcome::Recorded(r) => r.markup_cost,
                                    orgusage::GenerationOutcome::Duplicate => panic!("fresh id"),
                                }
                            };
                            mine.excess += (markup - r.amount).max(Decimal::ZERO);
                        }
                        Authorization::Refused(_) => mine.refused += 1,
                        Authorization::Unlimited => panic!("the client has a limit"),
                    }
                }
                let mut total = total.lock().unwrap();
                total.granted += mine.granted;
                total.refused += mine.refused;
                total.excess += mine.excess;
            })
        })
        .collect();
    for j in joins {
        j.join().expect("thread");
    }
    let tally = std::mem::take(&mut *total.lock().unwrap());
    (client, tally)
}

backend_tests! {
    fn sixteen_threads_two_stores_exact_estimates_never_pass_the_limit(t) {
        let (client, tally) = race(t, |_, _, estimate| Some(estimate));
        let spent = spent(&t.store, &client);
        assert!(spent <= dec!(10), "spent {spent}");
        assert_eq!(spent, Decimal::from(tally.granted) * dec!(0.15));
        assert!(tally.refused > 0, "the race must reach the limit");
        assert_eq!(tally.excess, Decimal::ZERO);
        assert!(t.store.spend().live_reservations(&client).unwrap().is_empty());
        // Nothing is held any more, so the rest of the budget is exactly what is left: 66 x 0.15.
        while let Authorization::Reserved(r) = t.store.spend().authorize(&client, dec!(0.1)).unwrap() {
            t.store.usage().record_usage(&UsageRecord::new(&client, "u", "or", "m/x").raw_cost(dec!(0.1)).settles(&r.id)).unwrap();
        }
        assert_eq!(spent_now(t, &client), dec!(9.9));
        eprintln!("[{}] exact: granted {} refused {} spent {} overshoot 0", t.backend(), tally.granted, tally.refused, spent);
    }

    fn sixteen_threads_two_stores_overshoot_is_bounded_by_underestimates(t) {
        // Every 3rd request costs 40 % more than estimated, every 3rd 50 % less, every 7th is
        // released unused.
        let (client, tally) = race(t, |i, j, estimate| match (i * 31 + j) % 21 {
            0 | 7 | 14 => None,
            k if k % 3 == 0 => Some(estimate * dec!(1.4)),
            k if k % 3 == 1 => Some(estimate / dec!(2)),
            _ => Some(estimate),
        });
        let spent = spent(&t.store, &client);
        let overshoot = (spent - dec!(10)).max(Decimal::ZERO);
        assert!(overshoot <= tally.excess, "overshoot {overshoot} > excess {}", tally.excess);
        assert!(tally.refused > 0);
        assert!(t.store.spend().live_reservations(&client).unwrap().is_empty());
        eprintln!(
            "[{}] underestimates: granted {} refused {} spent {} overshoot {} (bound {})",
            t.backend(), tally.granted, tally.refused, spent, overshoot, tally.excess
        );
    }

    fn sixteen_threads_two_stores_every_estimate_40_percent_low(t) {
        // The worst case for the guard: each settled request adds 0.06 USD nobody reserved.
        let (client, tally) = race(t, |_, _, estimate| Some(estimate * dec!(1.4)));
        let spent = spent(&t.store, &client);
        let overshoot = (spent - dec!(10)).max(Decimal::ZERO);
        assert!(overshoot <= tally.excess, "overshoot {overshoot} > excess {}", tally.excess);
        // Once spent passes the limit nothing more is authorized, so the overshoot is at most
        // the excess of the (at most 16) requests then in flight.
        assert!(overshoot <= Decimal::from(16) * dec!(0.06), "overshoot {overshoot}");
        eprintln!(
            "[{}] all 40% low: granted {} refused {} spent {} overshoot {} (bound {})",
            t.backend(), tally.granted, tally.refused, spent, overshoot, tally.excess
        );
    }

    fn unlimited_clients_are_not_guarded(t) {
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("Free"), &"sk-or-v1-free".into(), None).unwrap();
        assert_eq!(t.store.spend().authorize(&c.id, dec!(1000)).unwrap(), Authorization::Unlimited);
        assert!(t.store.spend().live_reservations(&c.id).unwrap().is_empty());
        assert!(matches!(t.store.spend().authorize("nope", dec!(1)), Err(Error::NotFound { .. })));
        assert!(matches!(t.store.spend().authorize(&c.id, dec!(-1)), Err(Error::InvalidInput { .. })));
        t.store.clients().deactivate_client(&c.id).unwrap();
        assert!(matches!(t.store.spend().authorize(&c.id, dec!(1)), Err(Error::NotFound { .. })));
    }

    fn refusal_release_and_expiry(t) {
        let client = limited(&t.store, dec!(1), dec!(2));
        let first = match t.store.spend().authorize_for(&client, dec!(0.3), Duration::minutes(5)).unwrap() {
            Authorization::Reserved(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(first.amount, dec!(0.6));
        assert_eq!(first.month_start, chrono::NaiveDate::from_ymd_opt(2025, 7, 1).unwrap());
        let refusal = match t.store.spend().authorize(&client, dec!(0.25)).unwrap() {
            Authorization::Refused(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!((refusal.monthly_limit, refusal.spent, refusal.reserved, refusal.requested), (dec!(1), dec!(0), dec!(0.6), dec!(0.5)));
        assert_eq!(refusal.available(), dec!(0.4));
        // Release frees the budget at once; a second release is a no-op.
        assert!(t.store.spend().release(&first.id).unwrap());
        assert!(!t.store.spend().release(&first.id).unwrap());
        let second = t.store.spend().authorize_for(&client, dec!(0.5), Duration::minutes(5)).unwrap();
        assert!(second.is_allowed());
        assert!(!t.store.spend().authorize(&client, dec!(0.01)).unwrap().is_allowed());
        // A crashed host never settles: after the TTL the budget is free again.
        t.clock.advance(Duration::minutes(5));
        assert!(t.store.spend().authorize(&client, dec!(0.01)).unwrap().is_allowed());
        assert_eq!(t.store.spend().purge_expired_reservations().unwrap(), 1);
        // Settling an expired (purged) reservation still books the cost.
        let rec = UsageRecord::new(&client, "u", "or", "m/x").raw_cost(dec!(0.5)).settles(second.reservation_id().unwrap());
        assert_eq!(t.store.usage().record_usage(&rec).unwrap().markup_cost, dec!(1));
        assert!(matches!(t.store.spend().authorize_for(&client, dec!(0), Duration::zero()), Err(Error::InvalidInput { .. })));
    }

    fn a_duplicate_generation_frees_its_reservation(t) {
        let client = limited(&t.store, dec!(1), dec!(1));
        let rec = UsageRecord::new(&client, "u", "or", "m/x").raw_cost(dec!(0.2));
        assert!(t.store.usage().record_generation("gen-1", &rec).unwrap().is_recorded());
        let r = t.store.spend().authorize(&client, dec!(0.5)).unwrap();
        let replay = rec.clone().settles(r.reservation_id().unwrap());
        assert_eq!(t.store.usage().record_generation("gen-1", &replay).unwrap(), orgusage::GenerationOutcome::Duplicate);
        assert!(t.store.spend().live_reservations(&client).unwrap().is_empty());
        assert_eq!(spent_now(t, &client), dec!(0.2));
    }
}

fn spent_now(t: &orgusage_testkit::TestStore, client: &str) -> Decimal {
    spent(&t.store, client)
}

backend_tests! {
    fn ingestion_settles_its_reservation(t) {
        use orgusage::ClientRef;
        use orgusage::openrouter::Generation;
        let client = limited(&t.store, dec!(1), dec!(1));
        let g = Generation::from_json(
            r#"{"id":"gen-9","model":"openai/gpt-4.1","provider_name":"OpenAI","created_at":"2025-07-24T09:00:00Z",
                "tokens_prompt":10,"tokens_completion":5,"total_cost":0.25}"#,
        )
        .unwrap();
        let r = t.store.spend().authorize(&client, dec!(0.3)).unwrap();
        let id = r.reservation_id().unwrap();
        assert!(t.store.ingest_generation_settling(ClientRef::Id(&client), &g, id).unwrap().is_recorded());
        assert!(t.store.spend().live_reservations(&client).unwrap().is_empty());
        assert_eq!(spent_now(t, &client), dec!(0.25));
    }
}

backend_tests! {
    fn the_month_is_the_client_local_month(t) {
        use chrono::TimeZone;
        let client = limited(&t.store, dec!(1), dec!(1));
        // July spend does not count against August.
        t.store.usage().record_usage(&UsageRecord::new(&client, "u", "or", "m/x").raw_cost(dec!(0.9))).unwrap();
        // 22:30 UTC on 31 July is 00:30 on 1 August in Warsaw.
        t.clock.set(chrono::Utc.with_ymd_and_hms(2025, 7, 31, 22, 30, 0).unwrap());
        let Authorization::Reserved(r) = t.store.spend().authorize(&client, dec!(0.8)).unwrap() else {
            panic!("August is empty")
        };
        assert_eq!(r.month_start, chrono::NaiveDate::from_ymd_opt(2025, 8, 1).unwrap());
        // 21:30 UTC is still July there: 0.9 spent, 0.2 does not fit.
        t.clock.set(chrono::Utc.with_ymd_and_hms(2025, 7, 31, 21, 30, 0).unwrap());
        match t.store.spend().authorize(&client, dec!(0.2)).unwrap() {
            Authorization::Refused(refusal) => {
                assert_eq!(refusal.month_start, chrono::NaiveDate::from_ymd_opt(2025, 7, 1).unwrap());
                assert_eq!((refusal.spent, refusal.reserved), (dec!(0.9), dec!(0)));
            }
            other => panic!("{other:?}"),
        }
    }

    fn a_client_whose_limit_was_removed_still_settles(t) {
        let client = limited(&t.store, dec!(1), dec!(1));
        let r = t.store.spend().authorize(&client, dec!(0.5)).unwrap();
        let update = orgusage::ClientOrganizationUpdate { monthly_limit: Some(None), ..Default::default() };
        t.store.clients().update_client(&client, &update).unwrap();
        let rec = UsageRecord::new(&client, "u", "or", "m/x").raw_cost(dec!(0.4)).settles(r.reservation_id().unwrap());
        assert!(t.store.usage().record_generation("gen-x", &rec).unwrap().is_recorded());
        assert!(t.store.spend().live_reservations(&client).unwrap().is_empty());
        assert_eq!(t.store.spend().authorize(&client, dec!(5)).unwrap(), Authorization::Unlimited);
    }
}

backend_tests! {
    fn settling_authorizing_and_purging_expired_reservations_at_once(t) {
        // The deadlock a naive guard has: a record holds its (expired) reservation row and waits
        // for the month lock while an authorization holds the lock and deletes expired rows.
        let client = limited(&t.store, dec!(100), dec!(1));
        let held: Vec<String> = (0..24)
            .map(|_| {
                let a = t.store.spend().authorize_for(&client, dec!(0.5), Duration::seconds(1)).unwrap();
                a.reservation_id().unwrap().to_string()
            })
            .collect();
        t.clock.advance(Duration::seconds(2));
        let second = t.second_instance();
        let barrier = Arc::new(Barrier::new(12));
        let held = Arc::new(held);
        let joins: Vec<_> = (0..12)
            .map(|i| {
                let store = if i % 2 == 0 { t.store.clone() } else { second.clone() };
                let (barrier, held, client) = (barrier.clone(), held.clone(), client.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for j in 0..6 {
                        match i % 3 {
                            0 | 1 => {
                                let id = &held[(i / 3 * 2 + i % 3) * 6 % 24 + j % 6];
                                let rec = UsageRecord::new(&client, "u", "or", "m/x").raw_cost(dec!(0.5)).settles(id.clone());
                                store.usage().record_usage(&rec).unwrap();
                            }
                            _ => {
                                store.spend().purge_expired_reservations().unwrap();
                                assert!(store.spend().authorize(&client, dec!(0.1)).unwrap().is_allowed());
                            }
                        }
                    }
                })
            })
            .collect();
        for j in joins {
            j.join().expect("no deadlock, no error");
        }
        t.store.spend().purge_expired_reservations().unwrap();
        // 8 settling threads x 6 records of 0.5; 4 authorizing threads x 6 live holds of 0.1.
        assert_eq!(spent(&t.store, &client), dec!(24));
        assert_eq!(t.store.spend().live_reservations(&client).unwrap().len(), 24);
    }
}
