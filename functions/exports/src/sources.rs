//! Where an export's lines come from: each section is read from the service that owns it,
//! through that service's own storage port (its crate's trait, its adapter, its table
//! layout), never by knowing another service's keys. The worker holds read access to the
//! owning tables for this, and only this (template.yaml: read policies).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use shutter_comments::store::CommentsReader;
use shutter_comments::store::dynamo::DynamoCommentsStore;
use shutter_core::{CommentId, PostId, UserId};
use shutter_follows::store::dynamo::DynamoFollowsStore;
use shutter_follows::store::{BlocksExport, FollowsStore, List};
use shutter_identity::store::IdentityStore;
use shutter_identity::store::dynamo::DynamoIdentityStore;
use shutter_likes::store::LikesExport;
use shutter_likes::store::dynamo::DynamoLikesStore;
use shutter_media::S3MediaStore;
use shutter_posts::model::Post;
use shutter_posts::store::dynamo::DynamoPostsStore;
use shutter_posts::store::{Index, PostsStore};
use shutter_profiles::store::ProfilesStore;
use shutter_profiles::store::dynamo::DynamoProfilesStore;
use shutter_store::{ConfigError, SdkConfig, StoreError, StoreResult, Table};

use crate::model::{Page, Section, line};

/// An account's data, a page of a section at a time, as archive lines.
#[async_trait]
pub trait Sources: Send + Sync {
    /// Up to `limit` items of `section` of `user`'s data after position `after` (a
    /// position an earlier page of the same section ended on).
    async fn page(
        &self,
        user: &UserId,
        section: Section,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page>;
}

/// The deployed sources: each owning service's DynamoDB adapter, and the media bucket to
/// sign links to a post's media with.
#[derive(Debug, Clone)]
pub struct LiveSources {
    pub identity: DynamoIdentityStore,
    pub profiles: DynamoProfilesStore,
    pub posts: DynamoPostsStore,
    pub comments: DynamoCommentsStore,
    pub likes: DynamoLikesStore,
    pub follows: DynamoFollowsStore,
    pub media: S3MediaStore,
    /// How long a media link in the archive holds.
    pub link: Duration,
}

impl LiveSources {
    pub fn from_env(aws: &SdkConfig, link: Duration) -> Result<Self, ConfigError> {
        Ok(Self {
            identity: DynamoIdentityStore {
                table: Table::from_env(aws, "IDENTITY_TABLE")?,
            },
            profiles: DynamoProfilesStore {
                table: Table::from_env(aws, "PROFILES_TABLE")?,
            },
            posts: DynamoPostsStore {
                table: Table::from_env(aws, "POSTS_TABLE")?,
            },
            comments: DynamoCommentsStore {
                table: Table::from_env(aws, "COMMENTS_TABLE")?,
            },
            likes: DynamoLikesStore {
                table: Table::from_env(aws, "LIKES_TABLE")?,
            },
            follows: DynamoFollowsStore {
                table: Table::from_env(aws, "FOLLOWS_TABLE")?,
            },
            media: S3MediaStore::from_env(aws)?,
            link,
        })
    }

    async fn account(&self, user: &UserId) -> StoreResult<Page> {
        let Some(account) = self.identity.account(user).await? else {
            return Err(StoreError::NotFound);
        };
        // Never the password hash nor the refresh epoch: what the owner sees of their
        // account (`GET /v1/users/me`).
        let mut lines = vec![line(
            "account",
            json!({
                "user_id": account.user_id,
                "username": account.username.as_str(),
                "email": account.email.as_str(),
                "roles": account.roles,
                "settings": account.settings,
                "created_at": account.created_at,
                "updated_at": account.updated_at,
            }),
        )];
        if let Some(profile) = self.profiles.by_id(user).await? {
            let mut value = serde_json::to_value(&profile).map_err(StoreError::corrupt)?;
            if let Some(avatar) = &profile.avatar_key {
                value["avatar_url"] = Value::String(self.media_link(avatar).await?);
            }
            lines.push(line("profile", value));
        }
        Ok(Page { lines, next: None })
    }

    async fn media_link(&self, key: &str) -> StoreResult<String> {
        self.media.presigned_get(key, self.link).await
    }

    async fn post_line(&self, post: &Post) -> StoreResult<Value> {
        let mut media = Vec::new();
        for m in &post.media {
            let url = match &m.display_key {
                Some(key) => Some(self.media_link(key).await?),
                None => None,
            };
            let thumbnail_url = match &m.thumbnail_key {
                Some(key) => Some(self.media_link(key).await?),
                None => None,
            };
            media.push(json!({
                "id": m.id,
                "media_type": m.media_type,
                "status": m.status,
                "url": url,
                "thumbnail_url": thumbnail_url,
            }));
        }
        Ok(line(
            "post",
            json!({
                "id": post.id,
                "caption": post.caption,
                "location": post.location,
                "hashtags": post.hashtags,
                "mentions": post.mentions,
                "status": post.status,
                "media": media,
                "like_count": post.like_count,
                "comment_count": post.comment_count,
                "created_at": post.created_at,
                "published_at": post.published_at,
            }),
        ))
    }

    async fn posts(&self, user: &UserId, after: Option<&str>, limit: usize) -> StoreResult<Page> {
        let index = self
            .posts
            .page(&Index::Author(user.clone()), limit, after)
            .await?;
        let ids: Vec<PostId> = index.entries.iter().map(|e| e.post_id.clone()).collect();
        let mut lines = Vec::new();
        for post in self.posts.posts(&ids).await? {
            lines.push(self.post_line(&post).await?);
        }
        Ok(Page {
            lines,
            next: index.next,
        })
    }

    async fn comments(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page> {
        let after = after.map(CommentId::trusted);
        let ids = self.comments.by_author(user, after.as_ref(), limit).await?;
        let next = next_after(&ids, limit, |id| id.to_string());
        let mut lines = Vec::new();
        for id in &ids {
            // A comment deleted since it was listed is not the user's any more.
            if let Some(comment) = self.comments.comment(id).await? {
                let value = serde_json::to_value(&comment).map_err(StoreError::corrupt)?;
                lines.push(line("comment", value));
            }
        }
        Ok(Page { lines, next })
    }

    async fn comment_likes(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page> {
        let after = after.map(CommentId::trusted);
        let ids = self
            .comments
            .liked_comments(user, after.as_ref(), limit)
            .await?;
        let next = next_after(&ids, limit, |id| id.to_string());
        let lines = ids
            .iter()
            .map(|id| line("comment_like", json!({"comment_id": id})))
            .collect();
        Ok(Page { lines, next })
    }

    async fn likes(&self, user: &UserId, after: Option<&str>, limit: usize) -> StoreResult<Page> {
        let (likes, next) = self.likes.likes_of(user, after, limit).await?;
        let lines = likes
            .iter()
            .map(|l| {
                line(
                    "like",
                    json!({"post_id": l.post_id, "post_author_id": l.post_author_id, "liked_at": l.at}),
                )
            })
            .collect();
        Ok(Page { lines, next })
    }

    async fn edges(
        &self,
        user: &UserId,
        list: List,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page> {
        let entries = self.follows.list(list, user, after, limit).await?;
        let next = next_after(&entries, limit, |e| e.position.clone());
        let lines = entries
            .iter()
            .map(|e| line(kind, json!({"user_id": e.user_id, "since": e.at})))
            .collect();
        Ok(Page { lines, next })
    }

    async fn blocks(&self, user: &UserId, after: Option<&str>, limit: usize) -> StoreResult<Page> {
        let (blocks, next) = self.follows.blocks_by(user, after, limit).await?;
        let lines = blocks
            .iter()
            .map(|b| line("block", json!({"user_id": b.blocked_id, "since": b.since})))
            .collect();
        Ok(Page { lines, next })
    }
}

/// The position after a full page (its last item's), none after a short one.
fn next_after<T>(items: &[T], limit: usize, position: impl Fn(&T) -> String) -> Option<String> {
    if items.len() >= limit {
        items.last().map(position)
    } else {
        None
    }
}

#[async_trait]
impl Sources for LiveSources {
    async fn page(
        &self,
        user: &UserId,
        section: Section,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page> {
        match section {
            Section::Account => self.account(user).await,
            Section::Posts => self.posts(user, after, limit).await,
            Section::Comments => self.comments(user, after, limit).await,
            Section::Likes => self.likes(user, after, limit).await,
            Section::CommentLikes => self.comment_likes(user, after, limit).await,
            Section::Following => {
                self.edges(user, List::Following, "following", after, limit)
                    .await
            }
            Section::Followers => {
                self.edges(user, List::Followers, "follower", after, limit)
                    .await
            }
            Section::Blocks => self.blocks(user, after, limit).await,
        }
    }
}
