//! The policy layer: the file format, its validation, and how layers merge into the settings of
//! one container. Pure data and functions; no I/O (callers hand in text and metadata).

pub mod annotations;
pub mod defaults;
pub mod effective;
pub mod error;
pub mod merge;
pub mod notes;
pub mod parse;
pub mod resolved;
pub mod seconds;
pub mod spec;
pub mod validate;

pub use effective::{EffectivePolicy, Resolution};
pub use error::{FieldError, PolicyError};
pub use parse::{Origin, POLICY_KEY, PolicyLayer, load_layer};
pub use resolved::{
    Action, AdaptiveDrain, ContainerPolicy, Drain, NacosAction, NacosAuth, Readiness, Startup,
};
pub use seconds::Seconds;
pub use spec::PolicySpec;
