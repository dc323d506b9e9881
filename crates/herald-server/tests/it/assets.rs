//! `GET /herald.js`: the browser client as a cacheable, public module.

use crate::start;

#[tokio::test]
async fn herald_js_is_a_public_cacheable_module() {
    let hub = start().await;
    let response = hub
        .http
        .get(format!("{}/herald.js", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(headers["cache-control"], "public, max-age=3600");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let body = response.text().await.unwrap();
    assert!(
        body.contains("export class HeraldEventSource"),
        "the client"
    );

    // The same ETag on every response: computed once from the content.
    let again = hub
        .http
        .get(format!("{}/herald.js", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
}

#[tokio::test]
async fn a_matching_if_none_match_is_304_without_a_body() {
    let hub = start().await;
    let url = format!("{}/herald.js", hub.base);
    let etag = hub.http.get(&url).send().await.unwrap().headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    for value in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let response = hub
            .http
            .get(&url)
            .header("if-none-match", &value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 304, "If-None-Match: {value}");
        assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert!(response.bytes().await.unwrap().is_empty());
    }
    let stale = hub
        .http
        .get(&url)
        .header("if-none-match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn a_cross_origin_page_may_import_it() {
    // No origin is listed in `cors_origins`: the file is public anyway.
    let hub = start().await;
    let response = hub
        .http
        .get(format!("{}/herald.js", hub.base))
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(response
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
}
