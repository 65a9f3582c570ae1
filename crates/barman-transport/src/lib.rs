//! Moving bytes for barman-rs.
//!
//! This crate will hold the `Storage` trait and its implementations (local filesystem,
//! object stores), remote access over SSH and rsync, and bandwidth limiting. It knows
//! nothing about PostgreSQL. It has no public API yet.
#![deny(missing_docs)]
