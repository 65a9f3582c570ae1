//! Integration tests of barman-catalog: differential tests against Barman's own Python
//! code, model/property tests of retention and WAL cleanup, and recovery planning.

mod formats;
mod model;
mod oracle;
mod properties;
mod recovery;
