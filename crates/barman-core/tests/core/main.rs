//! Integration tests of barman-core.
mod ini;
