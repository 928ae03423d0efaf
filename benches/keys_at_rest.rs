//! Keys at rest: what encryption costs on the paths that touch keys, on SQLite (file, WAL) and
//! PostgreSQL (when reachable). Two fresh databases per backend with 1,000 clients each, one
//! plaintext and one with a key ring; for each: `get_client_by_api_key` of an existing key
//! (`found`) and of an unknown key (`miss`), and `get_client_by_id`. `record_usage` and the
//! reports read no key and are not measured here.
//!
//! In criterion's test mode (`cargo test --benches`) and debug builds the databases are smaller.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use orgusage::db::KeyRing;
use orgusage::{ClientOrganizationForm, Secret, Store};
use orgusage_testkit::TestStore;

fn client_count() -> usize {
    if !cfg!(debug_assertions) && std::env::args().any(|a| a == "--bench") {
        1_000
    } else {
        20
    }
}

fn key(i: usize) -> String {
    format!("sk-or-v1-bench-{i:040}")
}

/// Seeds `n` clients through the library (so encrypted rows are real ones); returns their ids.
fn seed(store: &Store, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let form = ClientOrganizationForm::new(format!("Client {i}"));
            let client = store
                .clients()
                .create_client(&form, &Secret::new(key(i)), None);
            client.unwrap().id
        })
        .collect()
}

fn bench_mode(c: &mut Criterion, name: &str, store: &Store, n: usize) {
    let ids = seed(store, n);
    let mut i = 0usize;
    c.bench_function(&format!("{name}/get_client_by_api_key/found"), |b| {
        b.iter(|| {
            i = (i + 7) % n;
            let found = store.clients().get_client_by_api_key(&key(i)).unwrap();
            black_box(found.expect("seeded client"));
        })
    });
    c.bench_function(&format!("{name}/get_client_by_api_key/miss"), |b| {
        b.iter(|| {
            black_box(
                store
                    .clients()
                    .get_client_by_api_key("sk-or-v1-nobody")
                    .unwrap(),
            )
        })
    });
    c.bench_function(&format!("{name}/get_client_by_id"), |b| {
        b.iter(|| {
            i = (i + 7) % n;
            black_box(store.clients().get_client_by_id(&ids[i]).unwrap());
        })
    });
}

/// Opens a fresh test database of one backend, or `None` when it is not reachable.
type Opener = fn() -> Option<TestStore>;

/// The cryptography alone, without a database: what each read or write of a key adds.
fn primitives(c: &mut Criterion) {
    use orgusage_crypto::SecretField;
    let ring = KeyRing::new("bench", [42u8; 32]).unwrap();
    let field = SecretField::client_api_key("client_bench_1753350000_3f9a0c1d");
    let sealed = ring.encrypt(field, &key(1)).unwrap();
    c.bench_function("crypto/encrypt", |b| {
        b.iter(|| black_box(ring.encrypt(field, &key(1)).unwrap()))
    });
    c.bench_function("crypto/decrypt", |b| {
        b.iter(|| black_box(ring.decrypt(field, &sealed).unwrap()))
    });
    c.bench_function("crypto/lookup_hash", |b| {
        b.iter(|| black_box(ring.lookup_hash(&key(1))))
    });
}

fn keys_at_rest(c: &mut Criterion) {
    primitives(c);
    let n = client_count();
    let backends: [(&str, Opener); 2] = [
        ("sqlite", || Some(orgusage_testkit::sqlite())),
        ("postgres", orgusage_testkit::postgres),
    ];
    for (backend, open) in backends {
        let (Some(plain), Some(sealed)) = (open(), open()) else {
            continue;
        };
        bench_mode(c, &format!("{backend}/plaintext"), &plain.store, n);
        let ring = KeyRing::new("bench", [42u8; 32]).unwrap();
        let encrypted = sealed.open_with(|cfg| cfg.encryption(ring));
        bench_mode(c, &format!("{backend}/encrypted"), &encrypted, n);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = keys_at_rest
}
criterion_main!(benches);
