//! Integration tests of barman-core.
mod archive;
mod check;
mod config;
mod ini;
mod postgres;
mod recover;
