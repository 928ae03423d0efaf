//! Imports an original mAI database into orgusage, showing progress and the verification table.
//!
//! ```sh
//! # Generate an original database (the documented V3 schema, with every artefact the importer
//! # handles) and import it into a new SQLite file next to it:
//! cargo run --example import_mai -- --fixture /tmp/mai.db
//! # A real deployment: source, then target (default: <source>.orgusage.db for SQLite)
//! cargo run --example import_mai -- sqlite:///srv/webui.db postgres://billing@db/orgusage
//! cargo run --example import_mai -- sqlite:///srv/webui.db --dry-run     # writes nothing
//! cargo run --example import_mai -- sqlite:///srv/webui.db --in-place    # renames to mai_*
//! cargo run --example import_mai -- ... --json report.json               # the report as JSON
//! ```
//! Re-running the same command is safe: a finished import writes nothing, an interrupted one
//! (even `kill -9`) continues where it stopped.

use std::time::{Duration, Instant};

use orgusage_import::{DEFAULT_AUDIT_PREFIX, ImportOptions, Target, fixture, import};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let value = |f: &str| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let mut positional = Vec::new();
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
        } else if a == "--fixture" || a == "--json" || a == "--days" {
            skip = true;
        } else if !a.starts_with("--") {
            positional.push(a.clone());
        }
    }
    let source = if let Some(path) = value("--fixture") {
        if !std::path::Path::new(&path).exists() {
            let days: usize = value("--days").map_or(Ok(365), |d| d.parse())?;
            eprintln!("generating an original mAI database at {path} ({days} days of 20 clients)");
            fixture::create(&path, &fixture::Shape::default())?;
            fixture::seed_scenario(&path)?;
            fixture::seed_bulk(&path, 20, days, 5, 3)?;
        }
        path
    } else if let Some(s) = positional.first() {
        s.clone()
    } else {
        eprintln!(
            "usage: import_mai <source-url> [<target-url>] [--dry-run | --in-place] [--json FILE]\n       import_mai --fixture <new-sqlite-path> [--days N]"
        );
        std::process::exit(2);
    };
    let target = if flag("--dry-run") {
        Target::DryRun
    } else if flag("--in-place") {
        Target::InPlace {
            prefix: DEFAULT_AUDIT_PREFIX.into(),
        }
    } else {
        let url = positional
            .get(if value("--fixture").is_some() { 0 } else { 1 })
            .cloned();
        Target::Separate(url.unwrap_or_else(|| {
            let path = source
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            format!("{}.orgusage.db", path.trim_end_matches(".db"))
        }))
    };
    let into = match &target {
        Target::Separate(url) => url.clone(),
        Target::InPlace { prefix } => format!("the same database (originals kept as {prefix}*)"),
        Target::DryRun => "nowhere (dry run, report only)".to_string(),
    };
    eprintln!("importing {source} -> {into}");
    let mut last = Instant::now() - Duration::from_secs(1);
    let report = import(&source, &target, &ImportOptions::default(), &mut |p| {
        if last.elapsed() >= Duration::from_millis(500) || p.rows_done == p.rows_total {
            last = Instant::now();
            eprintln!(
                "  {:>7.1}s {:<13} {:>9} / {:<9} rows ({:>5.1}%), {:>8.0} rows/s",
                p.elapsed.as_secs_f64(),
                p.phase.name(),
                p.rows_done,
                p.rows_total,
                100.0 * p.rows_done as f64 / p.rows_total.max(1) as f64,
                p.rate()
            );
        }
    })?;
    println!("{report}");
    if let Some(path) = value("--json") {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("report written to {path}");
    }
    Ok(())
}
