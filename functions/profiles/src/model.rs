//! A profile as stored and as shown.

use serde::{Deserialize, Serialize};
use shutter_core::validate::{Bio, DisplayName, Username, Website};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub user_id: String,
    pub username: Username,
    pub display_name: DisplayName,
    pub bio: Bio,
    pub website: Website,
    pub private: bool,
    pub avatar_key: Option<String>,
    pub follower_count: u64,
    pub following_count: u64,
    pub post_count: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl Profile {
    /// The profile a new user starts with.
    pub fn new(user_id: &str, username: Username, created_at: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            display_name: DisplayName::from(&username),
            username,
            bio: Bio::default(),
            website: Website::default(),
            private: false,
            avatar_key: None,
            follower_count: 0,
            following_count: 0,
            post_count: 0,
            created_at: created_at.to_owned(),
            updated_at: created_at.to_owned(),
        }
    }
}

/// The fields `PATCH /v1/profiles/me` may change; absent means unchanged.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub display_name: Option<DisplayName>,
    pub bio: Option<Bio>,
    pub website: Option<Website>,
    pub private: Option<bool>,
}

impl ProfilePatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn apply(&self, profile: &mut Profile) {
        if let Some(v) = &self.display_name {
            profile.display_name = v.clone();
        }
        if let Some(v) = &self.bio {
            profile.bio = v.clone();
        }
        if let Some(v) = &self.website {
            profile.website = v.clone();
        }
        if let Some(v) = self.private {
            profile.private = v;
        }
    }
}

/// The public view: what anyone signed in may see.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub bio: String,
    pub website: String,
    pub private: bool,
    pub avatar_url: Option<String>,
    pub follower_count: u64,
    pub following_count: u64,
    pub post_count: u64,
    pub created_at: String,
}

impl ProfileView {
    pub fn new(p: &Profile, avatar_url: Option<String>) -> Self {
        Self {
            id: p.user_id.clone(),
            username: p.username.to_string(),
            display_name: p.display_name.to_string(),
            bio: p.bio.to_string(),
            website: p.website.to_string(),
            private: p.private,
            avatar_url,
            follower_count: p.follower_count,
            following_count: p.following_count,
            post_count: p.post_count,
            created_at: p.created_at.clone(),
        }
    }
}

/// `ProfileUpdated` payload: the public fields after the change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileUpdated {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub private: bool,
    pub avatar_key: Option<String>,
}

impl From<&Profile> for ProfileUpdated {
    fn from(p: &Profile) -> Self {
        Self {
            user_id: p.user_id.clone(),
            username: p.username.to_string(),
            display_name: p.display_name.to_string(),
            private: p.private,
            avatar_key: p.avatar_key.clone(),
        }
    }
}
