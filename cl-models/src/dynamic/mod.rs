//! Dynamic output layers (Avalanche's `DynamicModule`s): they change at model adaptation.

/// The configuration shared by [`IncrementalClassifierConfig`] and [`MultiHeadConfig`]:
/// Avalanche's `IncrementalClassifier` and `MultiHeadClassifier` take the same arguments
/// `(in_features, initial_out_features=2, masking=True, mask_value=-1000)`. One definition of
/// the fields, their defaults, setters and rules; each type keeps its own docs and `init`.
macro_rules! dynamic_head_config {
    ($(#[$doc:meta])* $name:ident, seed: $seed_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Input features (required: Avalanche has no default).
            pub in_features: usize,
            /// Outputs of a new layer, before any adaptation (2).
            #[serde(default = "crate::dynamic::default_initial_out_features")]
            pub initial_out_features: usize,
            /// Whether the outputs of classes not trained on yet are set to `mask_value` (true).
            #[serde(default = "crate::dynamic::default_masking")]
            pub masking: bool,
            /// The value of masked outputs (-1000).
            #[serde(default = "crate::dynamic::default_mask_value")]
            pub mask_value: f32,
            #[doc = $seed_doc]
            #[serde(default)]
            pub seed: u64,
        }

        impl $name {
            /// A configuration for `in_features` inputs, with Avalanche's defaults for the rest.
            pub fn new(in_features: usize) -> Self {
                Self {
                    in_features,
                    initial_out_features: crate::dynamic::default_initial_out_features(),
                    masking: crate::dynamic::default_masking(),
                    mask_value: crate::dynamic::default_mask_value(),
                    seed: 0,
                }
            }

            /// Sets [`in_features`](Self::in_features).
            pub fn with_in_features(mut self, in_features: usize) -> Self {
                self.in_features = in_features;
                self
            }

            /// Sets [`initial_out_features`](Self::initial_out_features).
            pub fn with_initial_out_features(mut self, initial_out_features: usize) -> Self {
                self.initial_out_features = initial_out_features;
                self
            }

            /// Sets [`masking`](Self::masking).
            pub fn with_masking(mut self, masking: bool) -> Self {
                self.masking = masking;
                self
            }

            /// Sets [`mask_value`](Self::mask_value).
            pub fn with_mask_value(mut self, mask_value: f32) -> Self {
                self.mask_value = mask_value;
                self
            }

            /// Sets [`seed`](Self::seed).
            pub fn with_seed(mut self, seed: u64) -> Self {
                self.seed = seed;
                self
            }
        }

        impl cl_core::config::Validate for $name {
            fn validate(&self) -> cl_core::Result<()> {
                use cl_core::config::rule;
                const C: &str = stringify!($name);
                rule(C, "in_features_positive", self.in_features > 0, || "in_features must be at least 1".into())?;
                rule(C, "initial_out_features_positive", self.initial_out_features > 0, || {
                    "initial_out_features must be at least 1".into()
                })?;
                rule(C, "mask_value_finite", self.mask_value.is_finite(), || {
                    format!("mask_value = {} must be a finite number", self.mask_value)
                })
            }
        }
    };
}

pub(crate) mod incremental;
mod multi_head;

pub use incremental::{IncrementalClassifier, IncrementalClassifierConfig};
pub use multi_head::{MultiHeadClassifier, MultiHeadConfig};

pub(crate) fn default_initial_out_features() -> usize {
    2
}

pub(crate) fn default_masking() -> bool {
    true
}

pub(crate) fn default_mask_value() -> f32 {
    -1000.0
}
