//! Fuzzes the publish body: form and JSON parsing, then the protocol's
//! checks. Any input must give an update or a 4xx, never a panic.
#![no_main]

use herald_hub::PublishLimits;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // The first byte picks the content type, the rest is the body.
    let Some((&kind, body)) = input.split_first() else {
        return;
    };
    let content_type = match kind % 3 {
        0 => HeaderValue::from_static("application/x-www-form-urlencoded"),
        1 => HeaderValue::from_static("application/json"),
        _ => HeaderValue::from_static("application/json; charset=utf-8"),
    };
    let hub = url::Url::parse("https://hub.example/.well-known/mercure").unwrap();
    if let Ok(update) = herald_server::parse_update(Some(&content_type), body) {
        let _ = update.validate(&hub, &PublishLimits::default());
    }
});
