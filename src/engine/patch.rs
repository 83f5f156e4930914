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
#[derive(Debug, Default)]
pub struct PatchBuilder {
    ops: Vec<PatchOperation>,
}

impl PatchBuilder {
    /// Sets `path` (an object member) to `value`, creating or replacing it.
    pub fn set<'a>(&mut self, path: impl IntoIterator<Item = &'a str>, value: Value) {
        self.ops.push(PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(path),
            value,
        }));
    }

    /// Adds `items` to the list at `path`: as a new list when `exists` is false, else appended
    /// one by one.
    pub fn extend_list<'a>(
        &mut self,
        path: impl IntoIterator<Item = &'a str> + Clone,
        exists: bool,
        items: Vec<Value>,
    ) {
        if items.is_empty() {
            return;
        }
        if exists {
            for item in items {
                let mut pointer = PointerBuf::from_tokens(path.clone());
                pointer.push_back("-");
                self.ops.push(PatchOperation::Add(AddOperation {
                    path: pointer,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
