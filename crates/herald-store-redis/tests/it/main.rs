//! Integration tests of `herald-store-redis`, on a real `redis-server` that
//! each test starts on a free loopback port and kills when it ends: the
//! backend contract suite, unchanged, then what only a shared network store
//! must do (two handles on one log, errors for bad data and a gone Redis).

mod contract;
mod lost_data;
mod redis_only;
