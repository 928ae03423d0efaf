//! A minimal `tracing` subscriber that records every span and event as a line of text, so a
//! test can assert what a client logged (and that it never logged a secret).
//!
//! Each span becomes `span <name> field=value…`, each later `record` call `record field=value…`
//! and each event `event <LEVEL> field=value…` (values in their `Debug` form). Install it for one
//! closure with `tracing::subscriber::with_default(capture.clone(), || …)`; a test binary that
//! uses it should hold only tests that want it, so no other test's callsites interfere.
//!
//! ```
//! use orgusage_stub_http::capture::Capture;
//!
//! let capture = Capture::default();
//! tracing::subscriber::with_default(capture.clone(), || {
//!     let _span = tracing::info_span!("fetch", attempt = 1).entered();
//!     tracing::warn!(status = 503, "will retry");
//! });
//! assert_eq!(
//!     capture.text(),
//!     ["span fetch attempt=1", "event WARN message=will retry status=503"]
//! );
//! ```

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber recording every span and event as a text line; clones share the lines.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next_id: Arc<AtomicU64>,
}

impl Capture {
    /// The lines recorded so far, in order.
    pub fn text(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

/// Appends ` name=value` for each visited field.
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = Line(format!("span {}", span.metadata().name()));
        span.record(&mut line);
        self.push(line.0);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = Line("record".into());
        values.record(&mut line);
        self.push(line.0);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line(format!("event {}", event.metadata().level()));
        event.record(&mut line);
        self.push(line.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
