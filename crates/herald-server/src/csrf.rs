//! Cross-site request forgery protection for cookie-authenticated
//! publishes (draft-08, "Security Considerations").
//!
//! A cookie is an ambient credential: a browser attaches it to a form
//! another site submits to the hub. So a publish whose token came from the
//! cookie must show where it was made: its `Origin` header (or, when a
//! browser sent none, its `Referer`) must name the hub's own origin or one
//! of `publish_origins`. No header, `Origin: null` (sandboxed frames,
//! `data:` and `file:` pages) or any other origin is refused with 403, as
//! the reference hub does. A token in the `Authorization` header needs no
//! check: only a script the hub's CORS policy lets through can set it.

use http::header::{ORIGIN, REFERER};
use http::HeaderMap;
use url::Url;

/// Which origins may publish with the cookie.
#[derive(Clone, Debug)]
pub(crate) struct PublishOrigins {
    any: bool,
    /// ASCII-serialized origins (`https://app.example.com`).
    allowed: Vec<String>,
}

impl PublishOrigins {
    /// The hub's own origin plus `configured` (origins or URLs; `*`: any).
    pub fn new(hub_url: &Url, configured: &[String]) -> Result<Self, String> {
        let mut allowed = vec![hub_url.origin().ascii_serialization()];
        let mut any = false;
        for entry in configured {
            if entry == "*" {
                any = true;
                continue;
            }
            let origin = Url::parse(entry)
                .map(|url| url.origin())
                .ok()
                .filter(url::Origin::is_tuple)
                .ok_or_else(|| format!("publish_origins: {entry:?} is not an origin such as https://app.example.com"))?;
            allowed.push(origin.ascii_serialization());
        }
        Ok(PublishOrigins { any, allowed })
    }

    /// Checks where a cookie-authenticated request comes from; the error
    /// is the reason for a 403.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        if self.any {
            return Ok(());
        }
        let (header, value) = match (headers.get(ORIGIN), headers.get(REFERER)) {
            (Some(origin), _) => ("Origin", origin),
            (None, Some(referer)) => ("Referer", referer),
            (None, None) => {
                return Err(
                    "a publish authorized by the cookie needs an Origin or Referer header (CSRF protection)".into(),
                )
            }
        };
        let origin = std::str::from_utf8(value.as_bytes())
            .ok()
            .and_then(|text| Url::parse(text).ok())
            .map(|url| url.origin())
            .filter(url::Origin::is_tuple)
            .map(|origin| origin.ascii_serialization());
        match origin {
            Some(origin) if self.allowed.contains(&origin) => Ok(()),
            Some(origin) => Err(format!(
                "origin {origin} may not publish with the cookie (add it to publish_origins)"
            )),
            None => Err(format!(
                "a publish authorized by the cookie needs a real origin ({header} names none)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(origins: &[&str], headers: &[(&str, &str)]) -> Result<(), String> {
        let hub = Url::parse("https://hub.example.com/.well-known/mercure").unwrap();
        let configured: Vec<String> = origins.iter().map(|&o| o.to_owned()).collect();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        PublishOrigins::new(&hub, &configured).unwrap().check(&map)
    }

    #[test]
    fn the_hub_origin_and_listed_origins_pass() {
        assert!(check(&[], &[("origin", "https://hub.example.com")]).is_ok());
        assert!(check(&[], &[("origin", "https://HUB.example.com:443")]).is_ok());
        assert!(check(&[], &[("referer", "https://hub.example.com/page?x")]).is_ok());
        let app = ["https://app.example.com/"];
        assert!(check(&app, &[("origin", "https://app.example.com")]).is_ok());
        assert!(check(&["*"], &[("origin", "https://evil.example")]).is_ok());
    }

    #[test]
    fn others_are_refused() {
        for headers in [
            &[][..],
            &[("origin", "https://evil.example")][..],
            &[("origin", "null")][..],
            &[("origin", "http://hub.example.com")][..],
            &[("origin", "https://hub.example.com.evil.example")][..],
            &[("referer", "https://evil.example/hub.example.com")][..],
            // Origin wins over Referer.
            &[
                ("origin", "https://evil.example"),
                ("referer", "https://hub.example.com/"),
            ][..],
        ] {
            assert!(check(&[], headers).is_err(), "{headers:?}");
        }
    }

    #[test]
    fn invalid_configured_origins_are_refused() {
        let hub = Url::parse("https://hub.example.com/.well-known/mercure").unwrap();
        assert!(PublishOrigins::new(&hub, &["app.example.com".into()]).is_err());
        assert!(PublishOrigins::new(&hub, &["data:text/plain,x".into()]).is_err());
    }
}
