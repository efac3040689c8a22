//! [`CredentialsErrorKind`]: owned by `error` (below `credentials` in the module layering), because
//! [`Error::Credentials`](crate::Error::Credentials) holds it; re-exported as
//! `aliyun_guard::credentials::CredentialsErrorKind`.

use std::fmt;

/// Why a provider gave no credentials (see [`Error::Credentials`](crate::Error::Credentials)).
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
