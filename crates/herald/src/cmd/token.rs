//! `herald token`: mints an access token the hub accepts.
//!
//! The token is an RFC 9068 JWT (`typ: at+jwt`) whose draft-08
//! `authorization_details` grant `publish` / `subscribe` on topic matchers,
//! or, with `--legacy`, a plain JWT with the earlier `mercure` claim. It is
//! signed with the local hub's key (`herald-data/hub.key`) by default, so
//! `herald serve` and `herald token` work together with no setup; any other
//! hub's issuer key can be given as a secret or a PEM private key.

use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use jsonwebtoken::Algorithm;

use crate::local_hub;
use crate::local_key::{self, SigningKey, TokenSpec, LOCAL_DATA_DIR, LOCAL_HUB_URL, LOCAL_ISSUER};

/// Mint an access token (a JWT) for a hub.
///
/// Grants publishing and/or receiving private updates on topics matching
/// the given matchers, and prints the token on standard output. By default
/// it is signed with the local hub's key (DIR/hub.key, where `herald serve
/// --data DIR` keeps it) for the local issuer, with the hub URL as its
/// audience: exactly what that hub accepts.
///
/// Examples:
///
///   # Read private updates of one book for a day
///   herald token --subscribe https://example.com/books/1 --ttl 1d
///
///   # Publish to every topic of a hub on another port
///   herald token --publish '*' --hub http://127.0.0.1:9000/.well-known/mercure
///
///   # Any book, as a URL pattern, for a hub whose issuer signs with Ed25519
///   herald token --subscribe 'https://example.com/books/:id' \
///     --match-type urlpattern --key-file issuer.pem \
///     --issuer https://auth.example.com --audience https://hub.example.com/.well-known/mercure
///
///   # Watch the hub's dashboard (http://127.0.0.1:8080/ui/dashboard)
///   herald token --admin --ttl 8h
///
///   # Use it
///   herald tail --topic https://example.com/books/1 --token "$(herald token --subscribe '*')"
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
#[command(group(
    clap::ArgGroup::new("grants").required(true).multiple(true).args(["publish", "subscribe", "admin"])
))]
pub struct Args {
    /// Allow publishing to topics matching MATCHER (repeatable; `*` for all).
    #[arg(long, value_name = "MATCHER")]
    publish: Vec<String>,
    /// Allow receiving private updates of topics matching MATCHER
    /// (repeatable; `*` for all).
    #[arg(long, value_name = "MATCHER")]
    subscribe: Vec<String>,
    /// Allow reading the hub's statistics (`/ui/dashboard`, `/ui/stats`):
    /// `subscribe` on the hub's admin topic, `/.well-known/mercure/admin`
    /// (below the hub URL's path). Combines with the other grants.
    #[arg(long)]
    admin: bool,
    /// How the matchers compare to topics.
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = MatchType::Exact)]
    match_type: MatchType,
    /// Lifetime: 90s, 30m, 1h, 30d, 2w (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
    /// The hub the token is for: its URL is the default audience
    /// [default: the hub recorded in DIR/hub.url by a running `herald
    /// serve`, else http://127.0.0.1:8080/.well-known/mercure].
    #[arg(long, env = "HERALD_HUB", value_name = "URL")]
    hub: Option<String>,
    /// The `aud` claim: the hub's resource identifier [default: --hub].
    #[arg(long, value_name = "URL")]
    audience: Option<String>,
    /// The `iss` claim: the issuer the hub trusts the key for.
    #[arg(long, value_name = "ISSUER", default_value = LOCAL_ISSUER)]
    issuer: String,
    /// The `sub` (and `client_id`) claim: who the bearer is.
    #[arg(long, value_name = "NAME", default_value = "herald-cli")]
    subject: String,
    /// Legacy claims (`mercure.publish` / `mercure.subscribe` selector
    /// lists, `typ: JWT`) for hubs and clients of the earlier protocol.
    #[arg(long)]
    legacy: bool,
    /// Sign with the key of the hub whose data directory is DIR
    /// (DIR/hub.key).
    #[arg(long = "data", value_name = "DIR", default_value = LOCAL_DATA_DIR)]
    data_dir: PathBuf,
    /// Sign with this shared secret (HS256 unless --alg says otherwise).
    /// Visible to other users in the process list: prefer --key-file or
    /// the HERALD_SECRET variable.
    #[arg(
        long,
        env = "HERALD_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        conflicts_with = "key_file"
    )]
    secret: Option<String>,
    /// Sign with the key in FILE: a PEM private key (RSA, EC P-256 or
    /// Ed25519, in PKCS#8; the algorithm is read from the key), or, with
    /// --alg HS256/HS384/HS512, a file holding the shared secret.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The signing algorithm: HS256, HS384, HS512, RS256, RS384, RS512,
    /// PS256, PS384, PS512, ES256, ES384 or EdDSA [default: HS256 for a
    /// secret, from the key for a PEM file].
    #[arg(long, value_name = "ALG", value_parser = parse_algorithm)]
    alg: Option<Algorithm>,
    /// The key id (`kid` header), for an issuer with several keys.
    #[arg(long, value_name = "KID")]
    kid: Option<String>,
}

/// How a token's matchers compare to topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum MatchType {
    /// Byte-for-byte equality (and `*` for every topic).
    Exact,
    /// A URL Pattern such as `https://example.com/books/:id`.
    Urlpattern,
}

/// The hub the token is for: given, or recorded in the data directory by
/// the hub running there, or the default local hub (a token can be minted
/// before its hub starts).
fn hub_url(args: &Args) -> anyhow::Result<String> {
    match local_hub::locate(args.hub.as_deref(), Some(&args.data_dir)) {
        Ok(location) => Ok(location.url.to_string()),
        Err(local_hub::LocateError::NotRecorded { .. }) => Ok(LOCAL_HUB_URL.to_owned()),
        Err(other) => Err(other.into()),
    }
}

/// Runs `herald token`: prints the token.
pub fn run(args: Args) -> anyhow::Result<()> {
    let key = signing_key(&args)?.with_kid(args.kid.clone());
    let hub = hub_url(&args)?;
    let audience = args.audience.as_deref().unwrap_or(&hub);
    let mut subscribe = args.subscribe.clone();
    if args.admin {
        let url = url::Url::parse(&hub).with_context(|| format!("the hub URL {hub:?}"))?;
        // As a URL pattern (`--match-type urlpattern`) this path, with no
        // wildcard, matches the admin topic alone too.
        subscribe.push(herald_server::auth::admin_path(&url));
    }
    let spec = TokenSpec {
        publish: &args.publish,
        subscribe: &subscribe,
        match_type: match args.match_type {
            MatchType::Exact => "exact",
            MatchType::Urlpattern => "urlpattern",
        },
        audience,
        issuer: &args.issuer,
        subject: &args.subject,
        ttl: args.ttl,
        legacy: args.legacy,
    };
    if args.legacy && args.match_type == MatchType::Urlpattern {
        anyhow::bail!("legacy tokens have no match types: their selectors are URI templates");
    }
    println!("{}", local_key::mint(&key, &spec)?);
    Ok(())
}

/// The key named on the command line: a key file, a secret, or else the
/// local hub's key.
fn signing_key(args: &Args) -> anyhow::Result<SigningKey> {
    let is_hmac =
        |alg: Algorithm| matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
    if let Some(path) = &args.key_file {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let key = match args.alg {
            Some(alg) if is_hmac(alg) => {
                // A secret file usually ends with a line break that is not
                // part of the secret (as `hub.key` does).
                let text = String::from_utf8(bytes)
                    .with_context(|| format!("the secret in {} is not UTF-8", path.display()))?;
                SigningKey::secret(alg, text.trim().as_bytes())
            }
            alg => SigningKey::pem(alg, &bytes),
        };
        return key.with_context(|| format!("cannot use the key in {}", path.display()));
    }
    if let Some(secret) = &args.secret {
        return SigningKey::secret(args.alg.unwrap_or(Algorithm::HS256), secret.as_bytes());
    }
    if let Some(alg) = args.alg.filter(|&alg| alg != Algorithm::HS256) {
        anyhow::bail!("the hub's own key signs HS256, not {alg:?}: give --key-file or --secret");
    }
    // Read, never create: a key made here would be one no hub knows.
    let path = local_key::key_path(&args.data_dir);
    let secret = match std::fs::read_to_string(&path) {
        Ok(secret) => secret,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no key at {}: run `herald serve --data {}` once to create it, \
             or give --key-file or --secret",
            path.display(),
            args.data_dir.display()
        ),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    SigningKey::secret(Algorithm::HS256, secret.trim().as_bytes())
        .with_context(|| format!("cannot use the key in {}", path.display()))
}

fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("unsigned tokens (alg none) are never accepted by the hub".into());
    }
    Algorithm::from_str(name).map_err(|_| {
        "expected HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 \
         or EdDSA"
            .into()
    })
}

/// Parses a duration: a number with an optional unit, `ms`, `s`, `m`, `h`,
/// `d` or `w` (`1.5h`, `30d`, `500ms`; a bare number is seconds). Shared
/// with `herald tail --timeout`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => return Err(format!("unknown unit in {text:?}: use ms, s, m, h, d or w")),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration such as 30s, 5m, 1h or 30d, got {text:?}"))?;
    Duration::try_from_secs_f64(number * seconds_per_unit)
        .map_err(|_| format!("duration out of range: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("30", Duration::from_secs(30)),
            ("30s", Duration::from_secs(30)),
            ("1.5", Duration::from_millis(1500)),
            ("500ms", Duration::from_millis(500)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("30d", Duration::from_secs(30 * 86_400)),
            ("2w", Duration::from_secs(14 * 86_400)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        for bad in ["", "h", "1y", "-1s", "1..2s", "1e3"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn algorithms() {
        assert_eq!(parse_algorithm("EdDSA"), Ok(Algorithm::EdDSA));
        assert!(parse_algorithm("none").unwrap_err().contains("never"));
        assert!(parse_algorithm("HS1").is_err());
    }
}
