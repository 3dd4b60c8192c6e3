//! distlog: logging for distributed applications.
#![warn(missing_docs)]

pub mod record;
pub mod render;
pub mod wire;
