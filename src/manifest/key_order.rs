//! The order in which a document's keys were written, so that the preview (`podgrace mutate -o
//! pod`, `-o diff`) writes them back the same way.
//!
//! Documents are read into `serde_json::Value`, whose objects sort their members; the engine and
//! the webhook rely on that (patches, annotations and logs come out in one stable order). Rather
//! than switch serde_json's `preserve_order` on for the whole program, the CLI reads the keys'
//! order alongside ([`KeyOrder`]) and writes each document through [`Ordered`]: members it
//! knows come first, in the order they were written; members podgrace added follow, sorted.
//! podgrace's patches only add object members and append to lists, so the items of a list keep
//! their index and their order applies to them unchanged.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use crate::protocols::yaml::PLAIN;

/// The shape of a document as written: each mapping's keys in order, with the order inside
/// each value; each sequence's items.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KeyOrder {
    /// A mapping: its keys as written.
    Map(Vec<(String, KeyOrder)>),
    /// A sequence: its items.
    Seq(Vec<KeyOrder>),
    /// A scalar, or a part of the document that was not written (added by podgrace).
    #[default]
    Leaf,
}

static LEAF: KeyOrder = KeyOrder::Leaf;

impl KeyOrder {
    /// The order inside the value of `key` (a leaf if there is none).
    pub fn member(&self, key: &str) -> &KeyOrder {
        match self {
            KeyOrder::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map_or(&LEAF, |(_, o)| o),
            _ => &LEAF,
        }
    }

    /// The order inside the item at `index` (a leaf if there is none).
    pub fn item(&self, index: usize) -> &KeyOrder {
        match self {
            KeyOrder::Seq(items) => items.get(index).unwrap_or(&LEAF),
            _ => &LEAF,
        }
    }
}

impl<'de> Deserialize<'de> for KeyOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderVisitor)
    }
}

struct OrderVisitor;

macro_rules! leaf {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $ty) -> Result<KeyOrder, E> {
            Ok(KeyOrder::Leaf)
        })*
    };
}

impl<'de> Visitor<'de> for OrderVisitor {
    type Value = KeyOrder;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    leaf!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128, visit_u128: u128,
          visit_f64: f64, visit_str: &str, visit_bytes: &[u8]);

    fn visit_unit<E: de::Error>(self) -> Result<KeyOrder, E> {
        Ok(KeyOrder::Leaf)
    }

    fn visit_none<E: de::Error>(self) -> Result<KeyOrder, E> {
        Ok(KeyOrder::Leaf)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<KeyOrder, D::Error> {
        KeyOrder::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyOrder, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(KeyOrder::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyOrder, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, order)) = map.next_entry::<Key, KeyOrder>()? {
            entries.push((key.0, order));
        }
        Ok(KeyOrder::Map(entries))
    }
}

/// A mapping key as serde_json spells it: scalars become their text.
pub(crate) struct Key(pub(crate) String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                // A plain `on`, `yes`, `true` key (kubectl's YAML 1.1 boolean): marked, so that
                // it is written back unquoted (see [`crate::protocols::yaml::PLAIN`]).
                Ok(Key(format!("{PLAIN}{v}")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key("null".to_owned()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

/// The boolean kubectl's YAML 1.1 reader takes a plain `word` for.
fn yaml_1_1_bool(word: &str) -> Option<bool> {
    match word {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            Some(false)
        }
        _ => None,
    }
}

/// A value written with its members in `order` (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct Ordered<'a> {
    value: &'a Value,
    order: &'a KeyOrder,
}

impl<'a> Ordered<'a> {
    /// `value`, to be written in `order`.
    pub fn new(value: &'a Value, order: &'a KeyOrder) -> Self {
        Ordered { value, order }
    }
}

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Object(members) => {
                let written: &[(String, KeyOrder)] = match self.order {
                    KeyOrder::Map(entries) => entries,
                    _ => &[],
                };
                let mut map = serializer.serialize_map(Some(members.len()))?;
                // The members written as plain booleans, by the key as read (`on`).
                let mut plain: Vec<&String> = Vec::new();
                for (key, order) in written {
                    if let Some(value) = members.get(key) {
                        map.serialize_entry(key, &Ordered::new(value, order))?;
                    } else if let Some(b) = key.strip_prefix(PLAIN) {
                        let as_read = members.keys().find(|k| {
                            yaml_1_1_bool(k).map(|v| v.to_string()).as_deref() == Some(b)
                                && !written.iter().any(|(w, _)| w == *k)
                                && !plain.contains(k)
                        });
                        if let Some(k) = as_read {
                            plain.push(k);
                            map.serialize_entry(
                                &format!("{PLAIN}{k}"),
                                &Ordered::new(&members[k], order),
                            )?;
                        }
                    }
                }
                for (key, value) in members {
                    if !written.iter().any(|(k, _)| k == key) && !plain.contains(&key) {
                        map.serialize_entry(key, &Ordered::new(value, &LEAF))?;
                    }
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for (i, item) in items.iter().enumerate() {
                    seq.serialize_element(&Ordered::new(item, self.order.item(i)))?;
                }
                seq.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::yaml;
    use serde_json::json;

    const DEPLOYMENT: &str = "kind: Deployment\napiVersion: apps/v1\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n        args:\n        - --save\n        - \"no\"\n      - image: side\n        name: side\n";

    fn both(text: &str) -> (Value, KeyOrder) {
        (yaml::from_str(text).unwrap(), yaml::from_str(text).unwrap())
    }

    #[test]
    fn a_document_is_written_back_in_the_order_it_was_read() {
        let (value, order) = both(DEPLOYMENT);
        assert_eq!(
            yaml::to_string(&Ordered::new(&value, &order)).unwrap(),
            DEPLOYMENT
        );
    }

    #[test]
    fn members_podgrace_added_follow_the_written_ones() {
        let (mut value, order) = both(DEPLOYMENT);
        let web = &mut value["spec"]["template"]["spec"]["containers"][0];
        web["lifecycle"] = json!({"preStop": {"sleep": {"seconds": 5}}});
        web["env"] =
            json!([{"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}, "name": "POD_IP"}]);
        value["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "c", "image": "i"}));
        let yaml = yaml::to_string(&Ordered::new(&value, &order)).unwrap();
        assert!(
            yaml.contains("      - name: web\n        image: nginx\n        args:\n        - --save\n        - \"no\"\n        env:\n        - name: POD_IP\n          valueFrom:\n            fieldRef:\n              fieldPath: status.podIP\n        lifecycle:\n"),
            "{yaml}"
        );
        assert!(
            yaml.ends_with(
                "      - image: side\n        name: side\n      - image: i\n        name: c\n"
            ),
            "{yaml}"
        );
    }

    /// kubectl reads a plain `on:` key as "true": written back quoted, it would be another key.
    #[test]
    fn plain_yaml_1_1_boolean_keys_stay_plain_and_in_place() {
        let text = "metadata:\n  labels:\n    zzz: a\n    on: x\n    \"yes\": q\n    no: b\n";
        let value: Value = yaml::manifests(text).unwrap().remove(0);
        let order: KeyOrder = yaml::manifests(text).unwrap().remove(0);
        assert_eq!(
            yaml::to_string(&Ordered::new(&value, &order)).unwrap(),
            text
        );
    }

    #[test]
    fn the_order_follows_members_and_items() {
        let (_, order) = both("b: [{y: 1, x: 2}]\na: 1\n");
        assert_eq!(
            order.member("b").item(0),
            &KeyOrder::Map(vec![
                ("y".into(), KeyOrder::Leaf),
                ("x".into(), KeyOrder::Leaf)
            ])
        );
        assert_eq!(order.member("zzz"), &KeyOrder::Leaf);
        assert_eq!(order.member("b").item(7), &KeyOrder::Leaf);
    }
}
