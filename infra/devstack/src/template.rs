//! Reads template.yaml: the single source of truth for functions, routes, tables, queues,
//! buckets, topics and event source mappings. YAML short-form intrinsics (`!Ref`,
//! `!GetAtt`, `!Sub`, ...) become their long JSON form, which [`Resolver`] evaluates once
//! the local stack knows every resource's physical name.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Map, Value, json};
use serde_yaml_ng::value::TaggedValue;

use crate::Error;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// template.yaml as JSON, intrinsics in long form and still unresolved.
#[derive(Debug, Clone)]
pub struct Template {
    pub doc: Value,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Template(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, Error> {
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| Error::Template(format!("not YAML: {e}")))?;
        Ok(Self {
            doc: yaml_to_json(yaml)?,
        })
    }

    /// Every resource as (logical id, type, properties), in template order.
    pub fn resources(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.doc["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, r)| {
                (
                    id.as_str(),
                    r["Type"].as_str().unwrap_or_default(),
                    &r["Properties"],
                )
            })
    }

    pub fn resource(&self, id: &str) -> &Value {
        &self.doc["Resources"][id]
    }

    pub fn resources_of<'a>(
        &'a self,
        ty: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources()
            .filter(move |(_, t, _)| *t == ty)
            .map(|(id, _, p)| (id, p))
    }

    pub fn parameters(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.doc["Parameters"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Kafka topics are not CloudFormation resources: a `Custom::KafkaTopics` resource
    /// lists them (its function creates them in AWS), and every MSK event source names
    /// the ones it reads. The devstack creates them all before any function runs.
    pub fn kafka_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .resources_of("Custom::KafkaTopics")
            .flat_map(|(_, props)| props["Topics"].as_array().into_iter().flatten())
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        for (_, props) in self.resources_of("AWS::Serverless::Function") {
            for event in props["Events"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, e)| e)
            {
                if event["Type"] == "MSK" {
                    for t in event["Properties"]["Topics"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        if let Some(t) = t.as_str() {
                            topics.push(t.to_owned());
                        }
                    }
                }
            }
        }
        topics.sort();
        topics.dedup();
        topics
    }

    /// `Globals.Function` merged under a function's own properties (maps merge, the
    /// function's scalars win), as SAM does.
    pub fn function_properties(&self, id: &str) -> Value {
        let mut merged = self.doc["Globals"]["Function"].clone();
        if merged.is_null() {
            merged = json!({});
        }
        merge(&mut merged, &self.resource(id)["Properties"]);
        merged
    }
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn yaml_to_json(v: serde_yaml_ng::Value) -> Result<Value, Error> {
    use serde_yaml_ng::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(
            seq.into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => {
                        return Err(Error::Template(format!(
                            "unsupported mapping key {other:?}"
                        )));
                    }
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => short_form(*tagged)?,
    })
}

/// `!Ref X` → `{"Ref": X}`, `!GetAtt A.B` → `{"Fn::GetAtt": [A, B]}`, `!Fn v` → `{"Fn::Fn": v}`.
fn short_form(tagged: TaggedValue) -> Result<Value, Error> {
    let tag = tagged.tag.to_string();
    let name = tag.trim_start_matches('!');
    let value = yaml_to_json(tagged.value)?;
    Ok(match name {
        "Ref" => json!({ "Ref": value }),
        "GetAtt" => match value {
            Value::String(s) => {
                let (res, attr) = s.split_once('.').ok_or_else(|| {
                    Error::Template(format!("!GetAtt {s}: expected Resource.Attribute"))
                })?;
                json!({ "Fn::GetAtt": [res, attr] })
            }
            other => json!({ "Fn::GetAtt": other }),
        },
        "Condition" => json!({ "Condition": value }),
        other => json!({ format!("Fn::{other}"): value }),
    })
}

/// What intrinsics evaluate to locally: parameter values, each resource's `Ref` and
/// attributes (`Arn`, `StreamArn`, `QueueUrl`, ...), and the secrets the devstack made, for
/// `{{resolve:secretsmanager:...}}` dynamic references.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    refs: HashMap<String, Value>,
    attrs: HashMap<(String, String), String>,
    /// By ARN and by name.
    secrets: HashMap<String, String>,
}

impl Resolver {
    /// A secret's value as CloudFormation would read it at deploy time.
    pub fn set_secret(&mut self, arn: &str, name: &str, value: &str) {
        self.secrets.insert(arn.to_owned(), value.to_owned());
        self.secrets.insert(name.to_owned(), value.to_owned());
    }

    pub fn set_ref(&mut self, id: &str, value: impl Into<Value>) {
        self.refs.insert(id.to_owned(), value.into());
    }

    pub fn set_attr(&mut self, id: &str, attr: &str, value: impl Into<String>) {
        self.attrs
            .insert((id.to_owned(), attr.to_owned()), value.into());
    }

    pub fn get_ref(&self, id: &str) -> Option<&Value> {
        self.refs.get(id)
    }

    pub fn attr(&self, id: &str, attr: &str) -> Option<&str> {
        self.attrs
            .get(&(id.to_owned(), attr.to_owned()))
            .map(String::as_str)
    }

    fn pseudo(&self, name: &str) -> Option<Value> {
        Some(Value::String(
            match name {
                "AWS::Region" => REGION,
                "AWS::AccountId" => ACCOUNT,
                "AWS::Partition" => "aws",
                "AWS::URLSuffix" => "amazonaws.com",
                "AWS::StackName" => "shutter-local",
                "AWS::StackId" => {
                    "arn:aws:cloudformation:us-east-1:123456789012:stack/shutter-local/local"
                }
                "AWS::NoValue" => return Some(Value::Null),
                _ => return None,
            }
            .to_owned(),
        ))
    }

    fn lookup_ref(&self, name: &str) -> Result<Value, Error> {
        self.pseudo(name)
            .or_else(|| self.refs.get(name).cloned())
            .ok_or_else(|| {
                Error::Template(format!(
                    "!Ref {name}: nothing of that name is known locally"
                ))
            })
    }

    fn lookup_attr(&self, res: &str, attr: &str) -> Result<String, Error> {
        self.attr(res, attr)
            .map(str::to_owned)
            .ok_or_else(|| Error::Template(format!("!GetAtt {res}.{attr}: not known locally")))
    }

    /// Evaluates every intrinsic inside `v`, then (as CloudFormation does, after them) every
    /// dynamic reference.
    pub fn resolve(&self, v: &Value) -> Result<Value, Error> {
        self.with_dynamic_references(self.intrinsics(v)?)
    }

    fn with_dynamic_references(&self, v: Value) -> Result<Value, Error> {
        Ok(match v {
            Value::String(text) => Value::String(self.dynamic_references(&text)?),
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|i| self.with_dynamic_references(i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| Ok((k, self.with_dynamic_references(v)?)))
                    .collect::<Result<_, Error>>()?,
            ),
            other => other,
        })
    }

    fn intrinsics(&self, v: &Value) -> Result<Value, Error> {
        match v {
            Value::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|i| self.intrinsics(i))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Object(map) if map.len() == 1 => {
                let (k, arg) = map.iter().next().expect("one entry");
                match k.as_str() {
                    "Ref" => self.lookup_ref(arg.as_str().unwrap_or_default()),
                    "Fn::GetAtt" => {
                        let parts = self.intrinsics(arg)?;
                        let res = parts[0].as_str().unwrap_or_default();
                        let attr = parts[1].as_str().unwrap_or_default();
                        Ok(Value::String(self.lookup_attr(res, attr)?))
                    }
                    "Fn::Sub" => self.sub(arg),
                    "Fn::Join" => {
                        let sep = arg[0].as_str().unwrap_or_default().to_owned();
                        let items = self.intrinsics(&arg[1])?;
                        let parts: Vec<String> = items
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(scalar_string)
                            .collect();
                        Ok(Value::String(parts.join(&sep)))
                    }
                    "Fn::Select" => {
                        let idx = self.intrinsics(&arg[0])?;
                        let idx = scalar_string(&idx).parse::<usize>().unwrap_or(0);
                        Ok(self
                            .resolve(&arg[1])?
                            .get(idx)
                            .cloned()
                            .unwrap_or(Value::Null))
                    }
                    "Fn::Split" => {
                        let sep = arg[0].as_str().unwrap_or_default();
                        let s = scalar_string(&self.intrinsics(&arg[1])?);
                        Ok(Value::Array(
                            s.split(sep).map(|p| Value::String(p.to_owned())).collect(),
                        ))
                    }
                    k if k.starts_with("Fn::") => Err(Error::Template(format!(
                        "{k} is not supported by the devstack"
                    ))),
                    _ => Ok(Value::Object(self.resolve_map(map)?)),
                }
            }
            Value::Object(map) => Ok(Value::Object(self.resolve_map(map)?)),
            other => Ok(other.clone()),
        }
    }

    /// `text` with each `{{resolve:secretsmanager:SECRET[:SecretString[:JSON_KEY]]}}`
    /// replaced by the secret's value (or that key of it), as CloudFormation does at deploy
    /// time. SECRET is a name or an ARN (whose own colons are part of it); version stages
    /// and ids are not supported locally, and neither are `ssm` references.
    fn dynamic_references(&self, text: &str) -> Result<String, Error> {
        expand("", text, "{{resolve:", "}}", |reference| {
            self.dynamic_reference(reference)
        })
    }

    fn dynamic_reference(&self, reference: &str) -> Result<String, Error> {
        let unsupported = |why: &str| {
            Err(Error::Template(format!(
                "{{{{resolve:{reference}}}}}: {why} locally"
            )))
        };
        let Some(spec) = reference.strip_prefix("secretsmanager:") else {
            return unsupported("only secretsmanager references are resolved");
        };
        let parts: Vec<&str> = spec.split(':').collect();
        // An ARN is arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, seven parts.
        let id_parts = if spec.starts_with("arn:") { 7 } else { 1 };
        if parts.len() < id_parts {
            return unsupported("not a secret ARN");
        }
        let (id, options) = parts.split_at(id_parts);
        let id = id.join(":");
        let field = options.first().copied().unwrap_or("SecretString");
        let json_key = options.get(1).copied().unwrap_or("");
        if field != "SecretString" && !field.is_empty() {
            return unsupported("only SecretString is");
        }
        if options.iter().skip(2).any(|o| !o.is_empty()) {
            return unsupported("version stages and ids are not supported");
        }
        let Some(value) = self.secrets.get(&id) else {
            return unsupported("the secret is not one the devstack made, so it is unknown");
        };
        if json_key.is_empty() {
            return Ok(value.clone());
        }
        let parsed: Value = serde_json::from_str(value).unwrap_or(Value::Null);
        match &parsed[json_key] {
            Value::Null => unsupported("the secret has no such JSON key"),
            v => Ok(scalar_string(v)),
        }
    }

    fn resolve_map(&self, map: &Map<String, Value>) -> Result<Map<String, Value>, Error> {
        map.iter()
            .map(|(k, v)| Ok((k.clone(), self.intrinsics(v)?)))
            .collect()
    }

    fn sub(&self, arg: &Value) -> Result<Value, Error> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), Map::new()),
            Value::Array(a) => (
                a.first().and_then(Value::as_str).unwrap_or_default(),
                self.intrinsics(a.get(1).unwrap_or(&Value::Null))?
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
            other => return Err(Error::Template(format!("!Sub of {other}"))),
        };
        let expanded = expand("!Sub ", text, "${", "}", |name| {
            Ok(if let Some(literal) = name.strip_prefix('!') {
                format!("${{{literal}}}")
            } else if let Some(v) = vars.get(name) {
                scalar_string(v)
            } else if let Some((res, attr)) =
                name.split_once('.').filter(|_| !name.starts_with("AWS::"))
            {
                self.lookup_attr(res, attr)?
            } else {
                scalar_string(&self.lookup_ref(name)?)
            })
        })?;
        Ok(Value::String(expanded))
    }
}

/// `text` with each `open`..`close` placeholder replaced by what `with` makes of its
/// inside (`!Sub`'s `${...}`, dynamic references' `{{resolve:...}}`); `what` starts the
/// message about an unclosed one.
fn expand(
    what: &str,
    text: &str,
    open: &str,
    close: &str,
    mut with: impl FnMut(&str) -> Result<String, Error>,
) -> Result<String, Error> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        let after = &rest[start + open.len()..];
        let end = after
            .find(close)
            .ok_or_else(|| Error::Template(format!("{what}{text}: unclosed {open}")))?;
        out.push_str(&with(&after[..end])?);
        rest = &after[end + close.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A scalar as CloudFormation would stringify it.
pub fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(scalar_string).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A Lambda function of the template, resolved.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub binary: String,
    pub memory_mb: u64,
    pub timeout_s: u64,
    /// `ReservedConcurrentExecutions`: at most this many environments at once.
    pub reserved_concurrency: Option<u64>,
    pub environment: BTreeMap<String, String>,
    pub log_format: Option<String>,
    /// (event name, event type, resolved properties)
    pub events: Vec<(String, String, Value)>,
}

impl FunctionSpec {
    pub fn from_template(
        template: &Template,
        resolver: &Resolver,
        id: &str,
    ) -> Result<Self, Error> {
        let raw = template.function_properties(id);
        let props = resolver.resolve(&raw)?;
        let binary = template.resource(id)["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .ok_or_else(|| {
                Error::Template(format!(
                    "{id}: Metadata.BuildProperties.Binary names its cargo binary"
                ))
            })?
            .to_owned();
        let environment = props["Environment"]["Variables"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), scalar_string(v)))
            .collect();
        let events = props["Events"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, e)| {
                (
                    name.clone(),
                    e["Type"].as_str().unwrap_or_default().to_owned(),
                    e["Properties"].clone(),
                )
            })
            .collect();
        Ok(Self {
            name: props["FunctionName"].as_str().unwrap_or(id).to_owned(),
            binary,
            memory_mb: props["MemorySize"].as_u64().unwrap_or(128),
            timeout_s: props["Timeout"].as_u64().unwrap_or(3),
            reserved_concurrency: props["ReservedConcurrentExecutions"]
                .as_u64()
                .or_else(|| props["ReservedConcurrentExecutions"].as_str()?.parse().ok()),
            environment,
            log_format: props["LoggingConfig"]["LogFormat"]
                .as_str()
                .map(str::to_owned),
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Issuer: { Type: String }
Globals:
  Function:
    Timeout: 10
    Environment: { Variables: { A: !Ref Issuer } }
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  Fn:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: fn-bin } }
    Properties:
      Timeout: 30
      Environment:
        Variables:
          T: !Ref Table
          S: !GetAtt Table.StreamArn
          U: !Sub "${Issuer}/x/${AWS::Region}/${Table.Arn}/${!Literal}"
          J: !Join ["-", [a, !Ref Table]]
"#;

    #[test]
    fn intrinsics_resolve_against_local_names() {
        let t = Template::parse(TEMPLATE).unwrap();
        let mut r = Resolver::default();
        r.set_ref("Issuer", "http://127.0.0.1:1");
        r.set_ref("Table", "Table");
        r.set_attr("Table", "StreamArn", "arn:stream");
        r.set_attr("Table", "Arn", "arn:table");
        let f = FunctionSpec::from_template(&t, &r, "Fn").unwrap();
        assert_eq!(f.binary, "fn-bin");
        assert_eq!(f.timeout_s, 30, "the function's own value beats Globals");
        assert_eq!(
            f.environment["A"], "http://127.0.0.1:1",
            "Globals variables are merged in"
        );
        assert_eq!(f.environment["S"], "arn:stream");
        assert_eq!(
            f.environment["U"],
            "http://127.0.0.1:1/x/us-east-1/arn:table/${Literal}"
        );
        assert_eq!(f.environment["J"], "a-Table");
    }

    #[test]
    fn secrets_manager_dynamic_references_resolve_to_the_secrets_the_devstack_made() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shutter-local/jwks-AbC";
        let mut r = Resolver::default();
        r.set_ref("JwksArn", arn);
        r.set_secret(arn, "shutter-local/jwks", r#"{"keys":[1],"user":"ann"}"#);
        let sub = json!({"Fn::Sub": "{{resolve:secretsmanager:${JwksArn}:SecretString}}"});
        assert_eq!(
            r.resolve(&sub).unwrap(),
            json!(r#"{"keys":[1],"user":"ann"}"#)
        );
        let key = json!("u={{resolve:secretsmanager:shutter-local/jwks:SecretString:user}}!");
        assert_eq!(r.resolve(&key).unwrap(), json!("u=ann!"));
        let join =
            json!({"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": "JwksArn"}, "}}"]]});
        assert_eq!(
            r.resolve(&join).unwrap(),
            json!(r#"{"keys":[1],"user":"ann"}"#)
        );
        for bad in [
            "{{resolve:secretsmanager:nobody}}",
            "{{resolve:ssm:/a/b}}",
            "{{resolve:secretsmanager:shutter-local/jwks:SecretString::AWSPREVIOUS}}",
            "{{resolve:secretsmanager:shutter-local/jwks",
        ] {
            let err = r.resolve(&json!(bad)).unwrap_err();
            assert!(
                err.to_string().contains("locally") || err.to_string().contains("unclosed"),
                "{bad}: {err}"
            );
        }
        let unclosed = r.resolve(&json!({"Fn::Sub": "a ${JwksArn"})).unwrap_err();
        assert!(
            unclosed
                .to_string()
                .contains("!Sub a ${JwksArn: unclosed ${"),
            "{unclosed}"
        );
    }

    #[test]
    fn unknown_names_are_errors_not_blanks() {
        let t = Template::parse(TEMPLATE).unwrap();
        let err = FunctionSpec::from_template(&t, &Resolver::default(), "Fn").unwrap_err();
        assert!(err.to_string().contains("Issuer"), "{err}");
    }

    #[test]
    fn the_project_template_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let t = Template::load(&path).unwrap();
        assert!(t.resources_of("AWS::Serverless::Function").count() > 5);
        assert!(t.kafka_topics().contains(&"shutter.identity".to_owned()));
    }
}
