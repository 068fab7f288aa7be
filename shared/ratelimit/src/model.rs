//! The rules, pure: what a limit is ([`Policy`], its [`Window`]s), how a function's limits
//! are written in its `RATE_LIMITS` variable, which counters a request adds to ([`Plan`]),
//! and what the answer says ([`Usage`], the IETF `RateLimit-Policy` / `RateLimit` fields).
//!
//! Counters are fixed windows aligned to the epoch. All windows of one policy nest (each
//! divides the largest), so one item per (policy, key, largest window) holds every
//! counter of the policy, one attribute per window (`c{seconds}_{index}`), and one
//! conditional update adds to all of them at once: exact under any concurrency, one write.

use std::fmt::Write as _;

/// At most this many counters a policy has (tiers of backoff included).
const MAX_WINDOWS: usize = 8;

/// `limit` units per `seconds`, in windows aligned to the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub seconds: u64,
}

impl Window {
    /// `1m`, `15m`, `1h`, `1d`, `57600s`: the window as a person reads it.
    pub fn label(&self) -> String {
        let s = self.seconds;
        match s {
            _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
            _ if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
            _ if s.is_multiple_of(60) => format!("{}m", s / 60),
            _ => format!("{s}s"),
        }
    }
}

/// Whom a policy counts: the signed-in user (the verified `sub`, or the account a login
/// names) or the source address API Gateway saw (never a client-supplied header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    User,
    Address,
}

impl KeyKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Address => "address",
        }
    }
}

/// One named limit: its windows, smallest first, each dividing the largest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub key: KeyKind,
    pub windows: Vec<Window>,
}

/// A function's policies from its `RATE_LIMITS` variable: `;`-separated
/// `name@user|address=limit/seconds[,limit/seconds...][^tiers]`, e.g.
/// `posts@user=50/3600,100/86400` or `password_checks@user=5/900^4`. `^n` is exponential
/// backoff: `n` tiers, each allowing twice the attempts of the one before over four times
/// its window (5 per 15 min, 10 per hour, 20 per 4 h, 40 per 16 h), so whoever keeps
/// failing waits 15 min, then an hour, then 4 h, then 16 h.
pub fn parse_policies(spec: &str) -> Result<Vec<Policy>, String> {
    spec.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(Policy::parse)
        .collect()
}

impl Policy {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("rate limit {spec:?}: {why}");
        let (head, body) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected name@key=limit/seconds"))?;
        let (name, key) = head
            .trim()
            .split_once('@')
            .ok_or_else(|| bad("expected name@user or name@address"))?;
        let key = match key {
            "user" => KeyKind::User,
            "address" => KeyKind::Address,
            _ => return Err(bad("the key is user or address")),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad("the name is letters, digits, _ and -"));
        }
        let (windows, tiers) = match body.split_once('^') {
            Some((w, t)) => (
                w,
                t.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|t| (1..=4).contains(t))
                    .ok_or_else(|| bad("^tiers is 1 to 4"))?,
            ),
            None => (body, 1),
        };
        let mut parsed = Vec::new();
        for w in windows.split(',') {
            let (limit, seconds) = w
                .trim()
                .split_once('/')
                .ok_or_else(|| bad("a window is limit/seconds"))?;
            let limit = limit.trim().parse::<u64>().ok().filter(|l| *l > 0);
            let seconds = seconds.trim().parse::<u64>().ok().filter(|s| *s > 0);
            match (limit, seconds) {
                (Some(limit), Some(seconds)) => parsed.push(Window { limit, seconds }),
                _ => return Err(bad("limits and seconds are whole numbers above 0")),
            }
        }
        if tiers > 1 {
            let [base] = parsed[..] else {
                return Err(bad("backoff tiers take one window"));
            };
            parsed = (0..tiers)
                .map(|k| Window {
                    limit: base.limit << k,
                    seconds: base.seconds << (2 * k),
                })
                .collect();
        }
        parsed.sort_by_key(|w| w.seconds);
        parsed.dedup_by_key(|w| w.seconds);
        if parsed.len() > MAX_WINDOWS {
            return Err(bad("too many windows"));
        }
        let largest = parsed.last().map_or(1, |w| w.seconds);
        if parsed.iter().any(|w| !largest.is_multiple_of(w.seconds)) {
            return Err(bad("each window must divide the largest"));
        }
        Ok(Self {
            name: name.to_owned(),
            key,
            windows: parsed,
        })
    }

    fn largest(&self) -> u64 {
        self.windows.last().map_or(1, |w| w.seconds)
    }

    /// The counters a request of `cost` units by `key` at `now` (epoch seconds) adds to.
    pub fn plan(&self, key: &str, now: u64, cost: u64) -> Plan {
        let largest = self.largest();
        let index = now / largest;
        Plan {
            pk: format!("{}#{}#{}#{}", self.name, self.key.as_str(), key, index),
            counters: self
                .windows
                .iter()
                .map(|w| Counter {
                    attribute: format!("c{}_{}", w.seconds, now / w.seconds),
                    window: *w,
                    resets_at: (now / w.seconds + 1) * w.seconds,
                })
                .collect(),
            // Kept a minute past its largest window, then DynamoDB's TTL removes it.
            ttl: (index + 1) * largest + 60,
            cost,
            now,
        }
    }
}

/// One counter a request adds to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Its attribute in the policy's item: `c{seconds}_{window index}`.
    pub attribute: String,
    pub window: Window,
    /// When its window ends (epoch seconds).
    pub resets_at: u64,
}

impl Counter {
    /// The largest value the counter may have before a request of `cost` for the request
    /// to fit; `None` when no request that large ever fits.
    pub fn most_before(&self, cost: u64) -> Option<u64> {
        self.window.limit.checked_sub(cost)
    }
}

/// What one policy's item gets from one request: `cost` added to every counter, if each
/// stays within its window's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The item: `{policy}#{user|address}#{key}#{index of the largest window}`.
    pub pk: String,
    pub counters: Vec<Counter>,
    /// The item's `ttl` (epoch seconds).
    pub ttl: u64,
    pub cost: u64,
    pub now: u64,
}

impl Plan {
    /// True when a request of this plan's cost fits counters at `values` (by position).
    pub fn fits(&self, values: &[u64]) -> bool {
        self.counters
            .iter()
            .zip(values.iter().copied().chain(std::iter::repeat(0)))
            .all(|(c, v)| c.most_before(self.cost).is_some_and(|most| v <= most))
    }

    /// Why a request of this plan does not fit counters at `values`: the full window that
    /// ends last (waiting for it frees them all) and the seconds until it ends.
    pub fn refusal(&self, values: &[u64]) -> (Window, u64) {
        let full = self
            .counters
            .iter()
            .zip(values.iter().copied().chain(std::iter::repeat(0)))
            .filter(|(c, v)| c.most_before(self.cost).is_none_or(|most| *v > most))
            .map(|(c, _)| c)
            .max_by_key(|c| c.resets_at);
        match full {
            Some(c) => (c.window, c.resets_at.saturating_sub(self.now).max(1)),
            // Full when the write was refused, emptied since (its window ended): retry now.
            None => (
                self.counters.first().map_or(
                    Window {
                        limit: 0,
                        seconds: 1,
                    },
                    |c| c.window,
                ),
                1,
            ),
        }
    }
}

/// One policy as a response reports it: each window with what remains of it (when known)
/// and the seconds until it resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub policy: String,
    pub windows: Vec<WindowUsage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowUsage {
    pub window: Window,
    /// `None` when the write that counted the request did not answer the counts (several
    /// policies in one transaction).
    pub remaining: Option<u64>,
    pub reset_in: u64,
}

impl Usage {
    /// `plan`'s policy with its counters at `values` (`None`: unknown).
    pub fn of(policy: &Policy, plan: &Plan, values: Option<&[u64]>) -> Self {
        Self {
            policy: policy.name.clone(),
            windows: plan
                .counters
                .iter()
                .enumerate()
                .map(|(i, c)| WindowUsage {
                    window: c.window,
                    remaining: values.map(|v| {
                        c.window
                            .limit
                            .saturating_sub(v.get(i).copied().unwrap_or(0))
                    }),
                    reset_in: c.resets_at.saturating_sub(plan.now),
                })
                .collect(),
        }
    }

    fn item(&self, w: &WindowUsage) -> String {
        format!("\"{}-{}\"", self.policy, w.window.label())
    }
}

/// The `RateLimit-Policy` field: each window of each policy, its quota and window.
pub fn policy_field(usages: &[Usage]) -> String {
    let mut out = String::new();
    for u in usages {
        for w in &u.windows {
            if !out.is_empty() {
                out.push_str(", ");
            }
            let _ = write!(
                out,
                "{};q={};w={}",
                u.item(w),
                w.window.limit,
                w.window.seconds
            );
        }
    }
    out
}

/// The `RateLimit` field: what remains of each window whose count is known, and when it
/// resets; `None` when no count is known.
pub fn remaining_field(usages: &[Usage]) -> Option<String> {
    let mut out = String::new();
    for u in usages {
        for w in &u.windows {
            let Some(r) = w.remaining else { continue };
            if !out.is_empty() {
                out.push_str(", ");
            }
            let _ = write!(out, "{};r={};t={}", u.item(w), r, w.reset_in);
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn policies_are_read_from_their_spec() {
        let ps =
            parse_policies("posts@user=100/86400,50/3600; registrations@address=5/3600").unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].name, "posts");
        assert_eq!(ps[0].key, KeyKind::User);
        assert_eq!(
            ps[0].windows,
            vec![
                Window {
                    limit: 50,
                    seconds: 3600
                },
                Window {
                    limit: 100,
                    seconds: 86400
                }
            ]
        );
        assert_eq!(ps[1].key, KeyKind::Address);
        assert!(parse_policies("").unwrap().is_empty());
    }

    #[test]
    fn backoff_tiers_double_the_attempts_over_four_times_the_window() {
        let p = Policy::parse("password_checks@user=5/900^4").unwrap();
        let w: Vec<(u64, u64)> = p.windows.iter().map(|w| (w.limit, w.seconds)).collect();
        assert_eq!(w, vec![(5, 900), (10, 3600), (20, 14400), (40, 57600)]);
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        for spec in [
            "likes=5/60",
            "likes@ip=5/60",
            "likes@user=0/60",
            "likes@user=5/0",
            "likes@user=5/60,10/90",
            "likes@user=5/60,10/120^2",
            "li kes@user=5/60",
        ] {
            assert!(Policy::parse(spec).is_err(), "{spec}");
        }
    }

    #[test]
    fn a_plan_names_one_item_per_largest_window_and_a_counter_per_window() {
        let p = Policy::parse("posts@user=50/3600,100/86400").unwrap();
        let now = 86_400 * 3 + 3_600 * 5 + 10;
        let plan = p.plan("U1", now, 1);
        assert_eq!(plan.pk, "posts#user#U1#3");
        assert_eq!(plan.counters[0].attribute, format!("c3600_{}", now / 3600));
        assert_eq!(plan.counters[1].attribute, "c86400_3");
        assert_eq!(plan.counters[0].resets_at, 86_400 * 3 + 3_600 * 6);
        assert_eq!(plan.ttl, 86_400 * 4 + 60);
        // An hour later the same item, another hourly counter.
        let later = p.plan("U1", now + 3600, 1);
        assert_eq!(later.pk, plan.pk);
        assert_ne!(later.counters[0].attribute, plan.counters[0].attribute);
    }

    #[test]
    fn a_request_fits_while_every_window_has_room() {
        let p = Policy::parse("posts@user=2/3600,3/86400").unwrap();
        let plan = p.plan("U1", 100, 1);
        assert!(plan.fits(&[]));
        assert!(plan.fits(&[1, 2]));
        assert!(!plan.fits(&[2, 2]));
        assert!(!plan.fits(&[0, 3]));
        let big = p.plan("U1", 100, 4);
        assert!(
            !big.fits(&[]),
            "more than a window's whole limit never fits"
        );
    }

    #[test]
    fn a_refusal_names_the_full_window_that_ends_last() {
        let p = Policy::parse("posts@user=2/3600,3/86400").unwrap();
        let plan = p.plan("U1", 100, 1);
        assert_eq!(plan.refusal(&[2, 2]), (p.windows[0], 3500));
        assert_eq!(plan.refusal(&[2, 3]), (p.windows[1], 86300));
        assert_eq!(plan.refusal(&[0, 0]).1, 1);
    }

    #[test]
    fn the_headers_follow_the_ietf_fields() {
        let p = Policy::parse("likes@user=120/3600").unwrap();
        let plan = p.plan("U1", 3600 + 1800, 1);
        let used = [Usage::of(&p, &plan, Some(&[25]))];
        assert_eq!(policy_field(&used), "\"likes-1h\";q=120;w=3600");
        assert_eq!(
            remaining_field(&used).as_deref(),
            Some("\"likes-1h\";r=95;t=1800")
        );
        let unknown = [Usage::of(&p, &plan, None)];
        assert_eq!(remaining_field(&unknown), None);
    }
}
