//! Child processes for the multi-process tests: the test binary re-runs itself.

use std::process::Command;

/// A command that runs this test binary again for the single test `test` (exact name, output
/// not captured, one test thread): how the multi-process tests start their children. That
/// test acts only when the environment the caller adds says so (e.g. `ORGUSAGE_CHILD=…`); the
/// caller also decides what happens to the child's stdout.
///
/// ```no_run
/// let status = orgusage_testkit::child_test("child_process")
///     .env("ORGUSAGE_CHILD", "usage;…")
///     .stdout(std::process::Stdio::null())
///     .status()
///     .expect("child ran");
/// assert!(status.success());
/// ```
pub fn child_test(test: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    command
}
