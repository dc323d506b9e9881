//! From a verified token's claims to [`Grants`]: draft-08's
//! `authorization_details`, or the legacy `mercure` claim.
//!
//! Parsing is all-or-nothing: any Mercure authorization detail (or legacy
//! selector list) that is malformed or over a limit makes the whole token
//! invalid, because acting on the remaining entries would silently change
//! what the token authorizes (draft-08 "Authorization Details").

use herald_hub::grant::{Grants, GrantsBuilder};
use herald_hub::matcher::{Matcher, MatcherKind};
use serde_json::Value;
use url::Url;

use super::error::RefusalReason;

/// The `type` of a Mercure authorization detail, compared byte for byte.
pub const MERCURE_DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// Most Mercure authorization details in one token (more: invalid token).
pub const MAX_AUTHORIZATION_DETAILS: usize = 32;

/// Most entries in the `authorization_details` array, Mercure or not: a
/// bound on the work spent on entries we otherwise ignore.
pub const MAX_AUTHORIZATION_DETAIL_ENTRIES: usize = 128;

/// Most topic matchers in one detail's `topics`, and most selectors in a
/// legacy `publish` or `subscribe` list (more: invalid token).
pub const MAX_TOPICS_PER_DETAIL: usize = 128;

/// Grants from a draft-08 token's `authorization_details` claim (absent:
/// no grants). Entries of other types are ignored.
pub(super) fn from_authorization_details(
    claim: Option<&Value>,
    hub_url: &Url,
) -> Result<Grants, RefusalReason> {
    let Some(claim) = claim else {
        return Ok(Grants::none());
    };
    let entries = claim
        .as_array()
        .ok_or("authorization_details is not an array")?;
    if entries.len() > MAX_AUTHORIZATION_DETAIL_ENTRIES {
        return Err(format!("{} authorization details", entries.len()));
    }
    let mut builder = Grants::builder();
    let mut mercure_details = 0;
    for (i, entry) in entries.iter().enumerate() {
        let detail = entry
            .as_object()
            .ok_or_else(|| format!("authorization_details[{i}] is not an object"))?;
        // RFC 9396 §2: every entry has a string `type`.
        let kind = detail
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("authorization_details[{i}] has no string type"))?;
        if kind != MERCURE_DETAIL_TYPE {
            continue;
        }
        mercure_details += 1;
        if mercure_details > MAX_AUTHORIZATION_DETAILS {
            return Err(format!(
                "more than {MAX_AUTHORIZATION_DETAILS} Mercure authorization details"
            ));
        }
        mercure_detail(detail, hub_url, &mut builder)
            .map_err(|why| format!("authorization_details[{i}]: {why}"))?;
    }
    Ok(builder.build())
}

fn mercure_detail(
    detail: &serde_json::Map<String, Value>,
    hub_url: &Url,
    builder: &mut GrantsBuilder,
) -> Result<(), RefusalReason> {
    let actions = detail
        .get("actions")
        .and_then(Value::as_array)
        .ok_or("actions is not an array")?;
    if actions.is_empty() {
        return Err("actions is empty".into());
    }
    let (mut publish, mut subscribe) = (false, false);
    for action in actions {
        // Unknown actions grant nothing but are not errors (future
        // extensions); a non-string action is an error.
        match action.as_str().ok_or("an action is not a string")? {
            "publish" => publish = true,
            "subscribe" => subscribe = true,
            _ => {}
        }
    }

    let topics = detail
        .get("topics")
        .and_then(Value::as_array)
        .ok_or("topics is not an array")?;
    if topics.is_empty() {
        return Err("topics is empty".into());
    }
    if topics.len() > MAX_TOPICS_PER_DETAIL {
        return Err(format!("{} topics", topics.len()));
    }
    // Compiled even when no action is recognized: a matcher that does not
    // parse invalidates the token either way.
    let matchers = topics
        .iter()
        .map(|topic| topic_matcher(topic, hub_url))
        .collect::<Result<Vec<_>, _>>()?;

    let payload = match detail.get("payload") {
        None => None,
        Some(payload @ Value::Object(_)) => Some(payload.clone()),
        Some(_) => return Err("payload is not an object".into()),
    };

    if publish {
        builder.publish(matchers.iter().cloned());
    }
    if subscribe {
        builder.subscribe(matchers, payload);
    }
    Ok(())
}

/// One `{"match": …, "match_type": …}` object (`match_type` defaults to
/// `exact`; `*` is the wildcard whatever the type).
fn topic_matcher(topic: &Value, hub_url: &Url) -> Result<Matcher, RefusalReason> {
    let topic = topic.as_object().ok_or("a topic is not an object")?;
    let value = topic
        .get("match")
        .and_then(Value::as_str)
        .ok_or("a topic has no string match")?;
    let kind = match topic.get("match_type") {
        None => MatcherKind::Exact,
        Some(Value::String(name)) => Matcher::kind_from_name(name)
            .ok_or_else(|| format!("unsupported match_type {name:?}"))?,
        Some(_) => return Err("match_type is not a string".into()),
    };
    Matcher::new(kind, value, hub_url).map_err(|e| format!("match {value:?}: {e}"))
}

/// Grants from a legacy token's `mercure` claim: `publish` and `subscribe`
/// lists of selectors (`*`, exact strings, URI templates) and a `payload`
/// shown for every subscription. Absent: no grants.
pub(super) fn from_legacy_claim(
    claim: Option<&Value>,
    hub_url: &Url,
) -> Result<Grants, RefusalReason> {
    let Some(claim) = claim else {
        return Ok(Grants::none());
    };
    let claim = claim
        .as_object()
        .ok_or("the mercure claim is not an object")?;
    let mut builder = Grants::builder();
    // The legacy payload belongs to the subscriber, not to one selector:
    // first, so it is found whatever the subscription.
    if let Some(payload) = claim.get("payload").filter(|p| !p.is_null()) {
        builder.default_payload(payload.clone());
    }
    builder.publish(legacy_selectors(claim.get("publish"), "publish", hub_url)?);
    builder.subscribe(
        legacy_selectors(claim.get("subscribe"), "subscribe", hub_url)?,
        None,
    );
    Ok(builder.build())
}

fn legacy_selectors(
    list: Option<&Value>,
    name: &str,
    hub_url: &Url,
) -> Result<Vec<Matcher>, RefusalReason> {
    let list = match list {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(format!("mercure.{name} is not an array")),
    };
    if list.len() > MAX_TOPICS_PER_DETAIL {
        return Err(format!("mercure.{name} has {} selectors", list.len()));
    }
    list.iter()
        .map(|selector| {
            let selector = selector
                .as_str()
                .ok_or_else(|| format!("mercure.{name} holds a non-string"))?;
            Matcher::new(MatcherKind::LegacySelector, selector, hub_url)
                .map_err(|e| format!("mercure.{name} {selector:?}: {e}"))
        })
        .collect()
}
