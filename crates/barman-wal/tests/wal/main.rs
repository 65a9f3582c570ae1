//! Integration tests of barman-wal: golden fixtures from a real PostgreSQL 15, codecs
//! against the C tools, and validation of WAL produced live by a throwaway cluster.

mod codecs;
mod fixtures;
mod live;
