//! A serde `Deserializer` over located [`Node`]s, so typed config structs keep exact positions.
//!
//! Every error leaves here with the line and column of the key or value it is about. Probe
//! kinds are serde enums: a mapping's `kind` key names the variant and the other keys are its
//! fields, which keeps `deny_unknown_fields` and positions working where serde's own internally
//! tagged enums would buffer the content and lose both.

mod error;

pub(crate) use error::DeError;
pub(crate) use error::closest;

use super::node::{Key, Loc, Node, Value};
use serde::de::{
    self, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// The key that selects a variant when an enum is read from a mapping.
pub(crate) const TAG: &str = "kind";

impl DeError {
    fn at(mut self, loc: Loc) -> Self {
        self.loc.get_or_insert(loc);
        self
    }
}

/// Deserializes `T` from a node; the error carries the best known location.
pub(crate) fn from_node<'a, T: de::Deserialize<'a>>(node: &'a Node) -> Result<T, DeError> {
    T::deserialize(NodeDe(node)).map_err(|e| e.at(node.loc))
}

/// The words for an integer type's range, for "invalid value" messages.
fn int_range(t: &str) -> &'static str {
    match t {
        "u8" => "an integer from 0 to 255",
        "u16" => "an integer from 0 to 65535",
        "u32" | "u64" => "a non-negative integer",
        _ => "an integer",
    }
}

pub(crate) struct NodeDe<'a>(pub &'a Node);

impl NodeDe<'_> {
    fn scalar_text(&self) -> Option<String> {
        match &self.0.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn type_error(&self, exp: &dyn Expected) -> DeError {
        if let Value::Invalid(msg) = &self.0.value {
            return DeError {
                msg: msg.clone(),
                loc: Some(self.0.loc),
            };
        }
        DeError {
            msg: format!("expected {exp}, found {}", self.0.value.describe()),
            loc: Some(self.0.loc),
        }
    }
}

macro_rules! de_int {
    ($($method:ident $visit:ident $t:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            let n: Option<$t> = match &self.0.value {
                Value::Int(i) => <$t>::try_from(*i).ok(),
                Value::Str(s) => s.trim().parse().ok(),
                _ => return Err(self.type_error(&v)),
            };
            match n {
                Some(n) => v.$visit(n).map_err(|e: DeError| e.at(self.0.loc)),
                None => Err(DeError {
                    msg: format!(
                        "invalid value {}: expected {}",
                        self.scalar_text().unwrap_or_default(),
                        int_range(stringify!($t))
                    ),
                    loc: Some(self.0.loc),
                }),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let loc = self.0.loc;
        let r = match &self.0.value {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Int(i) => match i64::try_from(*i) {
                Ok(n) => v.visit_i64(n),
                Err(_) => v.visit_i128(*i),
            },
            Value::Float(f) => v.visit_f64(*f),
            Value::Str(s) => v.visit_str(s),
            Value::Seq(items) => v.visit_seq(Seq(items.iter())),
            Value::Map(entries) => v.visit_map(Map::new(entries.iter())),
            Value::Invalid(_) => return Err(self.type_error(&v)),
        };
        r.map_err(|e| e.at(loc))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Bool(b) => v.visit_bool(*b),
            Value::Str(s) if s == "true" || s == "false" => v.visit_bool(s == "true"),
            _ => Err(self.type_error(&v)),
        }
    }

    de_int!(deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16, deserialize_u32 visit_u32 u32,
            deserialize_u64 visit_u64 u64, deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16,
            deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64);

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let n = match &self.0.value {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) => v.visit_f64(n).map_err(|e: DeError| e.at(self.0.loc)),
            None => Err(self.type_error(&v)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.scalar_text() {
            Some(s) => v.visit_string(s).map_err(|e: DeError| e.at(self.0.loc)),
            None => Err(self.type_error(&v)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Null => v.visit_unit(),
            _ => Err(self.type_error(&v)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Seq(items) => v
                .visit_seq(Seq(items.iter()))
                .map_err(|e: DeError| e.at(self.0.loc)),
            _ => Err(self.type_error(&v)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Map(entries) => v
                .visit_map(Map::new(entries.iter()))
                .map_err(|e: DeError| e.at(self.0.loc)),
            // An empty `key:` means an empty mapping, as a user writing YAML expects.
            Value::Null => v.visit_map(Map::new([].iter())),
            _ => Err(self.type_error(&v)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Str(s) => v
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: DeError| e.at(self.0.loc)),
            Value::Map(entries) => {
                let Some((_, tag)) = entries.iter().find(|(k, _)| k.name == TAG) else {
                    return Err(DeError {
                        msg: format!("missing required field \"{TAG}\""),
                        loc: Some(self.0.loc),
                    });
                };
                let rest = entries.iter().filter(|(k, _)| k.name != TAG);
                v.visit_enum(Tagged {
                    tag,
                    rest: Map::new(rest),
                    loc: self.0.loc,
                })
                .map_err(|e: DeError| e.at(self.0.loc))
            }
            _ => Err(self.type_error(&v)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

struct Seq<'a>(std::slice::Iter<'a, Node>);

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.0.next() {
            Some(node) => seed
                .deserialize(NodeDe(node))
                .map(Some)
                .map_err(|e| e.at(node.loc)),
            None => Ok(None),
        }
    }
}

struct Map<'a, I: Iterator<Item = &'a (Key, Node)>> {
    iter: I,
    value: Option<&'a Node>,
}

impl<'a, I: Iterator<Item = &'a (Key, Node)>> Map<'a, I> {
    fn new(iter: I) -> Self {
        Map { iter, value: None }
    }
}

impl<'de, I: Iterator<Item = &'de (Key, Node)>> MapAccess<'de> for Map<'de, I> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let de: de::value::StrDeserializer<DeError> = key.name.as_str().into_deserializer();
                seed.deserialize(de).map(Some).map_err(|e| e.at(key.loc))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value without a key"))?;
        seed.deserialize(NodeDe(node)).map_err(|e| e.at(node.loc))
    }
}

/// A mapping read as an enum: `kind` names the variant, the other keys are its content.
struct Tagged<'a, I: Iterator<Item = &'a (Key, Node)>> {
    tag: &'a Node,
    rest: Map<'a, I>,
    loc: Loc,
}

impl<'de, I: Iterator<Item = &'de (Key, Node)>> EnumAccess<'de> for Tagged<'de, I> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), DeError> {
        let name = self.tag.as_str().ok_or_else(|| DeError {
            msg: format!("\"{TAG}\" must be a string"),
            loc: Some(self.tag.loc),
        })?;
        let de: de::value::StrDeserializer<DeError> = name.into_deserializer();
        let variant = seed.deserialize(de).map_err(|e| DeError {
            msg: e
                .msg
                .replacen("unknown value", &format!("unknown {TAG}"), 1),
            loc: Some(self.tag.loc),
        })?;
        Ok((variant, self))
    }
}

impl<'de, I: Iterator<Item = &'de (Key, Node)>> VariantAccess<'de> for Tagged<'de, I> {
    type Error = DeError;

    fn unit_variant(mut self) -> Result<(), DeError> {
        match self.rest.iter.next() {
            None => Ok(()),
            Some((k, _)) => Err(<DeError as de::Error>::unknown_field(&k.name, &[]).at(k.loc)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let loc = self.loc;
        seed.deserialize(MapDe(self.rest)).map_err(|e| e.at(loc))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, DeError> {
        Err(DeError {
            msg: format!("this {TAG} cannot take a list"),
            loc: Some(self.loc),
        })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_map(self.rest).map_err(|e| e.at(self.loc))
    }
}

/// The remaining keys of a tagged mapping, read as a struct (the newtype variant's content).
struct MapDe<'a, I: Iterator<Item = &'a (Key, Node)>>(Map<'a, I>);

impl<'de, I: Iterator<Item = &'de (Key, Node)>> de::Deserializer<'de> for MapDe<'de, I> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_map(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}
