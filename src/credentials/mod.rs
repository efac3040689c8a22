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
mod cache;
mod chain;
mod ecs;
mod env;
mod hmac_key;
mod ini;
mod oidc;
mod process;
mod profile;
mod sts;
mod uri;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use time::OffsetDateTime;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use assume_role::{AssumeRoleBuilder, AssumeRoleProvider, RAM_ROLE_ARN};
pub use cache::{
    Clock, CredentialsCache, CredentialsCacheBuilder, DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN,
    DEFAULT_REFRESH_BEFORE, SystemClock,
};
pub(crate) use cache::{ParentKey, Resolved};
pub use chain::{DefaultChain, DefaultChainBuilder, REGION_ID_VAR, Slot};
pub use ecs::{EcsRamRoleProvider, EcsRamRoleProviderBuilder};
pub use env::{Env, EnvironmentProvider};
pub(crate) use hmac_key::HmacSha1Key;
pub use ini::{CREDENTIALS_FILE_VAR, INI_PROFILE, IniProvider};
pub use oidc::{
    OIDC_PROVIDER_ARN_VAR, OIDC_ROLE_ARN, OIDC_TOKEN_FILE_VAR, OidcBuilder, OidcProvider,
    ROLE_ARN_VAR,
};
pub use process::{DEFAULT_PROCESS_TIMEOUT, ProcessProvider};
pub use profile::{CLI_PROFILE, CLI_PROFILE_DISABLED_VAR, CONFIG_FILE_VAR, ProfileProvider};
pub use uri::UriProvider;

use crate::error::Error;

/// An AccessKey pair, optionally with an STS security token, an expiry, the name of the provider
/// that produced it and the long-lived parent key it was minted from.
///
/// Cheap to clone: clones share one inner value, which is overwritten with zeros when the last
/// clone is dropped.
///
/// ```
/// use aliyun_guard::Credentials;
/// let creds = Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret");
/// assert_eq!(creds.masked_key_id(), "LTAI****wxyz");
/// assert_eq!(
///     format!("{creds:?}"),
///     r#"Credentials { access_key_id: "LTAI****wxyz", access_key_secret: "<redacted>", security_token: None }"#
/// );
/// ```
#[derive(Clone)]
pub struct Credentials(Arc<Inner>);

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct Inner {
    access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
    parent_key_id: Option<String>,
    /// The HMAC-SHA1 key schedule of `access_key_secret + "&"` (signature 1.0), computed once:
    /// secret-equivalent, zeroed with the rest.
    v1_key: HmacSha1Key,
    #[zeroize(skip)]
    expiry: Option<OffsetDateTime>,
    #[zeroize(skip)]
    provider: Cow<'static, str>,
}

impl Credentials {
    /// Long-lived AccessKey credentials (provider name `static_ak`).
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        let access_key_secret = access_key_secret.into();
        let v1_key = HmacSha1Key::new(&[access_key_secret.as_bytes(), b"&"]);
        Self(Arc::new(Inner {
            access_key_id: access_key_id.into(),
            access_key_secret,
            v1_key,
            security_token: None,
            parent_key_id: None,
            expiry: None,
            provider: Cow::Borrowed("static_ak"),
        }))
    }

    /// Edits the inner value in place when this is its only handle; otherwise edits a copy.
    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        f(Arc::make_mut(&mut self.0));
        self
    }

    /// Adds an STS security token (sent as `SecurityToken`); the provider name becomes
    /// `static_sts` unless one was set.
    pub fn with_security_token(self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.edit(|inner| {
            if inner.provider == "static_ak" {
                inner.provider = Cow::Borrowed("static_sts");
            }
            inner.security_token = Some(token);
        })
    }

    /// Sets when these credentials stop working.
    pub fn with_expiry(self, expiry: OffsetDateTime) -> Self {
        self.edit(|inner| inner.expiry = Some(expiry))
    }

    /// Names the provider that produced these credentials (`env`, `ecs_ram_role`, ...).
    pub fn with_provider_name(self, name: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        self.edit(|inner| inner.provider = name)
    }

    /// Records the long-lived AccessKey these temporary credentials were minted from (an
    /// AssumeRole parent), so that the guard can mark and refuse it too.
    pub fn with_parent_key_id(self, parent: impl Into<String>) -> Self {
        let parent = parent.into();
        self.edit(|inner| inner.parent_key_id = Some(parent))
    }

    /// The AccessKey ID. Not a secret, but show [`Credentials::masked_key_id`] to people.
    pub fn access_key_id(&self) -> &str {
        &self.0.access_key_id
    }

    /// The AccessKey ID masked for display: `LTAI****wxyz`.
    pub fn masked_key_id(&self) -> String {
        mask_key_id(&self.0.access_key_id)
    }

    /// The secret. Only the signer needs it.
    pub(crate) fn access_key_secret(&self) -> &str {
        &self.0.access_key_secret
    }

    /// The key schedule signature 1.0 signs with (HMAC-SHA1 keyed with the secret and `&`).
    pub(crate) fn v1_signing_key(&self) -> &HmacSha1Key {
        &self.0.v1_key
    }

    /// The STS security token, if any.
    pub fn security_token(&self) -> Option<&str> {
        self.0.security_token.as_deref()
    }

    /// Whether these are STS credentials (they carry a security token).
    pub fn is_sts(&self) -> bool {
        self.0.security_token.is_some()
    }

    /// When these credentials stop working, if they expire.
    pub fn expiry(&self) -> Option<OffsetDateTime> {
        self.0.expiry
    }

    /// The name of the provider that produced these credentials.
    pub fn provider_name(&self) -> &str {
        &self.0.provider
    }

    /// The long-lived AccessKey ID these credentials were minted from, if known. Show it masked.
    pub fn parent_key_id(&self) -> Option<&str> {
        self.0.parent_key_id.as_deref()
    }

    /// Checks that the key id and secret are not empty.
    pub fn validate(&self) -> Result<(), Error> {
        if self.0.access_key_id.trim().is_empty() {
            return Err(Error::credentials_invalid("the AccessKey ID is empty"));
        }
        if self.0.access_key_secret.is_empty() {
            return Err(Error::credentials_invalid(format!(
                "the AccessKey secret for {} is empty",
                self.masked_key_id()
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.masked_key_id())
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.0.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Masks an AccessKey ID for display: the first four and last four characters stay
/// (`LTAI****wxyz`); ids of twelve characters or fewer keep only their last two.
///
/// ```
/// use aliyun_guard::credentials::mask_key_id;
/// assert_eq!(mask_key_id("LTAI5tAbCdEfGhIjKlMnwxyz"), "LTAI****wxyz");
/// assert_eq!(mask_key_id("shortkey"), "****ey");
/// assert_eq!(mask_key_id(""), "****");
/// ```
pub fn mask_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let n = chars.len();
    if n > 12 {
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}****{tail}")
    } else if n > 4 {
        let tail: String = chars[n - 2..].iter().collect();
        format!("****{tail}")
    } else {
        "****".to_string()
    }
}

/// The future a [`CredentialsProvider`] returns.
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

/// Why a provider gave no credentials (see [`Error::Credentials`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialsErrorKind {
    /// The source is not set up (no variables, no file): a chain moves on.
    NotConfigured,
    /// The source is set up wrongly (half-set variables, an invalid file, an unknown profile).
    Invalid,
    /// The source is set up but its service failed (STS, the metadata service, a URI).
    Unavailable,
}

impl fmt::Display for CredentialsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotConfigured => "not configured",
            Self::Invalid => "configured wrongly",
            Self::Unavailable => "unavailable",
        })
    }
}

/// Always supplies the credentials it was given.
#[derive(Debug, Clone)]
pub struct StaticProvider(Credentials);

impl StaticProvider {
    /// Wraps fixed credentials.
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
    fn debug_is_pinned_and_redacted() {
        let creds = Credentials::new("LTAI5tAbCdEfGhIjKlMnwxyz", "THE-SECRET-VALUE")
            .with_security_token("THE-TOKEN");
        assert_eq!(
            format!("{creds:?}"),
            r#"Credentials { access_key_id: "LTAI****wxyz", access_key_secret: "<redacted>", security_token: Some("<redacted>") }"#
        );
        let pretty = format!("{creds:#?}");
        assert!(!pretty.contains("THE-SECRET-VALUE") && !pretty.contains("THE-TOKEN"));
    }

    #[test]
    fn zeroize_clears_every_field() {
        fn zeroed_on_drop<T: ZeroizeOnDrop>() {}
        zeroed_on_drop::<Inner>();
        zeroed_on_drop::<HmacSha1Key>();
        let mut creds =
            Credentials::new("LTAI5tAbCdEfGhIjKlMnwxyz", "secret").with_security_token("t");
        Arc::get_mut(&mut creds.0).unwrap().zeroize();
        assert_eq!(creds.access_key_id(), "");
        assert_eq!(creds.access_key_secret(), "");
        assert_eq!(creds.security_token(), None);
        // The key schedule is zeroed too: it no longer signs as the secret did.
        assert_eq!(
            format!("{:?}", creds.v1_signing_key()),
            "HmacSha1Key(<redacted>)"
        );
        assert_ne!(
            creds.v1_signing_key().sign(b"m"),
            HmacSha1Key::new(&[b"secret", b"&"]).sign(b"m")
        );
    }

    #[test]
    fn debug_never_shows_the_key_schedule() {
        let creds = Credentials::new("LTAI5tAbCdEfGhIjKlMnwxyz", "THE-SECRET-VALUE");
        let dbg = format!("{creds:?} {creds:#?}");
        assert!(!dbg.contains("HmacSha1Key") && !dbg.contains("v1_key"));
        // None of the schedule's state words, in any usual notation.
        for word in creds.v1_signing_key().state_words() {
            for shown in [
                word.to_string(),
                format!("{word:x}"),
                format!("{word:X}"),
                format!("{word:#x}"),
            ] {
                assert!(!dbg.contains(&shown), "Debug shows a state word");
            }
        }
    }

    #[test]
    fn the_key_schedule_signs_as_the_secret() {
        // Built once with the credentials, it signs as HMAC-SHA1 keyed with `secret + "&"`.
        use hmac::{Hmac, Mac};
        let creds = Credentials::new("id", "testsecret").with_security_token("t");
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"testsecret&").unwrap();
        mac.update(b"GET&%2F&A%3D1");
        let expected: [u8; 20] = mac.finalize().into_bytes().into();
        assert_eq!(creds.v1_signing_key().sign(b"GET&%2F&A%3D1"), expected);
    }

    #[test]
    fn mask_handles_unicode_and_short_ids() {
        assert_eq!(mask_key_id("STS.NTx9YourTemporaryKeyId"), "STS.****eyId");
        assert_eq!(mask_key_id("ключключключключ"), "ключ****ключ");
        assert_eq!(mask_key_id("abcd"), "****");
    }

    #[test]
    fn validate_rejects_empty_parts() {
        assert!(Credentials::new("", "s").validate().is_err());
        assert!(Credentials::new("id", "").validate().is_err());
        assert!(Credentials::new("id", "s").validate().is_ok());
    }
}
