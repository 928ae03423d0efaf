//! Shared set-up of the importer tests: an original database and an empty target, on SQLite
//! (always) and PostgreSQL (when reachable; each in a fresh schema, dropped afterwards).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use orgusage_import::fixture;

/// Source and target URLs, and whatever keeps them alive.
pub struct Env {
    /// The original database.
    pub source: String,
    /// The (empty) target.
    pub target: String,
    /// A second empty target (for comparisons).
    pub target2: String,
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
    schemas: Vec<String>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for s in &self.schemas {
            let sql = format!("DROP SCHEMA IF EXISTS {s} CASCADE");
            if let Err(e) =
                orgusage_db::admin::pg_batch_execute(&orgusage_testkit::postgres_url(), &sql)
            {
                eprintln!("warning: could not drop {s}: {e}");
            }
        }
    }
}

pub fn sqlite() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    Env {
        source: p("webui.db"),
        target: p("orgusage.db"),
        target2: p("orgusage2.db"),
        backend: "sqlite",
        _dir: Some(dir),
        schemas: Vec::new(),
    }
}

fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Three fresh schemas (source, target, target2), or `None` when PostgreSQL is unreachable.
pub fn postgres() -> Option<Env> {
    if !orgusage_testkit::postgres_available() {
        return None;
    }
    let base = orgusage_testkit::postgres_url();
    let id = unique();
    let schemas: Vec<String> = ["src", "tgt", "tg2"]
        .iter()
        .map(|p| format!("imp_{p}_{id}"))
        .collect();
    for s in &schemas {
        orgusage_db::admin::pg_batch_execute(&base, &format!("CREATE SCHEMA {s}")).unwrap();
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = |s: &str| format!("{base}{sep}options=-c%20search_path%3D{s}");
    Some(Env {
        source: url(&schemas[0]),
        target: url(&schemas[1]),
        target2: url(&schemas[2]),
        backend: "postgres",
        _dir: None,
        schemas,
    })
}

impl Env {
    /// The scenario fixture in the source.
    pub fn scenario(self) -> Self {
        fixture::create(&self.source, &fixture::Shape::default()).unwrap();
        fixture::seed_scenario(&self.source).unwrap();
        self
    }
}

/// Runs `$body` with an `Env` on SQLite and, when reachable, on PostgreSQL.
#[macro_export]
macro_rules! import_tests {
    ($( fn $name:ident($env:ident) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[allow(clippy::unwrap_used, clippy::expect_used)]
                fn run($env: import_common::Env) $body
                #[test]
                fn sqlite() { run(import_common::sqlite()); }
                #[test]
                fn postgres() { if let Some(e) = import_common::postgres() { run(e); } }
            }
        )*
    };
}
