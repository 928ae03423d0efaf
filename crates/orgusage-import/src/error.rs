//! The importer's typed errors. Nothing is swallowed: every failure ends the run with one of
//! these, and whatever batches committed before it stay committed and are skipped by a re-run.

/// Everything that can stop an import.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// An orgusage error on the target (connection, migration, a rejected value, a conflict).
    #[error(transparent)]
    Orgusage(#[from] orgusage_domain::Error),
    /// The source database could not be opened.
    #[error("could not open the source database: {0}")]
    SourceConnection(#[from] diesel::ConnectionError),
    /// A query on the source (or the in-place rename) failed.
    #[error("source database query failed ({context}): {source}")]
    Source {
        /// What was being read.
        context: String,
        /// The driver error.
        #[source]
        source: diesel::result::Error,
    },
    /// The source does not look like an original mAI database.
    #[error("the source holds no original mAI tables ({0})")]
    NotOriginal(String),
    /// The target already holds orgusage data that no import of this tool wrote.
    #[error(
        "the target already holds orgusage data ({0}) and no import state; import into an empty database"
    )]
    TargetNotEmpty(String),
    /// A re-run used other options than the run that started this target.
    #[error(
        "this target was started with other import options ({stored}); re-run with the same \
         options or use a fresh target (now: {now})"
    )]
    OptionsChanged {
        /// The options recorded in the target.
        stored: String,
        /// The options of this run.
        now: String,
    },
    /// A source value that cannot be imported as is (e.g. a NaN cost, an unparsable date).
    #[error("invalid value in the source: {table}.{column} of row {row:?}: {reason}")]
    InvalidValue {
        /// Source table.
        table: &'static str,
        /// Source column.
        column: &'static str,
        /// The row's id.
        row: String,
        /// Why it cannot be imported.
        reason: String,
    },
    /// The combination of URLs, features or modes is not supported.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl ImportError {
    pub(crate) fn source(context: impl Into<String>) -> impl FnOnce(diesel::result::Error) -> Self {
        let context = context.into();
        move |source| Self::Source { context, source }
    }
}

/// Result alias of the importer.
pub type Result<T, E = ImportError> = std::result::Result<T, E>;
