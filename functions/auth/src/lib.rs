//! The auth service. It issues RS256 access tokens that API Gateway's JWT authorizer
//! verifies against the JWKS published here, and opaque refresh tokens that are stored
//! hashed, rotated on every use, and revoke their whole family when a rotated one is
//! replayed.
//!
//! It owns the identity table, which the users service shares: credentials and account
//! data must be checked in the same transactions (see [`store`]).

pub mod handlers;
pub mod keys;
pub mod model;
pub mod password;
pub mod store;

/// The topic that carries this service's events.
pub const IDENTITY_TOPIC: &str = "shutter.identity";
