//! A manifest file's documents, split and read one at a time as kubectl reads them, so that one
//! bad document costs only itself (`podgrace mutate -f`, `podgrace audit -f`).
//!
//! A YAML stream is split at its `---` lines, as kubectl's reader (apimachinery's
//! `yaml.NewYAMLReader`) splits it before it reads each document; a text that starts with `{`
//! is a stream of JSON objects (kubectl's `YAMLOrJSONDecoder`), concatenated or one per line.
//! Each document keeps its number and first line, and every error names the line in the whole
//! file. A key written twice in one mapping is read as kubectl reads it: the last one wins, and
//! the reader says so. Reading a document costs its own length: time and memory stay linear in
//! the file. Pure: text in, values out.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::manifest::key_order::{Key, KeyOrder};
use crate::protocols::yaml;

/// One document of a file, not read yet.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    /// Its number in the file, from 1 (documents with only comments are not counted).
    pub number: usize,
    /// Its first line of content, from 1.
    pub line: usize,
    /// Its text (from its `---` line, if it has one).
    pub text: &'a str,
    /// Lines of the file before `text`.
    lines_before: usize,
    json: bool,
}

impl Chunk<'_> {
    /// The chunk's text after as many empty lines as the file has before it: what a reader
    /// that counts lines (the policy parser) reads with the file's line numbers.
    pub fn text_at_its_lines(&self) -> String {
        let mut text = "\n".repeat(self.lines_before);
        text.push_str(self.text);
        text
    }
}

/// A document read: its value, the order its keys were written in, and the keys it repeats.
#[derive(Debug)]
pub struct ReadDocument {
    /// The document as JSON.
    pub value: Value,
    /// The order of its keys (see [`crate::manifest::key_order`]).
    pub order: KeyOrder,
    /// Keys written twice in one mapping, the last one kept.
    pub duplicates: Vec<Duplicate>,
}

/// A key written more than once in one mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The key.
    pub key: String,
    /// The line of the repeated key in the file (the document's first line when the reader
    /// does not know it: JSON).
    pub line: usize,
}

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: key {:?} is written twice in one mapping: the last one is used, as kubectl does; remove the other",
            self.line, self.key
        )
    }
}

/// A document that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ReadError {
    /// Its number in the file.
    pub number: usize,
    /// The line of the error in the file, when known; else the document's first line.
    pub line: usize,
    /// What is wrong (with the line), and what to do when it is known.
    pub message: String,
}

/// The documents of `text` in order: a YAML stream split at its `---` lines, or a stream of
/// JSON objects. A JSON stream that breaks ends with the error (the objects after it cannot be
/// told apart).
pub fn split(text: &str) -> Vec<Result<Chunk<'_>, ReadError>> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    if body.trim_start().starts_with('{')
        && let Some(chunks) = split_json(text)
    {
        // JSON objects between `---` lines are a YAML stream.
        let yaml_stream = || text.lines().any(is_separator);
        if chunks.iter().all(Result::is_ok) || !yaml_stream() {
            return chunks;
        }
    }
    split_yaml(text)
}

/// kubectl's separator: `---` alone on its line, or followed by a comment. `--- value` starts a
/// document too (YAML allows content after the marker); `----` or `---x` is content.
fn is_separator(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
}

/// Whether a line holds YAML content (not a comment, a directive, a marker or blank).
fn is_content(line: &str) -> bool {
    let t = line.trim();
    !(t.is_empty()
        || t.starts_with('#')
        || t.starts_with('%')
        || t == "..."
        || is_separator(line) && line[3..].trim_start().starts_with('#')
        || t == "---")
}

fn split_yaml(text: &str) -> Vec<Result<Chunk<'_>, ReadError>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut content_line = None;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let bare = line.trim_end_matches(['\n', '\r']);
        let bare = if index == 0 {
            bare.strip_prefix('\u{feff}').unwrap_or(bare)
        } else {
            bare
        };
        if is_separator(bare) && offset > start {
            if let Some(line) = content_line {
                out.push(Ok(Chunk {
                    number: out.len() + 1,
                    line,
                    text: &text[start..offset],
                    lines_before: start_line - 1,
                    json: false,
                }));
            }
            start = offset;
            start_line = line_no;
            content_line = None;
        }
        if content_line.is_none() && is_content(bare) {
            content_line = Some(line_no);
        }
        offset += line.len();
    }
    if let Some(line) = content_line {
        out.push(Ok(Chunk {
            number: out.len() + 1,
            line,
            text: &text[start..],
            lines_before: start_line - 1,
            json: false,
        }));
    }
    out
}

/// The objects of a JSON stream, or `None` when the text does not start with one (YAML that
/// starts with a flow mapping).
fn split_json(text: &str) -> Option<Vec<Result<Chunk<'_>, ReadError>>> {
    let mut out = Vec::new();
    let stream =
        serde_json::Deserializer::from_str(text).into_iter::<&serde_json::value::RawValue>();
    let (mut counted_to, mut line) = (0, 1);
    for next in stream {
        match next {
            Ok(raw) => {
                let at = raw.get().as_ptr() as usize - text.as_ptr() as usize;
                line += memchr::memchr_iter(b'\n', &text.as_bytes()[counted_to..at]).count();
                counted_to = at;
                out.push(Ok(Chunk {
                    number: out.len() + 1,
                    line,
                    text: raw.get(),
                    lines_before: line - 1,
                    json: true,
                }));
            }
            Err(_) if out.is_empty() => return None,
            Err(e) => {
                out.push(Err(ReadError {
                    number: out.len() + 1,
                    line: e.line(),
                    message: format!(
                        "invalid JSON: {e}; the objects after it are not read: fix it and run again"
                    ),
                }));
                break;
            }
        }
    }
    Some(out)
}

/// Reads one document. `with_order`: also the order of its keys (for a reader that writes the
/// document back).
pub fn read(chunk: &Chunk<'_>, with_order: bool) -> Result<ReadDocument, ReadError> {
    let duplicates = RefCell::new(Vec::new());
    let seed = ValueSeed {
        duplicates: &duplicates,
        with_order,
    };
    let lines_before = chunk.lines_before;
    let (value, order) = if chunk.json {
        let mut de = serde_json::Deserializer::from_str(chunk.text);
        seed.deserialize(&mut de).map_err(|e| ReadError {
            number: chunk.number,
            line: e.line() + lines_before,
            message: format!(
                "invalid JSON: {}",
                e.to_string().replace(
                    &format!("line {}", e.line()),
                    &format!("line {}", e.line() + lines_before)
                )
            ),
        })?
    } else {
        let (options, budget) = yaml::manifest_options_for(chunk.text);
        serde_saphyr::with_deserializer_from_str_with_options(chunk.text, options, |de| {
            seed.deserialize(de)
        })
        .map_err(|e| {
            let (line, message) = yaml::read_error_message(e, &budget, lines_before);
            ReadError {
                number: chunk.number,
                line: line.unwrap_or(chunk.line),
                message: format!("invalid YAML: {message}{}", hint(chunk.text)),
            }
        })?
    };
    let mut duplicates = duplicates.into_inner();
    for d in &mut duplicates {
        d.line = if d.line == 0 {
            chunk.line
        } else {
            d.line + lines_before
        };
    }
    Ok(ReadDocument {
        value,
        order,
        duplicates,
    })
}

/// What to do with the templates users most often hand over unrendered.
fn hint(text: &str) -> &'static str {
    if text.contains("{{") {
        " (a Helm template? render it first: `helm template`)"
    } else {
        ""
    }
}

/// Reads a value and, when asked, its keys' order in one pass; records repeated keys and
/// keeps the last value of each (what kubectl's reader, sigs.k8s.io/yaml, does).
#[derive(Clone, Copy)]
struct ValueSeed<'a> {
    duplicates: &'a RefCell<Vec<Duplicate>>,
    with_order: bool,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = (Value, KeyOrder);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn leaf(value: impl Into<Value>) -> (Value, KeyOrder) {
    (value.into(), KeyOrder::Leaf)
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = (Value, KeyOrder);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(leaf(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(leaf(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(leaf(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        // What serde_json's own Value does with an integer beyond 64 bits.
        Ok(leaf(v as f64))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        Ok(leaf(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(leaf(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(leaf(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(leaf(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(leaf(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(leaf(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        let mut orders = Vec::new();
        while let Some((value, order)) = seq.next_element_seed(self)? {
            values.push(value);
            if self.with_order {
                orders.push(order);
            }
        }
        let order = if self.with_order {
            KeyOrder::Seq(orders)
        } else {
            KeyOrder::Leaf
        };
        Ok((Value::Array(values), order))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = Map::new();
        let mut entries: Vec<(String, KeyOrder)> = Vec::new();
        while let Some(key) = map.next_key::<serde_saphyr::Spanned<Key>>()? {
            let (value, order) = map.next_value_seed(self)?;
            let name = key.value.0;
            if values.contains_key(&name) {
                self.duplicates.borrow_mut().push(Duplicate {
                    key: name.clone(),
                    line: key.referenced.line() as usize,
                });
                if let Some(entry) = entries.iter_mut().find(|(k, _)| *k == name) {
                    entry.1 = order;
                }
            } else if self.with_order {
                entries.push((name.clone(), order));
            }
            values.insert(name, value);
        }
        let order = if self.with_order {
            KeyOrder::Map(entries)
        } else {
            KeyOrder::Leaf
        };
        Ok((Value::Object(values), order))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(text: &str) -> Vec<Result<Value, ReadError>> {
        split(text)
            .into_iter()
            .map(|c| c.and_then(|c| read(&c, true).map(|d| d.value)))
            .collect()
    }

    #[test]
    fn a_broken_document_costs_only_itself_and_its_line_is_counted_in_the_file() {
        let text = "a: 1\n---\n# two\nb: [\n---\nc: 3\n";
        let read = values(text);
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].as_ref().unwrap(), &json!({"a": 1}));
        let err = read[1].as_ref().unwrap_err();
        assert_eq!(err.number, 2);
        assert!(err.line >= 4, "{err:?}");
        assert!(
            err.message.contains(&format!("line {}", err.line)),
            "{err:?}"
        );
        assert_eq!(read[2].as_ref().unwrap(), &json!({"c": 3}));
    }

    #[test]
    fn comment_only_documents_and_markers_are_not_counted() {
        let chunks = split("---\n# header\n---\na: 1\n--- # next\nb: 2\n...\n");
        let numbers: Vec<(usize, usize)> = chunks
            .iter()
            .map(|c| c.as_ref().map(|c| (c.number, c.line)).unwrap())
            .collect();
        assert_eq!(numbers, [(1, 4), (2, 6)]);
        assert!(split("").is_empty());
        assert!(split("# nothing\n---\n").is_empty());
    }

    #[test]
    fn a_repeated_key_keeps_the_last_value_and_is_named_with_its_line() {
        let chunk = split("a: 0\n---\nr:\n  c: 1\n  d: 2\nr:\n  d: 3\n")[1]
            .clone()
            .unwrap();
        let d = read(&chunk, true).unwrap();
        assert_eq!(d.value, json!({"r": {"d": 3}}));
        assert_eq!(
            d.order,
            KeyOrder::Map(vec![(
                "r".into(),
                KeyOrder::Map(vec![("d".into(), KeyOrder::Leaf)])
            )])
        );
        assert_eq!(
            d.duplicates,
            [Duplicate {
                key: "r".into(),
                line: 6
            }]
        );
    }

    #[test]
    fn concatenated_json_objects_are_documents() {
        let read = values("{\"a\": 1}{\"b\": 2}\n{\"c\":\n 3}\n");
        assert_eq!(read.len(), 3);
        assert_eq!(read[2].as_ref().unwrap(), &json!({"c": 3}));
        assert_eq!(
            split("{\"a\": 1}\n\n{\"c\": 3}")[1].as_ref().unwrap().line,
            3
        );
        // A broken object ends the stream with its line.
        let read = values("{\"a\": 1}\n{\"b\": }\n");
        assert_eq!(read[1].as_ref().unwrap_err().line, 2);
        // A YAML flow mapping is YAML, and so are JSON objects between `---` lines.
        assert_eq!(values("{a: 1}\n")[0].as_ref().unwrap(), &json!({"a": 1}));
        let read = values("{\"a\": 1}\n---\n{\"b\": 2}\n");
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].as_ref().unwrap(), &json!({"b": 2}));
    }

    #[test]
    fn values_are_read_as_kubectl_reads_them() {
        assert_eq!(
            values("[no, on, 0755, 1_000, ~, \"no\"]")[0]
                .as_ref()
                .unwrap(),
            &json!([false, true, 493, 1000, null, "no"])
        );
    }

    #[test]
    fn a_helm_template_is_named_as_such() {
        let read = values("metadata:\n  name: {{ include \"x.fullname\" . }}\n");
        let err = read[0].as_ref().unwrap_err();
        assert!(err.message.contains("helm template"), "{err:?}");
        assert_eq!(err.line, 2, "{err:?}");
    }
}
