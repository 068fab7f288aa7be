//! The comments service: comments on posts, one level of replies, edits, deletes and
//! comment likes.
//!
//! `POST /v1/posts/{id}/comments` checks the comment and answers 202 with it as it will be
//! stored; the write itself rides the `CommentWritesQueue` to `comments-writer`, which
//! stores it with its `CommentAdded` event exactly once however often SQS delivers it.
//! Who may comment on or read a post comes from this service's own copy of authors and
//! published posts (`shutter-directory`), kept by `comments-directory-events`, which also
//! erases the comments of deleted posts and deleted users.

pub mod consumers;
pub mod handlers;
pub mod model;
pub mod store;

/// The topic that carries this service's events (keyed by post id).
pub const COMMENTS_TOPIC: &str = "shutter.comments";
