//! Integration tests of `herald-store-disk`: the backend contract suite,
//! then what only a durable store must do (restarts, crashes, file locking,
//! retention in steps, group commit).

mod contract;
mod crash;
mod group_commit;
mod open;
mod restart;
mod retention;

use std::path::Path;

use herald_store::{Cursor, Record, Store};
use herald_store_disk::{DiskOptions, DiskStore, Durability};

/// Opens a store in `dir` with `durability` and otherwise default options.
pub fn open(dir: &Path, durability: Durability) -> DiskStore {
    DiskStore::open(
        dir,
        DiskOptions {
            durability,
            ..DiskOptions::default()
        },
    )
    .expect("open the store")
}

/// Everything retained, oldest first.
pub async fn everything(store: &DiskStore) -> Vec<Record> {
    store
        .read_after(Cursor::ZERO, usize::MAX)
        .await
        .expect("read the whole log")
}
