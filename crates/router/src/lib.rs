//! The HTTP path of a Strait router.

pub mod stats;
