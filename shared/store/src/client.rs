//! An AWS SDK client built on first use, not at cold start.

use std::sync::{Arc, OnceLock};

use crate::SdkConfig;

/// An SDK client (DynamoDB, SQS...) that is built the first time a request uses it.
///
/// Building one is about a tenth of a millisecond per client (its configuration, runtime
/// plugins and endpoint resolver), and at cold start a function would pay it before its
/// first `GET /next` even when that first request needs no AWS call (a refused token, an
/// invalid body). Clones share the one client, so a function still builds each at most
/// once per instance.
#[derive(Clone)]
pub struct SdkClient<C> {
    config: SdkConfig,
    build: fn(&SdkConfig) -> C,
    client: Arc<OnceLock<C>>,
}

impl<C> SdkClient<C> {
    /// A client that `build` (such as `aws_sdk_dynamodb::Client::new`) makes from `config`
    /// when it is first used.
    pub fn new(config: &SdkConfig, build: fn(&SdkConfig) -> C) -> Self {
        Self {
            config: config.clone(),
            build,
            client: Arc::new(OnceLock::new()),
        }
    }

    /// The client, built now if this is its first use.
    pub fn get(&self) -> &C {
        self.client.get_or_init(|| (self.build)(&self.config))
    }

    /// Whether the client has been built yet.
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

impl<C> std::fmt::Debug for SdkClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkClient")
            .field("type", &std::any::type_name::<C>())
            .field("built", &self.is_built())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    fn counted(_: &SdkConfig) -> usize {
        BUILT.fetch_add(1, Ordering::SeqCst) + 1
    }

    #[test]
    fn a_client_is_built_on_first_use_and_once_for_every_clone() {
        let config = SdkConfig::builder().build();
        let client = SdkClient::new(&config, counted);
        let clone = client.clone();
        assert!(!client.is_built());
        assert_eq!(BUILT.load(Ordering::SeqCst), 0, "nothing built up front");
        assert_eq!(*clone.get(), 1);
        assert_eq!(*client.get(), 1);
        assert!(client.is_built());
        assert_eq!(BUILT.load(Ordering::SeqCst), 1);
    }
}
