//! Manifests as users have them: files split into documents as kubectl splits them
//! ([`documents`]), each document read alone with its keys' order kept for writing it back
//! ([`key_order`]), fields the API does not know found ([`known_fields`]), and the workloads in
//! them found and read ([`objects`]). [`files`] is the only part that touches the file system.

pub mod documents;
pub(crate) mod files;
pub(crate) mod key_order;
pub(crate) mod known_fields;
pub mod objects;

pub use self::objects::*;
