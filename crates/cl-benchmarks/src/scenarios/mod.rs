//! Scenario generators over any classification dataset.

mod nc;

pub use nc::{NcConfig, nc_benchmark};
