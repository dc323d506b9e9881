//! `herald serve`: run the hub.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use herald_hub::Hub;
use herald_server::auth::{IssuerConfig, KeyConfig};
use herald_store::{MemoryStore, Store};
use herald_store_disk::{DiskOptions, DiskStore};
use herald_store_nats::NatsStore;
use herald_store_redis::RedisStore;

use crate::config::{CompressionSetting, DurabilitySetting, HeraldConfig, StoreKind};
use crate::local_key::{self, TokenSpec, LOCAL_ISSUER};

/// Run the hub: a Mercure endpoint at /.well-known/mercure.
///
/// With no key configured, the hub generates one in the data directory and
/// prints a publisher token, so `herald serve` then `herald publish` just
/// works on one machine. Settings come from --config FILE (TOML; see
/// docs/configuration.md), then the flags below.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A TOML config file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, short = 'l', value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// The hub's public URL, if it differs from http://LISTEN/.well-known/mercure.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Directory for the key, tokens and history [default: ./herald-data].
    #[arg(long = "data", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate chain (PEM).
    /// SIGHUP reloads it and the key without dropping streams.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The history store [default: disk].
    #[arg(long, value_enum)]
    store: Option<StoreKind>,
    /// What an acknowledged publish survives, with the disk store [default: fsync].
    #[arg(long, value_enum)]
    durability: Option<DurabilitySetting>,
    /// The Redis server, with --store redis [default: redis://127.0.0.1:6379/].
    #[arg(long, value_name = "URL")]
    redis_url: Option<String>,
    /// The prefix of the hub's Redis keys, the same on every node [default: herald].
    #[arg(long, value_name = "PREFIX")]
    redis_prefix: Option<String>,
    /// The NATS server(s), with --store nats [default: nats://127.0.0.1:4222].
    #[arg(long, value_name = "URL")]
    nats_url: Option<String>,
    /// The name of the hub's JetStream log, the same on every node [default: herald].
    #[arg(long, value_name = "NAME")]
    nats_stream: Option<String>,
    /// Keep the updates on topics matching a URL pattern only this long,
    /// e.g. '/chat/*=1h' (relative patterns resolve against the hub's URL);
    /// repeatable, the first matching rule wins. Added to the config file's
    /// [[store.topic_retention]] rules.
    #[arg(long, value_name = "PATTERN=DURATION")]
    topic_retention: Vec<crate::config::TopicRetentionSetting>,
    /// Allow a browser origin (CORS, with credentials); repeatable.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// Refuse subscribers without a token.
    #[arg(long)]
    no_anonymous: bool,
    /// Publish an event when a subscription starts and ends, and serve the
    /// subscriptions API (draft-08 active subscriptions).
    #[arg(long)]
    subscriptions: bool,
    /// With --subscriptions: how long a hub node counts as alive after
    /// renewing its lease; a dead node's subscriptions end this long after
    /// [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    subscription_lease: Option<Duration>,
    /// Seconds between heartbeats on idle streams (0: none).
    #[arg(long, value_name = "SECS")]
    heartbeat: Option<u64>,
    /// Compress event streams for clients that accept it (gzip, flushed
    /// after every event) [default: none].
    #[arg(long, value_enum)]
    compression: Option<CompressionSetting>,
    /// Most open connections from one client address (0: unlimited) [default: 1024].
    /// Behind a reverse proxy, or for load tests from one address, use 0.
    #[arg(long, value_name = "N")]
    max_connections_per_ip: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

impl Args {
    /// The one step from what was given (file, then flags over it) to the
    /// settings the hub runs with, checked.
    fn resolve(self) -> anyhow::Result<HeraldConfig> {
        let mut config = match &self.config {
            Some(path) => HeraldConfig::load(path)?,
            None => HeraldConfig::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(url) = self.public_url {
            config.public_url = Some(url);
        }
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            config.tls_cert = Some(cert);
            config.tls_key = Some(key);
        }
        if let Some(store) = self.store {
            config.store.kind = store;
        }
        if let Some(durability) = self.durability {
            config.store.durability = durability;
        }
        if let Some(url) = self.redis_url {
            config.store.redis_url = url;
        }
        if let Some(prefix) = self.redis_prefix {
            config.store.redis_prefix = prefix;
        }
        if let Some(url) = self.nats_url {
            config.store.nats_url = url;
        }
        if let Some(stream) = self.nats_stream {
            config.store.nats_stream = stream;
        }
        config.store.topic_retention.extend(self.topic_retention);
        config.server.cors_origins.extend(self.cors_origins);
        if self.no_anonymous {
            config.server.allow_anonymous = false;
        }
        if self.subscriptions {
            config.hub.subscriptions = true;
        }
        if let Some(lease) = self.subscription_lease {
            // Whole seconds, rounded up, as the file takes them.
            config.hub.subscription_lease_secs =
                lease.as_secs() + u64::from(lease.subsec_nanos() > 0);
        }
        if let Some(secs) = self.heartbeat {
            config.hub.heartbeat_secs = secs;
        }
        if let Some(compression) = self.compression {
            config.server.compression = compression.into();
        }
        if let Some(n) = self.max_connections_per_ip {
            config.server.max_connections_per_ip = n;
        }
        config.validate()?;
        Ok(config)
    }
}

/// Runs the hub, one phase after another: listen, authorization, history,
/// the hub and its routes, the banner, then serving until a signal.
async fn serve(config: HeraldConfig) -> anyhow::Result<()> {
    // Read before anything else: a bad certificate is a start-up error.
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(herald_server::Tls::load(cert, key)?),
        _ => None,
    };
    let (listener, mut config, hub_url) = bind(config)?;
    let local_token = authorization(&mut config, &hub_url)?;
    let history = History::open(&config).await?;
    let mut hub_config = config.hub.to_hub_config(hub_url.clone());
    // The hub runs the one retention task, whatever the store.
    hub_config.retention = config.store.retention();
    hub_config.topic_retention = config.topic_retention(&hub_url)?;
    let hub = Hub::start(history.store.clone(), hub_config)
        .await
        .context("cannot start the hub")?;
    let app = herald_server::HubApp::new(hub, config.server)?;
    // The automatic connection cap is the open-files limit less a reserve:
    // take the whole hard limit first.
    let open_files = herald_bench::raise_nofile();
    // Recorded before the banner, so a script that waits for "listening
    // on" then runs `herald publish --data DIR` finds it; removed at exit.
    let _recorded = crate::local_hub::record(&config.data_dir, &hub_url)?;
    // Installed before the banner: a supervisor (or a test) that sends
    // SIGTERM as soon as it reads "listening on" gets a clean stop, not
    // the default action.
    let shutdown = shutdown_signal()?;
    announce(
        &listener,
        tls.as_ref(),
        &hub_url,
        open_files,
        &history,
        local_token.as_ref(),
    )?;
    let server = herald_server::serve(listener, app);
    let server = match tls {
        Some(tls) => {
            reload_on_hangup(tls.clone())?;
            server.with_tls(tls)
        }
        None => server,
    };
    server.with_graceful_shutdown(shutdown).await?;
    history.close().await
}

/// Listens, and settles the hub's URL (with port 0 the OS picked the port:
/// the URL names the real one).
fn bind(
    mut config: HeraldConfig,
) -> anyhow::Result<(tokio::net::TcpListener, HeraldConfig, url::Url)> {
    let listener =
        listen(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    config.listen = listener.local_addr()?;
    let hub_url = config.hub_url()?;
    Ok((listener, config, hub_url))
}

/// The data directory, the tokens' audience, and with no issuer
/// configured, the local key and a publisher token minted with it.
fn authorization(
    config: &mut HeraldConfig,
    hub_url: &url::Url,
) -> anyhow::Result<Option<(PathBuf, String)>> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    if config.server.auth.resource.is_empty() {
        config.server.auth.resource = hub_url.to_string();
    }
    if config.server.auth.issuers.is_empty() {
        return local_key(config, hub_url.as_str()).map(Some);
    }
    Ok(None)
}

/// The store behind the hub (whose retention the hub applies).
struct History {
    store: Arc<dyn Store>,
    /// Where it is, for the banner.
    place: Place,
}

/// Where the history lives.
enum Place {
    Memory,
    Disk {
        path: PathBuf,
        durability: &'static str,
    },
    Redis {
        server: String,
        prefix: String,
    },
    Nats {
        server: String,
        stream: String,
    },
}

impl History {
    async fn open(config: &HeraldConfig) -> anyhow::Result<History> {
        let (store, place): (Arc<dyn Store>, _) = match config.store.kind {
            // Also bounded on every append (`max_events`); the hub's
            // retention task does the rest.
            StoreKind::Memory => (
                Arc::new(MemoryStore::with_retention(config.store.retention())),
                Place::Memory,
            ),
            StoreKind::Disk => {
                let options = DiskOptions {
                    durability: config.store.durability.into(),
                    ..DiskOptions::default()
                };
                let disk = DiskStore::open(&config.data_dir, options).with_context(|| {
                    format!("cannot open the store in {}", config.data_dir.display())
                })?;
                let place = Place::Disk {
                    path: disk.path().to_owned(),
                    durability: disk.options().durability.as_str(),
                };
                (Arc::new(disk), place)
            }
            StoreKind::Redis => {
                let settings = &config.store;
                let server = without_password(&settings.redis_url);
                let redis = RedisStore::connect(&settings.redis_url, &settings.redis_prefix)
                    .await
                    .with_context(|| format!("cannot use the Redis at {server}"))?;
                let place = Place::Redis {
                    server,
                    prefix: settings.redis_prefix.clone(),
                };
                (Arc::new(redis), place)
            }
            StoreKind::Nats => {
                let settings = &config.store;
                let server = settings
                    .nats_url
                    .split(',')
                    .map(|url| without_password(url.trim()))
                    .collect::<Vec<_>>()
                    .join(",");
                let options =
                    herald_store_nats::Options::default().replicas(settings.nats_replicas);
                let nats =
                    NatsStore::connect_with(&settings.nats_url, &settings.nats_stream, &options)
                        .await
                        .with_context(|| format!("cannot use the NATS at {server}"))?;
                let place = Place::Nats {
                    server,
                    stream: settings.nats_stream.clone(),
                };
                (Arc::new(nats), place)
            }
        };
        Ok(History { store, place })
    }

    /// Makes what was appended durable and releases the store.
    async fn close(self) -> anyhow::Result<()> {
        self.store
            .close()
            .await
            .context("cannot close the store cleanly")?;
        tracing::info!("store closed");
        Ok(())
    }
}

/// The banner. It is `tracing` events like everything else on stderr, so
/// `--log-format json` gives a log shipper nothing but JSON; the token
/// alone goes to stdout, for scripts.
fn announce(
    listener: &tokio::net::TcpListener,
    tls: Option<&herald_server::Tls>,
    hub_url: &url::Url,
    open_files: u64,
    history: &History,
    local_token: Option<&(PathBuf, String)>,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    match tls {
        Some(tls) => tracing::info!(
            %open_files,
            cert = %tls.cert_path().display(),
            "listening on https://{local} (HTTP/2 and HTTP/1.1; SIGHUP reloads the certificate)"
        ),
        None => tracing::info!(%open_files, "listening on http://{local}"),
    }
    tracing::info!(url = %hub_url, "hub URL {hub_url}");
    match &history.place {
        Place::Disk { path, durability } => tracing::info!(
            path = %path.display(),
            durability,
            "history on disk"
        ),
        Place::Memory => tracing::info!("history in memory (lost at exit)"),
        Place::Redis { server, prefix } => tracing::info!(
            %server,
            prefix,
            "history in Redis, shared with every node using this prefix"
        ),
        Place::Nats { server, stream } => tracing::info!(
            %server,
            stream,
            "history in NATS JetStream, shared with every node using this stream"
        ),
    }
    if let Some((path, token)) = local_token {
        tracing::info!(
            path = %path.display(),
            "publisher token (all topics, 30 days) printed on stdout"
        );
        println!("{token}");
    }
    Ok(())
}

/// A Redis or NATS URL fit for a log line: any password replaced by `***`.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(an invalid URL)".to_owned(),
    }
}

/// Binds with a deep accept queue. `TcpListener::bind` asks for 128 (std's
/// choice): when thousands of subscribers reconnect at once (a hub restart,
/// a network blip), that queue overflows and the kernel makes clients
/// retransmit their SYN a second later, which `herald bench` measured as a
/// 3-4x slower connect rate than peers listening with 65535. The kernel
/// caps the value at `net.core.somaxconn`.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(65_535)
}

/// Uses (or creates) the data directory's key as the one trusted issuer,
/// and mints a publisher token with it.
fn local_key(config: &mut HeraldConfig, audience: &str) -> anyhow::Result<(PathBuf, String)> {
    let (key, created) = local_key::load_or_create(&config.data_dir)?;
    if created {
        tracing::info!(path = %key.path.display(), "no key configured: generated one");
    }
    config.server.auth.issuers.push(IssuerConfig {
        issuer: LOCAL_ISSUER.to_owned(),
        keys: vec![KeyConfig::secret("HS256", &key.secret)],
        legacy: false,
    });
    let all = vec!["*".to_owned()];
    let jwt = local_key::mint_hs256(
        &key.secret,
        &TokenSpec {
            publish: &all,
            subscribe: &all,
            match_type: "exact",
            audience,
            issuer: LOCAL_ISSUER,
            subject: "herald-local-publisher",
            ttl: Duration::from_secs(30 * 24 * 3600),
            legacy: false,
        },
    )?;
    let path = local_key::publisher_token_path(&config.data_dir);
    local_key::write_private(&path, &jwt)?;
    Ok((path, jwt))
}

/// Reloads the certificate and key on every SIGHUP: new connections get
/// the new pair, open ones keep theirs. A pair that cannot be used is
/// logged and the old one stays.
#[cfg(unix)]
fn reload_on_hangup(tls: herald_server::Tls) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!(
                    cert = %tls.cert_path().display(),
                    "SIGHUP: reloaded the TLS certificate"
                ),
                Err(err) => tracing::error!(
                    "SIGHUP: kept the TLS certificate in use: {}",
                    crate::exit::one_line(&anyhow::Error::new(err))
                ),
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn reload_on_hangup(_tls: herald_server::Tls) -> anyhow::Result<()> {
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM: the handlers are installed now, the
/// returned future resolves when either signal arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received");
    })
}
