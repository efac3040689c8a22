//! The crate's one error type.
//!
//! Every error names what failed with enough context to act on, keeps its source chain, and never
//! contains the AccessKey secret, a signature or a security token: reqwest errors are stripped of
//! their URL (a GET URL carries the signature), server messages are redacted, and key ids are
//! masked.

use std::fmt;
use std::path::PathBuf;

pub(crate) mod compromised;
pub(crate) mod credentials_kind;
pub(crate) mod remediation;

use compromised::CompromisedKey;
use credentials_kind::CredentialsErrorKind;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of `aliyun-guard`.
///
/// ```no_run
/// use aliyun_guard::{Client, Error, RpcRequest};
///
/// async fn regions(client: &Client) -> Result<serde_json::Value, Error> {
///     let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions");
///     match client.call(&request).await {
///         Err(Error::CompromisedKey(leak)) => {
///             eprintln!("{leak}"); // what to do, for a person
///             Err(Error::CompromisedKey(leak))
///         }
///         Err(Error::Api(api)) if api.code == "Forbidden.RAM" => {
///             eprintln!("grant ecs:DescribeRegions: {:?}", api.access_denied_detail);
///             Err(Error::Api(api))
///         }
///         other => other,
///     }
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed (reserved parameter set by hand, empty action, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The endpoint could not be determined or parsed.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    #[non_exhaustive]
    InvalidEndpoint {
        /// The endpoint as given, or the product when none was derivable.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Credentials are missing, configured wrongly, or their service failed.
    #[error("credentials ({kind}): {message}")]
    #[non_exhaustive]
    Credentials {
        /// Not configured, configured wrongly, or unavailable.
        kind: CredentialsErrorKind,
        /// What is wrong, naming the variable or file.
        message: String,
        /// The underlying I/O or parse error.
        #[source]
        source: Option<BoxError>,
    },

    /// The client configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),

    /// The call did not complete in time.
    #[error("{action} on {host} timed out ({phase}) after {attempts} attempt(s)")]
    #[non_exhaustive]
    Timeout {
        /// Host that was called.
        host: String,
        /// RPC action.
        action: String,
        /// Which limit was hit.
        phase: TimeoutPhase,
        /// Attempts made, this one included.
        attempts: u32,
        /// The transport error, without its URL; `None` when the total time budget ran out.
        #[source]
        source: Option<reqwest::Error>,
    },

    /// No connection could be established (refused, DNS, TLS handshake).
    #[error("could not connect to {host} for {action} after {attempts} attempt(s)")]
    #[non_exhaustive]
    Connect {
        /// Host that was called.
        host: String,
        /// RPC action.
        action: String,
        /// Attempts made.
        attempts: u32,
        /// The transport error, without its URL.
        #[source]
        source: reqwest::Error,
    },

    /// The connection failed after it was established (reset, closed mid-response, bad HTTP).
    #[error("transport error with {host} during {action} after {attempts} attempt(s)")]
    #[non_exhaustive]
    Transport {
        /// Host that was called.
        host: String,
        /// RPC action.
        action: String,
        /// Attempts made.
        attempts: u32,
        /// The transport error, without its URL.
        #[source]
        source: reqwest::Error,
    },

    /// The API answered with an error code.
    #[error(transparent)]
    Api(Box<ApiError>),

    /// The answer could not be understood (HTML, empty, truncated, not UTF-8, too large).
    #[error(transparent)]
    UnexpectedResponse(Box<UnexpectedResponse>),

    /// A successful answer did not fit the caller's type.
    ///
    /// The message names where in the answer the mismatch is (`path`), never the value found
    /// there: an answer can hold secrets (`CreateAccessKey` returns one).
    #[error("the response of {action} (request id {}) does not fit the requested type at {path}", request_id.as_deref().unwrap_or("unknown"))]
    #[non_exhaustive]
    Deserialize {
        /// RPC action.
        action: String,
        /// Request id of the answer, when it had one.
        request_id: Option<String>,
        /// Where in the answer the mismatch is, such as `Instances.Instance[3].CreationTime`
        /// (`.` for the whole answer); map keys taken from the answer are neutralised.
        path: String,
        /// The serde error, with values from the answer removed from its message.
        #[source]
        source: serde_json::Error,
    },

    /// A paginated listing could not go on (see [`crate::paginate`]).
    #[error("paginating {action}: {reason}")]
    #[non_exhaustive]
    Pagination {
        /// RPC action.
        action: String,
        /// What stopped it: the page bound, a repeated `NextToken`, an items path that is not
        /// an array.
        reason: String,
    },

    /// The AccessKey is under Alibaba's leak protection (or known to be compromised).
    #[error(transparent)]
    CompromisedKey(Box<CompromisedKey>),

    /// A restriction table could not be loaded.
    #[error("restriction table from {origin}: {message}")]
    #[non_exhaustive]
    RestrictionTable {
        /// File path, or "built-in".
        origin: String,
        /// What is wrong, naming the entry at fault.
        message: String,
        /// The parse error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The guard's state file could not be used.
    #[error("guard state {}: {message}", path.display())]
    #[non_exhaustive]
    State {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
        /// The I/O error.
        #[source]
        source: Option<std::io::Error>,
    },
}

/// Which time limit a [`Error::Timeout`] hit.
///
/// ```
/// use aliyun_guard::{Error, TimeoutPhase};
///
/// fn may_have_run(err: &Error) -> bool {
///     // A request that timed out after it was sent may have been executed.
///     matches!(err, Error::Timeout { phase: TimeoutPhase::Response | TimeoutPhase::Total, .. })
/// }
/// assert!(!may_have_run(&Error::credentials_invalid("bad")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// Establishing the connection took longer than the connect timeout.
    Connect,
    /// The response (headers or body) took longer than the read timeout.
    Response,
    /// The total time budget of the call, retries included, ran out.
    Total,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connect",
            TimeoutPhase::Response => "waiting for the response",
            TimeoutPhase::Total => "total time budget",
        })
    }
}

/// An error answer of the API.
///
/// ```
/// use aliyun_guard::{ApiError, Error};
///
/// fn is_throttled(err: &Error) -> bool {
///     matches!(err, Error::Api(api) if api.code.starts_with("Throttling"))
/// }
/// fn describe(api: &ApiError) -> String {
///     format!("{} answered {} {}: {}", api.action, api.status, api.code, api.message)
/// }
/// assert!(!is_throttled(&Error::credentials_invalid("bad")));
/// # let _ = describe;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Error code, such as `InvalidParameter` or `Throttling.User`.
    pub code: String,
    /// Server message, with security tokens redacted and key ids masked.
    pub message: String,
    /// `RequestId` of the answer.
    pub request_id: Option<String>,
    /// `HostId` of the answer.
    pub host_id: Option<String>,
    /// `Recommend` link of the answer (diagnosis page).
    pub recommend: Option<String>,
    /// RPC action that was called.
    pub action: String,
    /// Attempts made.
    pub attempts: u32,
    /// For `SignatureDoesNotMatch`: what the server's string to sign says about the cause.
    pub signature_diagnosis: Option<SignatureDiagnosis>,
    /// `AccessDeniedDetail` of a RAM permission denial, when the (JSON) answer had one.
    pub access_denied_detail: Option<AccessDeniedDetail>,
}

/// The `AccessDeniedDetail` object of a RAM permission denial (`Forbidden.RAM`, `NoPermission`,
/// ...), as Alibaba returns it. Every value is server text, redacted and neutralised like the
/// other fields of [`ApiError`]. Pass [`AccessDeniedDetail::encoded_diagnostic_message`] to RAM's
/// `DecodeDiagnosticMessage` to learn which policy denied the call.
///
/// ```
/// use aliyun_guard::Error;
///
/// // Which permission a RAM policy must grant, from a permission error.
/// fn missing_permission(err: &Error) -> Option<&str> {
///     match err {
///         Error::Api(api) => api.access_denied_detail.as_ref()?.auth_action.as_deref(),
///         _ => None,
///     }
/// }
/// assert_eq!(missing_permission(&Error::credentials_invalid("bad")), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessDeniedDetail {
    /// `AuthAction`: the RAM action that was denied, such as `ecs:DescribeInstances`.
    pub auth_action: Option<String>,
    /// `AuthResource`: the resource the action was checked against.
    pub auth_resource: Option<String>,
    /// `AuthPrincipalType`: `SubUser`, `AssumedRoleUser`, `Federated`...
    pub auth_principal_type: Option<String>,
    /// `AuthPrincipalOwnerId`: the account that owns the principal.
    pub auth_principal_owner_id: Option<String>,
    /// `AuthPrincipalDisplayName`: the principal's display name.
    pub auth_principal_display_name: Option<String>,
    /// `NoPermissionType`: `ImplicitDeny` (no policy allows) or `ExplicitDeny` (a policy denies).
    pub no_permission_type: Option<String>,
    /// `PolicyType`: the kind of policy that decided, such as `AccountLevelIdentityBasedPolicy`,
    /// `ResourceGroupLevelIdentityBasedPolicy`, `ControlPolicy` or `SessionPolicy`.
    pub policy_type: Option<String>,
    /// `EncodedDiagnosticMessage` (some products: `EncodedDiagnosticInfo`), for RAM's
    /// `DecodeDiagnosticMessage`.
    pub encoded_diagnostic_message: Option<String>,
    /// Any other string, number or boolean field of the object, by its name as sent (at most
    /// 32 of them).
    pub other: std::collections::BTreeMap<String, String>,
}

impl AccessDeniedDetail {
    /// The same detail with `f` applied to every value (and to the names of `other`).
    pub(crate) fn map_text(self: Box<Self>, mut f: impl FnMut(&str) -> String) -> Self {
        let mut g = |v: Option<String>| v.map(|v| f(&v));
        AccessDeniedDetail {
            auth_action: g(self.auth_action),
            auth_resource: g(self.auth_resource),
            auth_principal_type: g(self.auth_principal_type),
            auth_principal_owner_id: g(self.auth_principal_owner_id),
            auth_principal_display_name: g(self.auth_principal_display_name),
            no_permission_type: g(self.no_permission_type),
            policy_type: g(self.policy_type),
            encoded_diagnostic_message: g(self.encoded_diagnostic_message),
            other: self
                .other
                .into_iter()
                .map(|(k, v)| (f(&k), f(&v)))
                .collect(),
        }
    }
}

impl fmt::Display for AccessDeniedDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RAM denied {}",
            self.auth_action.as_deref().unwrap_or("the action")
        )?;
        if let Some(kind) = &self.no_permission_type {
            write!(f, " ({kind}")?;
            if let Some(policy) = &self.policy_type {
                write!(f, ", {policy}")?;
            }
            f.write_str(")")?;
        }
        if let Some(who) = &self.auth_principal_display_name {
            write!(f, " to {who}")?;
        }
        if self.encoded_diagnostic_message.is_some() {
            f.write_str("; decode its EncodedDiagnosticMessage with RAM DecodeDiagnosticMessage")?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: {}: {} (HTTP {}, request id {})",
            self.action,
            self.code,
            self.message,
            self.status,
            self.request_id.as_deref().unwrap_or("unknown")
        )?;
        if let Some(d) = &self.signature_diagnosis {
            write!(f, "; {d}")?;
        }
        if let Some(d) = &self.access_denied_detail {
            write!(f, "; {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// What a `SignatureDoesNotMatch` answer says about its cause.
///
/// ```
/// use aliyun_guard::{Error, SignatureDiagnosis};
///
/// fn hint(err: &Error) -> &'static str {
///     match err {
///         Error::Api(api) => match &api.signature_diagnosis {
///             Some(SignatureDiagnosis::WrongSecret) => "check the AccessKey secret",
///             Some(SignatureDiagnosis::EncodingDifference { .. }) => "a proxy re-encoded the request",
///             _ => "see the error",
///         },
///         _ => "not a signature problem",
///     }
/// }
/// assert_eq!(hint(&Error::credentials_invalid("bad")), "not a signature problem");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureDiagnosis {
    /// The server signed the same string as the client: the AccessKey secret is wrong.
    WrongSecret,
    /// The strings differ: an encoding difference (or a proxy rewriting the request).
    EncodingDifference {
        /// The first parameter whose encoded form differs (or "method"/"path").
        parameter: String,
        /// Its encoded value in the client's string (redacted for tokens and key ids).
        ours: String,
        /// Its encoded value in the server's string (redacted likewise).
        theirs: String,
    },
    /// The server did not quote its string to sign.
    Unavailable,
}

impl fmt::Display for SignatureDiagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureDiagnosis::WrongSecret => f.write_str(
                "the server signed the same string as this client, so the AccessKey secret is wrong",
            ),
            SignatureDiagnosis::EncodingDifference {
                parameter,
                ours,
                theirs,
            } => write!(
                f,
                "the strings to sign differ first at {parameter}: this client has {ours:?}, the \
                 server has {theirs:?} (an encoding difference or a proxy rewriting the request)"
            ),
            SignatureDiagnosis::Unavailable => {
                f.write_str("the server did not quote its string to sign")
            }
        }
    }
}

/// What was wrong with an answer that could not be understood.
///
/// ```
/// use aliyun_guard::{Error, ResponseFault};
///
/// fn behind_a_captive_portal(err: &Error) -> bool {
///     matches!(err, Error::UnexpectedResponse(r) if r.fault == ResponseFault::Html)
/// }
/// assert!(!behind_a_captive_portal(&Error::credentials_invalid("bad")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseFault {
    /// An HTML page (a proxy, gateway or captive portal).
    Html,
    /// No body at all.
    Empty,
    /// A body that ends before the JSON does.
    Truncated,
    /// A body that is not valid JSON.
    InvalidJson,
    /// A body that is not valid UTF-8.
    InvalidUtf8,
    /// A body larger than the configured cap.
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// An error status whose body has no error code.
    UnrecognizedError,
    /// A body in a format this client does not read (such as XML data).
    UnsupportedFormat,
    /// A redirect (3xx), refused: a signed request is never re-sent to another URL. The
    /// snippet says where it pointed.
    Redirect,
}

impl fmt::Display for ResponseFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseFault::Html => f.write_str("an HTML page"),
            ResponseFault::Empty => f.write_str("an empty body"),
            ResponseFault::Truncated => f.write_str("truncated JSON"),
            ResponseFault::InvalidJson => f.write_str("invalid JSON"),
            ResponseFault::InvalidUtf8 => f.write_str("a body that is not UTF-8"),
            ResponseFault::TooLarge { limit } => write!(f, "a body over the {limit}-byte cap"),
            ResponseFault::UnrecognizedError => f.write_str("an error without an error code"),
            ResponseFault::UnsupportedFormat => f.write_str("a body in an unsupported format"),
            ResponseFault::Redirect => {
                f.write_str("a redirect, refused (a signed request is never re-sent elsewhere)")
            }
        }
    }
}

/// An answer that could not be understood.
///
/// ```
/// use aliyun_guard::Error;
///
/// fn log(err: &Error) {
///     if let Error::UnexpectedResponse(r) = err {
///         // `snippet` is short and already neutralised for terminals and logs.
///         eprintln!("{} answered {} ({:?}): {}", r.host, r.status, r.fault, r.snippet);
///     }
/// }
/// log(&Error::credentials_invalid("bad"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnexpectedResponse {
    /// HTTP status.
    pub status: u16,
    /// What was wrong.
    pub fault: ResponseFault,
    /// The first characters of the body (lossy UTF-8, redacted), for diagnosis.
    pub snippet: String,
    /// Host that answered.
    pub host: String,
    /// RPC action that was called.
    pub action: String,
    /// Request id from the `x-acs-request-id` header, when present.
    pub request_id: Option<String>,
    /// Attempts made.
    pub attempts: u32,
}

impl fmt::Display for UnexpectedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} got {} (HTTP {})",
            self.action, self.host, self.fault, self.status
        )?;
        if !self.snippet.is_empty() {
            write!(f, ": {:?}", self.snippet)?;
        }
        Ok(())
    }
}

impl std::error::Error for UnexpectedResponse {}

/// Error codes that mean "slow down": retried with backoff.
pub(crate) const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "Throttling.User",
    "Throttling.Api",
    "Throttling.API",
    "ServiceUnavailable",
    "RequestThrottled",
];

impl Error {
    /// A reqwest failure of a call to `host` as the matching variant (timeout, connect,
    /// transport), stripped of its URL: a GET URL carries the signature and any security token.
    pub(crate) fn from_reqwest(e: reqwest::Error, host: &str, action: &str, attempts: u32) -> Self {
        let e = e.without_url();
        let (host, action) = (host.to_string(), action.to_string());
        if e.is_timeout() {
            let phase = if e.is_connect() {
                TimeoutPhase::Connect
            } else {
                TimeoutPhase::Response
            };
            Error::Timeout {
                host,
                action,
                phase,
                attempts,
                source: Some(e),
            }
        } else if e.is_connect() {
            Error::Connect {
                host,
                action,
                attempts,
                source: e,
            }
        } else {
            Error::Transport {
                host,
                action,
                attempts,
                source: e,
            }
        }
    }

    /// A credentials error of the given kind, as your own
    /// [`CredentialsProvider`](crate::credentials::CredentialsProvider) returns it.
    ///
    /// ```
    /// use aliyun_guard::Error;
    /// use aliyun_guard::credentials::CredentialsErrorKind;
    ///
    /// let down = std::io::Error::other("vault sealed");
    /// let err = Error::credentials_kind(
    ///     CredentialsErrorKind::Unavailable,
    ///     "the vault did not answer",
    ///     Some(Box::new(down)),
    /// );
    /// assert!(matches!(
    ///     err,
    ///     Error::Credentials { kind: CredentialsErrorKind::Unavailable, .. }
    /// ));
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn credentials_kind(
        kind: CredentialsErrorKind,
        message: impl Into<String>,
        source: Option<BoxError>,
    ) -> Self {
        Error::Credentials {
            kind,
            message: message.into(),
            source,
        }
    }

    /// The source is not set up: a chain ([`crate::credentials::DefaultChain`]) moves on to its
    /// next source.
    ///
    /// ```
    /// use aliyun_guard::Error;
    ///
    /// let err = Error::credentials_not_configured("no VAULT_ADDR in the environment");
    /// assert!(err.is_not_configured());
    /// assert!(!err.is_retryable());
    /// ```
    pub fn credentials_not_configured(message: impl Into<String>) -> Self {
        Self::credentials_kind(CredentialsErrorKind::NotConfigured, message, None)
    }

    /// The source is set up wrongly: a chain stops and reports it.
    ///
    /// ```
    /// use aliyun_guard::Error;
    ///
    /// let err = Error::credentials_invalid("VAULT_ADDR is set but VAULT_ROLE is not");
    /// assert!(!err.is_not_configured());
    /// assert!(err.to_string().contains("VAULT_ROLE"));
    /// ```
    pub fn credentials_invalid(message: impl Into<String>) -> Self {
        Self::credentials_kind(CredentialsErrorKind::Invalid, message, None)
    }

    /// The source is set up wrongly, with the underlying error (kept as the error's source).
    ///
    /// ```
    /// use aliyun_guard::Error;
    ///
    /// let parse = "x".parse::<u32>().unwrap_err();
    /// let err = Error::credentials_source("the duration in vault.toml is not a number", parse);
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn credentials_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::credentials_kind(
            CredentialsErrorKind::Invalid,
            message,
            Some(Box::new(source)),
        )
    }

    /// Whether this is a credentials error saying that a source is not set up.
    ///
    /// ```
    /// use aliyun_guard::Error;
    ///
    /// assert!(Error::credentials_not_configured("no file").is_not_configured());
    /// assert!(!Error::credentials_invalid("bad file").is_not_configured());
    /// ```
    pub fn is_not_configured(&self) -> bool {
        matches!(
            self,
            Error::Credentials {
                kind: CredentialsErrorKind::NotConfigured,
                ..
            }
        )
    }

    /// Whether a new attempt could succeed: throttling, `ServiceUnavailable`, 5xx, connection
    /// failures and connect timeouts. A read timeout is not retryable (the server may still be
    /// executing the action); neither is a compromised key. The client's own retries also weigh
    /// whether the request is idempotent ([`crate::RpcRequest::idempotent`]; README "Retries").
    ///
    /// ```
    /// use aliyun_guard::Error;
    ///
    /// // A caller's own retry around a whole workflow.
    /// fn worth_another_try(err: &Error) -> bool {
    ///     err.is_retryable() && !err.is_compromised_key()
    /// }
    /// assert!(!worth_another_try(&Error::credentials_invalid("bad profile")));
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Transport { .. } => true,
            Error::Timeout { phase, .. } => *phase == TimeoutPhase::Connect,
            Error::Api(e) => e.status >= 500 || THROTTLING_CODES.contains(&e.code.as_str()),
            Error::UnexpectedResponse(e) => {
                e.status >= 500 && !matches!(e.fault, ResponseFault::TooLarge { .. })
            }
            _ => false,
        }
    }

    /// The server's request id, when the error comes from an answer that had one (quote it to
    /// Alibaba Cloud support).
    ///
    /// ```
    /// use aliyun_guard::Error;
    ///
    /// fn report(err: &Error) -> String {
    ///     match err.request_id() {
    ///         Some(id) => format!("{err} (request {id})"),
    ///         None => err.to_string(),
    ///     }
    /// }
    /// // Errors raised before anything was sent carry no request id.
    /// assert_eq!(Error::credentials_invalid("bad").request_id(), None);
    /// assert!(!report(&Error::credentials_invalid("bad")).contains("request"));
    /// ```
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.request_id.as_deref(),
            Error::UnexpectedResponse(e) => e.request_id.as_deref(),
            Error::CompromisedKey(e) => e.request_id.as_deref(),
            Error::Deserialize { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The API error code, when the server answered with one.
    ///
    /// ```
    /// use aliyun_guard::Error;
    ///
    /// fn is_missing(err: &Error) -> bool {
    ///     matches!(err.code(), Some(code) if code.starts_with("InvalidInstanceId.NotFound"))
    /// }
    /// assert!(!is_missing(&Error::credentials_invalid("bad")));
    /// ```
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api(e) => Some(&e.code),
            Error::CompromisedKey(e) => e.server_code.as_deref(),
            _ => None,
        }
    }

    /// Whether this is [`Error::CompromisedKey`]: the AccessKey leaked and must be rotated.
    ///
    /// ```
    /// use aliyun_guard::Error;
    ///
    /// fn must_page_someone(err: &Error) -> bool {
    ///     err.is_compromised_key()
    /// }
    /// assert!(!must_page_someone(&Error::credentials_not_configured("no key")));
    /// ```
    pub fn is_compromised_key(&self) -> bool {
        matches!(self, Error::CompromisedKey(_))
    }

    /// The attempt count of a transport or API error (`None` for errors raised before sending).
    ///
    /// ```
    /// use aliyun_guard::Error;
    ///
    /// assert_eq!(Error::credentials_invalid("bad").attempts(), None);
    /// ```
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::Timeout { attempts, .. }
            | Error::Connect { attempts, .. }
            | Error::Transport { attempts, .. } => Some(*attempts),
            Error::Api(e) => Some(e.attempts),
            Error::UnexpectedResponse(e) => Some(e.attempts),
            _ => None,
        }
    }
}

impl From<CompromisedKey> for Error {
    fn from(e: CompromisedKey) -> Self {
        Error::CompromisedKey(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> Error {
        Error::Api(Box::new(ApiError {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: Some("R".into()),
            host_id: None,
            recommend: None,
            action: "A".into(),
            attempts: 1,
            signature_diagnosis: None,
            access_denied_detail: None,
        }))
    }

    #[test]
    fn retryable_codes() {
        assert!(api(400, "Throttling.User").is_retryable());
        assert!(api(503, "ServiceUnavailable").is_retryable());
        assert!(api(500, "InternalError").is_retryable());
        assert!(!api(400, "InvalidParameter").is_retryable());
        assert!(!api(403, "Forbidden").is_retryable());
        assert_eq!(api(400, "X").request_id(), Some("R"));
    }

    #[test]
    fn display_of_api_error_names_everything() {
        let s = api(400, "InvalidParameter").to_string();
        assert_eq!(s, "A failed: InvalidParameter: m (HTTP 400, request id R)");
    }
}
