//! An RPC call: product, API version, action, parameters, method, region, endpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Error;
use crate::signing::{Method, SignatureVersion, is_reserved};
use crate::transport::RetryPolicy;

/// One RPC ("POP") call.
///
/// POST is the default: parameters, signature and any security token travel in the form body,
/// out of URLs and proxy logs. `region` selects the endpoint (`ecs.cn-hangzhou.aliyuncs.com`) and
/// is sent as `RegionId` unless the parameters set `RegionId` themselves.
///
/// ```
/// use aliyun_guard::{RpcRequest, signing::Method};
/// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
///     .region("cn-hangzhou")
///     .param("PageSize", "50")
///     .params([("InstanceIds", r#"["i-1","i-2"]"#)]);
/// assert_eq!(request.http_method(), Method::Post);
/// assert_eq!(request.parameters().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcRequest {
    product: String,
    version: String,
    action: String,
    params: BTreeMap<String, String>,
    method: Method,
    region: Option<String>,
    endpoint: Option<String>,
    retry: Option<RetryPolicy>,
    timeout: Option<Duration>,
    idempotent: Option<bool>,
    signature: Option<SignatureVersion>,
    form_body: bool,
}

impl RpcRequest {
    /// A call of `action` in API `version` of `product` (the product code, such as `Ecs`).
    pub fn new(
        product: impl Into<String>,
        version: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Self {
            product: product.into(),
            version: version.into(),
            action: action.into(),
            params: BTreeMap::new(),
            method: Method::Post,
            region: None,
            endpoint: None,
            retry: None,
            timeout: None,
            idempotent: None,
            signature: None,
            form_body: false,
        }
    }

    /// Sets one parameter (replacing an earlier value of the same name).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Sets several parameters.
    pub fn params<K: Into<String>, V: Into<String>>(
        mut self,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.params
            .extend(params.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Chooses GET or POST.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Sets the region (endpoint derivation and `RegionId`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends this request to `endpoint` (a URL or host), overriding the client's and the derived one.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Retries this request with `policy` instead of the client's.
    ///
    /// Which failures are retried does not change (see [`RpcRequest::idempotent`]): the policy
    /// sets how many attempts and how long the waits between them.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The budget of this call, attempts and waits included, instead of the client's total
    /// timeout. A value too large to add to the clock (such as `Duration::MAX`) means no limit.
    pub fn timeout(mut self, budget: Duration) -> Self {
        self.timeout = Some(budget);
        self
    }

    /// Says whether running this request twice does no more than running it once.
    ///
    /// After an ambiguous failure (a connection reset mid-response, a read timeout, a 5xx answer
    /// without a "not executed" code) the request may have run, so it is retried only if it is
    /// idempotent. By default that is inferred: read-only actions (`Describe*`, `List*`, `Get*`,
    /// `Query*`, `Check*`) and requests with a `ClientToken` parameter are idempotent. `true`
    /// marks another action idempotent; `false` forbids retries after ambiguous failures even for
    /// a read-only action. Failures that show the request was not executed (connection refused,
    /// connect timeout, throttling) are retried whatever this says.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// assert!(RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances").is_idempotent());
    /// assert!(!RpcRequest::new("Ecs", "2014-05-26", "RunInstances").is_idempotent());
    /// assert!(RpcRequest::new("Ecs", "2014-05-26", "RunInstances").param("ClientToken", "t-1").is_idempotent());
    /// assert!(RpcRequest::new("Ecs", "2014-05-26", "StartInstance").idempotent(true).is_idempotent());
    /// ```
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    /// Whether the request may be retried after an ambiguous failure (see
    /// [`RpcRequest::idempotent`]).
    pub fn is_idempotent(&self) -> bool {
        self.idempotent.unwrap_or_else(|| {
            crate::transport::is_read_only(&self.action) || self.params.contains_key("ClientToken")
        })
    }

    /// The per-request retry policy, if set.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.retry.as_ref()
    }

    /// The per-request time budget, if set.
    pub fn timeout_budget(&self) -> Option<Duration> {
        self.timeout
    }

    /// Product code.
    pub fn product(&self) -> &str {
        &self.product
    }
    /// API version.
    pub fn version(&self) -> &str {
        &self.version
    }
    /// Action name.
    pub fn action(&self) -> &str {
        &self.action
    }
    /// The caller's parameters (without the common ones the signer adds).
    pub fn parameters(&self) -> &BTreeMap<String, String> {
        &self.params
    }
    /// The HTTP method.
    pub fn http_method(&self) -> Method {
        self.method
    }
    /// The region, if set.
    pub fn region_id(&self) -> Option<&str> {
        self.region.as_deref()
    }
    /// The per-request endpoint override, if set.
    pub fn endpoint_override(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Signs this request with `version` instead of the client's choice
    /// ([`crate::ClientBuilder::signature`]; default [`SignatureVersion::V1`]).
    ///
    /// Under [`SignatureVersion::V3`] the request is sent as `POST /` (or `GET /` with
    /// [`Method::Get`]) with its parameters in the URL query and the action, version, date,
    /// nonce and signature in `x-acs-*` and `authorization` headers.
    pub fn signature(mut self, version: SignatureVersion) -> Self {
        self.signature = Some(version);
        self
    }

    /// The per-request signature version, if set.
    pub fn signature_version(&self) -> Option<SignatureVersion> {
        self.signature
    }

    /// Under signature V3, sends the parameters in an `application/x-www-form-urlencoded`
    /// body (whose hash is signed) instead of the URL query, for APIs that declare form
    /// parameters. Without effect under signature 1.0, whose POST always uses a form body.
    pub fn form_body(mut self, form: bool) -> Self {
        self.form_body = form;
        self
    }

    /// Whether [`RpcRequest::form_body`] was asked for.
    pub fn is_form_body(&self) -> bool {
        self.form_body
    }

    /// Checks the request before it is signed: product, version and action are set and made of
    /// visible ASCII, and no parameter uses a name the signer sets itself.
    pub fn validate(&self) -> Result<(), Error> {
        check_identifiers(&self.product, &self.version, &self.action)?;
        if let Some(name) = self.params.keys().find(|k| is_reserved(k)) {
            return Err(Error::InvalidRequest(format!(
                "parameter {name:?} is set by the client itself; remove it from the request"
            )));
        }
        if let Some(name) = self.params.keys().find(|k| k.is_empty()) {
            return Err(Error::InvalidRequest(format!(
                "a parameter has an empty name ({name:?})"
            )));
        }
        Ok(())
    }
}

/// Product, version and action are set and made of visible ASCII; the product is a DNS label
/// (it can become a host name).
pub(crate) fn check_identifiers(product: &str, version: &str, action: &str) -> Result<(), Error> {
    for (what, value) in [
        ("product", product),
        ("version", version),
        ("action", action),
    ] {
        if value.is_empty() {
            return Err(Error::InvalidRequest(format!("the {what} is empty")));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidRequest(format!(
                "the {what} {value:?} must be visible ASCII without spaces"
            )));
        }
    }
    // The product code can become a host name: only a DNS label is accepted.
    if !crate::endpoint::is_dns_label(product) {
        return Err(Error::InvalidRequest(format!(
            "the product {:?} is not a product code (ASCII letters, digits and '-', such as \
             Ecs or dms-enterprise); it must not carry a host, port, path or user name",
            product.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_are_rejected() {
        for name in ["Signature", "AccessKeyId", "SecurityToken", "Timestamp"] {
            let err = RpcRequest::new("Ecs", "2014-05-26", "X")
                .param(name, "v")
                .validate()
                .unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn products_that_are_not_labels_are_rejected() {
        for product in [
            "127.0.0.1:8443/",
            "ecs.evil.com#",
            "x@host/",
            "a/b",
            "ecs.cn-hangzhou.aliyuncs.com.evil.com",
        ] {
            let err = RpcRequest::new(product, "v", "A").validate().unwrap_err();
            assert!(
                matches!(err, Error::InvalidRequest(_)),
                "{product}: {err:?}"
            );
        }
        assert!(
            RpcRequest::new("dms-enterprise", "v", "A")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn idempotency_is_inferred_or_set() {
        for action in [
            "DescribeRegions",
            "ListTagResources",
            "GetAccountAlias",
            "QueryX",
            "CheckY",
        ] {
            assert!(
                RpcRequest::new("Ecs", "v", action).is_idempotent(),
                "{action}"
            );
        }
        for action in [
            "RunInstances",
            "DeleteInstance",
            "Describe",
            "describeregions",
            "Getaway",
        ] {
            assert!(
                !RpcRequest::new("Ecs", "v", action).is_idempotent(),
                "{action}"
            );
        }
        assert!(
            !RpcRequest::new("Ecs", "v", "DescribeRegions")
                .idempotent(false)
                .is_idempotent()
        );
    }

    #[test]
    fn empty_or_spaced_identifiers_are_rejected() {
        assert!(RpcRequest::new("", "v", "A").validate().is_err());
        assert!(
            RpcRequest::new("Ecs", "v", "Run Instances")
                .validate()
                .is_err()
        );
        assert!(
            RpcRequest::new("Ecs", "v", "A")
                .param("", "x")
                .validate()
                .is_err()
        );
        assert!(
            RpcRequest::new("Ecs", "v", "A")
                .param("k", "")
                .validate()
                .is_ok()
        );
    }
}
