//! What AssumeRole and AssumeRoleWithOIDC share: the STS endpoint, the session name, the
//! duration, the sender of STS calls ([`StsSender`]) and the parser of the `Credentials` object
//! STS answers with.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;
use zeroize::Zeroizing;

use super::body::{BodyError, read_secret_body};
use super::{Credentials, CredentialsErrorKind, Env, mask_key_id};
use crate::endpoint;
use crate::error::{Error, ResponseFault, TimeoutPhase, UnexpectedResponse};
use crate::guard::{self, AnsweredCall, Guard, KeyFingerprint, leak_product};
use crate::redact::{is_secret_name, server_text};
use crate::request::RpcRequest;
use crate::response::{self, Decoded, ErrorFields};
use crate::retry::{
    self, DEFAULT_MAX_BODY_BYTES, DEFAULT_TOTAL_TIMEOUT, RetryPolicy, USER_AGENT_VALUE,
};
use crate::signing::{self, Method, Signer, format_timestamp, percent_encode_into};

/// API version of STS.
pub(crate) const STS_VERSION: &str = "2015-04-01";
/// Product code of STS.
pub(crate) const STS_PRODUCT: &str = "Sts";
/// The global STS host.
pub(crate) const STS_GLOBAL_HOST: &str = "sts.aliyuncs.com";

/// Variable: STS endpoint override (a host, or a full URL).
pub(crate) const STS_ENDPOINT_VAR: &str = "ALIBABA_CLOUD_STS_ENDPOINT";
/// Variable: STS region (`sts.<region>.aliyuncs.com`).
pub(crate) const STS_REGION_VAR: &str = "ALIBABA_CLOUD_STS_REGION";
/// Variable: `true` for the VPC STS endpoint (with a region only).
pub(crate) const VPC_ENABLED_VAR: &str = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";
/// Variable: the default role session name.
pub(crate) const ROLE_SESSION_NAME_VAR: &str = "ALIBABA_CLOUD_ROLE_SESSION_NAME";

/// Shortest role session (seconds).
pub(crate) const MIN_DURATION: u32 = 900;
/// Longest role session (seconds).
pub(crate) const MAX_DURATION: u32 = 43_200;
/// Default role session (seconds).
pub(crate) const DEFAULT_DURATION: u32 = 3_600;

/// Connect timeout of STS calls, as the official libraries.
pub(crate) const STS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Read timeout of STS calls, as the official libraries.
pub(crate) const STS_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether an environment flag is `true` (case-insensitive).
pub(crate) fn env_flag(env: &Env, name: &str) -> bool {
    env.get(name)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Checks that `region` is one DNS label (letters, digits and `-`, 1 to 63 characters, no `-`
/// at either end) and returns it in lower case. `what` names where it came from.
pub(crate) fn validate_region(region: &str, what: &str) -> Result<String, Error> {
    let r = region.trim();
    let ok = !r.is_empty()
        && r.len() <= 63
        && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !r.starts_with('-')
        && !r.ends_with('-');
    if ok {
        Ok(r.to_ascii_lowercase())
    } else {
        // The value is shown only when it is short and printable: it is not a secret, but it
        // may be anything.
        let shown = if r.len() <= 63 && r.bytes().all(|b| b.is_ascii_graphic()) {
            format!(" {r:?}")
        } else {
            String::new()
        };
        Err(Error::credentials_invalid(format!(
            "{what}: the region{shown} is not a region id (letters, digits and '-', at most 63)"
        )))
    }
}

/// Where STS calls go, in order: an explicit endpoint (builder), `ALIBABA_CLOUD_STS_ENDPOINT`,
/// a region (builder or profile, else `ALIBABA_CLOUD_STS_REGION`) giving
/// `sts.<region>.aliyuncs.com` or, with VPC enabled (builder or profile, else
/// `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`), `sts-vpc.<region>.aliyuncs.com`; else
/// `sts.aliyuncs.com`. An endpoint is a host (HTTPS) or a full URL; plain `http://` only when
/// written out.
#[derive(Debug, Clone, Default)]
pub(crate) struct StsEndpoint {
    pub(crate) explicit: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) vpc: Option<bool>,
}

impl StsEndpoint {
    /// Resolves the endpoint URL, reading the variables from `env`.
    pub(crate) fn resolve(&self, env: &Env) -> Result<Url, Error> {
        if let Some(explicit) = self.explicit.as_deref().filter(|e| !e.trim().is_empty()) {
            return endpoint::parse_explicit(explicit);
        }
        if let Some(from_env) = env.get(STS_ENDPOINT_VAR) {
            return endpoint::parse_explicit(&from_env).map_err(|e| {
                Error::credentials_kind(
                    CredentialsErrorKind::Invalid,
                    format!("{STS_ENDPOINT_VAR} is not a valid endpoint"),
                    Some(Box::new(e)),
                )
            });
        }
        let (region, what) = match self.region.as_deref().filter(|r| !r.trim().is_empty()) {
            Some(r) => (Some(r.to_string()), "the STS region"),
            None => (env.get(STS_REGION_VAR), STS_REGION_VAR),
        };
        let host = match region {
            Some(region) => {
                let region = validate_region(&region, what)?;
                let vpc = self.vpc.unwrap_or_else(|| env_flag(env, VPC_ENABLED_VAR));
                if vpc {
                    format!("sts-vpc.{region}.aliyuncs.com")
                } else {
                    format!("sts.{region}.aliyuncs.com")
                }
            }
            None => STS_GLOBAL_HOST.to_string(),
        };
        endpoint::parse_explicit(&format!("https://{host}"))
    }
}

/// The session name: the one given, else `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else generated
/// (`aliyun-guard-<unix seconds>`); 2 to 64 characters of `[A-Za-z0-9.@_-]`.
pub(crate) fn session_name(given: Option<&str>, env: &Env) -> Result<String, Error> {
    let (name, what) = match given.filter(|n| !n.is_empty()) {
        Some(n) => (n.to_string(), "the role session name"),
        None => match env.get(ROLE_SESSION_NAME_VAR) {
            Some(n) => (n, ROLE_SESSION_NAME_VAR),
            None => {
                return Ok(format!(
                    "aliyun-guard-{}",
                    OffsetDateTime::now_utc().unix_timestamp()
                ));
            }
        },
    };
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".@_-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(Error::credentials_invalid(format!(
            "{what} must be 2 to 64 characters of letters, digits, '.', '@', '_' and '-'"
        )))
    }
}

/// Checks a session duration (900 to 43,200 seconds).
pub(crate) fn validate_duration(seconds: u32) -> Result<u32, Error> {
    if (MIN_DURATION..=MAX_DURATION).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(Error::credentials_invalid(format!(
            "the role session duration {seconds} s is outside {MIN_DURATION}..={MAX_DURATION} s"
        )))
    }
}

/// Checks a role ARN: `acs:ram::<account>:role/<name>`, visible ASCII, at most 2,048 bytes.
pub(crate) fn validate_role_arn(arn: &str, what: &str) -> Result<String, Error> {
    let arn = arn.trim();
    let ok = arn.len() <= 2048
        && arn.bytes().all(|b| b.is_ascii_graphic())
        && arn.starts_with("acs:ram::")
        && arn.contains(":role/");
    if ok {
        Ok(arn.to_string())
    } else {
        Err(Error::credentials_invalid(format!(
            "{what} is not a role ARN (acs:ram::<account id>:role/<role name>)"
        )))
    }
}

/// Checks the optional policy (1 to 2,048 characters).
pub(crate) fn validate_policy(policy: Option<String>) -> Result<Option<String>, Error> {
    match policy.filter(|p| !p.trim().is_empty()) {
        Some(p) if p.chars().count() > 2048 => Err(Error::credentials_invalid(
            "the role session policy is longer than 2,048 characters",
        )),
        other => Ok(other),
    }
}

/// Turns an STS answer into credentials: its `Credentials` object (`AccessKeyId`,
/// `AccessKeySecret`, `SecurityToken`, `Expiration` as `YYYY-MM-DDThh:mm:ssZ`). A malformed
/// answer is `Unavailable`, with a message naming the missing field and never a value.
pub(crate) fn parse_credentials(
    answer: &Value,
    action: &str,
    provider: &'static str,
) -> Result<Credentials, Error> {
    let request_id = answer
        .get("RequestId")
        .and_then(Value::as_str)
        .filter(|r| r.len() <= 128 && r.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("unknown");
    let bad = |what: &str| {
        Error::credentials_kind(
            CredentialsErrorKind::Unavailable,
            format!("the {action} answer (request id {request_id}) {what}"),
            None,
        )
    };
    let object = answer
        .get("Credentials")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("has no Credentials object"))?;
    let field = |name: &str| -> Result<&str, Error> {
        object
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(&format!("has no {name} string in Credentials")))
    };
    let key_id = field("AccessKeyId")?;
    let secret = field("AccessKeySecret")?;
    let token = field("SecurityToken")?;
    let expiration = field("Expiration")?;
    if !key_id.bytes().all(|b| b.is_ascii_graphic()) || key_id.len() > 256 {
        return Err(bad("has an AccessKeyId that is not visible ASCII"));
    }
    let expiry = OffsetDateTime::parse(expiration, &Rfc3339)
        .map_err(|_| bad("has an Expiration that is not YYYY-MM-DDThh:mm:ssZ"))?;
    Ok(Credentials::new(key_id, secret)
        .with_security_token(token)
        .with_expiry(expiry)
        .with_provider_name(provider))
}

// ---------------------------------------------------------------------------------------------
// The STS sender: how the credentials providers call STS, without the client (which sits above
// the credentials in the module layering, and builds the default chain that uses AssumeRole).

/// Content type of STS calls (a form body).
const FORM: &str = "application/x-www-form-urlencoded";

/// What authenticates an STS call.
pub(crate) enum StsAuth<'a> {
    /// Signature 1.0 with `credentials`, signed anew for every attempt (fresh nonce and
    /// timestamp). The `guard` refuses the call before sending when the key, or the long-lived
    /// key it was minted from, is known to be compromised and its policy blocks the call, and
    /// records a leak answer (an [`Error::CompromisedKey`] marking both keys).
    Signed {
        credentials: &'a Credentials,
        guard: &'a Arc<Guard>,
    },
    /// No signature: AssumeRoleWithOIDC, where a token among the parameters is the proof. No
    /// key is involved, so the guard is not either.
    Unsigned,
}

/// The crate's one way to call STS (AssumeRole, AssumeRoleWithOIDC), with what the client gives
/// other calls: a form POST to the resolved endpoint, the official STS timeouts (connect 5 s,
/// read 10 s) inside a total budget (60 s, waits included), bounded retries of the failures
/// [`crate::retry`] classifies as safe to retry, a capped body read, redirects refused, the
/// crate's `User-Agent`, typed errors with server text redacted, and, for signed calls, the
/// guard's check before sending and its record of a leak answer.
pub(crate) struct StsSender {
    http: reqwest::Client,
    endpoint: Url,
    /// The endpoint's host, as errors name it.
    host: String,
    /// The products the endpoint's host serves (the guard checks them too).
    host_products: Vec<String>,
    retry: RetryPolicy,
    signer: Signer,
    max_body_bytes: usize,
    total_timeout: Duration,
}

impl fmt::Debug for StsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsSender")
            .field("endpoint", &self.endpoint.as_str())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// The HTTP client of STS calls: the official STS timeouts, the crate's `User-Agent`, no
/// redirects (a signed request is never re-sent elsewhere).
fn sts_http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(STS_CONNECT_TIMEOUT)
        .read_timeout(STS_READ_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(USER_AGENT_VALUE)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Config(format!("cannot build the STS HTTP client: {e}")))
}

/// The key ids the guard knows a signed call by.
struct CallKeys {
    fingerprint: KeyFingerprint,
    masked: String,
    /// The long-lived key temporary credentials were minted from: fingerprint and masked id.
    parent: Option<(KeyFingerprint, String)>,
}

impl CallKeys {
    /// The guard's view of these keys.
    fn borrowed(&self) -> guard::CallKeys<'_> {
        guard::CallKeys {
            key: self.fingerprint,
            masked_key_id: &self.masked,
            parent: self.parent.as_ref().map(|(fp, m)| (*fp, m.as_str())),
        }
    }

    fn of(credentials: &Credentials) -> Self {
        let id = credentials.access_key_id().trim();
        let parent = credentials
            .parent_key_id()
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != id)
            .map(|p| (KeyFingerprint::of(p), mask_key_id(p)));
        Self {
            fingerprint: KeyFingerprint::of(id),
            masked: mask_key_id(id),
            parent,
        }
    }
}

/// One STS call being made: what every attempt shares.
struct StsCall<'a> {
    action: &'static str,
    /// The action's own parameters.
    params: &'a [(&'a str, &'a str)],
    signed: Option<SignedCall<'a>>,
}

/// What a signed call adds.
struct SignedCall<'a> {
    credentials: &'a Credentials,
    guard: &'a Arc<Guard>,
    /// The request signed at every attempt.
    request: RpcRequest,
    keys: CallKeys,
}

impl StsCall<'_> {
    /// Server text made fit for an error, as the client does: the secrets of this call (the
    /// AccessKey secret, the security token, secret parameters such as the OIDC token) removed,
    /// key ids masked, control characters neutralised.
    fn server_text(&self, text: &str) -> String {
        match &self.signed {
            Some(signed) => server_text(
                text,
                Some(signed.credentials),
                Some(signed.request.parameters()),
            ),
            None => server_text(&self.remove_secret_params(text), None, None),
        }
    }

    /// `text` with the values of secret parameters (raw, percent-encoded once and twice)
    /// replaced; the encoded forms are built in buffers zeroed on drop.
    fn remove_secret_params(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (_, value) in self
            .params
            .iter()
            .filter(|(name, value)| is_secret_name(name) && value.len() >= 4)
        {
            let mut once = Zeroizing::new(String::with_capacity(value.len() * 3));
            percent_encode_into(&mut once, value);
            let mut twice = Zeroizing::new(String::with_capacity(once.len() * 3));
            percent_encode_into(&mut twice, &once);
            for form in [twice.as_str(), once.as_str(), value] {
                if out.contains(form) {
                    out = out.replace(form, "<redacted>");
                }
            }
        }
        out
    }
}

/// What one attempt sends.
struct Outgoing {
    body: Bytes,
    /// Signature 1.0's method and encoded parameters, to explain a `SignatureDoesNotMatch`.
    evidence: Option<(Method, Bytes)>,
}

impl StsSender {
    /// A sender to `endpoint` retrying by `retry`, with its own connection pool.
    pub(crate) fn new(endpoint: Url, retry: RetryPolicy) -> Result<Self, Error> {
        let host = endpoint.host_str().unwrap_or_default().to_string();
        Ok(Self {
            http: sts_http_client()?,
            host_products: endpoint::products_of_host(&host),
            host,
            endpoint,
            retry,
            signer: Signer::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
        })
    }

    /// The endpoint called.
    pub(crate) fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Replaces the signer (tests inject clock and nonce).
    #[cfg(test)]
    pub(crate) fn with_signer(mut self, signer: Signer) -> Self {
        self.signer = signer;
        self
    }

    /// Replaces the body cap (tests).
    #[cfg(test)]
    pub(crate) fn with_max_body_bytes(mut self, cap: usize) -> Self {
        self.max_body_bytes = cap;
        self
    }

    /// Calls `action` with `params` (besides the common parameters), and returns the JSON
    /// answer.
    ///
    /// `idempotent` says whether a failure after which the action may have run (a lost
    /// connection, a read timeout, a 5xx answer) is retried; failures showing it did not run are
    /// always retried, within the policy's attempts and the total budget.
    pub(crate) async fn call(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
        idempotent: bool,
        auth: StsAuth<'_>,
    ) -> Result<Value, Error> {
        let deadline = Instant::now() + self.total_timeout;
        let signed = match auth {
            StsAuth::Signed { credentials, guard } => {
                let request = params.iter().fold(
                    RpcRequest::new(STS_PRODUCT, STS_VERSION, action),
                    |request, (name, value)| request.param(*name, *value),
                );
                request.validate()?;
                let keys = CallKeys::of(credentials);
                self.refuse_if_compromised(guard, &keys, action)?;
                Some(SignedCall {
                    credentials,
                    guard,
                    request,
                    keys,
                })
            }
            StsAuth::Unsigned => None,
        };
        let call = StsCall {
            action,
            params,
            signed,
        };
        let retry = retry::Retry {
            policy: &self.retry,
            idempotent,
            deadline: tokio::time::Instant::from_std(deadline),
            sleep: retry::TokioSleep,
            jitter: retry::FastrandJitter,
            action,
            host: &self.host,
        };
        let call = &call;
        retry::run(&retry, |attempts| self.attempt(call, attempts, deadline)).await
    }

    /// The guard's check before sending, for STS and for every product the endpoint's host
    /// serves.
    fn refuse_if_compromised(
        &self,
        guard: &Arc<Guard>,
        keys: &CallKeys,
        action: &str,
    ) -> Result<(), Error> {
        guard.check_call(
            &keys.borrowed(),
            STS_PRODUCT,
            &self.host_products,
            STS_VERSION,
            action,
        )
    }

    /// The form body of one attempt: signed anew (fresh nonce and timestamp), or, unsigned,
    /// the common parameters and the action's, with a fresh timestamp.
    fn outgoing(&self, call: &StsCall<'_>, attempts: u32) -> Outgoing {
        match &call.signed {
            Some(SignedCall {
                credentials,
                request,
                ..
            }) => {
                let signed = self.signer.sign(request, credentials);
                tracing::trace!(
                    action = call.action,
                    host = %self.host,
                    attempt = attempts,
                    nonce = signed.nonce(),
                    "aliyun-guard: sending"
                );
                let method = signed.method();
                let body = Bytes::from(signed.into_encoded_params());
                Outgoing {
                    evidence: Some((method, body.clone())),
                    body,
                }
            }
            None => {
                let timestamp = format_timestamp(OffsetDateTime::now_utc());
                let common = [
                    ("Action", call.action),
                    ("Format", "JSON"),
                    ("Timestamp", timestamp.as_str()),
                    ("Version", STS_VERSION),
                ];
                let capacity: usize = call
                    .params
                    .iter()
                    .chain(&common)
                    .map(|(k, v)| k.len() + 3 * v.len() + 2)
                    .sum();
                // Sized once for the worst case: it never grows (leaving a copy of a token).
                let mut body = Zeroizing::new(String::with_capacity(capacity));
                for (i, (name, value)) in common.iter().chain(call.params).enumerate() {
                    if i > 0 {
                        body.push('&');
                    }
                    percent_encode_into(&mut body, name);
                    body.push('=');
                    percent_encode_into(&mut body, value);
                }
                tracing::trace!(
                    action = call.action,
                    host = %self.host,
                    attempt = attempts,
                    "aliyun-guard: sending"
                );
                Outgoing {
                    body: Bytes::copy_from_slice(body.as_bytes()),
                    evidence: None,
                }
            }
        }
    }

    async fn attempt(
        &self,
        call: &StsCall<'_>,
        attempts: u32,
        deadline: Instant,
    ) -> Result<Value, Error> {
        let out_of_time = || Error::Timeout {
            host: self.host.clone(),
            action: call.action.to_string(),
            phase: TimeoutPhase::Total,
            attempts,
            source: None,
        };
        if Instant::now() >= deadline {
            return Err(out_of_time());
        }
        let Outgoing { body, evidence } = self.outgoing(call, attempts);
        let pending = self
            .http
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static(FORM))
            .body(body)
            .send();
        let exchange = async {
            let mut response = pending.await?;
            let status = response.status();
            let request_id = response.headers().get("x-acs-request-id").cloned();
            let body = if status.is_redirection() {
                // Never followed, and its body is not read.
                let location = response
                    .headers()
                    .get(LOCATION)
                    .map(|l| format!("redirect to {}", String::from_utf8_lossy(l.as_bytes())))
                    .unwrap_or_else(|| "redirect without a location".to_string());
                Ok(Err(location))
            } else {
                read_secret_body(&mut response, self.max_body_bytes)
                    .await
                    .map(Ok)
            };
            Ok::<_, reqwest::Error>((status.as_u16(), request_id, body))
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        let (status, request_id_header, body) =
            match tokio::time::timeout_at(deadline, exchange).await {
                Err(_elapsed) => return Err(out_of_time()),
                Ok(Err(e)) => return Err(self.transport_error(e, call, attempts)),
                Ok(Ok(exchange)) => exchange,
            };
        let header_request_id = || {
            request_id_header
                .as_ref()
                .map(|v| call.server_text(&String::from_utf8_lossy(v.as_bytes())))
        };
        let body = match body {
            Ok(Ok(body)) => body,
            Ok(Err(location)) => {
                return Err(self.unexpected(
                    call,
                    attempts,
                    status,
                    ResponseFault::Redirect,
                    location.as_bytes(),
                    header_request_id(),
                ));
            }
            Err(BodyError::TooLarge) => {
                return Err(self.unexpected(
                    call,
                    attempts,
                    status,
                    ResponseFault::TooLarge {
                        limit: self.max_body_bytes,
                    },
                    &[],
                    header_request_id(),
                ));
            }
            Err(BodyError::Transport(e)) => return Err(self.transport_error(e, call, attempts)),
        };
        let decoded = response::decode(status, &body);
        let Some(signed) = &call.signed else {
            // Unsigned: no key, so no leak answer to look for.
            return match decoded {
                Decoded::Data(value) => Ok(value),
                Decoded::Error(fields) => {
                    let request_id = header_request_id();
                    Err(self.api_error(call, attempts, status, fields, request_id, None))
                }
                Decoded::Fault(fault) => {
                    let request_id = header_request_id();
                    Err(self.unexpected(call, attempts, status, fault, &body, request_id))
                }
            };
        };
        // Signed: a leak answer, in any form, marks the key (as the client does).
        let server_text = |t: &str| call.server_text(t);
        let decoded = signed.guard.record_answer(decoded, &body, || AnsweredCall {
            keys: signed.keys.borrowed(),
            product: leak_product(STS_PRODUCT, &self.host_products),
            version: STS_VERSION,
            action: call.action,
            host: &self.host,
            secure_transport: self.endpoint.scheme() == "https",
            status,
            header_request_id: header_request_id(),
            server_text: &server_text,
            deadline,
        });
        match decoded {
            Ok(Decoded::Data(value)) => Ok(value),
            Ok(Decoded::Error(fields)) => {
                let request_id = header_request_id();
                Err(self.api_error(call, attempts, status, fields, request_id, evidence))
            }
            Ok(Decoded::Fault(fault)) => {
                let request_id = header_request_id();
                Err(self.unexpected(call, attempts, status, fault, &body, request_id))
            }
            Err(recording) => Err(recording.await.into()),
        }
    }

    fn api_error(
        &self,
        call: &StsCall<'_>,
        attempts: u32,
        status: u16,
        fields: ErrorFields,
        header_request_id: Option<String>,
        evidence: Option<(Method, Bytes)>,
    ) -> Error {
        let diagnose = |code: &str, raw_message: &str| match (&call.signed, evidence) {
            (
                Some(SignedCall {
                    credentials,
                    request,
                    ..
                }),
                Some((method, encoded)),
            ) if code.eq_ignore_ascii_case("SignatureDoesNotMatch") => Some(signing::diagnose_v1(
                method,
                &encoded,
                raw_message,
                credentials,
                request.parameters(),
            )),
            _ => None,
        };
        let text = |t: &str| call.server_text(t);
        Error::Api(Box::new(fields.into_api_error(
            status,
            call.action,
            attempts,
            header_request_id,
            text,
            diagnose,
        )))
    }

    fn unexpected(
        &self,
        call: &StsCall<'_>,
        attempts: u32,
        status: u16,
        fault: ResponseFault,
        body: &[u8],
        request_id: Option<String>,
    ) -> Error {
        Error::UnexpectedResponse(Box::new(UnexpectedResponse {
            status,
            fault,
            snippet: call.server_text(&response::snippet(body, response::SNIPPET_CHARS)),
            host: self.host.clone(),
            action: call.action.to_string(),
            request_id,
            attempts,
        }))
    }

    /// Maps a reqwest error as the client does, without its URL.
    fn transport_error(&self, e: reqwest::Error, call: &StsCall<'_>, attempts: u32) -> Error {
        Error::from_reqwest(e, &self.host, call.action, attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(sts: StsEndpoint, vars: &[(&str, &str)]) -> Result<String, Error> {
        sts.resolve(&Env::from_vars(vars.iter().copied()))
            .map(|u| u.to_string())
    }

    #[test]
    fn endpoint_order() {
        let none = StsEndpoint::default();
        assert_eq!(
            resolve(none.clone(), &[]).unwrap(),
            "https://sts.aliyuncs.com/"
        );
        assert_eq!(
            resolve(none.clone(), &[(STS_REGION_VAR, "cn-Shanghai")]).unwrap(),
            "https://sts.cn-shanghai.aliyuncs.com/"
        );
        assert_eq!(
            resolve(
                none.clone(),
                &[(STS_REGION_VAR, "cn-shanghai"), (VPC_ENABLED_VAR, "TRUE")]
            )
            .unwrap(),
            "https://sts-vpc.cn-shanghai.aliyuncs.com/"
        );
        // VPC without a region: the global endpoint.
        assert_eq!(
            resolve(none.clone(), &[(VPC_ENABLED_VAR, "true")]).unwrap(),
            "https://sts.aliyuncs.com/"
        );
        // A host is HTTPS; http only when written out; the variable beats the region.
        assert_eq!(
            resolve(
                none.clone(),
                &[
                    (STS_ENDPOINT_VAR, "sts.cn-beijing.aliyuncs.com"),
                    (STS_REGION_VAR, "cn-shanghai")
                ]
            )
            .unwrap(),
            "https://sts.cn-beijing.aliyuncs.com/"
        );
        assert_eq!(
            resolve(none, &[(STS_ENDPOINT_VAR, "http://127.0.0.1:9")]).unwrap(),
            "http://127.0.0.1:9/"
        );
        // The builder's endpoint beats everything; its region beats the variable.
        let explicit = StsEndpoint {
            explicit: Some("sts.example.test".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(explicit, &[(STS_ENDPOINT_VAR, "other.test")]).unwrap(),
            "https://sts.example.test/"
        );
        let region = StsEndpoint {
            region: Some("cn-hangzhou".into()),
            vpc: Some(true),
            ..Default::default()
        };
        assert_eq!(
            resolve(region, &[(STS_REGION_VAR, "us-west-1")]).unwrap(),
            "https://sts-vpc.cn-hangzhou.aliyuncs.com/"
        );
    }

    #[test]
    fn hostile_regions_never_make_a_host() {
        for bad in [
            "evil.com/",
            "a.b",
            "-cn",
            "cn-",
            "x@y",
            "cn hangzhou",
            "",
            &"a".repeat(64),
        ] {
            let sts = StsEndpoint {
                region: Some(bad.to_string()),
                ..Default::default()
            };
            if bad.is_empty() {
                assert!(resolve(sts, &[]).is_ok());
                continue;
            }
            let err = resolve(sts, &[]).unwrap_err();
            assert!(err.to_string().contains("not a region id"), "{bad}: {err}");
        }
        let err = resolve(
            StsEndpoint::default(),
            &[(STS_ENDPOINT_VAR, "ftp://x.test")],
        )
        .unwrap_err();
        assert!(err.to_string().contains(STS_ENDPOINT_VAR), "{err}");
    }

    #[test]
    fn session_names_and_durations() {
        let env = Env::from_vars([(ROLE_SESSION_NAME_VAR, "from-env")]);
        assert_eq!(
            session_name(Some("given.name@x"), &env).unwrap(),
            "given.name@x"
        );
        assert_eq!(session_name(None, &env).unwrap(), "from-env");
        assert!(
            session_name(None, &Env::from_vars::<&str, &str>([]))
                .unwrap()
                .starts_with("aliyun-guard-")
        );
        for bad in ["a", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(session_name(Some(bad), &env).is_err(), "{bad}");
        }
        let err =
            session_name(None, &Env::from_vars([(ROLE_SESSION_NAME_VAR, "x y")])).unwrap_err();
        assert!(err.to_string().contains(ROLE_SESSION_NAME_VAR));
        assert!(validate_duration(899).is_err());
        assert!(validate_duration(43_201).is_err());
        assert_eq!(validate_duration(900).unwrap(), 900);
        assert!(validate_role_arn("acs:ram::123:role/x", "r").is_ok());
        assert!(validate_role_arn("arn:aws:iam::1:role/x", "r").is_err());
    }

    #[test]
    fn parses_sts_credentials_without_echoing_values() {
        let answer = json!({"RequestId": "R1", "Credentials": {
            "AccessKeyId": "STS.NTempKeyId00001", "AccessKeySecret": "SECRET-VALUE",
            "SecurityToken": "TOKEN-VALUE", "Expiration": "2030-01-02T03:04:05Z"}});
        let creds = parse_credentials(&answer, "AssumeRole", "ram_role_arn").unwrap();
        assert_eq!(creds.access_key_id(), "STS.NTempKeyId00001");
        assert_eq!(creds.security_token(), Some("TOKEN-VALUE"));
        assert_eq!(creds.provider_name(), "ram_role_arn");
        assert_eq!(
            creds.expiry().unwrap(),
            time::macros::datetime!(2030-01-02 03:04:05 UTC)
        );
        for broken in [
            json!({"Credentials": {"AccessKeyId": "K", "AccessKeySecret": "SECRET-VALUE",
                "SecurityToken": "TOKEN-VALUE", "Expiration": "tomorrow SECRET-VALUE"}}),
            json!({"Credentials": {"AccessKeyId": "K", "AccessKeySecret": "SECRET-VALUE",
                "Expiration": "2030-01-02T03:04:05Z"}}),
            json!({"Credentials": "SECRET-VALUE"}),
            json!({"RequestId": "SECRET VALUE"}),
        ] {
            let err = parse_credentials(&broken, "AssumeRole", "ram_role_arn").unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains("SECRET") && !shown.contains("TOKEN-VALUE"),
                "{shown}"
            );
            assert!(matches!(
                err,
                Error::Credentials {
                    kind: CredentialsErrorKind::Unavailable,
                    ..
                }
            ));
        }
    }
}

#[cfg(test)]
mod sender_tests {
    use super::*;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn sender(server: &MockServer) -> StsSender {
        let url = endpoint::parse_explicit(&server.uri()).unwrap();
        StsSender::new(url, RetryPolicy::new(3, Duration::from_millis(5))).unwrap()
    }

    fn form(request: &wiremock::Request) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&request.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn param(request: &wiremock::Request, name: &str) -> Option<String> {
        form(request)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    #[tokio::test]
    async fn every_attempt_is_signed_anew_and_verifies() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(ResponseTemplate::new(503).set_body_json(serde_json::json!({
                "Code": "ServiceUnavailable", "Message": "busy"
            })))
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": 1})))
            .mount(&server)
            .await;
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let sender = sender(&server).with_signer(Signer::new().with_nonce(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            format!("nonce-{n}")
        }));
        let guard = Arc::new(Guard::new());
        let creds = Credentials::new("LTAI5tSenderKeyId00wxyz", "sender-secret-value")
            .with_security_token("sender-token-value");
        let auth = StsAuth::Signed {
            credentials: &creds,
            guard: &guard,
        };
        let answer = sender
            .call(
                "AssumeRole",
                &[("RoleArn", "acs:ram::1:role/r")],
                false,
                auth,
            )
            .await
            .unwrap();
        assert_eq!(answer, serde_json::json!({"ok": 1}));
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 3);
        for (i, request) in requests.iter().enumerate() {
            assert_eq!(
                param(request, "SignatureNonce").as_deref(),
                Some(format!("nonce-{i}").as_str())
            );
            assert_eq!(
                param(request, "SecurityToken").as_deref(),
                Some("sender-token-value")
            );
            // The signature verifies over exactly what was sent.
            let params = form(request);
            let unsigned: Vec<(&str, &str)> = params
                .iter()
                .filter(|(k, _)| k != "Signature")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let expected = signing::sign_params(Method::Post, &unsigned, "sender-secret-value");
            assert_eq!(
                param(request, "Signature").as_deref(),
                Some(expected.signature.as_str())
            );
        }
    }

    #[tokio::test]
    async fn oversize_bodies_are_refused_and_not_retried() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(ResponseTemplate::new(503).set_body_string("x".repeat(2048)))
            .mount(&server)
            .await;
        let sender = sender(&server).with_max_body_bytes(1024);
        let err = sender
            .call("AssumeRoleWithOIDC", &[], true, StsAuth::Unsigned)
            .await
            .unwrap_err();
        let Error::UnexpectedResponse(unexpected) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(unexpected.fault, ResponseFault::TooLarge { limit: 1024 });
        assert!(unexpected.snippet.is_empty());
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn redirects_are_refused_not_followed() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(
                ResponseTemplate::new(307).insert_header("location", "http://elsewhere.test/"),
            )
            .mount(&server)
            .await;
        let err = sender(&server)
            .call("AssumeRoleWithOIDC", &[], true, StsAuth::Unsigned)
            .await
            .unwrap_err();
        let Error::UnexpectedResponse(unexpected) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(unexpected.fault, ResponseFault::Redirect);
        assert!(unexpected.snippet.contains("elsewhere.test"));
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unsigned_errors_never_echo_a_secret_parameter_in_any_encoding() {
        let token = "eyJ+token/with=odd&chars";
        let mut once = String::new();
        percent_encode_into(&mut once, token);
        let mut twice = String::new();
        percent_encode_into(&mut twice, &once);
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "Code": "InvalidParameter",
                "Message": format!("raw {token} once {once} twice {twice}"),
                "RequestId": "R-1",
            })))
            .mount(&server)
            .await;
        let err = sender(&server)
            .call(
                "AssumeRoleWithOIDC",
                &[("OIDCToken", token), ("RoleArn", "acs:ram::1:role/r")],
                true,
                StsAuth::Unsigned,
            )
            .await
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        for form in [token, once.as_str(), twice.as_str(), "token/with"] {
            assert!(!shown.contains(form), "{form} in {shown}");
        }
        assert_eq!(err.request_id(), Some("R-1"));
        // Sent as a form body with the common parameters, unsigned.
        let sent = &server.received_requests().await.unwrap()[0];
        assert_eq!(param(sent, "OIDCToken").as_deref(), Some(token));
        assert_eq!(param(sent, "Action").as_deref(), Some("AssumeRoleWithOIDC"));
        assert_eq!(param(sent, "Format").as_deref(), Some("JSON"));
        assert_eq!(param(sent, "Version").as_deref(), Some(STS_VERSION));
        assert_eq!(param(sent, "Signature"), None);
        assert_eq!(
            sent.headers.get("content-type").unwrap(),
            "application/x-www-form-urlencoded"
        );
    }
}
