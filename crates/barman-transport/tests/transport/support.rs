//! Helpers shared by the integration tests (from barman-testkit).

pub(crate) use barman_testkit::tools::{free_port, is_root, require, which};
