//! Integration tests of the strategies, plugins and models on real data (one test binary: each
//! binary links Burn, so the tests are grouped by concept).

// Test code: probes record nested vectors, and hand computations index several arrays at once.
#![allow(clippy::type_complexity, clippy::needless_range_loop)]

#[path = "../common/mod.rs"]
mod common;

mod api;
mod ar1;
mod bad_inputs;
mod callback_order;
mod checkpoint;
mod cope;
mod determinism;
mod divergence;
mod dynamic_models;
mod gem_cwr;
mod gss;
mod icarl;
mod learning;
mod lwf_agem;
mod plugin_capabilities;
mod regularization;
mod rehearsal;
mod replay_methods;
mod rwalk;
mod split_fmnist;
mod streaming_lda;
mod task_incremental;
mod training_plugins;
mod transformed_mnist;
