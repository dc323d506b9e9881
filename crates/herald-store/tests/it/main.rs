//! Integration tests of `herald-store`: the contract suite on `MemoryStore`,
//! then what is specific to the in-memory backend, then checks that the
//! suite itself catches broken backends.

mod contract;
mod memory;
mod testkit;
