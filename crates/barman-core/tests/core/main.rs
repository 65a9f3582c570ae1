//! Integration tests of barman-core.
mod config;
mod ini;
