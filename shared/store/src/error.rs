//! The storage layer's one error type. It says what happened in storage terms; each
//! service decides what that means to its clients (a conflict label becomes an API code in
//! one place per service) or to its consumers (retry or poison).

/// A boxed cause, kept for logs.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A labelled condition of a write failed: the item it guards was not as expected
    /// (taken, changed meanwhile, gone). The label names which, as the store wrote it.
    #[error("condition `{0}` failed")]
    Conflict(&'static str),
    /// The item a write or read needed is not there.
    #[error("item not found")]
    NotFound,
    /// DynamoDB could not be reached, throttled, or kept a transaction in conflict:
    /// trying again later can succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// A stored item or a request could not be encoded or decoded: trying again cannot
    /// help.
    #[error("stored data is invalid: {0}")]
    Corrupt(#[source] Cause),
}

impl StoreError {
    pub fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(err))
    }

    pub fn corrupt(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Corrupt(Box::new(err))
    }

    /// A message as the cause of [`StoreError::Corrupt`].
    pub fn corrupt_because(why: impl Into<String>) -> Self {
        Self::Corrupt(why.into().into())
    }

    /// True when trying the same thing again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Conflict(_))
    }

    /// True for a failed condition with `label`.
    pub fn is_conflict(&self, label: &str) -> bool {
        matches!(self, Self::Conflict(l) if *l == label)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
