//! The tenant scope: proof that a request was authenticated for one tenant.

use crate::UserId;

/// Proof that the caller was authenticated as tenant [`TenantScope::user_id`].
///
/// Every tenant-owned store method takes one. The field is private and the constructors
/// live with the code that checks credentials:
/// - [`crate::auth::session::SessionKeys::verify`] → a verified session → [`TenantScope::from_session`];
/// - [`crate::auth::api_key::verify`] for a presented API key;
/// - [`TenantScope::from_credential_lookup`] for the store's `…_unscoped` credential
///   resolutions (API key hash → tenant, logger serial → tenant), the one unscoped read.
///
/// Tests may use `TenantScope::for_tests` behind the `test-util` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantScope {
    user_id: UserId,
}

impl TenantScope {
    /// The tenant this scope was minted for.
    pub const fn user_id(&self) -> UserId {
        self.user_id
    }

    /// Mints a scope from a tenant id that a credential resolution (`…_unscoped`) returned.
    ///
    /// Only credential-resolution code may call this: the id must come from the stored
    /// owner of a credential that was just checked (an API key hash, a claimed logger serial).
    pub const fn from_credential_lookup(user_id: UserId) -> Self {
        Self { user_id }
    }

    pub(crate) const fn new(user_id: UserId) -> Self {
        Self { user_id }
    }

    /// Mints a scope for any user id: tests only.
    #[cfg(feature = "test-util")]
    pub const fn for_tests(user_id: UserId) -> Self {
        Self { user_id }
    }
}
