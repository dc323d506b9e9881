//! The shared log a cluster's nodes run on: a throwaway Redis or NATS
//! JetStream server ([`Backend`]), the `herald serve` flags that point a
//! node at it, and what the outage tests do to it (kill, start again).
//!
//! Issue 18: a user can swap `--store redis` for `--store nats` and every
//! cluster test passes the same. So each cluster scenario is written once,
//! as `async fn scenario(engine: Engine)`, and [`on_both_engines!`] stamps
//! a test of it per engine.

use herald_store_nats::testkit::NatsServer;
use herald_store_redis::testkit::{Persistence, RedisServer};

/// Which cluster store the nodes share (`herald serve --store …`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    Redis,
    Nats,
}

/// A running server of one [`Engine`], killed when dropped.
pub enum Backend {
    Redis(RedisServer),
    Nats(NatsServer),
}

impl Backend {
    /// A server for tests that never stop it. Redis runs without
    /// persistence (nothing to fsync); NATS JetStream always keeps its
    /// store in a directory (its testkit has no other mode).
    pub fn start(engine: Engine) -> Backend {
        match engine {
            Engine::Redis => Backend::Redis(RedisServer::start_with(Persistence::None)),
            Engine::Nats => Backend::Nats(NatsServer::start()),
        }
    }

    /// A server that loses nothing it acknowledged when it is SIGKILLed and
    /// started again: Redis with an AOF fsynced on every write, NATS with
    /// its JetStream store directory (kept across a kill).
    pub fn start_durable(engine: Engine) -> Backend {
        match engine {
            Engine::Redis => Backend::Redis(RedisServer::start_with(Persistence::Aof)),
            Engine::Nats => Backend::Nats(NatsServer::start()),
        }
    }

    /// SIGKILLs the server (no chance to flush anything) and waits for it
    /// to exit; its port and data stay for [`Backend::start_again`].
    pub fn kill(&mut self) {
        match self {
            Backend::Redis(redis) => redis.kill(),
            Backend::Nats(nats) => nats.kill(),
        }
    }

    /// Starts the server again on the same port and data, and waits until
    /// it answers.
    pub fn start_again(&mut self) {
        match self {
            Backend::Redis(redis) => redis.start_again(),
            Backend::Nats(nats) => nats.start_again(),
        }
    }

    /// Kills the server and starts it again: what a crash and a supervisor
    /// do.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// A name for one hub's log no other hub of this process uses: a Redis
    /// key prefix, a JetStream stream name. It begins with the engine's
    /// name, as the two testkits count their names apart.
    pub fn fresh_log(&self) -> String {
        match self {
            Backend::Redis(_) => {
                format!("redis-{}", herald_store_redis::testkit::fresh_prefix())
            }
            Backend::Nats(_) => format!("nats-{}", herald_store_nats::testkit::fresh_name()),
        }
    }

    /// The `herald serve` flags of a node whose hub's log is `log` on this
    /// server.
    pub fn serve_args(&self, log: &str) -> Vec<String> {
        let args = match self {
            Backend::Redis(redis) => [
                "--store",
                "redis",
                "--redis-url",
                &redis.url(),
                "--redis-prefix",
                log,
            ]
            .map(str::to_owned),
            Backend::Nats(nats) => [
                "--store",
                "nats",
                "--nats-url",
                &nats.url(),
                "--nats-stream",
                log,
            ]
            .map(str::to_owned),
        };
        args.into()
    }
}

/// Stamps the two tests of a cluster scenario `async fn NAME(engine:
/// Engine)`: `NAME::on_redis` and `NAME::on_nats` (so `cargo test on_nats`
/// runs every scenario on NATS). The test attribute is `#[tokio::test]`
/// unless one is given before the name.
macro_rules! on_both_engines {
    ($scenario:ident) => {
        $crate::backend::on_both_engines!(
            #[tokio::test]
            $scenario
        );
    };
    (#[$test:meta] $scenario:ident) => {
        mod $scenario {
            use $crate::backend::Engine;

            #[$test]
            async fn on_redis() {
                super::$scenario(Engine::Redis).await;
            }

            #[$test]
            async fn on_nats() {
                super::$scenario(Engine::Nats).await;
            }
        }
    };
}
pub(crate) use on_both_engines;
