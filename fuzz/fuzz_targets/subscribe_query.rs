//! Fuzzes the subscribe query: every matcher kind, legacy URI templates
//! included, compiled under the route's limits and then matched against
//! topics taken from the input. Run with a time and memory budget per
//! input (`scripts/fuzz` passes `-timeout` and `-rss_limit_mb`): a query
//! that compiles or matches slowly, or grows memory, is a finding.
#![no_main]

use herald_hub::matcher::Topic;
use herald_server::ServerConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // The query, then topics after a NUL.
    let mut parts = input.split(|&b| b == 0);
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let hub = url::Url::parse("https://hub.example/.well-known/mercure").unwrap();
    let mut config = ServerConfig::default();
    config.auth.legacy = true;
    let Ok(matchers) = herald_server::parse_matchers(&query, &hub, &config) else {
        return;
    };
    let topics: Vec<String> = parts
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .chain(std::iter::once(query.clone().into_owned()))
        .collect();
    for topic in &topics {
        let topic = Topic::new(topic, &hub);
        for matcher in &matchers {
            let _ = matcher.matches(&topic);
        }
    }
});
