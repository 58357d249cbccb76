//! Integration tests of the metrics, the loggers and their files (one test binary).

mod support;

mod loggers_files;
mod metrics_mac;
mod metrics_names;
mod metrics_strategy;
mod metrics_values;
