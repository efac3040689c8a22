//! AccessKey credentials and where they come from.
//!
//! [`Credentials`] hold an AccessKey ID, its secret and, for STS credentials, a security token.
//! Their `Debug` shows the key id masked (`LTAI****wxyz`) and nothing else; the secret and token are
//! zeroed when dropped.
//!
//! Providers find credentials: [`StaticProvider`], [`EnvironmentProvider`]
//! (`ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`,
//! `ALIBABA_CLOUD_SECURITY_TOKEN`), [`OidcProvider`] (RRSA), [`ProfileProvider`] (the Alibaba
//! CLI's `~/.aliyun/config.json`), [`IniProvider`] (`~/.alibabacloud/credentials.ini`),
//! [`AssumeRoleProvider`] (a RAM role over any other provider) and [`DefaultChain`] (the
//! official order). A provider answers an error of kind
//! [`CredentialsErrorKind::NotConfigured`] when it is not configured, so that a chain moves on,
//! and another error when it is configured wrongly, so that a chain stops with a clear message.
//!
//! Every provider reads its environment through an [`Env`], which tests fill by hand instead of
//! changing the process environment.

mod assume_role;
mod body;
mod cache;
mod chain;
mod ecs;
mod env;
mod ini;
mod oidc;
mod process;
mod profile;
mod sts;
mod uri;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use assume_role::{AssumeRoleBuilder, AssumeRoleProvider, RAM_ROLE_ARN};
pub use cache::{
    Clock, CredentialsCache, CredentialsCacheBuilder, DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN,
    DEFAULT_REFRESH_BEFORE, SystemClock,
};
pub(crate) use cache::{ParentKey, Resolved};
pub use chain::{DefaultChain, DefaultChainBuilder, REGION_ID_VAR, Slot};
pub use ecs::{EcsRamRoleProvider, EcsRamRoleProviderBuilder};
pub use env::{Env, EnvironmentProvider};
pub use ini::{CREDENTIALS_FILE_VAR, INI_PROFILE, IniProvider};
pub use oidc::{
    OIDC_PROVIDER_ARN_VAR, OIDC_ROLE_ARN, OIDC_TOKEN_FILE_VAR, OidcBuilder, OidcProvider,
    ROLE_ARN_VAR,
};
pub use process::{DEFAULT_PROCESS_TIMEOUT, ProcessProvider};
pub use profile::{CLI_PROFILE, CLI_PROFILE_DISABLED_VAR, CONFIG_FILE_VAR, ProfileProvider};
pub use uri::UriProvider;

use crate::error::Error;
pub use crate::error::credentials_kind::CredentialsErrorKind;
pub use crate::secret::{Credentials, mask_key_id};

/// Checking lives here, not in `secret`, which sits below `error` in the module layering.
impl Credentials {
    /// Checks that the key id and secret are not empty.
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// assert!(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret").validate().is_ok());
    /// assert!(Credentials::new("LTAI5tExampleKeyIdwxyz", "").validate().is_err());
    /// assert!(Credentials::new(" ", "example-secret").validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        if self.access_key_id().trim().is_empty() {
            return Err(Error::credentials_invalid("the AccessKey ID is empty"));
        }
        if self.access_key_secret().is_empty() {
            return Err(Error::credentials_invalid(format!(
                "the AccessKey secret for {} is empty",
                self.masked_key_id()
            )));
        }
        Ok(())
    }
}

/// The future a [`CredentialsProvider`] returns.
///
/// ```
/// use aliyun_guard::credentials::{CredentialsFuture, CredentialsProvider};
/// use aliyun_guard::{Credentials, Error};
///
/// #[derive(Debug)]
/// struct FromFile(std::path::PathBuf);
///
/// impl CredentialsProvider for FromFile {
///     fn provide_credentials(&self) -> CredentialsFuture<'_> {
///         Box::pin(async move {
///             let text = tokio::fs::read_to_string(&self.0)
///                 .await
///                 .map_err(|e| Error::credentials_source("cannot read the key file", e))?;
///             let (id, secret) = text.trim().split_once(':')
///                 .ok_or_else(|| Error::credentials_invalid("expected ID:SECRET"))?;
///             Ok(Credentials::new(id, secret))
///         })
///     }
/// }
/// ```
pub type CredentialsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, Error>> + Send + 'a>>;

/// Something that can supply credentials, asynchronously.
///
/// A provider answers an error of kind [`CredentialsErrorKind::NotConfigured`] when its source
/// is not set up at all (a chain moves on; the message says what it looked at), and
/// [`CredentialsErrorKind::Invalid`] when the source is set up wrongly (the message names the
/// variable or file). A provider that asks a service (STS, the metadata service) answers
/// [`CredentialsErrorKind::Unavailable`] when the service fails, and passes any other crate error
/// (a [`Error::CompromisedKey`] from an STS call, say) through as it is.
///
/// ```
/// use aliyun_guard::credentials::{CredentialsFuture, CredentialsProvider};
/// use aliyun_guard::Credentials;
///
/// #[derive(Debug)]
/// struct Vault;
///
/// impl CredentialsProvider for Vault {
///     fn provide_credentials(&self) -> CredentialsFuture<'_> {
///         Box::pin(async { Ok(Credentials::new("LTAI5tExampleKeyIdwxyz", "from-the-vault")) })
///     }
/// }
/// ```
pub trait CredentialsProvider: fmt::Debug + Send + Sync {
    /// Finds credentials.
    fn provide_credentials(&self) -> CredentialsFuture<'_>;

    /// Whether a [`CredentialsCache`] keeps serving this provider's previous value, until it
    /// really expires, when a refresh fails (with a warning and backoff). `false` by default:
    /// the refresh error is returned once the value is stale. The ECS instance role answers
    /// `true`, as in the official libraries; a chain answers for the provider it remembered.
    fn serve_stale_on_failure(&self) -> bool {
        false
    }
}

impl<T: CredentialsProvider + ?Sized> CredentialsProvider for Arc<T> {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        (**self).provide_credentials()
    }

    fn serve_stale_on_failure(&self) -> bool {
        (**self).serve_stale_on_failure()
    }
}

impl<T: CredentialsProvider + ?Sized> CredentialsProvider for Box<T> {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        (**self).provide_credentials()
    }

    fn serve_stale_on_failure(&self) -> bool {
        (**self).serve_stale_on_failure()
    }
}

/// Always supplies the credentials it was given.
///
/// ```
/// use aliyun_guard::credentials::{CredentialsProvider, StaticProvider};
/// use aliyun_guard::Credentials;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let provider = StaticProvider::new(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"));
/// let creds = provider.provide_credentials().await?;
/// assert_eq!(creds.masked_key_id(), "LTAI****wxyz");
/// # Ok::<(), aliyun_guard::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct StaticProvider(Credentials);

impl StaticProvider {
    /// Wraps fixed credentials.
    ///
    /// ```
    /// use aliyun_guard::credentials::StaticProvider;
    /// use aliyun_guard::{Client, Credentials};
    ///
    /// let provider = StaticProvider::new(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"));
    /// let client = Client::builder().credentials_provider(provider).region("cn-hangzhou").build()?;
    /// # drop(client);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn new(credentials: Credentials) -> Self {
        Self(credentials)
    }
}

impl CredentialsProvider for StaticProvider {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        let creds = self.0.clone();
        Box::pin(async move { Ok(creds) })
    }
}

impl CredentialsProvider for Credentials {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        let creds = self.clone();
        Box::pin(async move { Ok(creds) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_empty_parts() {
        assert!(Credentials::new("", "s").validate().is_err());
        assert!(Credentials::new("id", "").validate().is_err());
        assert!(Credentials::new("id", "s").validate().is_ok());
    }
}
