//! The payload of every event: one struct per shape, shared by its producer and every
//! consumer. Fields are only ever added (with a default), never renamed or retyped: a
//! breaking change is a new event type.

use serde::{Deserialize, Serialize};
use shutter_core::{CommentId, MediaId, PostId, UserId};
use utoipa::ToSchema;

// ---------------------------------------------------------------- identity

/// `UserRegistered`: an account was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserRegistered {
    pub user_id: UserId,
    pub username: String,
    /// RFC 3339
    pub created_at: String,
}

/// `UserEmailChanged`: the account's email changed. The address itself stays in the
/// identity service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserEmailChanged {
    pub user_id: UserId,
}

/// `UserDeleted`: every service erases what it holds of the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserDeleted {
    pub user_id: UserId,
    pub username: String,
}

/// `UserSuspended`: staff suspended the account until `until`, or banned it (`banned`,
/// no `until`). Services refuse its writes (and hide a banned account's content) while it
/// holds; a copy keeps only the highest `seq` of the account's suspensions and
/// reinstatements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserSuspended {
    pub user_id: UserId,
    pub username: String,
    pub banned: bool,
    /// RFC 3339; absent for a ban
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Grows by one on every suspension or reinstatement of the account.
    pub seq: u64,
}

/// `UserReinstated`: staff lifted the account's suspension or ban before its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserReinstated {
    pub user_id: UserId,
    pub username: String,
    /// As [`UserSuspended::seq`].
    pub seq: u64,
}

/// What staff removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemovedKind {
    Post,
    Comment,
}

/// Why and when staff removed a post or comment: kept on it for good and shown to its
/// author (whom alone, with staff, it is still shown to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Removal {
    /// The moderator's note.
    pub note: String,
    /// RFC 3339
    pub removed_at: String,
}

/// `ContentRemoved`: staff removed a post or a comment for breaking the rules. It is
/// hidden from everyone but its author, who is told why; the removal is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContentRemoved {
    pub kind: RemovedKind,
    /// The post's or the comment's id.
    pub target_id: String,
    /// The post (the comment's post, for a comment).
    pub post_id: PostId,
    pub author_id: UserId,
    /// The moderator's note, shown to the author.
    pub note: String,
    pub removed_by: UserId,
    /// RFC 3339
    pub removed_at: String,
}

/// `RegistrationWithTakenEmail`: a registration named the email of the account
/// `user_id`; nothing was created. For the message that tells the owner (the address
/// itself stays in the identity service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegistrationWithTakenEmail {
    pub user_id: UserId,
    /// The username the registration asked for.
    pub attempted_username: String,
    /// RFC 3339
    pub at: String,
}

// ---------------------------------------------------------------- profiles

/// `ProfileUpdated` and `AvatarChanged`: a profile's public fields after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProfileFacts {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub private: bool,
    /// The avatar's stored object, if the user has one.
    pub avatar_key: Option<String>,
    /// Grows by one on every change of the profile: consumers keep the highest, so a
    /// redelivered older event changes nothing. 0 from a producer that did not count.
    #[serde(default)]
    pub version: u64,
    /// While the account is private: when it turned private (RFC 3339). A follow that
    /// started on its own at or after it was decided on a stale copy of the privacy, and
    /// goes back to a pending request when this event arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_since: Option<String>,
}

// ---------------------------------------------------------------- posts

/// A ready media item as events carry it: its type and stored objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MediaFacts {
    pub id: MediaId,
    /// image/jpeg, image/png, image/webp or video/mp4
    pub content_type: String,
    pub display_key: String,
    #[serde(default)]
    pub thumbnail_key: Option<String>,
}

/// `PostCreated`, `PostPublished` and `PostUpdated`: a post's facts at that moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostFacts {
    pub post_id: PostId,
    pub author_id: UserId,
    pub caption: String,
    pub location: Option<String>,
    /// Lower-cased, without '#', in order of appearance.
    pub hashtags: Vec<String>,
    /// The mentioned users' ids.
    pub mentions: Vec<UserId>,
    /// RFC 3339
    pub created_at: String,
    /// Grows by one on every change of the post; consumers keep the highest.
    pub version: u64,
    /// The ready media, in order (media still processing or failed are left out).
    #[serde(default)]
    pub media: Vec<MediaFacts>,
}

/// `PostDeleted`: the post and everything hanging from it is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostDeleted {
    pub post_id: PostId,
    pub author_id: UserId,
    /// The author, a moderator, or the author's account deletion.
    pub deleted_by: UserId,
}

/// `PostEngagementChanged`: how one counter transaction moved a post's counters. Applied
/// once per event id, it keeps an exact copy of the counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EngagementChanged {
    pub post_id: PostId,
    pub like_delta: i64,
    pub comment_delta: i64,
}

// ---------------------------------------------------------------- likes

/// `LikeAdded` and `LikeRemoved`: one user's like of a post; `seq` orders one
/// (post, user) pair's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LikeFacts {
    pub post_id: PostId,
    pub post_author_id: UserId,
    pub user_id: UserId,
    pub seq: u64,
    /// RFC 3339
    pub at: String,
}

// ---------------------------------------------------------------- comments

/// Who wrote a comment, or who is mentioned in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserRef {
    pub id: UserId,
    pub username: String,
}

/// `CommentAdded`: a comment was stored. The posts service counts each `comment_id` once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommentAdded {
    pub comment_id: CommentId,
    pub post_id: PostId,
    pub author_id: UserId,
    /// The top-level comment this one answers, if it is a reply.
    pub reply_to: Option<CommentId>,
    pub text: String,
    pub hashtags: Vec<String>,
    pub mentions: Vec<UserRef>,
    /// RFC 3339
    pub created_at: String,
}

/// `CommentEdited`: a comment's text after the edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommentEdited {
    pub comment_id: CommentId,
    pub post_id: PostId,
    pub author_id: UserId,
    pub text: String,
    pub hashtags: Vec<String>,
    pub mentions: Vec<UserRef>,
}

/// `CommentDeleted`: one per deleted comment (a deleted thread's replies each get one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommentDeleted {
    pub comment_id: CommentId,
    pub post_id: PostId,
    pub author_id: UserId,
    pub deleted_by: UserId,
}

/// `CommentLikeAdded` and `CommentLikeRemoved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommentLikeFacts {
    pub comment_id: CommentId,
    pub post_id: PostId,
    pub user_id: UserId,
}

// ---------------------------------------------------------------- follows

/// Why a follow or a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The follower unfollowed or withdrew the request.
    Withdrawn,
    /// The followee declined the request.
    Declined,
    /// One of the two blocked the other.
    Blocked,
    /// One of the two deleted their account.
    AccountDeleted,
    /// The followee's account had turned private before the follow started (it was
    /// decided on a stale copy of the privacy): the follow goes back to a pending request,
    /// which a `FollowRequested` with the next `seq` reports.
    AwaitsApproval,
}

/// `FollowRequested`, `FollowRequestCancelled`, `FollowStarted` and `FollowEnded`: a
/// follower-to-followee edge moved; `seq` orders one edge's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EdgeFacts {
    pub follower_id: UserId,
    pub followee_id: UserId,
    pub seq: u64,
    /// RFC 3339
    pub at: String,
    /// Why the edge ended (on `FollowEnded` and `FollowRequestCancelled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<EndReason>,
}

/// `UserBlocked` and `UserUnblocked`; `seq` orders one pair's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockFacts {
    pub blocker_id: UserId,
    pub blocked_id: UserId,
    pub seq: u64,
    /// RFC 3339
    pub at: String,
}
