//! Integration tests of barman-catalog.
