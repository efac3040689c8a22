//! The [`Credentials`] core type and [`mask_key_id`]: the key material itself, zeroed on drop.
//!
//! A leaf of the module layering (it imports only std and external crates), so that every other
//! module can hold credentials without depending on the providers. Re-exported as
//! `aliyun_guard::Credentials` and `aliyun_guard::credentials::{Credentials, mask_key_id}`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;
use zeroize::{Zeroize, ZeroizeOnDrop};

mod hmac_key;

pub(crate) use hmac_key::{HmacSha1Key, HmacSha1Writer};

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
    /// The security token percent-encoded once and twice, as signature 1.0 puts it in the
    /// canonical query and in the string to sign: encoded once per credentials value, not per
    /// call (STS tokens are long and full of escaped bytes). Secret: zeroed with the rest.
    v1_token: Option<EncodedToken>,
    parent_key_id: Option<String>,
    /// The HMAC-SHA1 key schedule of `access_key_secret + "&"` (signature 1.0), computed once:
    /// secret-equivalent, zeroed with the rest.
    v1_key: HmacSha1Key,
    #[zeroize(skip)]
    expiry: Option<OffsetDateTime>,
    #[zeroize(skip)]
    provider: Cow<'static, str>,
}

/// A security token in the two encodings signature 1.0 needs.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct EncodedToken {
    once: String,
    twice: String,
}

impl EncodedToken {
    fn of(token: &str) -> Self {
        let mut once = String::with_capacity(token.len() + token.len() / 2);
        let mut twice = String::with_capacity(token.len() * 2);
        crate::encode::percent_encode_twice(&mut once, &mut twice, token);
        Self { once, twice }
    }
}

impl Credentials {
    /// Long-lived AccessKey credentials (provider name `static_ak`).
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// let creds = Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret");
    /// assert_eq!(creds.provider_name(), "static_ak");
    /// assert!(!creds.is_sts());
    /// ```
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        let access_key_secret = access_key_secret.into();
        let v1_key = HmacSha1Key::new(&[access_key_secret.as_bytes(), b"&"]);
        Self(Arc::new(Inner {
            access_key_id: access_key_id.into(),
            access_key_secret,
            v1_key,
            security_token: None,
            v1_token: None,
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
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// let creds = Credentials::new("STS.NExampleKeyId0000wxyz", "example-secret")
    ///     .with_security_token("example-token");
    /// assert!(creds.is_sts());
    /// assert_eq!(creds.provider_name(), "static_sts");
    /// ```
    pub fn with_security_token(self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.edit(|inner| {
            if inner.provider == "static_ak" {
                inner.provider = Cow::Borrowed("static_sts");
            }
            inner.v1_token = Some(EncodedToken::of(&token));
            inner.security_token = Some(token);
        })
    }

    /// Sets when these credentials stop working.
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// let expiry = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    /// let creds = Credentials::new("STS.NExampleKeyId0000wxyz", "example-secret")
    ///     .with_security_token("example-token")
    ///     .with_expiry(expiry);
    /// assert_eq!(creds.expiry(), Some(expiry));
    /// ```
    pub fn with_expiry(self, expiry: OffsetDateTime) -> Self {
        self.edit(|inner| inner.expiry = Some(expiry))
    }

    /// Names the provider that produced these credentials (`env`, `ecs_ram_role`, ...).
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// let creds = Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret")
    ///     .with_provider_name("vault");
    /// assert_eq!(creds.provider_name(), "vault");
    /// ```
    pub fn with_provider_name(self, name: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        self.edit(|inner| inner.provider = name)
    }

    /// Records the long-lived AccessKey these temporary credentials were minted from (an
    /// AssumeRole parent), so that the guard can mark and refuse it too.
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// let creds = Credentials::new("STS.NExampleKeyId0000wxyz", "example-secret")
    ///     .with_security_token("example-token")
    ///     .with_parent_key_id("LTAI5tParentKeyId000abcd");
    /// assert_eq!(creds.parent_key_id(), Some("LTAI5tParentKeyId000abcd"));
    /// ```
    pub fn with_parent_key_id(self, parent: impl Into<String>) -> Self {
        let parent = parent.into();
        self.edit(|inner| inner.parent_key_id = Some(parent))
    }

    /// The AccessKey ID. Not a secret, but show [`Credentials::masked_key_id`] to people.
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// let creds = Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret");
    /// assert_eq!(creds.access_key_id(), "LTAI5tExampleKeyIdwxyz");
    /// ```
    pub fn access_key_id(&self) -> &str {
        &self.0.access_key_id
    }

    /// The AccessKey ID masked for display: `LTAI****wxyz`.
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// let creds = Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret");
    /// println!("using {}", creds.masked_key_id()); // using LTAI****wxyz
    /// assert_eq!(creds.masked_key_id(), "LTAI****wxyz");
    /// ```
    pub fn masked_key_id(&self) -> String {
        mask_key_id(&self.0.access_key_id)
    }

    /// The secret. Only the signer needs it.
    pub(crate) fn access_key_secret(&self) -> &str {
        &self.0.access_key_secret
    }

    /// The security token percent-encoded once (canonical query) and twice (string to sign).
    pub(crate) fn v1_encoded_token(&self) -> Option<(&str, &str)> {
        self.0
            .v1_token
            .as_ref()
            .map(|t| (t.once.as_str(), t.twice.as_str()))
    }

    /// The key schedule signature 1.0 signs with (HMAC-SHA1 keyed with the secret and `&`).
    pub(crate) fn v1_signing_key(&self) -> &HmacSha1Key {
        &self.0.v1_key
    }

    /// The STS security token, if any.
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// let creds = Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret");
    /// assert_eq!(creds.security_token(), None);
    /// assert_eq!(creds.with_security_token("tok").security_token(), Some("tok"));
    /// ```
    pub fn security_token(&self) -> Option<&str> {
        self.0.security_token.as_deref()
    }

    /// Whether these are STS credentials (they carry a security token).
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// assert!(!Credentials::new("LTAI5tExampleKeyIdwxyz", "s").is_sts());
    /// assert!(Credentials::new("STS.NExampleKeyId0000wxyz", "s").with_security_token("t").is_sts());
    /// ```
    pub fn is_sts(&self) -> bool {
        self.0.security_token.is_some()
    }

    /// When these credentials stop working, if they expire.
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// // Long-lived keys do not expire.
    /// assert_eq!(Credentials::new("LTAI5tExampleKeyIdwxyz", "s").expiry(), None);
    /// ```
    pub fn expiry(&self) -> Option<OffsetDateTime> {
        self.0.expiry
    }

    /// The name of the provider that produced these credentials.
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// let creds = Credentials::new("LTAI5tExampleKeyIdwxyz", "s");
    /// tracing::info!(provider = creds.provider_name(), key = %creds.masked_key_id(), "credentials");
    /// assert_eq!(creds.provider_name(), "static_ak");
    /// ```
    pub fn provider_name(&self) -> &str {
        &self.0.provider
    }

    /// The long-lived AccessKey ID these credentials were minted from, if known. Show it masked.
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// use aliyun_guard::credentials::mask_key_id;
    ///
    /// let creds = Credentials::new("STS.NExampleKeyId0000wxyz", "s")
    ///     .with_security_token("t")
    ///     .with_parent_key_id("LTAI5tParentKeyId000abcd");
    /// assert_eq!(creds.parent_key_id().map(mask_key_id).as_deref(), Some("LTAI****abcd"));
    /// ```
    pub fn parent_key_id(&self) -> Option<&str> {
        self.0.parent_key_id.as_deref()
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
}
