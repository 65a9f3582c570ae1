//! Integration tests of barman-transport: the local backend's faults (full disk,
//! permissions), the fault-injecting wrapper, and real servers started by the tests on
//! 127.0.0.1 (an S3-compatible server, sshd) with the system `ssh` and `rsync`.

mod copy;
mod faulty;
mod local;
#[cfg(feature = "ssh")]
mod remote;
#[cfg(feature = "object-store")]
mod s3;
#[cfg(feature = "ssh")]
mod sshd;
mod support;
mod trees;
