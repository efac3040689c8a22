//! A ROA-style call: product, version, action, method, path template and parameters, query,
//! headers and a JSON or binary body, always signed with signature V3.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::path::PathTemplate;
use crate::error::Error;
use crate::retry::RetryPolicy;

/// The body of a ROA call.
#[derive(Clone, PartialEq)]
pub(crate) enum RoaBody {
    None,
    Json(Value),
    Binary { bytes: Bytes, content_type: String },
}

/// One ROA-style call (Container Service for Kubernetes, Function Compute, ...), signed with
/// signature V3 (`ACS3-HMAC-SHA256`).
///
/// The path is the API's template as its documentation writes it (`/clusters/{ClusterId}`);
/// path parameters are filled in with [`RoaRequest::path_param`], each percent-encoded (a `/`
/// inside a value becomes `%2F`, so a value never adds a segment). The action name (the API's
/// name, sent as `x-acs-action`) is what the guard checks before sending, with the product.
///
/// Retries after an ambiguous failure (a read timeout, a 5xx answer): `GET`, `HEAD`, `PUT` and
/// `DELETE` are idempotent by HTTP's definition and retried; `POST` and `PATCH` are not, unless
/// [`RoaRequest::idempotent`] says so. Failures that show the call was not executed are retried
/// whatever the method.
///
/// ```
/// use aliyun_guard::RoaRequest;
/// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClusterDetail", "GET", "/clusters/{ClusterId}")
///     .path_param("ClusterId", "c82e6987e2961451182edacd74faf****")
///     .region("cn-beijing");
/// assert_eq!(request.encoded_path()?, "/clusters/c82e6987e2961451182edacd74faf%2A%2A%2A%2A");
/// assert!(request.is_idempotent());
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct RoaRequest {
    product: String,
    version: String,
    action: String,
    method: String,
    path: String,
    path_params: Vec<(String, String)>,
    query: BTreeMap<String, String>,
    headers: Vec<(String, String)>,
    body: RoaBody,
    region: Option<String>,
    endpoint: Option<String>,
    retry: Option<RetryPolicy>,
    timeout: Option<Duration>,
    idempotent: Option<bool>,
}

impl fmt::Debug for RoaRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values (of the query, headers, path parameters and body) may be secret: names only.
        f.debug_struct("RoaRequest")
            .field("product", &self.product)
            .field("version", &self.version)
            .field("action", &self.action)
            .field("method", &self.method)
            .field("path", &self.path)
            .field(
                "path_params",
                &self.path_params.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("query", &self.query.keys().collect::<Vec<_>>())
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl RoaRequest {
    /// A call of `action` (the API's name, such as `DescribeClustersV1`) in API `version` of
    /// `product` (the product code, such as `CS`): `method` (`GET`, `POST`, `PUT`, `DELETE`,
    /// ...) on the path template `path` (such as `/clusters/{ClusterId}`).
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClusterDetail", "GET", "/clusters/{ClusterId}");
    /// assert_eq!((request.product(), request.action(), request.method()), ("CS", "DescribeClusterDetail", "GET"));
    /// ```
    pub fn new(
        product: impl Into<String>,
        version: impl Into<String>,
        action: impl Into<String>,
        method: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        Self {
            product: product.into(),
            version: version.into(),
            action: action.into(),
            method: method.into().to_ascii_uppercase(),
            path: path.into(),
            path_params: Vec::new(),
            query: BTreeMap::new(),
            headers: Vec::new(),
            body: RoaBody::None,
            region: None,
            endpoint: None,
            retry: None,
            timeout: None,
            idempotent: None,
        }
    }

    /// Fills the path parameter `{name}` with `value` (raw; encoded when sent).
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClusterDetail", "GET", "/clusters/{ClusterId}")
    ///     .path_param("ClusterId", "c-1");
    /// assert_eq!(request.encoded_path()?, "/clusters/c-1");
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn path_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.path_params.push((name.into(), value.into()));
        self
    }

    /// Sets a query parameter (raw name and value, replacing an earlier one of the same name;
    /// flatten lists as `Name.1`, `Name.2`).
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClustersV1", "GET", "/api/v1/clusters")
    ///     .query("page_size", "20");
    /// assert_eq!(request.query_parameters()["page_size"], "20");
    /// ```
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.insert(name.into(), value.into());
        self
    }

    /// Adds a header. `x-acs-*` and `content-type` headers are signed; the headers the signer
    /// sets itself (`authorization`, `host`, `x-acs-action`, `x-acs-date`, ...) are refused.
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClustersV1", "GET", "/api/v1/clusters")
    ///     .header("x-acs-resourcegroupid", "rg-123");
    /// assert!(request.validate().is_ok());
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `json` as the body, `content-type: application/json; charset=utf-8`.
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "CreateTrigger", "POST", "/clusters/{ClusterId}/triggers")
    ///     .path_param("ClusterId", "c-1")
    ///     .json(serde_json::json!({"action": "redeploy"}));
    /// assert!(!request.is_idempotent());
    /// ```
    pub fn json(mut self, json: Value) -> Self {
        self.body = RoaBody::Json(json);
        self
    }

    /// Sends `bytes` as the body with this `content-type`.
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("Example", "2020-01-01", "PutObject", "PUT", "/objects/{Name}")
    ///     .path_param("Name", "a.bin")
    ///     .binary(vec![0u8, 1, 2], "application/octet-stream");
    /// assert!(request.validate().is_ok());
    /// ```
    pub fn binary(mut self, bytes: impl Into<Bytes>, content_type: impl Into<String>) -> Self {
        self.body = RoaBody::Binary {
            bytes: bytes.into(),
            content_type: content_type.into(),
        };
        self
    }

    /// Sets the region (endpoint derivation: `product.region.aliyuncs.com`).
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClusterDetail", "GET", "/clusters/{ClusterId}")
    ///     .region("cn-beijing");
    /// assert_eq!(request.get_region(), Some("cn-beijing"));
    /// ```
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends this request to `endpoint` (a URL or host whose path is `/`), overriding the
    /// client's and the derived one; the API path comes from the template.
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClusterDetail", "GET", "/clusters/{ClusterId}")
    ///     .endpoint("https://cs.cn-beijing.aliyuncs.com");
    /// assert_eq!(request.get_endpoint(), Some("https://cs.cn-beijing.aliyuncs.com"));
    /// ```
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Retries this request with `policy` instead of the client's.
    ///
    /// ```
    /// use aliyun_guard::{RetryPolicy, RoaRequest};
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClusterDetail", "GET", "/clusters/{ClusterId}")
    ///     .retry(RetryPolicy::none());
    /// assert_eq!(request.get_retry(), Some(&RetryPolicy::none()));
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The budget of this call, attempts and waits included, instead of the client's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClusterDetail", "GET", "/clusters/{ClusterId}")
    ///     .timeout(Duration::from_secs(10));
    /// assert_eq!(request.get_timeout(), Some(Duration::from_secs(10)));
    /// ```
    pub fn timeout(mut self, budget: Duration) -> Self {
        self.timeout = Some(budget);
        self
    }

    /// Says whether running this request twice does no more than running it once (default:
    /// `GET`, `HEAD`, `PUT`, `DELETE` and `OPTIONS` are, as HTTP defines them; others not).
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// // A POST that the API documents as safe to repeat.
    /// let request = RoaRequest::new("CS", "2015-12-15", "ScaleCluster", "POST", "/clusters/{ClusterId}")
    ///     .idempotent(true);
    /// assert!(request.is_idempotent());
    /// ```
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    /// Whether the request may be retried after an ambiguous failure (see
    /// [`RoaRequest::idempotent`]).
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// assert!(RoaRequest::new("CS", "2015-12-15", "DescribeClustersV1", "GET", "/api/v1/clusters").is_idempotent());
    /// assert!(!RoaRequest::new("CS", "2015-12-15", "CreateCluster", "POST", "/clusters").is_idempotent());
    /// ```
    pub fn is_idempotent(&self) -> bool {
        self.idempotent.unwrap_or(matches!(
            self.method.as_str(),
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS"
        ))
    }

    /// Product code.
    pub fn product(&self) -> &str {
        &self.product
    }
    /// API version.
    pub fn version(&self) -> &str {
        &self.version
    }
    /// Action name (`x-acs-action`).
    pub fn action(&self) -> &str {
        &self.action
    }
    /// The HTTP method (upper case).
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DeleteCluster", "delete", "/clusters/{ClusterId}");
    /// assert_eq!(request.method(), "DELETE");
    /// ```
    pub fn method(&self) -> &str {
        &self.method
    }
    /// The path template as given.
    pub fn path_template(&self) -> &str {
        &self.path
    }
    /// The query parameters.
    pub fn query_parameters(&self) -> &BTreeMap<String, String> {
        &self.query
    }
    /// The region, if set.
    pub fn get_region(&self) -> Option<&str> {
        self.region.as_deref()
    }
    /// The per-request endpoint override, if set.
    pub fn get_endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }
    /// The per-request retry policy, if set.
    pub fn get_retry(&self) -> Option<&RetryPolicy> {
        self.retry.as_ref()
    }
    /// The per-request time budget, if set.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The path template filled with the path parameters and encoded.
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClusterDetail", "GET", "/clusters/{ClusterId}")
    ///     .path_param("ClusterId", "a b");
    /// assert_eq!(request.encoded_path()?, "/clusters/a%20b");
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn encoded_path(&self) -> Result<String, Error> {
        let values: Vec<(&str, &str)> = self
            .path_params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        PathTemplate::parse(&self.path)?.fill(&values)
    }

    pub(crate) fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub(crate) fn body(&self) -> &RoaBody {
        &self.body
    }

    /// Checks the request before it is signed: product, version, action and method, the path
    /// template and its parameters. (Headers are checked by the signer.)
    ///
    /// ```
    /// use aliyun_guard::RoaRequest;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClusterDetail", "GET", "/clusters/{ClusterId}");
    /// // The path parameter is missing.
    /// assert!(request.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        super::check_identifiers(&self.product, &self.version, &self.action)?;
        if self.method.is_empty()
            || self.method.len() > 16
            || !self.method.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(Error::InvalidRequest(format!(
                "the HTTP method {:?} must be letters (GET, POST, PUT, DELETE, ...)",
                self.method.chars().take(20).collect::<String>()
            )));
        }
        if self.query.keys().any(String::is_empty) {
            return Err(Error::InvalidRequest(
                "a query parameter has an empty name".into(),
            ));
        }
        self.encoded_path().map(drop)
    }
}

/// The getters' former names, kept so that older code still compiles (with a warning).
impl RoaRequest {
    #[doc(hidden)]
    #[deprecated(note = "renamed to `method`")]
    pub fn http_method(&self) -> &str {
        self.method()
    }

    #[doc(hidden)]
    #[deprecated(note = "renamed to `get_region`")]
    pub fn region_id(&self) -> Option<&str> {
        self.get_region()
    }

    #[doc(hidden)]
    #[deprecated(note = "renamed to `get_endpoint`")]
    pub fn endpoint_override(&self) -> Option<&str> {
        self.get_endpoint()
    }

    #[doc(hidden)]
    #[deprecated(note = "renamed to `get_retry`")]
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.get_retry()
    }

    #[doc(hidden)]
    #[deprecated(note = "renamed to `get_timeout`")]
    pub fn timeout_budget(&self) -> Option<Duration> {
        self.get_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_follows_the_method() {
        let r = |m: &str| RoaRequest::new("CS", "2015-12-15", "A", m, "/x");
        for m in ["GET", "get", "HEAD", "PUT", "DELETE"] {
            assert!(r(m).is_idempotent(), "{m}");
        }
        for m in ["POST", "PATCH"] {
            assert!(!r(m).is_idempotent(), "{m}");
        }
        assert!(r("POST").idempotent(true).is_idempotent());
        assert!(!r("GET").idempotent(false).is_idempotent());
    }

    #[test]
    fn validation() {
        let ok = RoaRequest::new(
            "CS",
            "2015-12-15",
            "DescribeClusterDetail",
            "GET",
            "/clusters/{Id}",
        )
        .path_param("Id", "c/1");
        assert!(ok.validate().is_ok());
        assert_eq!(ok.encoded_path().unwrap(), "/clusters/c%2F1");
        for bad in [
            RoaRequest::new("cs.evil.com/", "v", "A", "GET", "/"),
            RoaRequest::new("CS", "v", "A", "G ET", "/"),
            RoaRequest::new("CS", "v", "A", "GET", "clusters"),
            RoaRequest::new("CS", "v", "A", "GET", "/c/{Id}"),
            RoaRequest::new("CS", "v", "A", "GET", "/c/{Id}").path_param("Id", ".."),
            RoaRequest::new("CS", "v", "A", "GET", "/").query("", "x"),
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_shows_no_values() {
        let r = RoaRequest::new("CS", "v", "A", "POST", "/{Id}")
            .path_param("Id", "SECRETPATH")
            .query("q", "SECRETQUERY")
            .header("x-acs-x", "SECRETHEADER");
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("SECRET"), "{dbg}");
    }
}
