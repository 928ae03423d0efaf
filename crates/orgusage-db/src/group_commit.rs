//! Group commit of the single-record calls: callers of one process whose `record_usage` /
//! `record_generation` calls overlap share one transaction.
//!
//! Leader/follower per queue (one on SQLite, one per client hash on PostgreSQL: see
//! [`GroupCommit`]), without timers: a caller queues its record, and if no group is being
//! written it becomes the leader, takes everything queued (its own record included) and writes
//! it with the batch path; callers arriving meanwhile queue up and wait, and the first of them
//! to wake after that commit leads the next group. Nobody waits for company: a lone caller
//! leads a group of one, written by the ordinary single-record path, so it pays one uncontended
//! mutex and one clone of its record. A caller is answered only after the transaction holding
//! its record committed (or failed), exactly as without grouping, and every guarantee of the
//! batch path holds per record (own validation errors, exactly once, one `limit_crossed`).
//!
//! When a group's transaction fails with an error that proves nothing was written (anything but
//! [`DatabaseErrorKind::CommitUnknown`]), its records are written again one by one, so a caller
//! never fails because of another caller's record.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use orgusage_domain::generations::GenerationOutcome;
use orgusage_domain::usage::UsageRecord;
use orgusage_domain::{DatabaseErrorKind, Error, Result};

use crate::repo::UsageRepo;

/// One queued call: its ticket, generation id (for `record_generation`) and record.
type Queued = (u64, Option<String>, UsageRecord);

#[derive(Debug, Default)]
struct State {
    next_ticket: u64,
    queue: Vec<Queued>,
    done: HashMap<u64, Result<GenerationOutcome>>,
    leading: bool,
}

/// The group-commit queues of one store (see the module docs).
///
/// On PostgreSQL the callers are spread over [`PG_QUEUES`] queues by client: callers of one
/// client share a group (their records share rows, and a single transaction per group beats
/// many waiting on the same row locks), while different clients' groups commit in parallel on
/// different connections, as ungrouped calls would. On SQLite, where every write transaction
/// takes the one database lock anyway, a single queue makes the largest groups.
#[derive(Debug)]
pub struct GroupCommit {
    queues: Vec<Queue>,
}

/// Queues on PostgreSQL (see [`GroupCommit`]); below the default pool size of 10, so groups
/// of different queues do not wait for connections.
pub const PG_QUEUES: usize = 8;

impl GroupCommit {
    /// The queues for `backend`.
    pub fn new(backend: crate::Backend) -> Self {
        let n = match backend {
            crate::Backend::Sqlite => 1,
            crate::Backend::Postgres => PG_QUEUES,
        };
        Self {
            queues: (0..n).map(|_| Queue::default()).collect(),
        }
    }

    /// `record_usage` through the group.
    pub fn record_usage(
        &self,
        repo: &UsageRepo<'_>,
        record: &UsageRecord,
    ) -> Result<orgusage_domain::usage::RecordedUsage> {
        self.queue(record).record_usage(repo, record)
    }

    /// Records `record` (as `record_generation` when `generation_id` is given) in the next group
    /// transaction of its client's queue; returns its own outcome once that transaction is over.
    pub fn record(
        &self,
        repo: &UsageRepo<'_>,
        generation_id: Option<&str>,
        record: &UsageRecord,
    ) -> Result<GenerationOutcome> {
        self.queue(record).record(repo, generation_id, record)
    }

    fn queue(&self, record: &UsageRecord) -> &Queue {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let n = self.queues.len();
        let at = if n == 1 {
            0
        } else {
            let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(&record.client_org_id);
            (h % n as u64) as usize
        };
        &self.queues[at]
    }
}

/// One leader/follower queue.
#[derive(Debug, Default)]
struct Queue {
    state: Mutex<State>,
    wake: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking leader is handled by `Leading`; the state stays consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record_usage(
        &self,
        repo: &UsageRepo<'_>,
        record: &UsageRecord,
    ) -> Result<orgusage_domain::usage::RecordedUsage> {
        match self.record(repo, None, record)? {
            GenerationOutcome::Recorded(done) => Ok(done),
            // Only records with a generation id can be duplicates.
            GenerationOutcome::Duplicate => Err(Error::database(
                DatabaseErrorKind::Query,
                "a usage record came back as a duplicate generation",
            )),
        }
    }

    fn record(
        &self,
        repo: &UsageRepo<'_>,
        generation_id: Option<&str>,
        record: &UsageRecord,
    ) -> Result<GenerationOutcome> {
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.queue
            .push((ticket, generation_id.map(str::to_string), record.clone()));
        loop {
            if let Some(result) = st.done.remove(&ticket) {
                return result;
            }
            if !st.leading {
                st.leading = true;
                let group = std::mem::take(&mut st.queue);
                drop(st);
                let mut leading = Leading {
                    owner: self,
                    tickets: group.iter().map(|q| q.0).collect(),
                    results: Vec::new(),
                };
                leading.results = write_group(repo, &group);
                drop(leading);
                st = self.lock();
                continue;
            }
            st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The leader's group in flight. Dropping it publishes the results and hands leadership on, also
/// when writing panicked (then every caller of the group gets an error instead of waiting
/// forever).
struct Leading<'g> {
    owner: &'g Queue,
    tickets: Vec<u64>,
    results: Vec<Result<GenerationOutcome>>,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut results = std::mem::take(&mut self.results).into_iter();
        let mut st = self.owner.lock();
        for &ticket in &self.tickets {
            let r = results.next().unwrap_or_else(|| {
                Err(Error::database(
                    DatabaseErrorKind::Query,
                    "the group-commit leader panicked while writing this record",
                ))
            });
            st.done.insert(ticket, r);
        }
        st.leading = false;
        drop(st);
        self.owner.wake.notify_all();
    }
}

/// Writes one group: a lone record by the single-record path (no batch overhead), several by the
/// batch path, re-running one by one the records whose chunk failed without writing anything.
fn write_group(repo: &UsageRepo<'_>, group: &[Queued]) -> Vec<Result<GenerationOutcome>> {
    let single = |(_, id, record): &Queued| match id {
        Some(id) => repo.record_generation(id, record),
        None => repo.record_usage(record).map(GenerationOutcome::Recorded),
    };
    if let [one] = group {
        return vec![single(one)];
    }
    let _span =
        tracing::debug_span!("orgusage.usage.group_commit", records = group.len()).entered();
    let items: Vec<(Option<&str>, &UsageRecord)> =
        group.iter().map(|(_, id, r)| (id.as_deref(), r)).collect();
    let mut results = repo.record_items(&items);
    for (q, r) in group.iter().zip(results.iter_mut()) {
        let retry = matches!(r, Err(e) if e.database_kind().is_some() && !e.may_have_committed());
        if retry {
            *r = single(q);
        }
    }
    results
}
