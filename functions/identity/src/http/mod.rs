//! The HTTP adapters: each parses its request into typed values, calls one use case of
//! the [`App`](crate::App) and renders its answer. No rule and no storage here; the
//! `#[utoipa::path]` attributes on them generate the OpenAPI document.

pub mod account;
pub mod auth;

use shutter_core::ApiError;
use shutter_http::lambda_http::{Body, Response};

pub type ApiResult = Result<Response<Body>, ApiError>;
