//! Integration tests of `herald-store-nats`, on a real `nats-server -js`
//! that each test starts on a free loopback port and kills when it ends:
//! the backend contract suite, unchanged, then what only this store must
//! do (batches a writer left halfway, forged and corrupt stream contents,
//! closing), and NATS restarts and outages.

mod contract;
mod faults;
mod nats_only;
