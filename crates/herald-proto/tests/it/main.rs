//! Integration tests of `herald-proto`: the public conformance corpus and
//! property tests (with an oracle: the standard's algorithm written
//! plainly), through the public API only.

mod conformance;
mod oracle;
mod roundtrip;
