//! Experiences, streams and benchmarks.

mod benchmark;
mod experience;
mod stream;

pub use benchmark::Benchmark;
pub use experience::Experience;
pub use stream::Stream;
