//! Targets: `http://` URL templates, their resolution, and the loopback rule.
//!
//! A benchmark floods its target, so by default only loopback addresses
//! (127.0.0.0/8, `::1`) are accepted; `--allow-remote` lifts that. URLs are
//! parsed by hand (scheme, authority, path and query) rather than with the
//! `url` crate: the generator only needs `http://HOST[:PORT]/PATH?QUERY`,
//! and keeping the query byte-for-byte as typed matters more than
//! normalising it.

use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Context as _};

/// The parts of an `http://` URL that a request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host as written (a name, an IPv4 literal, or a bracketed IPv6 one).
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// Path and query (`/` when absent), as written.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://HOST[:PORT][/PATH][?QUERY]`. `https` is refused: the
    /// generator speaks plain HTTP/1.1 only.
    ///
    /// # Errors
    ///
    /// Another scheme, an empty host, or a bad port.
    pub fn parse(url: &str) -> anyhow::Result<HttpUrl> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("{url}: only http:// URLs are supported");
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse()
                    .with_context(|| format!("{url}: bad port {port:?}"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        if host.is_empty() {
            bail!("{url}: no host");
        }
        Ok(HttpUrl {
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let (_, query) = self.path.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then(|| percent_decode(value))
        })
    }

    /// Resolves the host, taking the first address, and applies the
    /// loopback rule.
    ///
    /// # Errors
    ///
    /// The host does not resolve, or resolves outside the loopback range
    /// while `allow_remote` is false.
    pub async fn resolve(&self, allow_remote: bool) -> anyhow::Result<SocketAddr> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, self.port))
            .await
            .with_context(|| format!("cannot resolve {host}"))?
            .collect();
        // Prefer IPv4: the source-address spread is an IPv4 feature.
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .with_context(|| format!("{host} resolves to no address"))?;
        check_loopback(addr.ip(), allow_remote)?;
        Ok(addr)
    }
}

/// Refuses an address outside 127.0.0.0/8 and `::1` unless `allow_remote`.
///
/// # Errors
///
/// The address is not loopback and remote targets are not allowed.
pub fn check_loopback(ip: IpAddr, allow_remote: bool) -> anyhow::Result<()> {
    if ip.is_loopback() || allow_remote {
        Ok(())
    } else {
        bail!("{ip} is not a loopback address: pass --allow-remote to load a remote hub")
    }
}

/// Which of `nodes` subscribe URLs subscriber `index` uses when there are
/// `topics` topics: with topic `t = n mod T` and round `r = n div T`, URL
/// `(t + r) mod K`.
///
/// Plain `n mod K` was the first idea, rejected: when T and K share a
/// factor it sends each topic to some nodes only (6 topics over 6 nodes:
/// one topic per node), so a node would fan out a part of what it receives
/// and the nodes would not be alike. Shifting by the round gives every node
/// every topic and each node the same share of the subscribers, within T
/// (to within one when T divides N). With one topic, or one topic per
/// subscriber, it is `n mod K`.
pub fn node_of(index: usize, topics: usize, nodes: usize) -> usize {
    let topics = topics.max(1);
    let nodes = nodes.max(1);
    ((index % topics) % nodes + (index / topics) % nodes) % nodes
}

/// Replaces `{i}` with `index` and `{topic}` with `topic` (already encoded
/// as the caller needs).
pub fn expand(template: &str, index: usize, topic: &str) -> String {
    template
        .replace("{i}", &index.to_string())
        .replace("{topic}", topic)
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`
/// (so topics like `/t/1` stay readable in a query).
pub fn percent_encode(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes are kept.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let url = HttpUrl::parse("http://127.0.0.1:8080/.well-known/mercure?match=/t/{i}").unwrap();
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, 8080);
        assert_eq!(url.path, "/.well-known/mercure?match=/t/{i}");
        assert_eq!(url.query_param("match").as_deref(), Some("/t/{i}"));
        let url = HttpUrl::parse("http://localhost").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        let url = HttpUrl::parse("http://[::1]:9?id=a%2Fb").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("[::1]", 9));
        assert_eq!(url.query_param("id").as_deref(), Some("a/b"));
        assert!(HttpUrl::parse("https://127.0.0.1/").is_err());
        assert!(HttpUrl::parse("http://:80/").is_err());
    }

    #[test]
    fn loopback_rule() {
        for ip in ["127.0.0.1", "127.9.8.7", "::1"] {
            assert!(check_loopback(ip.parse().unwrap(), false).is_ok(), "{ip}");
        }
        for ip in ["10.0.0.1", "192.168.1.1", "8.8.8.8", "::2", "0.0.0.0"] {
            assert!(check_loopback(ip.parse().unwrap(), false).is_err(), "{ip}");
            assert!(check_loopback(ip.parse().unwrap(), true).is_ok(), "{ip}");
        }
    }

    #[tokio::test]
    async fn resolve_refuses_remote() {
        let url = HttpUrl::parse("http://192.0.2.1:80/").unwrap();
        assert!(url.resolve(false).await.is_err());
        let url = HttpUrl::parse("http://localhost:80/").unwrap();
        assert!(url.resolve(false).await.unwrap().ip().is_loopback());
    }

    /// Subscribers per (node, topic) for `n` subscribers.
    fn spread(n: usize, topics: usize, nodes: usize) -> Vec<Vec<usize>> {
        let mut counts = vec![vec![0; topics]; nodes];
        for index in 0..n {
            counts[node_of(index, topics, nodes)][index % topics] += 1;
        }
        counts
    }

    #[test]
    fn nodes_share_subscribers_and_topics() {
        // (subscribers, topics, nodes, largest allowed difference between
        // two nodes' subscriber counts)
        for (n, topics, nodes, slack) in [
            (100_000, 1, 6, 1),
            (100_000, 5, 6, 5),
            (100_000, 6, 6, 1),
            (100_000, 12, 6, 1),
            (12_000, 4, 3, 4),
            (1000, 1000, 6, 1),
            (7, 2, 3, 2),
            (10, 3, 1, 0),
        ] {
            let counts = spread(n, topics, nodes);
            let per_node: Vec<usize> = counts.iter().map(|c| c.iter().sum()).collect();
            let (lo, hi) = (per_node.iter().min(), per_node.iter().max());
            let (lo, hi) = (lo.copied().unwrap(), hi.copied().unwrap());
            assert!(hi - lo <= slack, "{n}/{topics}/{nodes}: {per_node:?}");
            assert_eq!(per_node.iter().sum::<usize>(), n);
            // Every node holds subscribers of every topic (when there are
            // enough subscribers for that).
            if n >= topics * nodes {
                for (node, c) in counts.iter().enumerate() {
                    assert!(
                        c.iter().all(|&k| k > 0),
                        "{n}/{topics}/{nodes}: node {node} {c:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn one_topic_or_one_node_is_plain_modulo() {
        for index in 0..100 {
            assert_eq!(node_of(index, 1, 6), index % 6);
            assert_eq!(node_of(index, 100, 6), index % 6);
            assert_eq!(node_of(index, 7, 1), 0);
        }
        // Six topics over six nodes: not one topic per node.
        assert_ne!(node_of(6, 6, 6), node_of(0, 6, 6));
    }

    #[test]
    fn percent_coding() {
        let mut out = Vec::new();
        percent_encode("/t/1 {\"a\":1}", &mut out);
        assert_eq!(out, b"/t/1%20%7B%22a%22%3A1%7D");
        assert_eq!(percent_decode("%2Ft%2f1+x%zz%"), "/t/1 x%zz%");
        assert_eq!(expand("/t/{i}?x={topic}", 7, "a"), "/t/7?x=a");
    }
}
