//! envgate: one migration pipeline, many targets.
//!
//! The [`core`] is pure (discovery, hashing, matrix); [`target`] and
//! [`ledger`] reach databases; [`cli`] wires them to the command line.

pub mod apply;
pub mod cli;
pub mod config;
pub mod control;
pub mod core;
pub mod forge;
pub mod git;
pub mod ledger;
pub mod ops;
pub mod queue;
pub mod render;
pub mod report;
pub mod secrets;
pub mod serve;
pub mod target;
