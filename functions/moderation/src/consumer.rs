//! `moderation-directory-events`: the service's copy of users, posts, follows and blocks
//! (the directory) and of comments, so that a report names only what its reporter can
//! see. Every effect is idempotent (directory writes are; a comment is written only if
//! unknown, and its deletion leaves a tombstone).

use shutter_directory::Directory;
use shutter_events::{ConsumeError, Consumer, Envelope, Event, EventSet, EventType};

use crate::App;
use crate::model::{CommentRef, PostPreview};
use crate::store::ModerationStore;

pub const DIRECTORY_EVENTS: Consumer = Consumer {
    name: "moderation-directory-events",
    handles: shutter_directory::EVENTS.union(EventSet::of(&[
        EventType::PostUpdated,
        EventType::CommentAdded,
        EventType::CommentEdited,
        EventType::CommentDeleted,
    ])),
    summary: "Keeps the moderation service's copy of users, posts, follows, blocks and comments, to refuse reports of what the reporter cannot see and to preview what is reported.",
};

pub async fn apply<S: ModerationStore, D: Directory>(
    app: &App<S, D>,
    envelope: Envelope,
) -> Result<(), ConsumeError> {
    match &envelope.event {
        Event::CommentAdded(c) => {
            app.store
                .put_comment(&CommentRef {
                    comment_id: c.comment_id.to_string(),
                    post_id: c.post_id.clone(),
                    author_id: c.author_id.clone(),
                    text: c.text.clone(),
                })
                .await?
        }
        Event::CommentEdited(c) => app.store.edit_comment(&c.comment_id, &c.text).await?,
        Event::CommentDeleted(c) => app.store.delete_comment(&c.comment_id).await?,
        Event::PostPublished(p) | Event::PostUpdated(p) => {
            app.store
                .put_post_preview(&PostPreview {
                    post_id: p.post_id.clone(),
                    author_id: p.author_id.clone(),
                    caption: p.caption.clone(),
                    thumbnail_key: p
                        .media
                        .first()
                        .map(|m| m.thumbnail_key.clone().unwrap_or(m.display_key.clone())),
                    version: p.version,
                })
                .await?;
            app.directory.apply(&envelope).await?;
        }
        Event::PostDeleted(p) => {
            app.store.forget_post(&p.post_id).await?;
            app.directory.apply(&envelope).await?;
        }
        _ => app.directory.apply(&envelope).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_core::{CommentId, PostId, UserId};
    use shutter_directory::MemoryDirectory;
    use shutter_events::payloads::{CommentAdded, CommentDeleted};

    use super::*;
    use crate::store::memory::MemoryModerationStore;

    fn app() -> App<MemoryModerationStore, MemoryDirectory> {
        App {
            store: MemoryModerationStore::default(),
            directory: MemoryDirectory::default(),
            cursors: None,
            media: None,
        }
    }

    #[tokio::test]
    async fn a_comment_is_known_until_deleted_and_a_late_add_does_not_bring_it_back() {
        // GIVEN a comment's events, the add delivered twice and once more after the delete
        let app = app();
        let (comment_id, post_id, author_id) = (
            CommentId::generate(),
            PostId::generate(),
            UserId::generate(),
        );
        let added = Envelope::new(
            Event::CommentAdded(CommentAdded {
                comment_id: comment_id.clone(),
                post_id: post_id.clone(),
                author_id: author_id.clone(),
                reply_to: None,
                text: "hi".into(),
                hashtags: vec![],
                mentions: vec![],
                created_at: "2026-01-01T00:00:00.000Z".into(),
            }),
            Some(&author_id),
            "c",
        );
        apply(&app, added.clone()).await.unwrap();
        apply(&app, added.clone()).await.unwrap();
        assert_eq!(
            app.store
                .comment(&comment_id)
                .await
                .unwrap()
                .unwrap()
                .post_id,
            post_id
        );
        let deleted = Envelope::new(
            Event::CommentDeleted(CommentDeleted {
                comment_id: comment_id.clone(),
                post_id,
                author_id: author_id.clone(),
                deleted_by: author_id.clone(),
            }),
            Some(&author_id),
            "c",
        );
        apply(&app, deleted).await.unwrap();
        apply(&app, added).await.unwrap();
        // THEN it stays forgotten
        assert!(app.store.comment(&comment_id).await.unwrap().is_none());
    }

    fn post_event(post_id: &PostId, author: &UserId, caption: &str, version: u64) -> Event {
        Event::PostPublished(shutter_events::PostFacts {
            post_id: post_id.clone(),
            author_id: author.clone(),
            caption: caption.into(),
            location: None,
            hashtags: vec![],
            mentions: vec![],
            created_at: "2026-01-01T00:00:00.000Z".into(),
            version,
            media: vec![],
        })
    }

    #[tokio::test]
    async fn a_posts_preview_keeps_its_newest_version_and_a_deleted_post_stays_gone() {
        // GIVEN a post's publication delivered twice, an edit (v2), then v1 once more, late
        let app = app();
        let (post_id, author) = (PostId::generate(), UserId::generate());
        let published = Envelope::new(post_event(&post_id, &author, "v1", 1), None, "c");
        apply(&app, published.clone()).await.unwrap();
        apply(&app, published.clone()).await.unwrap();
        let edited = match post_event(&post_id, &author, "v2", 2) {
            Event::PostPublished(facts) => Event::PostUpdated(facts),
            other => other,
        };
        apply(&app, Envelope::new(edited, None, "c")).await.unwrap();
        apply(&app, published.clone()).await.unwrap();
        // THEN the preview is v2
        let preview = app.store.post_preview(&post_id).await.unwrap().unwrap();
        assert_eq!((preview.caption.as_str(), preview.version), ("v2", 2));
        // WHEN it is deleted (twice) and the publication comes again THEN it stays gone
        let deleted = Envelope::new(
            Event::PostDeleted(shutter_events::payloads::PostDeleted {
                post_id: post_id.clone(),
                author_id: author.clone(),
                deleted_by: author.clone(),
            }),
            None,
            "c",
        );
        apply(&app, deleted.clone()).await.unwrap();
        apply(&app, deleted).await.unwrap();
        apply(&app, published).await.unwrap();
        assert!(app.store.post_preview(&post_id).await.unwrap().is_none());
    }
}
