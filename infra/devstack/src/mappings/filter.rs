//! Lambda event filtering (`FilterCriteria`): the event-pattern rules Lambda applies before
//! a record reaches the function. A record passes when any filter matches; records that
//! match none are dropped, as in AWS.

use serde_json::Value;

/// The parsed `FilterCriteria.Filters[].Pattern`s; empty means everything passes.
#[derive(Debug, Clone, Default)]
pub struct Filters(Vec<Value>);

impl Filters {
    pub fn from_props(props: &Value) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for f in props["FilterCriteria"]["Filters"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let pattern = match &f["Pattern"] {
                Value::String(s) => {
                    serde_json::from_str(s).map_err(|e| format!("filter pattern {s}: {e}"))?
                }
                other => other.clone(),
            };
            patterns.push(pattern);
        }
        Ok(Self(patterns))
    }

    pub fn accepts(&self, record: &Value) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| matches(p, record))
    }
}

fn matches(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(key, rule)| {
        let value = event.get(key);
        match rule {
            Value::Object(_) => value.is_some_and(|v| matches(rule, v)),
            Value::Array(options) => options.iter().any(|o| matches_one(o, value)),
            _ => false,
        }
    })
}

/// One option of a field's list against the field's value (a list value matches when any
/// of its elements does).
fn matches_one(option: &Value, value: Option<&Value>) -> bool {
    if let Some(Value::Array(items)) = value {
        return items.iter().any(|v| matches_one(option, Some(v)));
    }
    match option {
        Value::Object(op) => {
            let Some((name, arg)) = op.iter().next() else {
                return false;
            };
            match (name.as_str(), value) {
                ("exists", v) => arg.as_bool() == Some(v.is_some()),
                ("prefix", Some(Value::String(s))) => {
                    arg.as_str().is_some_and(|p| s.starts_with(p))
                }
                ("suffix", Some(Value::String(s))) => arg.as_str().is_some_and(|p| s.ends_with(p)),
                ("equals-ignore-case", Some(Value::String(s))) => {
                    arg.as_str().is_some_and(|p| s.eq_ignore_ascii_case(p))
                }
                ("anything-but", Some(v)) => match arg {
                    Value::Array(not) => !not.contains(v),
                    Value::Object(_) => !matches_one(arg, Some(v)),
                    other => other != v,
                },
                ("numeric", Some(Value::Number(n))) => numeric(arg, n.as_f64().unwrap_or(f64::NAN)),
                _ => false,
            }
        }
        Value::Null => matches!(value, Some(Value::Null)),
        scalar => value == Some(scalar),
    }
}

fn numeric(arg: &Value, n: f64) -> bool {
    let Some(ops) = arg.as_array() else {
        return false;
    };
    ops.chunks(2).all(|pair| {
        match (
            pair.first().and_then(Value::as_str),
            pair.get(1).and_then(Value::as_f64),
        ) {
            (Some("="), Some(x)) => n == x,
            (Some("<"), Some(x)) => n < x,
            (Some("<="), Some(x)) => n <= x,
            (Some(">"), Some(x)) => n > x,
            (Some(">="), Some(x)) => n >= x,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filters(pattern: &str) -> Filters {
        Filters::from_props(&json!({"FilterCriteria": {"Filters": [{"Pattern": pattern}]}}))
            .unwrap()
    }

    #[test]
    fn the_outbox_filter_passes_only_inserted_outbox_items() {
        let f = filters(
            r#"{"eventName": ["INSERT"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "OUTBOX#"}]}}}}"#,
        );
        let rec = |name: &str, pk: &str| json!({"eventName": name, "dynamodb": {"Keys": {"pk": {"S": pk}}}});
        assert!(f.accepts(&rec("INSERT", "OUTBOX#01")));
        assert!(
            !f.accepts(&rec("REMOVE", "OUTBOX#01")),
            "TTL deletes of outbox items are not events"
        );
        assert!(!f.accepts(&rec("INSERT", "USER#01")));
        assert!(!f.accepts(&json!({"eventName": "INSERT"})));
    }

    #[test]
    fn operators() {
        assert!(filters(r#"{"a": [{"exists": false}]}"#).accepts(&json!({"b": 1})));
        assert!(!filters(r#"{"a": [{"exists": false}]}"#).accepts(&json!({"a": 1})));
        assert!(filters(r#"{"a": [{"anything-but": ["x"]}]}"#).accepts(&json!({"a": "y"})));
        assert!(filters(r#"{"a": [{"numeric": [">", 1, "<=", 3]}]}"#).accepts(&json!({"a": 3})));
        assert!(filters(r#"{"a": ["x", "y"]}"#).accepts(&json!({"a": ["z", "y"]})));
        assert!(Filters::default().accepts(&json!({})));
    }
}
