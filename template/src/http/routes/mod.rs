//! Thin handlers, one module per resource.

pub mod admin;
pub mod auth;
pub mod health;
pub mod me;
pub mod notes;
pub mod oidc;
