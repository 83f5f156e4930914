//! Building the RFC 6902 patch.
//!
//! Operations are written against the pod *as the API server sent it*: only `add` operations,
//! each on a member podgrace owns (`lifecycle/preStop`, one env entry, `readinessProbe`, one
//! annotation, …). `add` on an existing object member replaces just that member, and list entries
//! are appended with `/-`, so fields unknown to k8s-openapi are never rewritten and no operation
//! depends on a value it did not read.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::Value;

/// Accumulates `add` operations in a deterministic order.
#[derive(Debug)]
pub struct PatchBuilder {
    ops: Vec<PatchOperation>,
}

impl Default for PatchBuilder {
    fn default() -> Self {
        // A single-container pod gets about seven operations; room for them from the start
        // spares regrowing the list on the way.
        PatchBuilder {
            ops: Vec::with_capacity(8),
        }
    }
}

impl PatchBuilder {
    /// Sets `path` (an object member) to `value`, creating or replacing it.
    pub fn set<'a, P>(&mut self, path: P, value: Value)
    where
        P: IntoIterator<Item = &'a str>,
        P::IntoIter: Clone,
    {
        self.ops.push(PatchOperation::Add(AddOperation {
            path: pointer(path),
            value,
        }));
    }

    /// Adds `items` to the list at `path`: as a new list when `exists` is false, else appended
    /// one by one.
    pub fn extend_list<'a, P>(&mut self, path: P, exists: bool, items: Vec<Value>)
    where
        P: IntoIterator<Item = &'a str>,
        P::IntoIter: Clone,
    {
        if items.is_empty() {
            return;
        }
        let path = path.into_iter();
        if exists {
            for item in items {
                self.ops.push(PatchOperation::Add(AddOperation {
                    path: pointer(path.clone().chain(["-"])),
                    value: item,
                }));
            }
        } else {
            self.set(path, Value::Array(items));
        }
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The finished patch.
    pub fn finish(self) -> Patch {
        Patch(self.ops)
    }
}

/// The JSON pointer (RFC 6901) to `tokens`, built in one allocation of the right size
/// (`PointerBuf::from_tokens` grows its string token by token: a quarter of the engine's
/// allocations were that). Tokens are copied whole; only one holding `~` or `/` (an annotation
/// key such as `podgrace.io/injected`) is escaped character by character, which for every
/// token was a fifth of the engine's time (bench/results/criterion.md, "One admission without
/// sockets, after issue 30").
fn pointer<'a, P>(tokens: P) -> PointerBuf
where
    P: IntoIterator<Item = &'a str>,
    P::IntoIter: Clone,
{
    let needs_escape = |b: &u8| matches!(b, b'~' | b'/');
    let tokens = tokens.into_iter();
    let len = tokens
        .clone()
        .map(|t| 1 + t.len() + t.bytes().filter(needs_escape).count())
        .sum();
    let mut text = String::with_capacity(len);
    for token in tokens.clone() {
        text.push('/');
        if !token.bytes().any(|b| needs_escape(&b)) {
            text.push_str(token);
            continue;
        }
        for c in token.chars() {
            match c {
                '~' => text.push_str("~0"),
                '/' => text.push_str("~1"),
                c => text.push(c),
            }
        }
    }
    // Escaped as above, the text is a valid pointer; jsonptr checks it all the same.
    PointerBuf::parse(text).unwrap_or_else(|_| PointerBuf::from_tokens(tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #[test]
        fn pointers_are_those_jsonptr_builds(tokens in proptest::collection::vec("[a-z~/0-9.-]{0,8}", 0..6)) {
            let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
            let ours = pointer(refs.iter().copied());
            prop_assert_eq!(ours, PointerBuf::from_tokens(refs.iter().copied()));
        }
    }

    #[test]
    fn lists_are_created_or_appended_and_keys_are_escaped() {
        let mut b = PatchBuilder::default();
        b.extend_list(
            ["spec", "containers", "0", "env"],
            false,
            vec![json!(1), json!(2)],
        );
        b.extend_list(["spec", "volumes"], true, vec![json!("v")]);
        b.set(["metadata", "annotations", "podgrace.io/x"], json!("y"));
        let patch = serde_json::to_value(b.finish()).unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "add", "path": "/spec/containers/0/env", "value": [1, 2]},
                {"op": "add", "path": "/spec/volumes/-", "value": "v"},
                {"op": "add", "path": "/metadata/annotations/podgrace.io~1x", "value": "y"},
            ])
        );
    }
}
