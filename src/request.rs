//! An RPC call: product, API version, action, parameters, method, region, endpoint.
//!
//! Parameter values are [`ParamValue`]s: strings, integers and booleans convert into one (see
//! [`RpcRequest::param`]); lists and objects are flattened the way Alibaba's RPC APIs expect
//! ([`RpcRequest::param_list`], [`RpcRequest::param_objects`], [`RpcRequest::tags`]) or sent as
//! JSON ([`RpcRequest::param_json`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub(crate) mod common;
pub(crate) mod path;
pub(crate) mod roa;

use crate::error::Error;
use crate::retry::RetryPolicy;
use common::{Method, SignatureVersion, is_reserved};

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
/// assert_eq!(request.get_method(), Method::Post);
/// assert_eq!(request.parameters().len(), 2);
/// ```
///
/// Per request, [`RpcRequest::retry`] replaces the client's retry policy,
/// [`RpcRequest::timeout`] its total time budget, and [`RpcRequest::idempotent`] says whether an
/// ambiguous failure may be retried:
///
/// ```
/// use std::time::Duration;
/// use aliyun_guard::{RetryPolicy, RpcRequest};
/// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
///     .param("PageSize", 100)
///     .retry(RetryPolicy::new(5, Duration::from_millis(200)))
///     .timeout(Duration::from_secs(20));
/// assert_eq!(request.get_retry().map(|p| p.max_attempts), Some(5));
/// assert_eq!(request.get_timeout(), Some(Duration::from_secs(20)));
/// ```
///
/// **Names.** A builder method is named after what it sets (`region`, `endpoint`, `method`,
/// `retry`, `timeout`, `signature`) and reads back as `get_` + the same name
/// ([`get_region`](Self::get_region), [`get_endpoint`](Self::get_endpoint), ...); a yes/no
/// setting reads back as `is_` + its name ([`is_idempotent`](Self::is_idempotent),
/// [`is_form_body`](Self::is_form_body)); what [`new`](Self::new) fixes reads back under its
/// own name ([`product`](Self::product), [`version`](Self::version), [`action`](Self::action)),
/// and the parameters as [`parameters`](Self::parameters). [`crate::RoaRequest`] follows the
/// same rule.
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
    /// A parameter that could not be encoded ([`RpcRequest::param_json`]), reported by
    /// [`RpcRequest::validate`] (so that the builder methods stay infallible).
    invalid: Option<String>,
    signature: Option<SignatureVersion>,
    form_body: bool,
}

/// The wire form of a parameter value.
///
/// Built from strings (`&str`, `String`, `&String`, `Cow<str>`, `Box<str>`, `char`), every
/// integer type (decimal, as `to_string` writes it) and `bool` (`true` / `false`, as the APIs
/// expect). Floating-point numbers are left out on purpose: their text form is not unique
/// (`0.1 + 0.2` prints `0.30000000000000004`, `1e21` switches to exponent form, NaN and infinity
/// have no meaning to the API), so format them yourself with the precision the API documents
/// (`format!("{:.2}", price)`).
///
/// ```
/// use aliyun_guard::request::ParamValue;
/// assert_eq!(ParamValue::from(10).as_str(), "10");
/// assert_eq!(ParamValue::from(-3i64).as_str(), "-3");
/// assert_eq!(ParamValue::from(true).as_str(), "true");
/// assert_eq!(ParamValue::from("i-1").as_str(), "i-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamValue(String);

impl ParamValue {
    /// The value as sent (before percent-encoding).
    ///
    /// ```
    /// use aliyun_guard::ParamValue;
    /// assert_eq!(ParamValue::from(42u16).as_str(), "42");
    /// assert_eq!(ParamValue::from(true).as_str(), "true");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as an owned string.
    ///
    /// ```
    /// use aliyun_guard::ParamValue;
    /// let value: String = ParamValue::from(-7i64).into_string();
    /// assert_eq!(value, "-7");
    /// ```
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ParamValue> for String {
    fn from(value: ParamValue) -> Self {
        value.0
    }
}

impl From<&ParamValue> for ParamValue {
    fn from(value: &ParamValue) -> Self {
        value.clone()
    }
}

impl From<&str> for ParamValue {
    fn from(value: &str) -> Self {
        ParamValue(value.to_string())
    }
}

impl From<String> for ParamValue {
    fn from(value: String) -> Self {
        ParamValue(value)
    }
}

impl From<&String> for ParamValue {
    fn from(value: &String) -> Self {
        ParamValue(value.clone())
    }
}

impl From<Cow<'_, str>> for ParamValue {
    fn from(value: Cow<'_, str>) -> Self {
        ParamValue(value.into_owned())
    }
}

impl From<Box<str>> for ParamValue {
    fn from(value: Box<str>) -> Self {
        ParamValue(value.into())
    }
}

impl From<char> for ParamValue {
    fn from(value: char) -> Self {
        ParamValue(value.to_string())
    }
}

impl From<bool> for ParamValue {
    fn from(value: bool) -> Self {
        ParamValue(if value { "true" } else { "false" }.to_string())
    }
}

macro_rules! integer_params {
    ($($t:ty),*) => {$(
        impl From<$t> for ParamValue {
            fn from(value: $t) -> Self {
                ParamValue(value.to_string())
            }
        }
    )*};
}

integer_params!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize
);

/// Whether `key` is `prefix.N` (or, with `nested`, `prefix.N.anything`) for a decimal `N`.
fn is_item_of(key: &str, prefix: &str, nested: bool) -> bool {
    let Some(rest) = key
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('.'))
    else {
        return false;
    };
    let (index, tail) = match rest.split_once('.') {
        Some((index, tail)) => (index, Some(tail)),
        None => (rest, None),
    };
    !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) && (tail.is_some() == nested)
}

impl RpcRequest {
    /// A call of `action` in API `version` of `product` (the product code, such as `Ecs`).
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions");
    /// assert_eq!((request.product(), request.version(), request.action()),
    ///            ("Ecs", "2014-05-26", "DescribeRegions"));
    /// assert!(request.parameters().is_empty());
    /// ```
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
            invalid: None,
            signature: None,
            form_body: false,
        }
    }

    /// Sets one parameter (replacing an earlier value of the same name). The value is anything
    /// with a defined wire form ([`ParamValue`]): a string, an integer, a `bool`.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
    ///     .param("PageSize", 10)
    ///     .param("DryRun", false)
    ///     .param("InstanceName", "web-1");
    /// assert_eq!(request.parameters()["PageSize"], "10");
    /// assert_eq!(request.parameters()["DryRun"], "false");
    /// ```
    pub fn param(mut self, name: impl Into<String>, value: impl Into<ParamValue>) -> Self {
        self.params.insert(name.into(), value.into().0);
        self
    }

    /// Sets one parameter in place (the paginator's next page).
    pub(crate) fn set_param(&mut self, name: &str, value: impl Into<ParamValue>) {
        self.params.insert(name.to_string(), value.into().0);
    }

    /// Sets several parameters.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
    ///     .params([("PageNumber", 2), ("PageSize", 50)]);
    /// assert_eq!(request.parameters()["PageNumber"], "2");
    /// assert_eq!(request.parameters()["PageSize"], "50");
    /// ```
    pub fn params<K: Into<String>, V: Into<ParamValue>>(
        mut self,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.params
            .extend(params.into_iter().map(|(k, v)| (k.into(), v.into().0)));
        self
    }

    /// Sets a repeat list the way RPC APIs take it: `Name.1`, `Name.2`, ... (numbered from 1),
    /// replacing the items an earlier call set for `name`.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstanceAttribute")
    ///     .param_list("InstanceId", ["i-1", "i-2"]);
    /// assert_eq!(request.parameters()["InstanceId.1"], "i-1");
    /// assert_eq!(request.parameters()["InstanceId.2"], "i-2");
    /// ```
    pub fn param_list<V: Into<ParamValue>>(
        mut self,
        name: impl AsRef<str>,
        items: impl IntoIterator<Item = V>,
    ) -> Self {
        let name = name.as_ref();
        self.params.retain(|k, _| !is_item_of(k, name, false));
        for (i, item) in items.into_iter().enumerate() {
            self.params
                .insert(format!("{name}.{}", i + 1), item.into().0);
        }
        self
    }

    /// Sets a repeat list of objects: `Name.N.Field` for the N-th object (from 1) and each of
    /// its fields, replacing the objects an earlier call set for `name`.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "RunInstances").param_objects(
    ///     "DataDisk",
    ///     [[("Size", "100"), ("Category", "cloud_essd")], [("Size", "200"), ("Category", "cloud_auto")]],
    /// );
    /// assert_eq!(request.parameters()["DataDisk.2.Category"], "cloud_auto");
    /// ```
    pub fn param_objects<O, F, V>(
        mut self,
        name: impl AsRef<str>,
        objects: impl IntoIterator<Item = O>,
    ) -> Self
    where
        O: IntoIterator<Item = (F, V)>,
        F: AsRef<str>,
        V: Into<ParamValue>,
    {
        let name = name.as_ref();
        self.params.retain(|k, _| !is_item_of(k, name, true));
        for (i, object) in objects.into_iter().enumerate() {
            for (field, value) in object {
                self.params.insert(
                    format!("{name}.{}.{}", i + 1, field.as_ref()),
                    value.into().0,
                );
            }
        }
        self
    }

    /// Sets tags: `Tag.N.Key` and `Tag.N.Value` (numbered from 1), as most RPC APIs take them.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
    ///     .tags([("env", "prod"), ("team", "core")]);
    /// assert_eq!(request.parameters()["Tag.1.Key"], "env");
    /// assert_eq!(request.parameters()["Tag.2.Value"], "core");
    /// ```
    pub fn tags<K: Into<ParamValue>, V: Into<ParamValue>>(
        self,
        tags: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.param_objects(
            "Tag",
            tags.into_iter()
                .map(|(k, v)| [("Key", k.into()), ("Value", v.into())]),
        )
    }

    /// Sets a parameter to the JSON encoding of `value` (APIs that take `InstanceIds` as
    /// `["i-1","i-2"]`). A value that cannot be encoded as JSON (a map with non-string keys)
    /// makes [`RpcRequest::validate`], and so the call, fail with [`Error::InvalidRequest`].
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
    ///     .param_json("InstanceIds", &serde_json::json!(["i-1", "i-2"]));
    /// assert_eq!(request.parameters()["InstanceIds"], r#"["i-1","i-2"]"#);
    /// ```
    pub fn param_json<T: serde::Serialize + ?Sized>(
        mut self,
        name: impl Into<String>,
        value: &T,
    ) -> Self {
        let name = name.into();
        match serde_json::to_string(value) {
            Ok(json) => {
                self.params.insert(name, json);
            }
            Err(e) => {
                if self.invalid.is_none() {
                    self.invalid =
                        Some(format!("parameter {name:?} cannot be encoded as JSON: {e}"));
                }
            }
        }
        self
    }

    /// Chooses GET or POST.
    ///
    /// ```
    /// use aliyun_guard::{Method, RpcRequest};
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// assert_eq!(request.get_method(), Method::Get);
    /// ```
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Sets the region (endpoint derivation and `RegionId`).
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances").region("cn-shanghai");
    /// assert_eq!(request.get_region(), Some("cn-shanghai"));
    /// ```
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends this request to `endpoint` (a URL or host), overriding the client's and the derived one.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// // A VPC endpoint, for instance.
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
    ///     .endpoint("https://ecs-vpc.cn-hangzhou.aliyuncs.com");
    /// assert_eq!(request.get_endpoint(), Some("https://ecs-vpc.cn-hangzhou.aliyuncs.com"));
    /// ```
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Retries this request with `policy` instead of the client's.
    ///
    /// Which failures are retried does not change (see [`RpcRequest::idempotent`]): the policy
    /// sets how many attempts and how long the waits between them.
    ///
    /// ```
    /// use aliyun_guard::{RetryPolicy, RpcRequest};
    /// // A call that must not wait on retries.
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances").retry(RetryPolicy::none());
    /// assert_eq!(request.get_retry(), Some(&RetryPolicy::none()));
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The budget of this call, attempts and waits included, instead of the client's total
    /// timeout. A value too large to add to the clock (such as `Duration::MAX`) means no limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_guard::RpcRequest;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
    ///     .timeout(Duration::from_secs(5));
    /// assert_eq!(request.get_timeout(), Some(Duration::from_secs(5)));
    /// ```
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
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// let create = RpcRequest::new("Ecs", "2014-05-26", "CreateInstance");
    /// assert!(!create.is_idempotent());
    /// assert!(create.param("ClientToken", "3f1c0e").is_idempotent());
    /// ```
    pub fn is_idempotent(&self) -> bool {
        self.idempotent.unwrap_or_else(|| {
            crate::retry::is_read_only(&self.action) || self.params.contains_key("ClientToken")
        })
    }

    /// The per-request retry policy, if set.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// // None: the client's policy applies.
    /// assert_eq!(RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").get_retry(), None);
    /// ```
    pub fn get_retry(&self) -> Option<&RetryPolicy> {
        self.retry.as_ref()
    }

    /// The per-request time budget, if set.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// // None: the client's total timeout applies.
    /// assert_eq!(RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").get_timeout(), None);
    /// ```
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Product code.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// assert_eq!(RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").product(), "Ecs");
    /// ```
    pub fn product(&self) -> &str {
        &self.product
    }
    /// API version.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// assert_eq!(RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").version(), "2014-05-26");
    /// ```
    pub fn version(&self) -> &str {
        &self.version
    }
    /// Action name.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// assert_eq!(RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").action(), "DescribeRegions");
    /// ```
    pub fn action(&self) -> &str {
        &self.action
    }
    /// The caller's parameters (without the common ones the signer adds).
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
    ///     .param("PageSize", 10)
    ///     .param_list("InstanceIds", ["i-1", "i-2"]);
    /// let names: Vec<&str> = request.parameters().keys().map(String::as_str).collect();
    /// assert_eq!(names, ["InstanceIds.1", "InstanceIds.2", "PageSize"]);
    /// ```
    pub fn parameters(&self) -> &BTreeMap<String, String> {
        &self.params
    }
    /// The HTTP method.
    ///
    /// ```
    /// use aliyun_guard::{Method, RpcRequest};
    /// assert_eq!(RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").get_method(), Method::Post);
    /// ```
    pub fn get_method(&self) -> Method {
        self.method
    }
    /// The region, if set.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// // None: the client's default region applies.
    /// assert_eq!(RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").get_region(), None);
    /// ```
    pub fn get_region(&self) -> Option<&str> {
        self.region.as_deref()
    }
    /// The per-request endpoint override, if set.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// // None: the client's endpoint, else the one derived from product and region.
    /// assert_eq!(RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").get_endpoint(), None);
    /// ```
    pub fn get_endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Signs this request with `version` instead of the client's choice
    /// ([`crate::ClientBuilder::signature`]; default [`SignatureVersion::V1`]).
    ///
    /// Under [`SignatureVersion::V3`] the request is sent as `POST /` (or `GET /` with
    /// [`Method::Get`]) with its parameters in the URL query and the action, version, date,
    /// nonce and signature in `x-acs-*` and `authorization` headers.
    ///
    /// ```
    /// use aliyun_guard::{RpcRequest, SignatureVersion};
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
    ///     .signature(SignatureVersion::V3);
    /// assert_eq!(request.get_signature(), Some(SignatureVersion::V3));
    /// ```
    pub fn signature(mut self, version: SignatureVersion) -> Self {
        self.signature = Some(version);
        self
    }

    /// The per-request signature version, if set.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// // None: the client's signature version applies.
    /// assert_eq!(RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").get_signature(), None);
    /// ```
    pub fn get_signature(&self) -> Option<SignatureVersion> {
        self.signature
    }

    /// Under signature V3, sends the parameters in an `application/x-www-form-urlencoded`
    /// body (whose hash is signed) instead of the URL query, for APIs that declare form
    /// parameters. Without effect under signature 1.0, whose POST always uses a form body.
    ///
    /// ```
    /// use aliyun_guard::{RpcRequest, SignatureVersion};
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "RunInstances")
    ///     .signature(SignatureVersion::V3)
    ///     .form_body(true);
    /// assert!(request.is_form_body());
    /// ```
    pub fn form_body(mut self, form: bool) -> Self {
        self.form_body = form;
        self
    }

    /// Whether [`RpcRequest::form_body`] was asked for.
    ///
    /// ```
    /// use aliyun_guard::RpcRequest;
    /// assert!(!RpcRequest::new("Ecs", "2014-05-26", "RunInstances").is_form_body());
    /// ```
    pub fn is_form_body(&self) -> bool {
        self.form_body
    }

    /// Checks the request before it is signed: product, version and action are set and made of
    /// visible ASCII, and no parameter uses a name the signer sets itself.
    ///
    /// ```
    /// use aliyun_guard::{Error, RpcRequest};
    /// assert!(RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").validate().is_ok());
    /// // The signer sets `Signature` itself.
    /// let forged = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").param("Signature", "x");
    /// assert!(matches!(forged.validate(), Err(Error::InvalidRequest(_))));
    /// // A product code is one DNS label: it becomes part of the host name.
    /// let hostile = RpcRequest::new("evil.com/x", "2014-05-26", "DescribeRegions");
    /// assert!(hostile.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(invalid) = &self.invalid {
            return Err(Error::InvalidRequest(invalid.clone()));
        }
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

/// The getters' former names, kept so that older code still compiles (with a warning).
impl RpcRequest {
    #[doc(hidden)]
    #[deprecated(note = "renamed to `get_method`")]
    pub fn http_method(&self) -> Method {
        self.get_method()
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

    #[doc(hidden)]
    #[deprecated(note = "renamed to `get_signature`")]
    pub fn signature_version(&self) -> Option<SignatureVersion> {
        self.get_signature()
    }
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
    fn values_of_every_supported_type() {
        let owned = String::from("r");
        let r = RpcRequest::new("Ecs", "v", "A")
            .param("a", 10)
            .param("b", -5i8)
            .param("c", u64::MAX)
            .param("d", true)
            .param("e", String::from("s"))
            .param("f", &owned)
            .param("g", Cow::Borrowed("c"))
            .param("h", 'x')
            .param("i", 7usize)
            .params([("j", 1), ("k", 2)]);
        let p = r.parameters();
        assert_eq!(p["a"], "10");
        assert_eq!(p["b"], "-5");
        assert_eq!(p["c"], "18446744073709551615");
        assert_eq!(p["d"], "true");
        assert_eq!(p["e"], "s");
        assert_eq!(p["f"], "r");
        assert_eq!(p["g"], "c");
        assert_eq!(p["h"], "x");
        assert_eq!(p["i"], "7");
        assert_eq!(p["k"], "2");
    }

    #[test]
    fn lists_replace_their_earlier_items_only() {
        let r = RpcRequest::new("Ecs", "v", "A")
            .param("InstanceIdFilter", "keep")
            .param("InstanceId.Extra", "keep")
            .param_list("InstanceId", ["a", "b", "c"])
            .param_list("InstanceId", [1, 2]);
        let p = r.parameters();
        assert_eq!(p["InstanceId.1"], "1");
        assert_eq!(p["InstanceId.2"], "2");
        assert!(!p.contains_key("InstanceId.3"));
        assert_eq!(p["InstanceIdFilter"], "keep");
        assert_eq!(p["InstanceId.Extra"], "keep");
        let t = RpcRequest::new("Ecs", "v", "A")
            .tags([("a", "1"), ("b", "2")])
            .tags([("c", 3)]);
        let p = t.parameters();
        assert_eq!(p["Tag.1.Key"], "c");
        assert_eq!(p["Tag.1.Value"], "3");
        assert!(!p.contains_key("Tag.2.Key"));
        let empty = RpcRequest::new("Ecs", "v", "A").param_list("Id", Vec::<String>::new());
        assert!(empty.parameters().is_empty());
    }

    #[test]
    fn json_parameters_and_their_failures() {
        let r = RpcRequest::new("Ecs", "v", "A").param_json("Ids", &["i-1", "i-2"]);
        assert_eq!(r.parameters()["Ids"], r#"["i-1","i-2"]"#);
        assert!(r.validate().is_ok());
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), "v");
        let err = RpcRequest::new("Ecs", "v", "A")
            .param_json("Map", &bad)
            .validate()
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidRequest(m) if m.contains("\"Map\"")),
            "{err}"
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
