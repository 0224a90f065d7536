//! Which redirects an `http` probe follows (`follow_redirects`), and the next hop's URL.

use super::HttpSpec;
use crate::probe::{ProbeError, Reason};
use http::StatusCode;
use serde::Deserialize;
use url::Url;

/// Which redirects the probe follows. A redirect it does not follow is the final answer
/// (its 3xx status is checked against `valid_status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FollowRedirects {
    /// Only within the configured URL's scheme, host and port.
    #[default]
    SameOrigin,
    /// Anywhere; the configured headers are never sent outside the configured origin.
    Any,
    None,
}

impl<'de> Deserialize<'de> for FollowRedirects {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = FollowRedirects;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("same_origin, any or none")
            }
            // Before 0.2 this was a boolean: `true` keeps redirects but now only within
            // the origin (following them anywhere must be asked for), `false` is `none`.
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<FollowRedirects, E> {
                Ok(if b {
                    FollowRedirects::SameOrigin
                } else {
                    FollowRedirects::None
                })
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<FollowRedirects, E> {
                match s {
                    "same_origin" => Ok(FollowRedirects::SameOrigin),
                    "any" => Ok(FollowRedirects::Any),
                    "none" => Ok(FollowRedirects::None),
                    "true" | "false" => self.visit_bool(s == "true"),
                    _ => Err(E::custom(format!(
                        "unknown value \"{s}\" (expected one of: same_origin, any, none)"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}
/// The next URL when `status` is a redirect the probe follows; `None` when the answer is
/// final (not a redirect, no Location, or a hop `follow_redirects` does not allow).
pub(super) fn redirect(
    spec: &HttpSpec,
    url: &Url,
    status: StatusCode,
    location: Option<&str>,
    origin: &url::Origin,
) -> Result<Option<Url>, ProbeError> {
    let (true, Some(loc)) = (status.is_redirection(), location) else {
        return Ok(None);
    };
    if spec.follow_redirects == FollowRedirects::None {
        return Ok(None);
    }
    // The Location is left out of messages: it may carry tokens in its query.
    let next = url
        .join(loc)
        .map_err(|e| ProbeError::new(Reason::Protocol, format!("bad redirect location: {e}")))?;
    if !matches!(next.scheme(), "http" | "https") || next.host_str().is_none() {
        return Err(ProbeError::new(
            Reason::Protocol,
            "a redirect to a location that is not an http(s) URL with a host",
        ));
    }
    if spec.follow_redirects == FollowRedirects::SameOrigin && next.origin() != *origin {
        return Ok(None);
    }
    Ok(Some(next))
}

impl schemars::JsonSchema for FollowRedirects {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FollowRedirects".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Which redirects to follow: same_origin (default), any, none; true and false (older configs) read as same_origin and none.",
            "oneOf": [
                { "type": "string", "enum": ["same_origin", "any", "none"] },
                { "type": "boolean" }
            ]
        })
    }
}
