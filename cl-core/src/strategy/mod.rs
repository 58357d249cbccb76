//! The strategy template: state, clock, plugins, overridable steps, evaluator and the loop.

mod clock;
mod evaluator;
mod plugin;
mod state;
pub mod steps;
mod template;

pub use clock::Clock;
pub use evaluator::{Evaluator, MetricResults, NoMetrics};
pub use plugin::{Callback, Plugin, StatePart, dispatch};
pub use state::StrategyState;
pub use steps::{DefaultSteps, TemplateSteps};
pub use template::{AsExperiences, PevalMode, Strategy, StrategyBuilder};
