//! The throwaway OpenSSH server of the tests (from barman-testkit).

pub(crate) use barman_testkit::{Sshd, shared_tempdir};
