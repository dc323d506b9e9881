//! Integration tests of `herald-proto`: the public conformance corpus and
//! property tests, through the public API only.

mod conformance;
mod roundtrip;
