//! Builders of this crate's errors, for testing your own error handling.
//!
//! The error structs are `#[non_exhaustive]` (they gain fields without a breaking release), so
//! outside this crate they cannot be written as struct literals: build them here. Variants of
//! [`Error`] whose fields are plain (`Config`, `InvalidRequest`, `InvalidEndpoint`, a
//! `Timeout` without a source...) can be written directly.
//!
//! ```
//! use aliyun_guard::testkit::errors;
//! use aliyun_guard::Error;
//!
//! let throttled: Error = errors::api_error(400, "Throttling.User", "slow down").into_error();
//! assert!(throttled.is_retryable());
//! let leaked: Error = errors::compromised_key("LTAI5tAbCdEfGhIjKlMnwxyz", "Ecs", "RunInstances").into();
//! assert!(leaked.is_compromised_key());
//! assert!(leaked.to_string().contains("LTAI****wxyz"));
//! ```

use crate::credentials::{CredentialsErrorKind, mask_key_id};
use crate::error::{
    AccessDeniedDetail, ApiError, Error, ResponseFault, SignatureDiagnosis, UnexpectedResponse,
};
use crate::guard::{CompromisedKey, Detection, REMEDIATION};

/// An [`ApiError`] with this status, code and message (action `TestAction`, one attempt, no
/// request id); change its public fields as you need.
///
/// ```
/// use aliyun_guard::testkit::errors;
/// let err = errors::api_error(400, "InvalidParameter", "bad ImageId").with_request_id("R-1").into_error();
/// assert_eq!((err.code(), err.request_id()), (Some("InvalidParameter"), Some("R-1")));
/// ```
pub fn api_error(status: u16, code: &str, message: &str) -> ApiError {
    ApiError {
        status,
        code: code.to_string(),
        message: message.to_string(),
        request_id: None,
        host_id: None,
        recommend: None,
        action: "TestAction".to_string(),
        attempts: 1,
        signature_diagnosis: None,
        access_denied_detail: None,
    }
}

impl ApiError {
    /// Sets the request id (test kit).
    ///
    /// ```
    /// use aliyun_guard::testkit::errors;
    /// let api = errors::api_error(500, "InternalError", "oops").with_request_id("R-2");
    /// assert_eq!(api.request_id.as_deref(), Some("R-2"));
    /// ```
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_string());
        self
    }

    /// Sets the action (test kit).
    ///
    /// ```
    /// use aliyun_guard::testkit::errors;
    /// let api = errors::api_error(400, "InvalidParameter", "bad").with_action("RunInstances");
    /// assert_eq!(api.action, "RunInstances");
    /// ```
    pub fn with_action(mut self, action: &str) -> Self {
        self.action = action.to_string();
        self
    }

    /// Sets the signature diagnosis (test kit).
    ///
    /// ```
    /// use aliyun_guard::SignatureDiagnosis;
    /// use aliyun_guard::testkit::errors;
    /// let api = errors::api_error(400, "SignatureDoesNotMatch", "no match")
    ///     .with_signature_diagnosis(SignatureDiagnosis::WrongSecret);
    /// assert_eq!(api.signature_diagnosis, Some(SignatureDiagnosis::WrongSecret));
    /// ```
    pub fn with_signature_diagnosis(mut self, diagnosis: SignatureDiagnosis) -> Self {
        self.signature_diagnosis = Some(diagnosis);
        self
    }

    /// Sets the `AccessDeniedDetail` (test kit).
    ///
    /// ```
    /// use aliyun_guard::testkit::errors;
    /// let api = errors::api_error(403, "NoPermission", "denied")
    ///     .with_access_denied_detail(errors::access_denied_detail("ecs:RunInstances"));
    /// assert_eq!(api.access_denied_detail.unwrap().auth_action.as_deref(), Some("ecs:RunInstances"));
    /// ```
    pub fn with_access_denied_detail(mut self, detail: AccessDeniedDetail) -> Self {
        self.access_denied_detail = Some(detail);
        self
    }

    /// Wraps it in [`Error::Api`] (test kit).
    ///
    /// ```
    /// use aliyun_guard::Error;
    /// use aliyun_guard::testkit::errors;
    /// let err = errors::api_error(400, "Throttling.User", "slow down").into_error();
    /// assert!(matches!(err, Error::Api(_)) && err.is_retryable());
    /// ```
    pub fn into_error(self) -> Error {
        Error::Api(Box::new(self))
    }
}

/// An [`AccessDeniedDetail`] of an implicit denial of `auth_action`, with an encoded diagnostic
/// message; change its public fields as you need.
///
/// ```
/// use aliyun_guard::testkit::errors;
/// let detail = errors::access_denied_detail("ram:CreateUser");
/// assert!(detail.encoded_diagnostic_message.is_some());
/// ```
pub fn access_denied_detail(auth_action: &str) -> AccessDeniedDetail {
    AccessDeniedDetail {
        auth_action: Some(auth_action.to_string()),
        no_permission_type: Some("ImplicitDeny".to_string()),
        policy_type: Some("AccountLevelIdentityBasedPolicy".to_string()),
        encoded_diagnostic_message: Some("AQEAAAAAdGVzdC1raXQ=".to_string()),
        ..AccessDeniedDetail::default()
    }
}

/// An [`UnexpectedResponse`] (host `mock.aliyuncs.com`, action `TestAction`, one attempt).
///
/// ```
/// use aliyun_guard::ResponseFault;
/// use aliyun_guard::testkit::errors;
/// let odd = errors::unexpected_response(200, ResponseFault::Empty, "");
/// assert_eq!((odd.status, odd.fault.clone()), (200, ResponseFault::Empty));
/// ```
pub fn unexpected_response(status: u16, fault: ResponseFault, snippet: &str) -> UnexpectedResponse {
    UnexpectedResponse {
        status,
        fault,
        snippet: snippet.to_string(),
        host: "mock.aliyuncs.com".to_string(),
        action: "TestAction".to_string(),
        request_id: None,
        attempts: 1,
    }
}

impl UnexpectedResponse {
    /// Wraps it in [`Error::UnexpectedResponse`] (test kit).
    ///
    /// ```
    /// use aliyun_guard::testkit::errors;
    /// use aliyun_guard::{Error, ResponseFault};
    /// let err = errors::unexpected_response(502, ResponseFault::Html, "<html>").into_error();
    /// assert!(matches!(err, Error::UnexpectedResponse(_)) && err.is_retryable());
    /// ```
    pub fn into_error(self) -> Error {
        Error::UnexpectedResponse(Box::new(self))
    }
}

/// A [`CompromisedKey`] as the server's leak answer raises it: key `access_key_id` (shown
/// masked), HTTP 403, `Forbidden`, on the restriction table, first seen now.
///
/// ```
/// use aliyun_guard::Error;
/// use aliyun_guard::testkit::errors;
///
/// // Your handler of leaked keys, tested without a server.
/// fn alert(err: &Error) -> Option<String> {
///     match err {
///         Error::CompromisedKey(leak) => Some(format!("rotate {}", leak.key_to_rotate())),
///         _ => None,
///     }
/// }
/// let err = Error::from(errors::compromised_key("LTAI5tExampleKeyIdwxyz", "Ecs", "RunInstances"));
/// assert_eq!(alert(&err).as_deref(), Some("rotate LTAI****wxyz"));
/// ```
pub fn compromised_key(access_key_id: &str, product: &str, action: &str) -> CompromisedKey {
    CompromisedKey {
        masked_key_id: mask_key_id(access_key_id),
        parent_masked_key_id: None,
        product: product.to_string(),
        version: String::new(),
        action: action.to_string(),
        status: Some(403),
        request_id: None,
        host_id: None,
        server_code: Some("Forbidden".to_string()),
        server_message: Some(super::LEAK_MESSAGE.to_string()),
        detection: Detection::ServerAnswer,
        on_restriction_table: true,
        first_seen: time::OffsetDateTime::now_utc(),
        remediation: &REMEDIATION,
    }
}

/// A [`CompromisedKey`] for a call the guard refused before sending.
///
/// ```
/// use aliyun_guard::guard::Detection;
/// use aliyun_guard::testkit::errors;
/// let leak = errors::refused_locally("LTAI5tExampleKeyIdwxyz", "Ram", "CreateUser");
/// assert_eq!((leak.detection, leak.status), (Detection::RefusedLocally, None));
/// ```
pub fn refused_locally(access_key_id: &str, product: &str, action: &str) -> CompromisedKey {
    CompromisedKey {
        status: None,
        server_code: None,
        server_message: None,
        detection: Detection::RefusedLocally,
        ..compromised_key(access_key_id, product, action)
    }
}

/// An [`Error::Deserialize`] at `path` (such as `Instances.Instance[0].Status`).
///
/// ```
/// use aliyun_guard::Error;
/// use aliyun_guard::testkit::errors;
/// let err = errors::deserialize("DescribeInstances", "Instances.Instance[0].Status", "unknown variant");
/// assert!(matches!(err, Error::Deserialize { .. }));
/// ```
pub fn deserialize(action: &str, path: &str, message: &str) -> Error {
    use serde::de::Error as _;
    Error::Deserialize {
        action: action.to_string(),
        request_id: None,
        path: path.to_string(),
        source: serde_json::Error::custom(message),
    }
}

/// An [`Error::Credentials`] of this kind.
///
/// ```
/// use aliyun_guard::credentials::CredentialsErrorKind;
/// use aliyun_guard::testkit::errors;
/// let err = errors::credentials(CredentialsErrorKind::NotConfigured, "no credentials");
/// assert!(err.is_not_configured());
/// ```
pub fn credentials(kind: CredentialsErrorKind, message: &str) -> Error {
    Error::credentials_kind(kind, message, None)
}

/// An [`Error::Connect`] to `host` for `action`, with a real connection error underneath
/// (reqwest's errors cannot be built otherwise): it connects to a closed port of `127.0.0.1`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aliyun_guard::testkit::errors;
/// let err = errors::connect_error("ecs.cn-hangzhou.aliyuncs.com", "DescribeInstances").await;
/// assert!(err.is_retryable());
/// # }
/// ```
pub async fn connect_error(host: &str, action: &str) -> Error {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(9, |a| a.port());
    let source = match reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
    {
        Err(e) => e.without_url(),
        Ok(_) => {
            return Error::Config("test kit: a closed port answered".to_string());
        }
    };
    Error::Connect {
        host: host.to_string(),
        action: action.to_string(),
        attempts: 1,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builder_gives_what_it_says() {
        let api = api_error(403, "Forbidden.RAM", "denied")
            .with_request_id("R-1")
            .with_access_denied_detail(access_denied_detail("ecs:RunInstances"))
            .into_error();
        assert_eq!(api.code(), Some("Forbidden.RAM"));
        assert_eq!(api.request_id(), Some("R-1"));
        assert!(api.to_string().contains("RAM denied ecs:RunInstances"));
        let leak: Error = compromised_key("LTAI5tAbCdEfGhIjKlMnwxyz", "Ecs", "RunInstances").into();
        assert!(leak.is_compromised_key());
        assert!(!leak.to_string().contains("LTAI5tAbCdEfGhIjKlMnwxyz"));
        let refused = refused_locally("LTAI5tAbCdEfGhIjKlMnwxyz", "Ecs", "RunInstances");
        assert_eq!(refused.detection, Detection::RefusedLocally);
        let u = unexpected_response(502, ResponseFault::Html, "<html>").into_error();
        assert!(u.is_retryable());
        let d = deserialize("A", "Regions.Region[0]", "invalid type");
        assert!(d.to_string().contains("Regions.Region[0]"));
        assert!(credentials(CredentialsErrorKind::NotConfigured, "x").is_not_configured());
    }

    #[tokio::test]
    async fn connect_errors_are_real_ones() {
        let e = connect_error("ecs.aliyuncs.com", "DescribeRegions").await;
        assert!(matches!(e, Error::Connect { .. }), "{e:?}");
        assert!(e.is_retryable());
    }
}
