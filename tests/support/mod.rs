//! Shared support of the cross-crate tests.
#![allow(dead_code)]

pub mod nbp_server;
