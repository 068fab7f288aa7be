//! Writes built once and sent alone or in a transaction. A write's condition carries a
//! label, so a cancelled transaction says which guard failed (`Conflict("username")`)
//! rather than which position of the item list did.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};

use crate::{AttributeValue, Item, StoreError};

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Put(Item),
    Delete(Item),
    Update { key: Item, expression: String },
    Check(Item),
}

/// What the SDK's builders take of a write: its condition expression, and its name and
/// value placeholders (none when empty, as DynamoDB refuses empty maps).
type Parts = (
    Option<String>,
    Option<HashMap<String, String>>,
    Option<HashMap<String, AttributeValue>>,
);

/// One put, update, delete or condition check, with at most one labelled condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    op: Op,
    condition: Option<(&'static str, String)>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Write {
    fn new(op: Op) -> Self {
        Self {
            op,
            condition: None,
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    /// Writes `item` (its key included), replacing what was there.
    pub fn put(item: Item) -> Self {
        Self::new(Op::Put(item))
    }

    /// Deletes the item at `key`; deleting what is not there succeeds.
    pub fn delete(key: Item) -> Self {
        Self::new(Op::Delete(key))
    }

    /// Applies update `expression` (`SET a = :a ADD n :one ...`) to the item at `key`.
    pub fn update(key: Item, expression: impl Into<String>) -> Self {
        Self::new(Op::Update {
            key,
            expression: expression.into(),
        })
    }

    /// Writes nothing, but fails the transaction with `label` unless `condition` holds
    /// for the item at `key`.
    pub fn check(key: Item, label: &'static str, condition: impl Into<String>) -> Self {
        Self::new(Op::Check(key)).when(label, condition)
    }

    /// The write happens only if `condition` holds; otherwise it fails with
    /// [`StoreError::Conflict`]`(label)`. One condition per write: combine with `AND`.
    pub fn when(mut self, label: &'static str, condition: impl Into<String>) -> Self {
        self.condition = Some((label, condition.into()));
        self
    }

    /// Only if no item has this key yet.
    pub fn if_absent(self, label: &'static str) -> Self {
        self.when(label, "attribute_not_exists(pk)")
    }

    /// Only if an item has this key.
    pub fn if_present(self, label: &'static str) -> Self {
        self.when(label, "attribute_exists(pk)")
    }

    /// A value placeholder (`:name`) used by the expressions.
    pub fn value(mut self, placeholder: impl Into<String>, value: AttributeValue) -> Self {
        self.values.insert(placeholder.into(), value);
        self
    }

    /// An attribute name placeholder (`#name`), for reserved words such as `state`.
    pub fn name(mut self, placeholder: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.names.insert(placeholder.into(), attribute.into());
        self
    }

    /// The label of this write's condition, if it has one.
    pub fn label(&self) -> Option<&'static str> {
        self.condition.as_ref().map(|(label, _)| *label)
    }

    /// The item this write puts, if it is a put (for in-memory fakes and tests).
    pub fn put_item(&self) -> Option<&Item> {
        match &self.op {
            Op::Put(item) => Some(item),
            _ => None,
        }
    }

    /// The key this write touches.
    pub fn key(&self) -> Item {
        match &self.op {
            Op::Put(item) => ["pk", "sk"]
                .iter()
                .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                .collect(),
            Op::Delete(key) | Op::Update { key, .. } | Op::Check(key) => key.clone(),
        }
    }

    fn parts(&self) -> Parts {
        let nonempty_names = (!self.names.is_empty()).then(|| self.names.clone());
        let nonempty_values = (!self.values.is_empty()).then(|| self.values.clone());
        (
            self.condition.as_ref().map(|(_, c)| c.clone()),
            nonempty_names,
            nonempty_values,
        )
    }

    /// The SDK's transaction item for `table`.
    pub(crate) fn transact_item(&self, table: &str) -> Result<TransactWriteItem, StoreError> {
        let (condition, names, values) = self.parts();
        let item = match &self.op {
            Op::Put(item) => TransactWriteItem::builder().put(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(item.clone()))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(StoreError::corrupt)?,
            ),
            Op::Delete(key) => TransactWriteItem::builder().delete(
                Delete::builder()
                    .table_name(table)
                    .set_key(Some(key.clone()))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(StoreError::corrupt)?,
            ),
            Op::Update { key, expression } => TransactWriteItem::builder().update(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(key.clone()))
                    .update_expression(expression)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(StoreError::corrupt)?,
            ),
            Op::Check(key) => TransactWriteItem::builder().condition_check(
                ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key.clone()))
                    .condition_expression(condition.unwrap_or_default())
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(StoreError::corrupt)?,
            ),
        };
        Ok(item.build())
    }

    /// Sends this write alone (not in a transaction).
    pub(crate) async fn send_alone(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> Result<(), StoreError> {
        let (condition, names, values) = self.parts();
        let label = self.label();
        let conflict = |code: Option<&str>| code == Some("ConditionalCheckFailedException");
        macro_rules! send {
            ($request:expr) => {
                match $request.send().await {
                    Ok(_) => Ok(()),
                    Err(err) => {
                        let code = aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&err)
                            .map(str::to_owned);
                        if conflict(code.as_deref()) {
                            Err(StoreError::Conflict(label.unwrap_or("unlabelled")))
                        } else {
                            Err(crate::table::sdk_error(err))
                        }
                    }
                }
            };
        }
        match &self.op {
            Op::Put(item) => send!(
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item.clone()))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
            ),
            Op::Delete(key) => send!(
                client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(key.clone()))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
            ),
            Op::Update { key, expression } => send!(
                client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(key.clone()))
                    .update_expression(expression)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
            ),
            Op::Check(_) => Err(StoreError::corrupt_because(
                "a condition check only makes sense in a transaction",
            )),
        }
    }
    /// Sends this update alone and answers the attributes it changed as they are after it
    /// (`UPDATED_NEW`), so a counter's new value costs no read.
    pub(crate) async fn send_update_returning(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> Result<Item, StoreError> {
        let Op::Update { key, expression } = &self.op else {
            return Err(StoreError::corrupt_because(
                "only an update answers what it changed",
            ));
        };
        let (condition, names, values) = self.parts();
        match client
            .update_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .update_expression(expression)
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
        {
            Ok(out) => Ok(out.attributes.unwrap_or_default()),
            Err(err) => {
                let code = aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&err);
                if code == Some("ConditionalCheckFailedException") {
                    Err(StoreError::Conflict(self.label().unwrap_or("unlabelled")))
                } else {
                    Err(crate::table::sdk_error(err))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{key, s};

    #[test]
    fn a_labelled_condition_reaches_the_sdk_item() {
        let w = Write::put(key("USERNAME#ann", "USERNAME")).if_absent("username");
        assert_eq!(w.label(), Some("username"));
        let item = w.transact_item("t").unwrap();
        let put = item.put().unwrap();
        assert_eq!(put.table_name(), "t");
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
    }

    #[test]
    fn updates_carry_names_and_values() {
        let w = Write::update(key("POST#1", "POST"), "SET #state = :s")
            .when("post", "attribute_exists(pk)")
            .name("#state", "state")
            .value(":s", s("ready"));
        let item = w.transact_item("t").unwrap();
        let update = item.update().unwrap();
        assert_eq!(update.update_expression(), "SET #state = :s");
        assert_eq!(
            update.expression_attribute_names().unwrap().get("#state"),
            Some(&"state".to_owned())
        );
        assert_eq!(w.key(), key("POST#1", "POST"));
    }

    #[test]
    fn checks_need_their_condition() {
        let w = Write::check(key("BLOCK#a", "b"), "blocked", "blocked = :no")
            .value(":no", AttributeValue::Bool(false));
        let item = w.transact_item("t").unwrap();
        assert_eq!(
            item.condition_check().unwrap().condition_expression(),
            "blocked = :no"
        );
        assert_eq!(w.label(), Some("blocked"));
    }
}
