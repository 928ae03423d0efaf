//! A private, throwaway PostgreSQL cluster for fault tests that must restart the server.
//!
//! The suite's shared server (`127.0.0.1:5432`) is never stopped or restarted: other tests, and
//! other people, use it. A test that needs a restart builds its own cluster from the installed
//! binaries (`initdb`, `pg_ctl`, as `.ci/postgres.sh` does) in a temporary directory, on a spare
//! port, and [`PrivateCluster`]'s `Drop` stops it again, also when the test panics.
//!
//! `fsync = off` keeps `initdb` and the test fast and changes nothing a process-level fault
//! test observes: a killed server's writes are in the OS page cache, which survives it.
//! `synchronous_commit` stays on, so an acknowledged commit is in the WAL the server replays.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How [`PrivateCluster::restart`] shuts the server down first (`pg_ctl -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// `fast`: sessions are terminated (`57P01`), open transactions roll back, a clean
    /// checkpoint is written.
    Fast,
    /// `immediate`: every server process quits at once, as in a crash; the restart replays
    /// the WAL.
    Immediate,
}

impl ShutdownMode {
    fn name(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Immediate => "immediate",
        }
    }
}

/// A running private PostgreSQL cluster; stopped (immediately) and deleted on drop.
#[derive(Debug)]
pub struct PrivateCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    // Dropped after `Drop::drop` has stopped the server, so the files outlive it.
    _dir: tempfile::TempDir,
}

impl PrivateCluster {
    /// Builds and starts a cluster. Returns `None` after printing `SKIP restart: …` when the
    /// machine cannot run one (no `initdb`/`pg_ctl` under `/usr/lib/postgresql`, or no
    /// `postgres` user to run them as when we are root); the test then passes.
    ///
    /// # Panics
    /// When the binaries are there but `initdb` or `pg_ctl start` fails: that is a broken
    /// machine or test, not a missing feature.
    pub fn start() -> Option<Self> {
        let Some(bin) = installed_bin() else {
            eprintln!("SKIP restart: no initdb/pg_ctl under /usr/lib/postgresql/*/bin");
            return None;
        };
        let as_postgres = running_as_root();
        if as_postgres && !user_exists("postgres") {
            eprintln!("SKIP restart: running as root and there is no `postgres` user for initdb");
            return None;
        }
        match Self::build(bin, as_postgres) {
            Ok(cluster) => Some(cluster),
            Err(e) => panic!("private PostgreSQL cluster: {e}"),
        }
    }

    fn build(bin: PathBuf, as_postgres: bool) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("orgusage-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        if as_postgres {
            // initdb refuses to run as root; the cluster's files belong to `postgres`.
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()))?;
        }
        let mut cluster = Self {
            data: dir.path().join("data"),
            bin,
            port: 0,
            as_postgres,
            _dir: dir,
        };
        cluster.tool(&format!(
            "initdb -D {} -A trust -U postgres --no-sync --no-instructions",
            cluster.data.display()
        ))?;
        // Another test may pick the same free port between our check and the server's bind:
        // then the start fails and another port is tried.
        let mut last_error = String::new();
        for _ in 0..5 {
            cluster.port = free_port().ok_or("no free port in 55433..56433")?;
            // The socket goes into the private directory, so nothing clashes with the machine's
            // server.
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                cluster.port,
                cluster.socket_dir().display()
            );
            match cluster.tool(&format!(
                "pg_ctl -D {} -l {} -o '{options}' -w -t 60 start",
                cluster.data.display(),
                cluster.log().display()
            )) {
                Ok(()) => return Ok(cluster),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The URL of the cluster's `postgres` database (user `postgres`, trust auth).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the cluster listens on (`127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Restarts the server (`pg_ctl restart -m <mode>`) and waits until it accepts connections.
    pub fn restart(&self, mode: ShutdownMode) -> Result<(), String> {
        // pg_ctl restart reuses the options of the first start (postmaster.opts).
        self.tool(&format!(
            "pg_ctl -D {} -l {} -m {} -w -t 60 restart",
            self.data.display(),
            self.log().display(),
            mode.name()
        ))
    }

    fn socket_dir(&self) -> &Path {
        self._dir.path()
    }

    fn log(&self) -> PathBuf {
        self._dir.path().join("server.log")
    }

    /// Runs one of the cluster binaries, as `postgres` when we are root.
    fn tool(&self, args: &str) -> Result<(), String> {
        let line = format!("{}/{args}", self.bin.display());
        if self.as_postgres {
            run(Command::new("su").args(["postgres", "-c", &line]))
        } else {
            run(Command::new("sh").args(["-c", &line]))
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let stop = format!("pg_ctl -D {} -m immediate -w stop", self.data.display());
        if let Err(e) = self.tool(&stop) {
            eprintln!(
                "warning: could not stop the private cluster on port {}: {e}",
                self.port
            );
        }
    }
}

fn installed_bin() -> Option<PathBuf> {
    let mut bins: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    bins.sort();
    bins.pop().map(|(_, bin)| bin)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A port nobody listens on, starting at a random offset so parallel tests rarely collide.
fn free_port() -> Option<u16> {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    let start = u16::try_from(random % 1000).unwrap_or(0);
    (0..1000u16)
        .map(|i| 55433 + (start + i) % 1000)
        .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
