//! The on-demand settings as plain config data: the `on_demand:` section (the allowlist of
//! targets) and a probe's own `on_demand:` block. The `/probe` handler that acts on them
//! lives in [`crate::on_demand`]; config reads only these types, never the handler.

use crate::allowlist::TargetPattern;
use serde::Deserialize;
use std::sync::Arc;

/// The `on_demand:` section of the config.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OnDemandSpec {
    /// Patterns a target must match (see [`crate::allowlist`]): `"10.0.0.0/16:5432"`,
    /// `"*.internal:6379"` (`*` is one DNS label), `"https://*.example.com/*"`. Empty: no
    /// target may be given, only the modules' own.
    /// Shared, not copied, by every `/probe` request's guard (allowlist::Guard).
    #[serde(default, deserialize_with = "patterns")]
    #[schemars(with = "Vec<String>")]
    pub(crate) allowed_targets: Arc<[TargetPattern]>,
}

fn patterns<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<[TargetPattern]>, D::Error> {
    Vec::<TargetPattern>::deserialize(d).map(Arc::from)
}

impl<'de> Deserialize<'de> for TargetPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TargetPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A module's per-probe `on_demand:` settings.
#[derive(Clone, Copy, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModuleOnDemand {
    /// Send the module's credentials (passwords, configured http headers) to on-demand
    /// targets other than its own. Whoever can call /probe then chooses where they go
    /// (blackbox_exporter's behaviour); default false.
    #[serde(default)]
    pub(crate) send_credentials: bool,
}
