//! EventBridge schedules (SAM `Schedule` events), as EventBridge runs them: at each tick
//! the function is invoked asynchronously with a scheduled event (or the event's constant
//! `Input`), whether or not the previous run has finished. A failed run is logged and not
//! retried: the next tick is the retry (the template sets no async retries for them).
//!
//! Expressions: `rate(N minute|minutes|hour|hours|day|days)` as in AWS, plus
//! `rate(N second|seconds)`, a devstack-only unit for tests that cannot wait a minute
//! (EventBridge refuses it; the template's parameters allow only AWS's forms, and tests
//! pass the override). `cron(...)` is run for schedules of minutes and hours (each field
//! `*`, `N`, `A-B`, `*/S`, `A/S`, `A-B/S` or a list), every day; a day, month or weekday
//! other than `*`/`?` is refused at start-up, naming the function, rather than run at
//! the wrong times.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::runtime::{Function, InvokeError};
use crate::template::{ACCOUNT, REGION};

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// Every so often, from when the devstack starts.
    Rate(Duration),
    /// At the minutes and hours listed (UTC), every day.
    Cron { minutes: Vec<u8>, hours: Vec<u8> },
}

impl Expression {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            let (count, unit) = inner
                .trim()
                .split_once(' ')
                .ok_or_else(|| format!("{text}: expected rate(<number> <unit>)"))?;
            let count: u64 = count
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{text}: the rate must be a positive whole number"))?;
            let unit = match unit.trim() {
                "second" | "seconds" => 1,
                "minute" | "minutes" => 60,
                "hour" | "hours" => 3_600,
                "day" | "days" => 86_400,
                other => return Err(format!("{text}: unknown unit {other}")),
            };
            return Ok(Self::Rate(Duration::from_secs(count * unit)));
        }
        if let Some(inner) = text.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            let fields: Vec<&str> = inner.split_whitespace().collect();
            let [minutes, hours, day, month, weekday, year] = fields[..] else {
                return Err(format!(
                    "{text}: EventBridge cron has six fields (minutes hours day-of-month month day-of-week year)"
                ));
            };
            for (name, field) in [
                ("day-of-month", day),
                ("month", month),
                ("day-of-week", weekday),
                ("year", year),
            ] {
                if field != "*" && field != "?" {
                    return Err(format!(
                        "{text}: the devstack runs cron schedules of minutes and hours only; its {name} must be * or ?"
                    ));
                }
            }
            return Ok(Self::Cron {
                minutes: cron_field(minutes, 59).map_err(|e| format!("{text}: minutes {e}"))?,
                hours: cron_field(hours, 23).map_err(|e| format!("{text}: hours {e}"))?,
            });
        }
        Err(format!("{text}: expected rate(...) or cron(...)"))
    }

    /// How long from `now` (seconds since the epoch, UTC) until it fires next.
    pub fn next_after(&self, now: u64) -> Duration {
        match self {
            Self::Rate(every) => *every,
            Self::Cron { minutes, hours } => {
                let this_minute = now - now % 60;
                // Every minute of the next two days has a match when both lists do.
                (1..=2 * 24 * 60)
                    .map(|m| this_minute + m * 60)
                    .find(|t| {
                        let minute = ((t / 60) % 60) as u8;
                        let hour = ((t / 3_600) % 24) as u8;
                        minutes.contains(&minute) && hours.contains(&hour)
                    })
                    .map_or(Duration::from_secs(86_400), |t| {
                        Duration::from_secs(t - now)
                    })
            }
        }
    }
}

/// The values one cron field allows, from 0 to `max`.
fn cron_field(field: &str, max: u8) -> Result<Vec<u8>, String> {
    let number = |s: &str| {
        s.parse::<u8>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("{s:?} is not a number from 0 to {max}"))
    };
    let mut values = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                number(step)
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or("a zero or bad step")?,
            ),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (0, max),
            r => match r.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                // `5/15` runs from 5 to the end; `5` alone is just 5.
                None if part.contains('/') => (number(r)?, max),
                None => (number(r)?, number(r)?),
            },
        };
        if from > to {
            return Err(format!("{range}: a range must go upwards"));
        }
        values.extend((from..=to).step_by(usize::from(step)));
    }
    values.sort_unstable();
    values.dedup();
    Ok(values)
}

/// Starts a timer for every enabled `Schedule` event of every function.
pub fn start_all(
    functions: &[Arc<Function>],
    stop: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut tasks = Vec::new();
    for function in functions {
        for (event_name, ty, props) in &function.spec.events {
            if ty != "Schedule"
                || props["Enabled"] == json!(false)
                || props["State"] == json!("DISABLED")
            {
                continue;
            }
            let name = format!("{}.{event_name}", function.spec.name);
            let text = props["Schedule"].as_str().unwrap_or_default();
            let expression =
                Expression::parse(text).map_err(|e| Error::Template(format!("{name}: {e}")))?;
            let input = match props["Input"].as_str() {
                Some(text) => Some(
                    serde_json::from_str::<Value>(text)
                        .map_err(|e| Error::Template(format!("{name}: Input is not JSON: {e}")))?,
                ),
                None => None,
            };
            tasks.push(tokio::spawn(run(
                function.clone(),
                name,
                expression,
                input,
                stop.child_token(),
            )));
        }
    }
    Ok(tasks)
}

async fn run(
    function: Arc<Function>,
    name: String,
    expression: Expression,
    input: Option<Value>,
    stop: CancellationToken,
) {
    loop {
        let wait = expression.next_after(epoch_seconds());
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let event = input.clone().unwrap_or_else(|| scheduled_event(&name));
        let (function, name) = (function.clone(), name.clone());
        // Asynchronous, as EventBridge invokes: the next tick does not wait for this run.
        tokio::spawn(async move {
            match function.invoke(&event).await {
                Ok(_) | Err(InvokeError::Stopped) => {}
                Err(e) => tracing::warn!("{name}: scheduled run failed: {e}"),
            }
        });
    }
}

/// The event EventBridge sends a scheduled rule's target.
fn scheduled_event(rule: &str) -> Value {
    let time = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string().to_lowercase(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{}", rule.replace('.', "-"))],
        "detail": {},
    })
}

fn epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_in_aws_units_and_seconds_for_tests() {
        assert_eq!(
            Expression::parse("rate(1 minute)"),
            Ok(Expression::Rate(Duration::from_secs(60)))
        );
        assert_eq!(
            Expression::parse("rate(2 hours)"),
            Ok(Expression::Rate(Duration::from_secs(7_200)))
        );
        assert_eq!(
            Expression::parse("rate(3 seconds)"),
            Ok(Expression::Rate(Duration::from_secs(3)))
        );
        for bad in [
            "rate(0 minutes)",
            "rate(minute)",
            "rate(5 weeks)",
            "every minute",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_of_minutes_and_hours_and_nothing_it_would_get_wrong() {
        assert_eq!(
            Expression::parse("cron(0/15 3,4 * * ? *)"),
            Ok(Expression::Cron {
                minutes: vec![0, 15, 30, 45],
                hours: vec![3, 4]
            })
        );
        assert_eq!(
            Expression::parse("cron(5-7 * * * ? *)"),
            Ok(Expression::Cron {
                minutes: vec![5, 6, 7],
                hours: (0..=23).collect()
            })
        );
        let refused = Expression::parse("cron(0 3 ? * MON *)").unwrap_err();
        assert!(refused.contains("day-of-week"), "{refused}");
        assert!(Expression::parse("cron(0 3 * *)").is_err());
        assert!(Expression::parse("cron(61 3 * * ? *)").is_err());
    }

    #[test]
    fn cron_fires_at_the_next_matching_minute() {
        let daily_at_3 = Expression::parse("cron(0 3 * * ? *)").unwrap();
        // 2026-11-25T02:59:30Z → 03:00:00, 30 seconds later.
        let now = 1_795_597_200 - 6 * 3_600 - 30;
        assert_eq!(daily_at_3.next_after(now), Duration::from_secs(30));
        // Just past 03:00 → tomorrow's.
        assert_eq!(
            daily_at_3.next_after(now + 31),
            Duration::from_secs(24 * 3_600 - 1)
        );
        let rate = Expression::parse("rate(5 minutes)").unwrap();
        assert_eq!(rate.next_after(now), Duration::from_secs(300));
    }

    #[test]
    fn the_scheduled_event_has_eventbridges_shape() {
        let event = scheduled_event("Fn.Sweep");
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["source"], "aws.events");
        assert_eq!(
            event["resources"][0],
            "arn:aws:events:us-east-1:123456789012:rule/Fn-Sweep"
        );
        assert!(event["time"].as_str().unwrap().ends_with('Z'));
    }
}
