//! Shared support of the cross-crate tests.
#![allow(dead_code)]

/// The loopback api.nbp.pl fake of the `orgusage-nbp` tests, shared rather than copied.
#[path = "../../crates/orgusage-nbp/tests/common/mod.rs"]
pub mod nbp_server;
