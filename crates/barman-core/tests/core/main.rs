//! Integration tests of barman-core.
mod archive;
mod backups;
mod check;
mod config;
mod ini;
mod parsers;
mod postgres;
mod receive;
mod recover;
mod replication;
mod seam;
mod support;
mod tls;
