//! Several OS processes writing the same database: the test binary re-runs itself as child
//! processes (the `child_process` test acts only when `ORGUSAGE_CHILD` is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use orgusage::{ClientOrganizationForm, Store, StoreConfig, UsageRecord};
use orgusage_testkit::start_day as day;
use orgusage_testkit::{backend_tests, child_test};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const PROCESSES: usize = 4;
const PER_PROCESS: usize = 500;
const GENERATIONS: usize = 1000;

/// The body of a child process: `ORGUSAGE_CHILD=usage;<url>;<client>;<index>`.
#[test]
fn child_process() {
    let Ok(spec) = std::env::var("ORGUSAGE_CHILD") else {
        return;
    };
    let parts: Vec<&str> = spec.splitn(4, ';').collect();
    let (mode, url, client, index) = (parts[0], parts[1], parts[2], parts[3]);
    // Set by the parent when `url` goes through PgBouncer (transaction mode).
    let bouncer = std::env::var("ORGUSAGE_CHILD_PGBOUNCER").is_ok_and(|v| v == "1");
    let store = Store::open(StoreConfig::new(url).max_connections(2).pgbouncer(bouncer)).unwrap();
    if mode == "generations" {
        // The same 1,000 generation ids in a process-specific order.
        let mut ids: Vec<usize> = (0..GENERATIONS).collect();
        let seed: usize = index.parse().unwrap();
        ids.rotate_left(seed * 251 % GENERATIONS);
        if seed % 2 == 1 {
            ids.reverse();
        }
        for n in ids {
            let rec = UsageRecord::new(client, "u1", "or-u1", "openai/gpt-4.1")
                .on(day())
                .tokens(10, 5)
                .raw_cost(dec!(0.0015));
            store
                .usage()
                .record_generation(&format!("gen-{n}"), &rec)
                .unwrap();
        }
        return;
    }
    assert_eq!(mode, "usage");
    for i in 0..PER_PROCESS {
        // Every process writes the same hot rows and a user of its own.
        let user = if i % 2 == 0 {
            "shared".to_string()
        } else {
            format!("p{index}")
        };
        let rec = UsageRecord::new(
            client,
            &user,
            format!("or-{user}"),
            "anthropic/claude-sonnet-4",
        )
        .on(day())
        .tokens(2, 1)
        .raw_cost(dec!(0.000000777));
        store.usage().record_usage(&rec).unwrap();
    }
}

fn spawn_children(t: &orgusage_testkit::TestStore, spec: impl Fn(usize) -> String) {
    let bouncer = if t.backend() == "pgbouncer" { "1" } else { "0" };
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            child_test("child_process")
                .env("ORGUSAGE_CHILD", spec(i))
                .env("ORGUSAGE_CHILD_PGBOUNCER", bouncer)
                // The children's own harness summary would confuse the parent's test report.
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child process failed");
    }
}

// Also through PgBouncer in transaction mode (`::pgbouncer`), when the suite has one.
backend_tests! { pgbouncer;
    fn four_processes_record_usage_exactly(t) {
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("mp"), &"sk-or-v1-mp-0001".into(), None).unwrap().id;
        spawn_children(t, |i| format!("usage;{};{c};{i}", t.url));
        let n = (PROCESSES * PER_PROCESS) as i64;
        let d = t.store.usage().get_daily_usage(&c, day(), day()).unwrap().pop().unwrap();
        assert_eq!((d.total_tokens, d.total_requests), (3 * n, n));
        assert_eq!(d.raw_cost, dec!(0.000000777) * Decimal::from(n));
        assert_eq!(d.unique_users, 1 + PROCESSES as i64);
        let users = t.store.usage().get_usage_by_user(&c, Some(day()), Some(day())).unwrap();
        assert_eq!(users.iter().map(|u| u.total_requests).sum::<i64>(), n);
        let shared = users.iter().find(|u| u.user_id == "shared").unwrap();
        assert_eq!(shared.total_requests, n / 2);
        assert_eq!(t.store.usage().create_month_total_health_check(&c).unwrap().overall_status, "healthy");
        // The month rollups the four processes' writes maintained equal their days.
        assert!(t.store.usage().validate_month_rollups(&c, day(), day()).unwrap().is_empty());
    }

    fn four_processes_same_generation_ids_bill_once(t) {
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("mpg"), &"sk-or-v1-mpg-0001".into(), None).unwrap().id;
        spawn_children(t, |i| format!("generations;{};{c};{i}", t.url));
        let n = GENERATIONS as i64;
        let stats = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap();
        assert_eq!(stats.total_processed, n);
        let d = t.store.usage().get_daily_usage(&c, day(), day()).unwrap().pop().unwrap();
        assert_eq!((d.total_tokens, d.total_requests, d.raw_cost), (15 * n, n, dec!(1.5)));
        assert!(t.store.usage().validate_month_rollups(&c, day(), day()).unwrap().is_empty());
    }
}
