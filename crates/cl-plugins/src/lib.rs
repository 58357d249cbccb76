//! # cl-plugins
//!
//! Plugins for the `cl-core` strategy template (replay, regularisation, gradient projection and
//! training control arrive in later issues; see the `Plugin` trait in `cl-core`).

#![warn(missing_docs)]

