//! The policy layer: the file format, its validation, and how layers merge into the settings of
//! one container. Pure data and functions; no I/O (callers hand in text and metadata).

pub(crate) mod annotations;
pub(crate) mod defaults;
pub(crate) mod effective;
pub(crate) mod error;
pub(crate) mod merge;
pub(crate) mod notes;
pub mod parse;
pub(crate) mod resolved;
pub(crate) mod seconds;
pub(crate) mod spec;
pub(crate) mod validate;

pub use effective::{EffectivePolicy, Resolution};
pub use error::{FieldError, PolicyError};
pub use parse::{Origin, POLICY_KEY, PolicyLayer, load_layer};
pub use resolved::{
    Action, AdaptiveDrain, ContainerPolicy, Drain, NacosAction, NacosAuth, Readiness, Startup,
};
pub use seconds::Seconds;
pub use spec::PolicySpec;
