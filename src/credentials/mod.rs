//! AccessKey credentials and where they come from.
//!
//! [`Credentials`] hold an AccessKey ID, its secret and, for STS credentials, a security token.
//! Their `Debug` shows the key id masked (`LTAI****wxyz`) and nothing else; the secret and token are
//! zeroed when dropped.
//!
//! Providers find credentials: [`StaticProvider`], [`EnvironmentProvider`]
//! (`ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`,
//! `ALIBABA_CLOUD_SECURITY_TOKEN`), [`ProfileProvider`] (the Alibaba CLI's
//! `~/.aliyun/config.json`) and [`DefaultChain`] (environment, then profile). A provider answers
//! `Ok(None)` when it is not configured, so that a chain moves on, and an error when it is
//! configured wrongly, so that a chain stops with a clear message.
//!
//! Every provider reads its environment through an [`Env`], which tests fill by hand instead of
//! changing the process environment.

mod env;
mod profile;

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

pub use env::{Env, EnvironmentProvider};
pub use profile::ProfileProvider;

use crate::error::Error;

/// An AccessKey pair, optionally with an STS security token.
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
///
/// The secret and token (and the id) are overwritten with zeros when the value is dropped
/// (`Credentials: ZeroizeOnDrop`).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Credentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
}

impl Credentials {
    /// Long-lived AccessKey credentials.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: None,
        }
    }

    /// Adds an STS security token (sent as `SecurityToken`).
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// The AccessKey ID. Not a secret, but show [`Credentials::masked_key_id`] to people.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The AccessKey ID masked for display: `LTAI****wxyz`.
    pub fn masked_key_id(&self) -> String {
        mask_key_id(&self.access_key_id)
    }

    /// The secret. Only the signer needs it.
    pub(crate) fn access_key_secret(&self) -> &str {
        &self.access_key_secret
    }

    /// The STS security token, if any.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// Whether these are STS credentials (they carry a security token).
    pub fn is_sts(&self) -> bool {
        self.security_token.is_some()
    }

    /// Checks that the key id and secret are not empty.
    pub fn validate(&self) -> Result<(), Error> {
        if self.access_key_id.trim().is_empty() {
            return Err(Error::credentials("the AccessKey ID is empty"));
        }
        if self.access_key_secret.is_empty() {
            return Err(Error::credentials(format!(
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
                &self.security_token.as_ref().map(|_| "<redacted>"),
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

/// Something that can supply credentials.
pub trait CredentialsProvider: fmt::Debug + Send + Sync {
    /// `Ok(Some(_))` when found, `Ok(None)` when this source is not configured, and an error when
    /// it is configured but unusable.
    fn provide(&self) -> Result<Option<Credentials>, Error>;
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
    fn provide(&self) -> Result<Option<Credentials>, Error> {
        Ok(Some(self.0.clone()))
    }
}

/// The default order: environment variables, then the CLI profile file.
///
/// A source that is not configured is skipped; a source that is configured wrongly (half-set
/// variables, an unreadable or invalid file, a missing profile) stops the chain with its error.
#[derive(Debug, Clone, Default)]
pub struct DefaultChain {
    env: Env,
}

impl DefaultChain {
    /// A chain reading the process environment and `~/.aliyun/config.json`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A chain reading the given environment (for tests and embedding).
    pub fn with_env(env: Env) -> Self {
        Self { env }
    }

    /// Resolves credentials, failing with a message that lists where it looked.
    pub fn resolve(&self) -> Result<Credentials, Error> {
        match self.provide()? {
            Some(creds) => Ok(creds),
            None => Err(Error::credentials(format!(
                "no credentials found: set ALIBABA_CLOUD_ACCESS_KEY_ID and \
                 ALIBABA_CLOUD_ACCESS_KEY_SECRET, or configure a profile in {}",
                ProfileProvider::from_env(&self.env)
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.aliyun/config.json".into())
            ))),
        }
    }
}

impl CredentialsProvider for DefaultChain {
    fn provide(&self) -> Result<Option<Credentials>, Error> {
        if let Some(creds) = EnvironmentProvider::new(self.env.clone()).provide()? {
            return Ok(Some(creds));
        }
        ProfileProvider::from_env(&self.env).provide()
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
        zeroed_on_drop::<Credentials>();
        let mut creds =
            Credentials::new("LTAI5tAbCdEfGhIjKlMnwxyz", "secret").with_security_token("t");
        creds.zeroize();
        assert_eq!(creds.access_key_id(), "");
        assert_eq!(creds.access_key_secret(), "");
        assert_eq!(creds.security_token(), None);
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
