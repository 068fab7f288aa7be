//! Rate limits and quotas per user and per action, one limiter for every function.
//!
//! A function's limits are template parameters, handed to it as one variable,
//! `RATE_LIMITS` (`likes@user=120/3600`, see [`model::parse_policies`]), with the counters'
//! table in `RATE_LIMITS_TABLE`. Each request that can reach what a limit protects (see
//! [`http::Audience`] and [`http::Scope`]) is counted before its handler runs, keyed
//! by the verified token's `sub` (`@user`) or by the source address API Gateway reports,
//! `requestContext.http.sourceIp` (`@address`); never by a header a client writes, such
//! as `X-Forwarded-For`. A refused request never reaches its handler, so it changes
//! nothing; it is a 429 `rate_limited` problem naming the limit and its window, with
//! `Retry-After`. Every answer of a limited route carries the IETF `RateLimit-Policy` and
//! `RateLimit` fields.
//!
//! Counting is exact under concurrency on any number of Lambda environments: one
//! conditional atomic update of one DynamoDB item per policy ([`store`]), no read before
//! it. When the counters' table cannot be reached the request is let through (logged):
//! a limit protects the service, and an outage of it should not become an outage of every
//! write.
//!
//! Modules: [`model`] (the rules, pure), [`store`] (the port, DynamoDB and memory),
//! [`http`] (the wrapper a main serves its handler with).

pub mod http;
pub mod model;
pub mod store;

pub use http::{Audience, Scope, serve, serve_scoped};
use shutter_core::ApiError;
use shutter_store::{ConfigError, SdkConfig, StoreError, Table};

use crate::model::{KeyKind, Plan, Policy, Usage};
use crate::store::{Counters, DynamoCounters, Taken};

/// Who a request is counted against, and how much it costs per policy (1 by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    /// The user (`@user` policies): the verified `sub`, or the account a login names.
    pub user: Option<String>,
    /// The source address (`@address` policies), as API Gateway saw it.
    pub address: Option<String>,
    /// Costs other than 1, by policy name (bytes of media, say).
    pub costs: Vec<(String, u64)>,
}

/// The limiter's answer.
#[derive(Debug)]
pub enum Decision {
    /// Counted: the request may go on. What remains of each limit, for the headers.
    Allowed(Vec<Usage>),
    /// Refused; nothing was counted. The error is the 429 to answer.
    Refused { error: ApiError, usage: Vec<Usage> },
}

impl Decision {
    pub fn usage(&self) -> &[Usage] {
        match self {
            Self::Allowed(usage) | Self::Refused { usage, .. } => usage,
        }
    }
}

/// A function's policies and their counters.
#[derive(Debug)]
pub struct Limiter<C = DynamoCounters> {
    pub counters: C,
    pub policies: Vec<Policy>,
}

impl Limiter<DynamoCounters> {
    /// `RATE_LIMITS_TABLE` and `RATE_LIMITS` (the template's limits for this function).
    pub fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let table = Table::from_env(aws, "RATE_LIMITS_TABLE")?;
        let spec = shutter_store::env("RATE_LIMITS")?;
        let policies = model::parse_policies(&spec).map_err(|reason| ConfigError::Invalid {
            name: "RATE_LIMITS",
            reason,
        })?;
        Ok(Self {
            counters: DynamoCounters { table },
            policies,
        })
    }
}

fn now() -> u64 {
    u64::try_from(shutter_store::epoch_seconds()).unwrap_or(0)
}

impl<C: Counters> Limiter<C> {
    /// Counts a request by `who` now.
    pub async fn check(&self, who: &Who) -> Decision {
        self.check_at(who, now()).await
    }

    /// Counts a request by `who` at `now` (epoch seconds). A policy whose key `who` lacks
    /// (an `@user` policy on an anonymous request) does not apply.
    pub async fn check_at(&self, who: &Who, now: u64) -> Decision {
        let mut applied: Vec<(&Policy, Plan)> = Vec::new();
        for policy in &self.policies {
            let key = match policy.key {
                KeyKind::User => who.user.as_deref(),
                KeyKind::Address => who.address.as_deref(),
            };
            let Some(key) = key else { continue };
            let cost = who
                .costs
                .iter()
                .find(|(name, _)| *name == policy.name)
                .map_or(1, |(_, cost)| *cost);
            if cost == 0 {
                continue;
            }
            applied.push((policy, policy.plan(key, now, cost)));
        }
        if applied.is_empty() {
            return Decision::Allowed(Vec::new());
        }
        let plans: Vec<Plan> = applied.iter().map(|(_, plan)| plan.clone()).collect();
        match self.counters.take(&plans).await {
            Ok(Taken::Granted(values)) => Decision::Allowed(
                applied
                    .iter()
                    .zip(values.iter().chain(std::iter::repeat(&None)))
                    .map(|((policy, plan), v)| Usage::of(policy, plan, v.as_deref()))
                    .collect(),
            ),
            Ok(Taken::Refused { plan: i }) => {
                let (policy, plan) = &applied[i.min(applied.len() - 1)];
                // A read, only on a refusal: which window is full, and until when.
                let values = match self.counters.read(plan).await {
                    Ok(values) => values,
                    Err(err) => {
                        tracing::warn!(error = %err, "rate limit counters unreadable");
                        plan.counters.iter().map(|c| c.window.limit).collect()
                    }
                };
                let (window, retry_after) = plan.refusal(&values);
                tracing::info!(limit = %policy.name, retry_after, "rate limited");
                Decision::Refused {
                    error: ApiError::RateLimited {
                        limit: policy.name.clone(),
                        window_seconds: window.seconds,
                        retry_after,
                    },
                    usage: vec![Usage::of(policy, plan, Some(&values))],
                }
            }
            Err(err) => {
                log_unavailable(&err);
                Decision::Allowed(Vec::new())
            }
        }
    }
}

fn log_unavailable(err: &StoreError) {
    tracing::error!(error = %err, "rate limit counters unavailable: request let through");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;
    use crate::store::MemoryCounters;

    fn limiter(spec: &str) -> Limiter<MemoryCounters> {
        Limiter {
            counters: MemoryCounters::default(),
            policies: model::parse_policies(spec).unwrap(),
        }
    }

    fn user(id: &str) -> Who {
        Who {
            user: Some(id.to_owned()),
            address: Some("203.0.113.7".to_owned()),
            costs: Vec::new(),
        }
    }

    fn refused(d: &Decision) -> Option<(String, u64, u64)> {
        match d {
            Decision::Refused {
                error:
                    ApiError::RateLimited {
                        limit,
                        window_seconds,
                        retry_after,
                    },
                ..
            } => Some((limit.clone(), *window_seconds, *retry_after)),
            _ => None,
        }
    }

    #[tokio::test]
    async fn given_a_limit_of_25_when_40_requests_race_then_exactly_25_pass() {
        let limiter = Arc::new(limiter("likes@user=25/3600"));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                limiter.check_at(&user("U1"), 7200 + 5).await
            }));
        }
        let mut passed = 0;
        for t in tasks {
            match t.await.unwrap() {
                Decision::Allowed(_) => passed += 1,
                d => assert_eq!(refused(&d), Some(("likes".to_owned(), 3600, 3595))),
            }
        }
        assert_eq!(passed, 25);
    }

    #[tokio::test]
    async fn each_user_has_their_own_counters_and_a_new_window_starts_afresh() {
        let limiter = limiter("follows@user=2/3600,3/86400");
        for _ in 0..2 {
            assert!(matches!(
                limiter.check_at(&user("A"), 10).await,
                Decision::Allowed(_)
            ));
        }
        let d = limiter.check_at(&user("A"), 10).await;
        assert_eq!(refused(&d), Some(("follows".to_owned(), 3600, 3590)));
        assert!(matches!(
            limiter.check_at(&user("B"), 10).await,
            Decision::Allowed(_)
        ));
        // The next hour: the hourly window is empty, the daily one has 1 left.
        let d = limiter.check_at(&user("A"), 3600 + 10).await;
        let Decision::Allowed(usage) = d else {
            panic!("a new hour")
        };
        assert_eq!(usage[0].windows[0].remaining, Some(1));
        assert_eq!(usage[0].windows[1].remaining, Some(0));
        let d = limiter.check_at(&user("A"), 3600 + 20).await;
        assert_eq!(
            refused(&d),
            Some(("follows".to_owned(), 86400, 86400 - 3620))
        );
    }

    #[tokio::test]
    async fn a_refused_request_counts_nothing_in_any_policy() {
        let limiter = limiter("password_checks@user=5/900;address_password_checks@address=2/900");
        let mut who = user("A");
        assert!(matches!(
            limiter.check_at(&who, 1).await,
            Decision::Allowed(_)
        ));
        assert!(matches!(
            limiter.check_at(&who, 2).await,
            Decision::Allowed(_)
        ));
        // The address is full: refused, and the account's counter did not move.
        let d = limiter.check_at(&who, 3).await;
        assert_eq!(refused(&d).unwrap().0, "address_password_checks");
        let account = limiter.policies[0].plan("A", 3, 1);
        assert_eq!(
            limiter
                .counters
                .value(&account.pk, &account.counters[0].attribute),
            2
        );
        // From another address the account still has 3.
        who.address = Some("198.51.100.1".to_owned());
        assert!(matches!(
            limiter.check_at(&who, 4).await,
            Decision::Allowed(_)
        ));
    }

    #[tokio::test]
    async fn whoever_keeps_failing_waits_longer_and_longer() {
        let limiter = limiter("password_checks@user=5/900^4");
        let who = user("A");
        let mut t = 0;
        let mut waits = Vec::new();
        // Keep guessing as soon as allowed: 5 a quarter of an hour, then 10 an hour, 20 in
        // 4 hours, 40 in 16 hours, so the lockouts grow from 15 minutes to hours.
        while waits.len() < 8 {
            match limiter.check_at(&who, t).await {
                Decision::Allowed(_) => t += 1,
                d => {
                    let (_, _, retry) = refused(&d).unwrap();
                    waits.push(retry);
                    t += retry;
                }
            }
        }
        assert_eq!(waits, [895, 2695, 895, 9895, 895, 2695, 895, 38695]);
        assert!(t >= 57_600, "at most 40 guesses in 16 hours");
    }

    #[tokio::test]
    async fn an_anonymous_request_is_counted_by_address_only() {
        let limiter = limiter("registrations@address=1/3600;likes@user=5/60");
        let anonymous = Who {
            address: Some("203.0.113.7".to_owned()),
            ..Who::default()
        };
        let Decision::Allowed(usage) = limiter.check_at(&anonymous, 1).await else {
            panic!("first")
        };
        assert_eq!(usage.len(), 1);
        assert_eq!(
            refused(&limiter.check_at(&anonymous, 2).await).unwrap().0,
            "registrations"
        );
        assert_eq!(limiter.counters.items(), 1);
    }

    #[tokio::test]
    async fn costs_count_units_such_as_bytes() {
        let limiter = limiter("media_bytes@user=100/86400");
        let mut who = user("A");
        who.costs = vec![("media_bytes".to_owned(), 60)];
        assert!(matches!(
            limiter.check_at(&who, 1).await,
            Decision::Allowed(_)
        ));
        assert!(refused(&limiter.check_at(&who, 2).await).is_some());
        who.costs = vec![("media_bytes".to_owned(), 40)];
        assert!(matches!(
            limiter.check_at(&who, 3).await,
            Decision::Allowed(_)
        ));
    }
}
