//! `envgate serve`: the GitHub App webhook bot.

pub mod config;
pub mod metrics;
