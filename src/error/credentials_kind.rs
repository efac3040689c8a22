//! [`CredentialsErrorKind`]: owned by `error` (below `credentials` in the module layering), because
//! [`Error::Credentials`](crate::Error::Credentials) holds it; re-exported as
//! `aliyun_guard::credentials::CredentialsErrorKind`.

use std::fmt;

/// Why a provider gave no credentials (see [`Error::Credentials`](crate::Error::Credentials)).
///
/// ```
/// use aliyun_guard::Error;
/// use aliyun_guard::credentials::CredentialsErrorKind;
///
/// fn explain(err: &Error) -> &'static str {
///     match err {
///         Error::Credentials { kind: CredentialsErrorKind::NotConfigured, .. } => "set up credentials",
///         Error::Credentials { kind: CredentialsErrorKind::Invalid, .. } => "fix the configuration",
///         Error::Credentials { .. } => "try again later",
///         _ => "not a credentials problem",
///     }
/// }
/// assert_eq!(explain(&Error::credentials_invalid("half-set variables")), "fix the configuration");
/// ```
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
