//! The fuzz targets on stable Rust: the committed seeds, then deterministic mutations of
//! them for `BARMAN_FUZZ_TARGET_SECONDS` each (see `barman-fuzz-runner`).
//!
//! ```text
//! BARMAN_FUZZ_TARGET_SECONDS=30 cargo test --release --no-default-features \
//!     --manifest-path crates/barman-catalog/fuzz/Cargo.toml --test seeds -- --nocapture
//! ```

barman_fuzz_runner::fuzz_tests!(barman_catalog_fuzz::TARGETS;
    py_literal, backup_info, xlog_db, timestamp, retention_policy, backup_id, identity,
    manifest);
