//! The use cases: the three searches, as [`App`] methods. Each reads the viewer's edges,
//! builds its query ([`crate::query`]) and reads the answer; posts found are checked again
//! on their authors' documents, read fresh, so a privacy change, a ban or a block that has
//! not reached every post document yet still hides them (the hashtag counts, an
//! aggregation, rely on the post documents' flags alone).
//!
//! Blocks are read completely, both ways, page by page ([`EdgeSide`]), and apart from
//! follows: someone who follows thousands cannot push a block out of what is read. A
//! viewer with more than [`MAX_BLOCKS`] one way, or a read that fails, fails the search
//! (a 500) rather than search without them.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use shutter_core::{ApiError, PageRequest, UserId};
use shutter_http::Caller;
use shutter_store::CursorKey;
use utoipa::ToSchema;

use crate::App;
use crate::docs::{POSTS_INDEX, USERS_INDEX, UserDoc};
use crate::errors::api;
use crate::model::{HashtagPrefix, QueryText, Relations, Viewer};
use crate::query::{self, PostsPosition};
use crate::store::{EdgeSide, SearchIndex};

/// Authors whose name matches a posts query that join its results.
const AUTHOR_MATCHES: usize = 20;

/// A post found by a search.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PostHit {
    pub id: String,
    pub author: AuthorHit,
    pub caption: String,
    pub location: Option<String>,
    pub hashtags: Vec<String>,
    pub like_count: i64,
    pub created_at: Option<String>,
}

/// The author of a post found.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuthorHit {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

/// A page of posts, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostHitsPage {
    pub items: Vec<PostHit>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A user found by a search.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UserHit {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub private: bool,
}

/// The users that match best (typeahead: one page).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserHitsPage {
    pub items: Vec<UserHit>,
    /// Always `null`: a typeahead answers its best matches only.
    pub next_cursor: Option<String>,
}

/// A hashtag and how many posts you may see carry it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HashtagHit {
    pub tag: String,
    pub post_count: i64,
}

/// The hashtags that match best (one page).
#[derive(Debug, Serialize, ToSchema)]
pub struct HashtagHitsPage {
    pub items: Vec<HashtagHit>,
    /// Always `null`: the most used matches only.
    pub next_cursor: Option<String>,
}

fn hits(response: &Value) -> impl Iterator<Item = &Value> {
    response["hits"]["hits"].as_array().into_iter().flatten()
}

fn posts_scope(q: &QueryText) -> String {
    format!("search:posts:{}", q.as_str())
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The caller before their edges are read: enough for queries that leave hidden users out
/// elsewhere.
fn anyone(caller: &Caller) -> Viewer {
    Viewer {
        user_id: caller.user_id.clone(),
        staff: caller.is_staff(),
        relations: Relations::default(),
    }
}

/// Edges read per request.
const EDGE_PAGE: usize = 1_000;
/// The most blocks read each way. A viewer with more cannot search (500, logged): a
/// search that left one out would show a blocker to the blocked.
pub const MAX_BLOCKS: usize = 10_000;
/// The most follows read. Past them, the private accounts followed are searched as by a
/// non-follower: their posts are left out, nothing more is shown.
pub const MAX_FOLLOWING: usize = 10_000;

/// A viewer whose blocks are too many to be read and applied.
#[derive(Debug, thiserror::Error)]
#[error(
    "the viewer has more than {} blocks one way: searching would leave some out",
    MAX_BLOCKS
)]
struct TooManyBlocks;

/// Every edge of `viewer` on `side`, paged until done or past `cap`: the users, and
/// whether that was all of them.
async fn all_edges<S: SearchIndex>(
    search: &S,
    viewer: &UserId,
    side: EdgeSide,
    cap: usize,
) -> Result<(HashSet<UserId>, bool), ApiError> {
    let mut users = HashSet::new();
    let mut after: Option<UserId> = None;
    let mut read = 0;
    // One more than the cap is read, to tell "exactly the cap" from "more".
    while read <= cap {
        let size = EDGE_PAGE.min(cap + 1 - read);
        let page = search
            .edge_page(viewer, side, after.as_ref(), size)
            .await
            .map_err(api)?;
        read += page.len();
        let done = page.len() < size;
        after = page.last().cloned();
        users.extend(page);
        if done {
            return Ok((users, true));
        }
    }
    Ok((users, false))
}

/// The viewer's blocks both ways, read completely, and their follows (up to
/// [`MAX_FOLLOWING`]). Any failure to read fails the search: nothing is searched with
/// blocks left out.
async fn relations<S: SearchIndex>(search: &S, viewer: &UserId) -> Result<Relations, ApiError> {
    let ((blocking, all_blocking), (blocked_by, all_blocked_by), (following, all_following)) = futures::try_join!(
        all_edges(search, viewer, EdgeSide::Blocking, MAX_BLOCKS),
        all_edges(search, viewer, EdgeSide::BlockedBy, MAX_BLOCKS),
        all_edges(search, viewer, EdgeSide::Following, MAX_FOLLOWING),
    )?;
    if !(all_blocking && all_blocked_by) {
        return Err(ApiError::internal(TooManyBlocks));
    }
    if !all_following {
        tracing::warn!(viewer = %viewer, cap = MAX_FOLLOWING, "follows past the cap: their private posts are left out");
    }
    Ok(Relations {
        hidden: blocking.into_iter().chain(blocked_by).collect(),
        following,
    })
}

impl<S: SearchIndex, C: Sync> App<S, C> {
    /// The caller with their blocks and follows.
    async fn viewer(&self, caller: &Caller) -> Result<Viewer, ApiError> {
        Ok(Viewer {
            relations: relations(&self.search, &caller.user_id).await?,
            ..anyone(caller)
        })
    }

    /// Users whose name starts with `q`, best first, without those hidden from the caller.
    pub async fn search_users(
        &self,
        caller: &Caller,
        q: &QueryText,
        limit: u16,
    ) -> Result<UserHitsPage, ApiError> {
        let viewer = self.viewer(caller).await?;
        let response = self
            .search
            .search(USERS_INDEX, &query::users(q, &viewer, usize::from(limit)))
            .await
            .map_err(api)?;
        let items = hits(&response)
            .filter_map(|h| serde_json::from_value::<UserDoc>(h["_source"].clone()).ok())
            .filter(|u| viewer.may_find(u))
            .map(|u| UserHit {
                id: u.user_id,
                username: u.username,
                display_name: u.display_name,
                private: u.private,
            })
            .collect();
        Ok(UserHitsPage {
            items,
            next_cursor: None,
        })
    }

    /// The most used hashtags starting with `tag`, counting the posts the caller may see.
    pub async fn search_hashtags(
        &self,
        caller: &Caller,
        tag: &HashtagPrefix,
        limit: u16,
    ) -> Result<HashtagHitsPage, ApiError> {
        let viewer = self.viewer(caller).await?;
        let response = self
            .search
            .search(POSTS_INDEX, &query::hashtags(tag, &viewer))
            .await
            .map_err(api)?;
        // A post's other hashtags are in the buckets too: keep those that match.
        let mut items: Vec<HashtagHit> = response["aggregations"]["tags"]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| {
                Some(HashtagHit {
                    tag: b["key"].as_str()?.to_owned(),
                    post_count: b["doc_count"].as_i64()?,
                })
            })
            .filter(|h| tag.matches(&h.tag))
            .collect();
        items.sort_by(|a, b| {
            b.post_count
                .cmp(&a.post_count)
                .then_with(|| a.tag.cmp(&b.tag))
        });
        items.truncate(usize::from(limit));
        Ok(HashtagHitsPage {
            items,
            next_cursor: None,
        })
    }
}

impl<S: SearchIndex> App<S, CursorKey> {
    /// Posts matching `q` that the caller may see, best first, a page at a time; the
    /// cursor is signed and bound to `q`.
    pub async fn search_posts(
        &self,
        caller: &Caller,
        q: &QueryText,
        page: &PageRequest,
    ) -> Result<PostHitsPage, ApiError> {
        let scope = posts_scope(q);
        let position: Option<PostsPosition> = match &page.cursor {
            Some(c) => {
                let p: PostsPosition = self.cursors.signer().await?.verify(&scope, c)?;
                if p.after.len() != 3 {
                    return Err(ApiError::invalid(
                        "cursor",
                        "is not a cursor this server issued",
                    ));
                }
                Some(p)
            }
            None => None,
        };
        let at = position.as_ref().map_or_else(now_millis, |p| p.at);
        // The viewer's edges and the authors named by the text, at once: the authors'
        // query needs no edges (the posts query leaves hidden authors out).
        let author_query = query::users(q, &anyone(caller), AUTHOR_MATCHES);
        let (viewer, named) = futures::try_join!(self.viewer(caller), async {
            self.search
                .search(USERS_INDEX, &author_query)
                .await
                .map_err(api)
        })?;
        let authors: Vec<String> = hits(&named)
            .filter_map(|h| h["_id"].as_str().map(str::to_owned))
            .collect();
        let limit = usize::from(page.limit);
        let body = query::posts(q, &viewer, &authors, at, position.as_ref(), limit + 1);
        let response = self.search.search(POSTS_INDEX, &body).await.map_err(api)?;
        let mut found: Vec<&Value> = hits(&response).collect();
        let next_cursor = if found.len() > limit {
            found.truncate(limit);
            let signer = self.cursors.signer().await?;
            found.last().map(|last| {
                let tied = found
                    .iter()
                    .filter(|h| h["sort"][0] == last["sort"][0])
                    .filter_map(|h| h["_id"].as_str().map(str::to_owned))
                    .collect();
                signer.sign(
                    &scope,
                    &PostsPosition {
                        at,
                        after: last["sort"].as_array().cloned().unwrap_or_default(),
                        tied,
                    },
                )
            })
        } else {
            None
        };
        let author_ids: HashSet<UserId> = found
            .iter()
            .filter_map(|h| h["_source"]["author_id"].as_str().map(UserId::trusted))
            .collect();
        let known = self.search.users(&author_ids).await.map_err(api)?;
        let items = found
            .into_iter()
            .filter_map(|h| {
                let s = &h["_source"];
                let author = known.get(s["author_id"].as_str()?)?;
                if !viewer.may_see(author) {
                    return None;
                }
                Some(PostHit {
                    id: s["post_id"].as_str()?.to_owned(),
                    author: AuthorHit {
                        id: author.user_id.clone(),
                        username: author.username.clone(),
                        display_name: author.display_name.clone(),
                    },
                    caption: s["caption"].as_str().unwrap_or_default().to_owned(),
                    location: s["location"].as_str().map(str::to_owned),
                    hashtags: serde_json::from_value(s["hashtags"].clone()).unwrap_or_default(),
                    like_count: s["like_count"].as_i64().unwrap_or(0).max(0),
                    created_at: s["created_at"].as_str().map(str::to_owned),
                })
            })
            .collect();
        Ok(PostHitsPage { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::memory::CannedSearch;
    use serde_json::json;
    use std::sync::atomic::Ordering;

    const VIEWER: &str = "01JD0000000000000000VWR001";

    fn caller(scope: &str) -> Caller {
        Caller {
            user_id: UserId::trusted(VIEWER),
            username: "viewer".into(),
            scopes: vec![scope.into()],
        }
    }

    fn user(id: &str, private: bool, deleted: bool) -> UserDoc {
        UserDoc {
            user_id: id.into(),
            username: id.to_lowercase(),
            display_name: id.into(),
            private,
            deleted,
            ..UserDoc::default()
        }
    }

    fn post_hit(id: &str, author: &str) -> Value {
        json!({"_id": id, "_source": {"post_id": id, "author_id": author, "caption": "c", "hashtags": ["x"],
               "like_count": -3}, "sort": [1.0, 1, id]})
    }

    fn app(search: CannedSearch) -> App<CannedSearch, CursorKey> {
        App {
            search,
            cursors: CursorKey::ready(shutter_core::CursorSigner::new(b"k".to_vec())),
        }
    }

    fn q(text: &str) -> QueryText {
        QueryText::parse(text).unwrap()
    }

    #[tokio::test]
    async fn staff_see_a_private_authors_posts_but_nobody_sees_a_deleted_or_blocked_one() {
        // GIVEN posts by a private author, a deleted one, a blocked one and an unknown one
        let mut s = CannedSearch::default();
        s.responses.insert(
            POSTS_INDEX.into(),
            json!({"hits": {"hits": [post_hit("p1", "P"), post_hit("p2", "D"), post_hit("p3", "B"), post_hit("p4", "U")]}}),
        );
        for u in [
            user("P", true, false),
            user("D", false, true),
            user("B", false, false),
        ] {
            s.users.insert(UserId::trusted(u.user_id.clone()), u);
        }
        s.add_edges(EdgeSide::Blocking, [UserId::trusted("B")]);
        let app = app(s);
        let page = PageRequest::parse(None, None).unwrap();
        // WHEN a moderator searches
        let found = app
            .search_posts(&caller("moderator"), &q("c"), &page)
            .await
            .unwrap();
        // THEN only the private author's post is there, its negative count read as 0
        let ids: Vec<&str> = found.items.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["p1"]);
        assert_eq!(found.items[0].like_count, 0);
        assert_eq!(found.items[0].created_at, None);
        assert!(found.next_cursor.is_none());
        // AND a user who does not follow P sees nothing
        let found = app
            .search_posts(&caller("user"), &q("c"), &page)
            .await
            .unwrap();
        assert!(found.items.is_empty());
    }

    #[tokio::test]
    async fn a_banned_authors_posts_and_account_are_for_staff_and_themselves() {
        // GIVEN a post by a banned author whose post document is not flagged yet, and
        // their user document (flagged)
        let banned = UserDoc {
            banned: true,
            ..user(VIEWER, false, false)
        };
        let mut s = CannedSearch::default();
        s.responses.insert(
            POSTS_INDEX.into(),
            json!({"hits": {"hits": [post_hit("p1", VIEWER), post_hit("p2", "A")]}}),
        );
        s.responses.insert(
            USERS_INDEX.into(),
            json!({"hits": {"hits": [{"_id": VIEWER, "_source": banned.clone()}]}}),
        );
        s.users.insert(UserId::trusted(VIEWER), banned);
        s.users
            .insert(UserId::trusted("A"), user("A", false, false));
        let app = app(s);
        let page = PageRequest::parse(None, None).unwrap();
        let other = |scope: &str| Caller {
            user_id: UserId::trusted("01JD0000000000000000OTHER1"),
            ..caller(scope)
        };
        let ids = |p: PostHitsPage| p.items.into_iter().map(|h| h.id).collect::<Vec<_>>();
        // WHEN another user searches THEN the banned author is in neither answer
        let found = app.search_posts(&other("user"), &q("c"), &page).await;
        assert_eq!(ids(found.unwrap()), ["p2"]);
        let users = app.search_users(&other("user"), &q("v"), 5).await.unwrap();
        assert!(users.items.is_empty());
        // AND the author themselves, and staff, still find both
        for who in [caller("user"), other("moderator")] {
            let found = app.search_posts(&who, &q("c"), &page).await.unwrap();
            assert_eq!(ids(found), ["p1", "p2"]);
            let users = app.search_users(&who, &q("v"), 5).await.unwrap();
            assert_eq!(users.items.len(), 1);
        }
    }

    #[tokio::test]
    async fn a_cursor_of_another_shape_is_refused_before_anything_is_searched() {
        // GIVEN a cursor signed by this server for the query, with two sort values only
        let app = app(CannedSearch::default());
        let forged = app.cursors.signer().await.unwrap().sign(
            &posts_scope(&q("c")),
            &PostsPosition {
                at: 1,
                after: vec![json!(1.0), json!(2)],
                tied: vec![],
            },
        );
        let page = PageRequest::parse(None, Some(&forged)).unwrap();
        // WHEN it is used
        let err = app
            .search_posts(&caller("user"), &q("c"), &page)
            .await
            .unwrap_err();
        // THEN a 400 names the cursor and OpenSearch saw nothing
        assert_eq!(
            (err.status(), err.problem().field.as_deref()),
            (400, Some("cursor"))
        );
        assert!(app.search.sent().is_empty());
    }

    #[tokio::test]
    async fn users_and_hashtags_are_limited_and_deleted_users_left_out() {
        // GIVEN three users, one deleted, and four hashtags, one not matching
        let mut s = CannedSearch::default();
        let doc = |u: UserDoc| json!({"_id": u.user_id.clone(), "_source": u});
        s.responses.insert(
            USERS_INDEX.into(),
            json!({"hits": {"hits": [doc(user("A", false, false)), doc(user("D", false, true)), doc(user("C", true, false))]}}),
        );
        s.responses.insert(POSTS_INDEX.into(), json!({"aggregations": {"tags": {"buckets": [
            {"key": "sa", "doc_count": 1}, {"key": "sb", "doc_count": 4}, {"key": "sc", "doc_count": 4}, {"key": "x", "doc_count": 9}
        ]}}}));
        let app = App {
            search: s,
            cursors: (),
        };
        // WHEN a user searches users and hashtags with a limit of 2
        let users = app.search_users(&caller("user"), &q("a"), 2).await.unwrap();
        let tags = app
            .search_hashtags(&caller("user"), &HashtagPrefix::parse(&q("#S")).unwrap(), 2)
            .await
            .unwrap();
        // THEN the deleted user is left out and private ones are listed
        let names: Vec<&str> = users.items.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert!(users.items[1].private);
        // AND the most used matching tags come first, ties by name, cut at the limit
        assert_eq!(
            tags.items,
            [
                HashtagHit {
                    tag: "sb".into(),
                    post_count: 4
                },
                HashtagHit {
                    tag: "sc".into(),
                    post_count: 4
                }
            ]
        );
        assert_eq!(app.search.sent()[0].1["size"], 2);
    }

    /// `n` user ids that sort before "B..." (so an unordered read of a few thousand
    /// edges could well stop before the block).
    fn many(prefix: &str, n: usize) -> Vec<UserId> {
        (0..n)
            .map(|i| UserId::trusted(format!("{prefix}{i:06}")))
            .collect()
    }

    #[tokio::test]
    async fn more_than_5000_follows_cannot_push_a_block_out_of_a_search() {
        // GIVEN a viewer who follows 6,000 users and whom B blocks; B's post and profile
        let mut s = CannedSearch::default();
        s.add_edges(EdgeSide::Following, many("A", 6_000));
        s.add_edges(EdgeSide::BlockedBy, [UserId::trusted("B")]);
        s.users
            .insert(UserId::trusted("B"), user("B", false, false));
        let doc = |u: UserDoc| json!({"_id": u.user_id.clone(), "_source": u});
        s.responses.insert(
            USERS_INDEX.into(),
            json!({"hits": {"hits": [doc(user("B", false, false))]}}),
        );
        s.responses.insert(
            POSTS_INDEX.into(),
            json!({"hits": {"hits": [post_hit("p1", "B")]}}),
        );
        let app = app(s);
        let page = PageRequest::parse(None, None).unwrap();
        // WHEN the viewer searches posts and users
        let posts = app
            .search_posts(&caller("user"), &q("b"), &page)
            .await
            .unwrap();
        let users = app.search_users(&caller("user"), &q("b"), 5).await.unwrap();
        // THEN neither B's post nor B is shown, and every query left B out
        assert!(posts.items.is_empty());
        assert!(users.items.is_empty());
        let sent = app.search.sent();
        let posts_query = sent.iter().find(|(i, _)| i == POSTS_INDEX).unwrap();
        assert_eq!(
            posts_query.1["query"]["bool"]["must_not"][0],
            json!({"terms": {"author_id": ["B"]}})
        );
        let private_allowed = &posts_query.1["query"]["bool"]["filter"][1]["bool"]["should"][1];
        assert_eq!(
            private_allowed["terms"]["author_id"]
                .as_array()
                .unwrap()
                .len(),
            6_001,
            "all 6,000 follows, and the viewer"
        );
        // AND the edges were read a page at a time: per search, one page each way of
        // blocks and seven of follows (the last one short)
        assert_eq!(
            app.search.edge_pages.load(Ordering::Relaxed),
            2 * (1 + 1 + 7)
        );
    }

    #[tokio::test]
    async fn more_blocks_than_can_be_read_or_a_failed_read_fail_the_search_closed() {
        // GIVEN a viewer blocked by exactly MAX_BLOCKS users: searches work
        let mut s = CannedSearch::default();
        s.add_edges(EdgeSide::BlockedBy, many("A", MAX_BLOCKS));
        let app = App {
            search: s,
            cursors: (),
        };
        let users = app.search_users(&caller("user"), &q("a"), 5).await.unwrap();
        assert!(users.items.is_empty());
        let sent = app.search.sent();
        assert_eq!(
            sent[0].1["query"]["bool"]["must_not"][0]["terms"]["user_id"]
                .as_array()
                .unwrap()
                .len(),
            MAX_BLOCKS
        );
        // WHEN one more blocks them THEN a search is a 500 and nothing was searched
        let mut s = CannedSearch::default();
        s.add_edges(EdgeSide::Blocking, many("A", MAX_BLOCKS + 1));
        let app = App {
            search: s,
            cursors: (),
        };
        let err = app
            .search_users(&caller("user"), &q("a"), 5)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 500);
        let tag = HashtagPrefix::parse(&q("#a")).unwrap();
        let err = app
            .search_hashtags(&caller("moderator"), &tag, 5)
            .await
            .unwrap_err();
        assert_eq!(
            err.status(),
            500,
            "staff too: blocks hide from them as well"
        );
        assert!(app.search.sent().is_empty());
        // WHEN the edges cannot be read THEN likewise
        let s = CannedSearch::default();
        s.edges_down.store(true, Ordering::Relaxed);
        let app = App {
            search: s,
            cursors: (),
        };
        let err = app
            .search_users(&caller("user"), &q("a"), 5)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(app.search.sent().is_empty());
    }

    #[tokio::test]
    async fn follows_past_their_cap_still_search_and_blocks_still_hide() {
        // GIVEN a viewer who follows more than MAX_FOLLOWING users and blocks B
        let mut s = CannedSearch::default();
        s.add_edges(EdgeSide::Following, many("A", MAX_FOLLOWING + 5));
        s.add_edges(EdgeSide::Blocking, [UserId::trusted("B")]);
        let app = App {
            search: s,
            cursors: (),
        };
        // WHEN they search THEN it answers, with B left out
        app.search_users(&caller("user"), &q("a"), 5).await.unwrap();
        assert_eq!(
            app.search.sent()[0].1["query"]["bool"]["must_not"][0],
            json!({"terms": {"user_id": ["B"]}})
        );
    }

    #[tokio::test]
    async fn an_unreachable_cluster_is_an_opaque_server_error() {
        let s = CannedSearch::default();
        s.down.store(true, Ordering::Relaxed);
        let app = App {
            search: s,
            cursors: (),
        };
        let err = app
            .search_users(&caller("user"), &q("a"), 5)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 500);
    }
}
