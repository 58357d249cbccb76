// Build script of `cl` (also included by `xtask/build.rs`): with the `tch` feature, an RPATH to
// the LibTorch libraries that `torch-sys` linked (its `links` metadata DEP_TCH_LIBTORCH_LIB: the
// wheel's `torch/lib` with LIBTORCH_USE_PYTORCH=1), so binaries, tests and examples run without
// `LD_LIBRARY_PATH`. Without `tch` it does nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB")
        && !dir.is_empty()
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows")
    {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
