//! `pathwatch schema`: a JSON Schema of the config file, for editors (YAML language servers)
//! and CI. It is derived from the same structs serde reads (schemars), then reshaped where
//! pathwatch's YAML differs from serde's defaults: a probe is one mapping holding `kind`, the
//! common keys (`name`, `interval`, `timeout`, `depends_on`, `on_demand`, `buckets`) and its kind's keys.

use crate::config::Defaults;
use crate::config::buckets::Buckets;
use crate::config::on_demand::{ModuleOnDemand, OnDemandSpec};
use crate::core::types::PositiveDuration;
use crate::incident::IncidentSpec;
use crate::probe::ProbeSpec;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The schema as JSON.
pub fn config_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let defaults = generator.subschema_for::<Defaults>().to_value();
    let incident = generator.subschema_for::<IncidentSpec>().to_value();
    let on_demand = generator.subschema_for::<OnDemandSpec>().to_value();
    let duration = generator.subschema_for::<PositiveDuration>().to_value();
    let module = generator.subschema_for::<ModuleOnDemand>().to_value();
    let buckets = generator.subschema_for::<Buckets>().to_value();
    // serde's externally tagged shape: oneOf [{ properties: { postgres: {$ref} } }, ...].
    let tagged = generator.root_schema_for::<ProbeSpec>().to_value();
    let mut defs: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    if let Some(Value::Object(more)) = tagged.get("$defs") {
        defs.extend(more.clone());
    }
    let probes: Vec<Value> = tagged
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|variant| probe_variant(variant, &defs, &duration, &module, &buckets))
        .collect();
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pathwatch config",
        "description": "Probes, incidents and on-demand settings of pathwatch (see the book: docs/src/configuration.md).",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "defaults": defaults,
            "probes": { "type": ["array", "null"], "items": { "oneOf": probes } },
            "incidents": { "type": ["array", "null"], "items": incident },
            "on_demand": on_demand,
        },
        "$defs": defs,
    });
    allow_variables(&mut schema);
    schema
}

/// A whole scalar that is one `${VAR}` or `${VAR:-default}`: pathwatch expands it before
/// reading the value, so an editor must accept it wherever a number, a boolean or one of a
/// fixed set of words is expected (`port: ${PGPORT:-5432}`).
const VARIABLE: &str = r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$";

/// Lets every number, boolean and enumerated word in `schema` also be a variable reference.
/// Strings with no enum already accept one.
fn allow_variables(schema: &mut Value) {
    match schema {
        Value::Array(items) => items.iter_mut().for_each(allow_variables),
        Value::Object(obj) => {
            obj.values_mut().for_each(allow_variables);
            let typed = |t: &str| matches!(t, "integer" | "number" | "boolean");
            let scalar = match obj.get("type") {
                Some(Value::String(t)) => typed(t),
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(typed),
                _ => false,
            };
            if obj.contains_key("enum") {
                let original = Value::Object(std::mem::take(obj));
                obj.insert(
                    "anyOf".into(),
                    json!([original, { "type": "string", "pattern": VARIABLE }]),
                );
            } else if scalar {
                // `pattern` constrains strings only and `minimum` numbers only, so the two
                // kinds of value sit side by side in one schema.
                let types = match obj.remove("type") {
                    Some(Value::Array(mut ts)) => {
                        ts.push(json!("string"));
                        Value::Array(ts)
                    }
                    Some(t) => json!([t, "string"]),
                    None => json!("string"),
                };
                obj.insert("type".into(), types);
                obj.insert("pattern".into(), json!(VARIABLE));
            }
        }
        _ => {}
    }
}

/// One kind's mapping: its own keys plus `kind`, `name`, `interval`, `timeout`, `depends_on`,
/// `on_demand`, `buckets`.
fn probe_variant(
    variant: &Value,
    defs: &Map<String, Value>,
    duration: &Value,
    module: &Value,
    buckets: &Value,
) -> Option<Value> {
    let (kind, inner) = variant.get("properties")?.as_object()?.iter().next()?;
    let mut spec = match inner.get("$ref").and_then(Value::as_str) {
        Some(r) => defs.get(r.rsplit('/').next()?)?.clone(),
        None => inner.clone(),
    };
    let obj = spec.as_object_mut()?;
    let props = obj
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()?;
    props.insert(
        "kind".into(),
        json!({ "const": kind, "description": "The probe kind: which keys below apply." }),
    );
    props.insert(
        "name".into(),
        json!({
            "type": "string",
            "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
            "description": "Unique within the config; becomes the `probe` label.",
        }),
    );
    let described = |text: &str| {
        let mut d = duration.clone();
        if let Some(o) = d.as_object_mut() {
            o.insert("description".into(), json!(text));
        }
        d
    };
    props.insert(
        "interval".into(),
        described(
            "How often the probe runs, 100ms to 7d (default: `defaults.interval`, else 30s).",
        ),
    );
    props.insert(
        "timeout".into(),
        described(
            "Per-run timeout, 10ms to 24h (default: `defaults.timeout`, else the kind's own).",
        ),
    );
    props.insert(
        "depends_on".into(),
        json!({
            "type": "array",
            "description": "Probes this one needs: their failures explain its own (root cause).",
            "items": { "type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$" },
        }),
    );
    props.insert("on_demand".into(), module.clone());
    props.insert("buckets".into(), buckets.clone());
    let required = obj.entry("required").or_insert_with(|| json!([]));
    if let Some(list) = required.as_array_mut() {
        list.push(json!("kind"));
        list.push(json!("name"));
    }
    obj.insert("additionalProperties".into(), json!(false));
    Some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_a_closed_mapping_with_the_common_keys() {
        let s = config_schema();
        let kinds: Vec<&str> = s["properties"]["probes"]["items"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["properties"]["kind"]["const"].as_str().unwrap())
            .collect();
        for k in [
            "postgres",
            "tcp",
            "http",
            "golden_path",
            "startup",
            "redis",
            "logs",
        ] {
            assert!(kinds.contains(&k), "{k} in {kinds:?}");
        }
        let pg = s["properties"]["probes"]["items"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["properties"]["kind"]["const"] == "postgres")
            .unwrap();
        assert_eq!(pg["additionalProperties"], false);
        assert!(pg["properties"]["host"].is_object());
        assert!(pg["properties"]["timeout"].is_object());
        assert!(pg["required"].as_array().unwrap().contains(&json!("host")));
        // `port: ${PGPORT:-5432}` is valid YAML for pathwatch, so the schema takes it.
        assert_eq!(pg["properties"]["port"]["pattern"], VARIABLE);
        assert!(
            pg["properties"]["port"]["type"]
                .as_array()
                .unwrap()
                .contains(&json!("string"))
        );
    }
}
