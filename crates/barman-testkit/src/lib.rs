//! Test fixtures of barman-rs (not published): servers the tests start and stop
//! themselves, on loopback only.
//!
//! - [`PgCluster`]: a throwaway PostgreSQL cluster.
//! - [`Sshd`]: a throwaway OpenSSH server on 127.0.0.1 with generated keys.
//! - [`moto::Moto`]: an S3-compatible server (moto) on 127.0.0.1.
//! - [`tools`]: who we are (root or not), which tools exist, free ports, small file
//!   systems, the Barman oracle.
//! - [`trace`]: a command under `strace`, and whether it made what it wrote durable.
//! - [`mutate`]: near-valid inputs (a valid text with one mutation) for the parsers'
//!   property tests.
#![allow(missing_docs)]

pub mod moto;
pub mod mutate;
mod pg;
mod sshd;
pub mod tools;
pub mod trace;

pub use pg::{PgCluster, bin_dir, other_majors, require};
pub use sshd::{Sshd, shared_tempdir};
