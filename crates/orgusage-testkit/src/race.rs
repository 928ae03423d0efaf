//! Racing threads: the shape of every concurrency test, written once.

use std::sync::Barrier;

/// Runs `run(i, contender)` for each of `contenders` on its own thread, releasing all of them
/// together (a [`Barrier`] waited on by every thread before it starts `run`), and returns the
/// results in the contenders' order. A panic in any thread is re-raised here, so an `unwrap`
/// inside `run` fails the test as usual.
///
/// Prepare what each thread needs (its store, its share of the work) in `contenders`, on the
/// calling thread, so the threads are released with nothing left to do but the race.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let counter = AtomicUsize::new(0);
/// let seen = orgusage_testkit::race(vec![10, 20, 30], |i, step| {
///     counter.fetch_add(step, Ordering::SeqCst);
///     i
/// });
/// assert_eq!(seen, [0, 1, 2]);
/// assert_eq!(counter.into_inner(), 60);
/// ```
pub fn race<S, T, F>(contenders: Vec<S>, run: F) -> Vec<T>
where
    S: Send,
    T: Send,
    F: Fn(usize, S) -> T + Sync,
{
    let barrier = Barrier::new(contenders.len());
    let (barrier, run) = (&barrier, &run);
    std::thread::scope(|scope| {
        let threads: Vec<_> = contenders
            .into_iter()
            .enumerate()
            .map(|(i, contender)| {
                scope.spawn(move || {
                    barrier.wait();
                    run(i, contender)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
