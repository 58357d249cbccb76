//! Choosing the backend and device at run time from a string: `flex`, `ndarray`,
//! `libtorch-cpu`, `cuda:N`, `mps`.
//!
//! Examples and `cargo xtask` take `--device NAME`; this module is the one place that turns the
//! name into a [`Device`], and that says which cargo feature a device needs when this build
//! was compiled without it:
//!
//! ```
//! use cl::device::{DeviceChoice, DeviceError, parse_device};
//!
//! let flex = parse_device("flex").unwrap(); // the default feature
//! assert_eq!("cuda:1".parse::<DeviceChoice>().unwrap(), DeviceChoice::LibTorchCuda(1));
//! assert!(matches!("gpu".parse::<DeviceChoice>(), Err(DeviceError::Unknown { .. })));
//! # let _ = flex;
//! ```
//!
//! The LibTorch devices (`libtorch-cpu`, `cuda:N`, `mps`) need the `tch` feature and an
//! installed PyTorch 2.9.0 (`cargo xtask setup-libtorch`, see the README).

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// The names [`DeviceChoice::from_str`] accepts, for help and error messages.
pub const DEVICE_NAMES: &str = "flex, ndarray, libtorch-cpu (alias tch), cuda:N (alias cuda = cuda:0), mps";

/// How to install LibTorch for the `tch` feature, quoted in errors.
pub const LIBTORCH_SETUP_HINT: &str = "build with `--features tch` after `cargo xtask setup-libtorch` and \
`source target/libtorch/env.sh` (PyTorch 2.9.0 from PyPI in a virtualenv under target/; see the README)";

/// A backend and device, parsed from a name; [`DeviceChoice::device`] builds the Burn device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceChoice {
    /// `flex`: Burn's pure-Rust CPU backend (feature `flex`, the default).
    Flex,
    /// `ndarray`: Burn's ndarray CPU backend (feature `ndarray`).
    NdArray,
    /// `libtorch-cpu` (or `tch`): LibTorch on the CPU (feature `tch`).
    LibTorchCpu,
    /// `cuda:N` (or `cuda` for `cuda:0`): LibTorch on CUDA GPU `N` (feature `tch`).
    LibTorchCuda(usize),
    /// `mps`: LibTorch on Apple's Metal Performance Shaders (feature `tch`, macOS only).
    LibTorchMps,
}

/// Why a device name gave no device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The name is none of [`DEVICE_NAMES`].
    #[error("unknown device `{given}`: expected one of {DEVICE_NAMES}")]
    Unknown {
        /// The name given.
        given: String,
    },
    /// `cuda:` followed by something other than a GPU index.
    #[error("bad CUDA device `{given}`: expected `cuda:N` with N the GPU index (0, 1, ...)")]
    BadCudaIndex {
        /// The name given.
        given: String,
    },
    /// The device's backend was not compiled into this build.
    #[error("device `{device}` needs the `{feature}` cargo feature, which this build lacks: {hint}")]
    NotCompiled {
        /// The device asked for (canonical name).
        device: DeviceChoice,
        /// The cargo feature of the root crate `cl` that enables its backend.
        feature: &'static str,
        /// How to get a build with it.
        hint: &'static str,
    },
    /// `mps` on a platform other than macOS.
    #[error("device `mps` (Metal) exists only on macOS; use `libtorch-cpu` or `cuda:N`")]
    MpsUnavailable,
}

impl DeviceChoice {
    /// The cargo feature of `cl` its backend needs.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::LibTorchCpu | Self::LibTorchCuda(_) | Self::LibTorchMps => "tch",
        }
    }

    /// Whether this build has the backend compiled in.
    pub fn is_compiled(self) -> bool {
        match self.feature() {
            "flex" => cfg!(feature = "flex"),
            "ndarray" => cfg!(feature = "ndarray"),
            _ => cfg!(feature = "tch"),
        }
    }

    /// Whether it computes on a GPU.
    pub fn is_gpu(self) -> bool {
        matches!(self, Self::LibTorchCuda(_) | Self::LibTorchMps)
    }

    /// The name of the backend and device for result files: `flex`, `ndarray`, `tch-cpu`,
    /// `tch-cuda:N`, `tch-mps`.
    pub fn backend_name(self) -> String {
        match self {
            Self::Flex => "flex".into(),
            Self::NdArray => "ndarray".into(),
            Self::LibTorchCpu => "tch-cpu".into(),
            Self::LibTorchCuda(i) => format!("tch-cuda:{i}"),
            Self::LibTorchMps => "tch-mps".into(),
        }
    }

    /// The Burn device, or why this build cannot give it. Builds no tensor: a CUDA index with
    /// no GPU behind it fails at the first operation, inside LibTorch.
    pub fn device(self) -> Result<Device, DeviceError> {
        if !self.is_compiled() {
            let hint = match self.feature() {
                "tch" => LIBTORCH_SETUP_HINT,
                "ndarray" => "build with `--features ndarray`",
                _ => "build with the default features or `--features flex`",
            };
            return Err(DeviceError::NotCompiled { device: self, feature: self.feature(), hint });
        }
        if self == Self::LibTorchMps && !cfg!(target_os = "macos") {
            return Err(DeviceError::MpsUnavailable);
        }
        Ok(self.device_unchecked())
    }

    /// The device of a backend known to be compiled in.
    #[allow(deprecated)] // Burn 0.22 marks its ndarray and LibTorch device constructors deprecated.
    fn device_unchecked(self) -> Device {
        match self {
            #[cfg(feature = "flex")]
            Self::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            Self::NdArray => Device::ndarray(),
            #[cfg(feature = "tch")]
            Self::LibTorchCpu => Device::libtorch(),
            #[cfg(feature = "tch")]
            Self::LibTorchCuda(i) => Device::libtorch_cuda(i),
            #[cfg(feature = "tch")]
            Self::LibTorchMps => Device::libtorch_mps(),
            // Unreachable: `device` checked `is_compiled` first.
            #[allow(unreachable_patterns)]
            _ => crate::default_device(),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    /// Parses a device name, case-insensitively; see [`DEVICE_NAMES`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        match name.as_str() {
            "flex" => Ok(Self::Flex),
            "ndarray" => Ok(Self::NdArray),
            "libtorch-cpu" | "libtorch" | "tch" | "tch-cpu" => Ok(Self::LibTorchCpu),
            "cuda" => Ok(Self::LibTorchCuda(0)),
            "mps" | "tch-mps" => Ok(Self::LibTorchMps),
            _ => match name.strip_prefix("cuda:").or_else(|| name.strip_prefix("tch-cuda:")) {
                Some(index) => index
                    .parse::<usize>()
                    .map(Self::LibTorchCuda)
                    .map_err(|_| DeviceError::BadCudaIndex { given: s.to_string() }),
                None => Err(DeviceError::Unknown { given: s.to_string() }),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    /// The canonical name, which [`DeviceChoice::from_str`] parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flex => write!(f, "flex"),
            Self::NdArray => write!(f, "ndarray"),
            Self::LibTorchCpu => write!(f, "libtorch-cpu"),
            Self::LibTorchCuda(i) => write!(f, "cuda:{i}"),
            Self::LibTorchMps => write!(f, "mps"),
        }
    }
}

/// The device named `name` (see [`DEVICE_NAMES`]), or an error saying what is wrong with the
/// name or which cargo feature to enable.
pub fn parse_device(name: &str) -> Result<Device, DeviceError> {
    name.parse::<DeviceChoice>()?.device()
}

/// A warning to print when `choice` is a LibTorch device and `OMP_WAIT_POLICY` is not
/// `PASSIVE` (`wait_policy` is its value): libtorch's OpenMP threads then spin after each
/// operation and starve the threads of the Rust data loaders (SimpleMlp training steps were 15×
/// slower on 2 cores). libgomp reads the variable when the process starts, so it has to be in the
/// environment: `target/libtorch/env.sh` exports it.
pub fn libtorch_threads_warning(choice: DeviceChoice, wait_policy: Option<&str>) -> Option<String> {
    let is_libtorch = choice.feature() == "tch";
    let passive = wait_policy.is_some_and(|v| v.trim().eq_ignore_ascii_case("passive"));
    (is_libtorch && !passive).then(|| {
        "warning: OMP_WAIT_POLICY is not PASSIVE: libtorch's OpenMP threads will spin and slow the data \
         loaders' threads (15x slower SimpleMlp steps measured on 2 cores); run `export OMP_WAIT_POLICY=PASSIVE` \
         (target/libtorch/env.sh does) before starting the program"
            .to_string()
    })
}

/// The devices this build can give, in [`DEVICE_NAMES`] order, CPU ones only (a GPU's
/// presence is only known by using it).
pub fn compiled_cpu_devices() -> Vec<DeviceChoice> {
    [DeviceChoice::Flex, DeviceChoice::NdArray, DeviceChoice::LibTorchCpu]
        .into_iter()
        .filter(|d| d.is_compiled())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for (name, choice) in [
            ("flex", DeviceChoice::Flex),
            ("ndarray", DeviceChoice::NdArray),
            ("libtorch-cpu", DeviceChoice::LibTorchCpu),
            ("cuda:0", DeviceChoice::LibTorchCuda(0)),
            ("cuda:3", DeviceChoice::LibTorchCuda(3)),
            ("mps", DeviceChoice::LibTorchMps),
        ] {
            assert_eq!(name.parse::<DeviceChoice>(), Ok(choice));
            assert_eq!(choice.to_string(), name);
        }
    }

    #[test]
    fn aliases_and_case() {
        assert_eq!("tch".parse(), Ok(DeviceChoice::LibTorchCpu));
        assert_eq!("LibTorch".parse(), Ok(DeviceChoice::LibTorchCpu));
        assert_eq!(" FLEX ".parse(), Ok(DeviceChoice::Flex));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::LibTorchCuda(0)));
        assert_eq!("tch-cuda:2".parse(), Ok(DeviceChoice::LibTorchCuda(2)));
    }

    #[test]
    fn bad_names_are_errors_that_list_the_choices() {
        let e = "gpu".parse::<DeviceChoice>().unwrap_err();
        assert_eq!(e, DeviceError::Unknown { given: "gpu".into() });
        assert!(e.to_string().contains("libtorch-cpu") && e.to_string().contains("cuda:N"));
        for bad in ["cuda:", "cuda:x", "cuda:-1", "cuda:0:1"] {
            let e = bad.parse::<DeviceChoice>().unwrap_err();
            assert_eq!(e, DeviceError::BadCudaIndex { given: bad.into() }, "{bad}");
        }
        assert!(matches!(parse_device(""), Err(DeviceError::Unknown { .. })));
    }

    #[test]
    fn features_and_backend_names() {
        assert_eq!(DeviceChoice::Flex.feature(), "flex");
        assert_eq!(DeviceChoice::NdArray.feature(), "ndarray");
        assert_eq!(DeviceChoice::LibTorchCuda(1).feature(), "tch");
        assert_eq!(DeviceChoice::LibTorchCuda(1).backend_name(), "tch-cuda:1");
        assert_eq!(DeviceChoice::LibTorchCpu.backend_name(), "tch-cpu");
        assert!(DeviceChoice::LibTorchCuda(0).is_gpu() && !DeviceChoice::LibTorchCpu.is_gpu());
        assert_eq!(DeviceChoice::Flex.is_compiled(), cfg!(feature = "flex"));
        assert_eq!(DeviceChoice::LibTorchCpu.is_compiled(), cfg!(feature = "tch"));
    }

    #[test]
    fn a_backend_left_out_names_its_feature_and_the_setup() {
        #[cfg(not(feature = "tch"))]
        {
            let e = parse_device("libtorch-cpu").unwrap_err();
            assert!(matches!(e, DeviceError::NotCompiled { feature: "tch", .. }));
            let msg = e.to_string();
            assert!(msg.contains("--features tch"), "{msg}");
            assert!(msg.contains("cargo xtask setup-libtorch"), "{msg}");
            assert!(matches!(parse_device("cuda:0"), Err(DeviceError::NotCompiled { feature: "tch", .. })));
        }
        #[cfg(not(feature = "ndarray"))]
        {
            let e = parse_device("ndarray").unwrap_err();
            assert!(e.to_string().contains("--features ndarray"), "{e}");
        }
        #[cfg(feature = "flex")]
        {
            let device = parse_device("flex").unwrap();
            // A real device: a tensor made on it lives there.
            let t = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &device);
            assert_eq!(t.sum().into_data().try_to_vec::<f32>().unwrap(), vec![3.0]);
        }
        assert_eq!(compiled_cpu_devices().contains(&DeviceChoice::Flex), cfg!(feature = "flex"));
    }

    #[test]
    fn libtorch_spinning_threads_warning() {
        assert!(libtorch_threads_warning(DeviceChoice::LibTorchCpu, None).unwrap().contains("OMP_WAIT_POLICY=PASSIVE"));
        assert!(libtorch_threads_warning(DeviceChoice::LibTorchCuda(0), Some("active")).is_some());
        assert_eq!(libtorch_threads_warning(DeviceChoice::LibTorchCpu, Some("passive")), None);
        assert_eq!(libtorch_threads_warning(DeviceChoice::LibTorchCpu, Some("PASSIVE")), None);
        assert_eq!(libtorch_threads_warning(DeviceChoice::Flex, None), None);
    }

    #[test]
    fn mps_only_on_macos() {
        if cfg!(feature = "tch") && !cfg!(target_os = "macos") {
            assert_eq!(parse_device("mps").unwrap_err(), DeviceError::MpsUnavailable);
        }
        if !cfg!(feature = "tch") {
            assert!(matches!(parse_device("mps"), Err(DeviceError::NotCompiled { .. })));
        }
    }
}
