//! What the parser refuses, so that a filter's cost is bounded before it
//! is compiled: the source's length and its nesting depth.

/// The deepest nesting of parentheses and `not` accepted.
pub(crate) const MAX_DEPTH: usize = 64;
/// The longest source accepted, in bytes.
pub(crate) const MAX_SOURCE: usize = 1 << 20;
