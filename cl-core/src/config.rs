//! The one configuration idiom of `cl`.
//!
//! Every configurable thing — benchmarks and generators, loaders, storage policies, plugins,
//! strategies, models, the optimizer, the evaluation — is described by a *config*: a plain struct
//! (or an enum where options exclude each other) that
//!
//! - derives serde's `Serialize`/`Deserialize`, so it round-trips through JSON and TOML
//!   ([`ConfigFile`]) and result files can embed it;
//! - starts from Avalanche's defaults (`new(..)` takes only what has no default, `Default` where
//!   nothing is required) and has infallible `with_*` setters;
//! - is checked by one [`Validate::validate`], which tests one *named rule* per condition
//!   ([`rule`]) and reports the first that fails as [`ClError::InvalidConfig`] with the config's
//!   name, the rule's name and the fix. Constructors that take a config (`XPlugin::new(config)`,
//!   `X::builder(.., config)`, `StrategyBuilder::build`) validate it once, so a config that was
//!   accepted never fails later for the same reason.
//!
//! This is `linfa`'s checked hyper-parameters idiom, with serde on top.
//!
//! ```
//! use cl_core::config::{rule, ConfigFile, Validate};
//! use cl_core::Result;
//!
//! #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
//! #[serde(default, deny_unknown_fields)]
//! struct MyConfig { lambda: f64, steps: usize }
//!
//! impl Default for MyConfig {
//!     fn default() -> Self { Self { lambda: 1.0, steps: 10 } }
//! }
//!
//! impl Validate for MyConfig {
//!     fn validate(&self) -> Result<()> {
//!         rule("MyConfig", "lambda_non_negative", self.lambda.is_finite() && self.lambda >= 0.0,
//!             || format!("lambda = {} must be finite and >= 0", self.lambda))?;
//!         rule("MyConfig", "steps_positive", self.steps > 0, || "steps must be at least 1".into())
//!     }
//! }
//!
//! let config = MyConfig::from_toml("lambda = 0.5").unwrap();
//! assert_eq!(config, MyConfig { lambda: 0.5, steps: 10 });
//! assert_eq!(MyConfig::from_json(&config.to_json()).unwrap(), config);
//! let err = MyConfig::from_json(r#"{"lambda": -1.0}"#).unwrap_err();
//! assert_eq!(err.rule(), Some("lambda_non_negative"));
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ClError, Result};

/// A configuration with named validation rules (see the [module docs](self)).
pub trait Validate {
    /// Checks every rule of the configuration; the first rule that fails is the error
    /// ([`ClError::InvalidConfig`], naming the config, the rule and the fix).
    fn validate(&self) -> Result<()>;
}

/// Checks one named rule of a configuration: `Ok` if `holds`, otherwise
/// [`ClError::InvalidConfig`] with `message()` (which should say what is accepted).
pub fn rule(config: &'static str, rule: &'static str, holds: bool, message: impl FnOnce() -> String) -> Result<()> {
    if holds { Ok(()) } else { Err(ClError::InvalidConfig { config, rule, reason: message() }) }
}

/// Whether `v` is a finite number `>= 0` (the most common rule).
pub fn finite_non_negative(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

/// Whether `v` is a finite number `> 0`.
pub fn finite_positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// Reading and writing a configuration as JSON or TOML; implemented for every
/// `Serialize + DeserializeOwned + Validate` type. Reading validates.
pub trait ConfigFile: Serialize + DeserializeOwned + Validate + Sized {
    /// The configuration as pretty-printed JSON.
    fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("configurations serialise to JSON")
    }

    /// The configuration as a JSON value (to embed it in a result file).
    fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("configurations serialise to JSON")
    }

    /// Parses and validates a JSON configuration.
    fn from_json(text: &str) -> Result<Self> {
        let config: Self = serde_json::from_str(text).map_err(|e| ClError::ConfigParse {
            format: "JSON",
            config: short_type_name::<Self>(),
            reason: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration as TOML (an error only for values TOML cannot hold at the top level,
    /// e.g. a configuration that is a bare number).
    fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| ClError::ConfigParse {
            format: "TOML",
            config: short_type_name::<Self>(),
            reason: e.to_string(),
        })
    }

    /// Parses and validates a TOML configuration.
    fn from_toml(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|e| ClError::ConfigParse {
            format: "TOML",
            config: short_type_name::<Self>(),
            reason: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }
}

impl<T: Serialize + DeserializeOwned + Validate> ConfigFile for T {}

/// The last path segment of a type's name (`EwcConfig`), for messages.
pub fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// Test helper: asserts that `result` failed on the rule `rule`, with a message.
#[doc(hidden)]
pub fn assert_rule<T: std::fmt::Debug>(result: Result<T>, rule: &str) {
    match result {
        Err(ClError::InvalidConfig { rule: r, reason, .. }) => {
            assert_eq!(r, rule, "another rule failed: {reason}");
            assert!(!reason.is_empty(), "rule `{rule}` has no message");
        }
        other => panic!("expected rule `{rule}` to fail, got {other:?}"),
    }
}
