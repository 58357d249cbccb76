// The same build script as the root crate's: with the `tch` feature, an RPATH to LibTorch.
include!("../build.rs");
