//! The fuzz targets on stable Rust: the committed seeds, then deterministic mutations of
//! them for `BARMAN_FUZZ_TARGET_SECONDS` each (see `barman-fuzz-runner`).
//!
//! ```text
//! BARMAN_FUZZ_TARGET_SECONDS=30 cargo test --release --no-default-features \
//!     --manifest-path crates/barman-core/fuzz/Cargo.toml --test seeds -- --nocapture
//! ```

barman_fuzz_runner::fuzz_tests!(barman_core_fuzz::TARGETS; ini, configuration, conninfo, pgpass, encryption_magic, custom_compression_magic);
