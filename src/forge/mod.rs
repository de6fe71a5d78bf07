//! Clients for the forges the bot talks to.

pub mod github;
