//! proptest strategies for what a server may send the golden path: any JSON value (keys
//! and strings drawn partly from the protocol's own names, so that generated values reach
//! every branch of the matcher and the login parser) and any frame.

use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value up to a few levels deep, built from `strings` and `keys`.
pub(crate) fn json(
    strings: impl Strategy<Value = String> + Clone + 'static,
    keys: impl Strategy<Value = String> + Clone + 'static,
) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        strings.prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((keys.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// One WebSocket frame as the matcher sees it.
#[derive(Clone, Debug)]
pub(crate) enum Frame {
    Text(String),
    Binary,
}

/// Any frame: JSON (as `json` builds it), any text at all, or a binary frame.
pub(crate) fn frame(json: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Frame> {
    prop_oneof![
        6 => json.prop_map(|v| Frame::Text(v.to_string())),
        2 => "\\PC{0,40}".prop_map(Frame::Text),
        1 => any::<String>().prop_map(Frame::Text),
        1 => Just(Frame::Binary),
    ]
}
