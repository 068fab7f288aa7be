//! Building blocks every Shutter service shares: ids and time, validated newtypes
//! ("parse, don't validate"), the one client-facing error type rendered as
//! RFC 9457 problem+json, and signed pagination cursors.
//!
//! Nothing here talks to AWS, so every rule in it is unit-tested without a network.

pub mod cursor;
pub mod error;
pub mod ids;
pub mod validate;

pub use cursor::{CursorSigner, Page, PageRequest};
pub use error::{ApiError, Problem};
pub use ids::{
    CommentId, EventId, MediaId, PostId, UserId, new_id, new_id_and_time, now_rfc3339, parse_id,
    rfc3339,
};
