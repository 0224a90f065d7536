//! Which redirects an `http` probe follows (`follow_redirects`), the next hop's URL, and
//! what the next request is (HTTP semantics, as the Fetch standard and browsers apply them):
//! 303, and 301/302 after POST, continue as GET without the body or its `Content-*`
//! headers; every other redirect repeats the method and body, and a body leaves the
//! configured origin only with `redirect_body: any`.

use super::HttpSpec;
use crate::probe::{ProbeError, Reason};
use http::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

/// Which redirects the probe follows. A redirect it does not follow is the final answer
/// (its 3xx status is checked against `valid_status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FollowRedirects {
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
                    // The config's own "did you mean" (config/de/error.rs) words it.
                    _ => Err(E::unknown_variant(s, &["same_origin", "any", "none"])),
                }
            }
        }
        d.deserialize_any(V)
    }
}
/// Where a request body may follow a redirect that keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RedirectBody {
    /// Only within the configured URL's scheme, host and port: a redirect that would carry
    /// the body elsewhere is not followed (its 3xx is the answer).
    #[default]
    SameOrigin,
    /// Wherever `follow_redirects` goes (the body is re-sent to the other origin; the
    /// configured headers other than `Content-*` still are not).
    Any,
}

/// The request after a redirect: its method, and whether the body (and its `Content-*`
/// headers) goes with it. 301/302 after POST and 303 after anything but GET and HEAD
/// become a GET without a body (RFC 9110 15.4; Fetch's HTTP-redirect fetch, step 12);
/// every other redirect repeats the request as it was (307 and 308 must).
pub(super) fn next_request(status: StatusCode, method: &Method) -> (Method, bool) {
    let to_get = match status {
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => *method == Method::POST,
        StatusCode::SEE_OTHER => !matches!(*method, Method::GET | Method::HEAD),
        _ => false,
    };
    if to_get {
        (Method::GET, false)
    } else {
        (method.clone(), true)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_rewrite_the_method_as_fetch_does() {
        let next = |code: u16, m: Method| next_request(StatusCode::from_u16(code).unwrap(), &m);
        for code in [301, 302] {
            assert_eq!(next(code, Method::POST), (Method::GET, false));
            assert_eq!(next(code, Method::PUT), (Method::PUT, true));
            assert_eq!(next(code, Method::GET), (Method::GET, true));
        }
        assert_eq!(next(303, Method::POST), (Method::GET, false));
        assert_eq!(next(303, Method::PUT), (Method::GET, false));
        assert_eq!(next(303, Method::DELETE), (Method::GET, false));
        assert_eq!(next(303, Method::HEAD), (Method::HEAD, true));
        assert_eq!(next(303, Method::GET), (Method::GET, true));
        for code in [307, 308] {
            assert_eq!(next(code, Method::POST), (Method::POST, true));
            assert_eq!(next(code, Method::PATCH), (Method::PATCH, true));
        }
    }
}
