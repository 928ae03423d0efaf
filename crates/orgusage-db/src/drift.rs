//! No drift between `schema.rs` and the migrations: each backend is migrated from scratch and
//! its catalogue (`PRAGMA table_info`, `information_schema`) is compared with what the diesel
//! `table!` definitions declare: the tables, each column's name, SQL type and nullability, and
//! the primary key. `schema.rs` is written by hand, so this test is what keeps it true: an edit
//! to one side without the other fails here, with every difference listed.

use std::collections::{BTreeMap, BTreeSet};

use diesel::expression::Expression;
use diesel::query_builder::QueryFragment;
use diesel::query_dsl::methods::SelectDsl;
use diesel::sql_types::{BigInt, Bool, Date, Integer, Nullable, SingleValue, Text};
use diesel::{Column, QueryableByName, Table};

use crate::backends;
use crate::schema::*;
use crate::{Backend, Database, DbConfig};

/// A column as one side describes it: SQL type (in diesel's names) and nullability.
type Columns = BTreeMap<String, (String, bool)>;

/// A table as one side describes it: its columns and its primary key, in key order.
#[derive(Debug, PartialEq, Eq)]
struct TableShape {
    columns: Columns,
    primary_key: Vec<String>,
}

/// diesel's SQL types that schema.rs uses, by name, and whether they are `Nullable`.
trait SqlKind {
    const NAME: &'static str;
    const NULLABLE: bool = false;
}

impl SqlKind for BigInt {
    const NAME: &'static str = "BigInt";
}
impl SqlKind for Integer {
    const NAME: &'static str = "Integer";
}
impl SqlKind for Text {
    const NAME: &'static str = "Text";
}
impl SqlKind for Date {
    const NAME: &'static str = "Date";
}
impl SqlKind for Bool {
    const NAME: &'static str = "Bool";
}
impl<T: SqlKind + SingleValue> SqlKind for Nullable<T> {
    const NAME: &'static str = T::NAME;
    const NULLABLE: bool = true;
}

/// A tuple of columns (a table's `all_columns`), described in order.
trait DescribeColumns {
    fn describe() -> Vec<(String, (String, bool))>;
}

fn describe_column<C>() -> (String, (String, bool))
where
    C: Column,
    <C as Expression>::SqlType: SqlKind,
{
    let kind = (
        <C as Expression>::SqlType::NAME.to_string(),
        <C as Expression>::SqlType::NULLABLE,
    );
    (C::NAME.to_string(), kind)
}

/// Implements [`DescribeColumns`] for tuples of the arities schema.rs uses (test code only:
/// a tuple's elements cannot be iterated otherwise).
macro_rules! describe_tuples {
    ($(($($c:ident),+)),+ $(,)?) => {$(
        impl<$($c),+> DescribeColumns for ($($c,)+)
        where
            $($c: Column, <$c as Expression>::SqlType: SqlKind,)+
        {
            fn describe() -> Vec<(String, (String, bool))> {
                vec![$(describe_column::<$c>()),+]
            }
        }
    )+};
}

describe_tuples!(
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H),
    (A, B, C, D, E, F, G, H, I),
    (A, B, C, D, E, F, G, H, I, J),
    (A, B, C, D, E, F, G, H, I, J, K),
    (A, B, C, D, E, F, G, H, I, J, K, L),
    (A, B, C, D, E, F, G, H, I, J, K, L, M),
    (A, B, C, D, E, F, G, H, I, J, K, L, M, N),
    (A, B, C, D, E, F, G, H, I, J, K, L, M, N, O),
);

/// diesel quotes identifiers with backticks on SQLite, double quotes on PostgreSQL.
const QUOTES: [char; 2] = ['"', '`'];

/// What schema.rs declares for table `T`: its name and shape. The name and the primary key are
/// read from the SQL diesel renders for `SELECT <primary key> FROM <table>`.
fn declared<T>() -> (String, TableShape)
where
    T: Table + Default,
    T::AllColumns: DescribeColumns,
    T: SelectDsl<T::PrimaryKey>,
    <T as SelectDsl<T::PrimaryKey>>::Output: QueryFragment<backends::Sqlite>,
{
    let sql = diesel::debug_query::<backends::Sqlite, _>(&SelectDsl::select(
        T::default(),
        T::default().primary_key(),
    ))
    .to_string();
    let (select, from) = sql.split_once(" FROM ").expect("SELECT … FROM …");
    let name = from
        .split(QUOTES)
        .nth(1)
        .expect("a quoted table name")
        .to_string();
    let primary_key = select
        .split(", ")
        .map(|c| {
            c.rsplit(QUOTES)
                .nth(1)
                .expect("a quoted column")
                .to_string()
        })
        .collect();
    let columns = T::AllColumns::describe().into_iter().collect();
    (
        name,
        TableShape {
            columns,
            primary_key,
        },
    )
}

/// Every table of schema.rs. A table added there must be added here; a table the migrations
/// create that is missing here fails the test.
fn declared_tables() -> BTreeMap<String, TableShape> {
    [
        declared::<global_settings::table>(),
        declared::<client_organizations::table>(),
        declared::<user_client_mapping::table>(),
        declared::<client_daily_usage::table>(),
        declared::<client_user_daily_usage::table>(),
        declared::<client_model_daily_usage::table>(),
        declared::<client_user_monthly_usage::table>(),
        declared::<processed_generations::table>(),
        declared::<processed_generation_cleanup_log::table>(),
        declared::<daily_exchange_rates::table>(),
        declared::<spend_reservations::table>(),
    ]
    .into_iter()
    .collect()
}

/// One column of the migrated database's catalogue.
#[derive(Debug, QueryableByName)]
struct CatalogueColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = BigInt)]
    not_null: i64,
    /// Position in the primary key, 1-based; 0 when not part of it.
    #[diesel(sql_type = BigInt)]
    pk: i64,
}

const SQLITE_CATALOGUE: &str = "SELECT m.name AS table_name, p.name AS column_name, \
    upper(p.type) AS data_type, p.\"notnull\" AS not_null, p.pk AS pk \
    FROM sqlite_master m JOIN pragma_table_info(m.name) p \
    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'";

const POSTGRES_CATALOGUE: &str = "SELECT c.table_name::text AS table_name, \
    c.column_name::text AS column_name, upper(c.data_type::text) AS data_type, \
    CAST(CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END AS BIGINT) AS not_null, \
    CAST(COALESCE((SELECT k.ordinal_position FROM information_schema.table_constraints t \
      JOIN information_schema.key_column_usage k ON k.constraint_name = t.constraint_name \
      AND k.table_schema = t.table_schema AND k.table_name = t.table_name \
      WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema \
      AND t.table_name = c.table_name AND k.column_name = c.column_name), 0) AS BIGINT) AS pk \
    FROM information_schema.columns c JOIN information_schema.tables tb \
    ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name \
    WHERE c.table_schema = current_schema() AND tb.table_type = 'BASE TABLE' \
    AND c.table_name <> '__diesel_schema_migrations'";

/// The declared type each diesel SQL type must have in the migrations of `backend`.
fn diesel_type(backend: Backend, data_type: &str, rowid: bool) -> String {
    let name = match (backend, data_type) {
        // SQLite spells its rowid alias INTEGER PRIMARY KEY; it holds 64-bit integers.
        (Backend::Sqlite, "INTEGER") if rowid => "BigInt",
        (Backend::Sqlite, "INTEGER") | (Backend::Postgres, "INTEGER") => "Integer",
        (_, "BIGINT") => "BigInt",
        (_, "TEXT") => "Text",
        (_, "DATE") => "Date",
        (_, "BOOLEAN") => "Bool",
        (_, other) => return format!("unmapped {other}"),
    };
    name.to_string()
}

/// What the migrated database says, in the same terms as [`declared_tables`].
fn migrated_tables(db: &Database) -> BTreeMap<String, TableShape> {
    let backend = db.backend();
    let sql = match backend {
        Backend::Sqlite => SQLITE_CATALOGUE,
        Backend::Postgres => POSTGRES_CATALOGUE,
    };
    let rows: Vec<CatalogueColumn> = crate::bulk::query(db, sql, &[]).expect("catalogue");
    let mut keys: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut pk_columns: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        if r.pk > 0 {
            keys.entry(r.table_name.clone())
                .or_default()
                .push((r.pk, r.column_name.clone()));
            *pk_columns.entry(r.table_name.clone()).or_default() += 1;
        }
    }
    let mut tables: BTreeMap<String, TableShape> = BTreeMap::new();
    for r in rows {
        // SQLite's rowid alias (a single INTEGER PRIMARY KEY column) is never NULL, though
        // PRAGMA table_info reports it as nullable.
        let rowid = backend == Backend::Sqlite
            && r.pk == 1
            && pk_columns.get(&r.table_name) == Some(&1)
            && r.data_type == "INTEGER";
        let kind = diesel_type(backend, &r.data_type, rowid);
        let nullable = r.not_null == 0 && !rowid;
        let table = tables
            .entry(r.table_name.clone())
            .or_insert_with(|| TableShape {
                columns: Columns::new(),
                primary_key: Vec::new(),
            });
        table.columns.insert(r.column_name, (kind, nullable));
    }
    for (name, mut key) in keys {
        key.sort();
        if let Some(t) = tables.get_mut(&name) {
            t.primary_key = key.into_iter().map(|(_, c)| c).collect();
        }
    }
    tables
}

/// Every difference between schema.rs and the migrated database, one line each.
fn differences(
    declared: &BTreeMap<String, TableShape>,
    migrated: &BTreeMap<String, TableShape>,
) -> Vec<String> {
    let show = |(ty, nullable): &(String, bool)| {
        if *nullable {
            format!("Nullable<{ty}>")
        } else {
            ty.clone()
        }
    };
    let mut out = Vec::new();
    let names: BTreeSet<&String> = declared.keys().chain(migrated.keys()).collect();
    for name in names {
        let (d, m) = match (declared.get(name), migrated.get(name)) {
            (Some(d), Some(m)) => (d, m),
            (Some(_), None) => {
                out.push(format!(
                    "table {name}: in schema.rs, not created by the migrations"
                ));
                continue;
            }
            (None, Some(_)) => {
                out.push(format!(
                    "table {name}: created by the migrations, not in schema.rs"
                ));
                continue;
            }
            (None, None) => continue,
        };
        let columns: BTreeSet<&String> = d.columns.keys().chain(m.columns.keys()).collect();
        for c in columns {
            match (d.columns.get(c), m.columns.get(c)) {
                (Some(dc), Some(mc)) if dc != mc => out.push(format!(
                    "{name}.{c}: schema.rs declares {}, the migrations create {}",
                    show(dc),
                    show(mc)
                )),
                (Some(_), None) => out.push(format!(
                    "{name}.{c}: in schema.rs, not created by the migrations"
                )),
                (None, Some(mc)) => out.push(format!(
                    "{name}.{c}: created by the migrations ({}), not in schema.rs",
                    show(mc)
                )),
                _ => {}
            }
        }
        if d.primary_key != m.primary_key {
            out.push(format!(
                "{name}: schema.rs declares primary key {:?}, the migrations create {:?}",
                d.primary_key, m.primary_key
            ));
        }
    }
    out
}

fn assert_no_drift(db: &Database) {
    let diff = differences(&declared_tables(), &migrated_tables(db));
    assert!(
        diff.is_empty(),
        "schema.rs and the {} migrations differ (edit both, see docs/architecture.md, \
         \"How to add a column\"):\n  {}",
        db.backend().name(),
        diff.join("\n  ")
    );
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_migrations_create_what_schema_rs_declares() {
    let db = Database::connect(&DbConfig::new(":memory:")).expect("migrated SQLite");
    assert_no_drift(&db);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_migrations_create_what_schema_rs_declares() {
    // The server and conventions of orgusage-testkit (which this crate cannot depend on).
    let admin = std::env::var("ORGUSAGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let sep = if admin.contains('?') { '&' } else { '?' };
    if let Err(e) =
        crate::admin::pg_batch_execute(&format!("{admin}{sep}connect_timeout=3"), "SELECT 1")
    {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but PostgreSQL is not reachable at {admin}: {e}"
        );
        eprintln!("SKIP postgres: {e} (set ORGUSAGE_TEST_POSTGRES_URL)");
        return;
    }
    let schema = format!("drift_{}", uuid::Uuid::new_v4().simple());
    crate::admin::pg_batch_execute(&admin, &format!("CREATE SCHEMA {schema}")).expect("schema");
    let url = format!("{admin}{sep}options=-c%20search_path%3D{schema}");
    let result = std::panic::catch_unwind(|| {
        let db = Database::connect(&DbConfig::new(url)).expect("migrated PostgreSQL");
        assert_no_drift(&db);
    });
    crate::admin::pg_batch_execute(&admin, &format!("DROP SCHEMA {schema} CASCADE"))
        .expect("drop schema");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
