//! The client: signs with [`crate::signing`], passes the [`crate::guard`], sends with reqwest.

mod probe;
mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

pub use probe::{PROBE_PRODUCT as PROBE_CALL, ProbeOutcome};
pub use retry::RetryPolicy;

use crate::credentials::{Credentials, CredentialsProvider, DefaultChain};
use crate::endpoint;
use crate::error::{ApiError, Error, ResponseFault, TimeoutPhase, UnexpectedResponse};
use crate::guard::{self, EvidenceSource, Guard, KeyFingerprint, LeakContext, Verdict};
use crate::redact::redact;
use crate::request::RpcRequest;
use crate::response::{self, Decoded, ErrorFields};
use crate::signing::{self, Method, Signer};

/// Default connect timeout, as the official SDKs.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default read timeout, as the official SDKs.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default budget of one call, retries and waits included.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on a response body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The `User-Agent` sent.
pub const USER_AGENT_VALUE: &str = concat!("aliyun-guard/", env!("CARGO_PKG_VERSION"), " (Rust)");

const FORM: &str = "application/x-www-form-urlencoded";
const SNIPPET_CHARS: usize = 200;

/// Builds a [`Client`].
#[derive(Default)]
pub struct ClientBuilder {
    provider: Option<Arc<dyn CredentialsProvider>>,
    endpoint: Option<String>,
    region: Option<String>,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    total_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    max_body_bytes: Option<usize>,
    guard: Option<Arc<Guard>>,
    signer: Option<Signer>,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("credentials", &self.provider)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Uses these credentials.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.provider = Some(Arc::new(credentials));
        self
    }

    /// Asks `provider` for credentials (default: [`DefaultChain`]).
    pub fn credentials_provider(mut self, provider: impl CredentialsProvider + 'static) -> Self {
        self.provider = Some(Arc::new(provider));
        self
    }

    /// Sends every request to this endpoint (a URL, or a host taken as HTTPS), unless the request
    /// names its own. Plain `http://` is used only when given here explicitly.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The region of requests that do not name one.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Read timeout: the longest wait for the next bytes of a response (default 10 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Budget of one call, retries and waits included (default 60 s).
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// Retry policy (default: 3 attempts).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Cap on response bodies (default 8 MiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// Shares a guard (default: a new in-memory guard with the default policy).
    pub fn guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Replaces the signer (to inject clock and nonce in tests).
    pub fn signer(mut self, signer: Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Uses a reqwest client built elsewhere (its own timeouts and TLS settings then apply; the
    /// total timeout still does).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the client: resolves credentials, checks the endpoint, builds the connection pool.
    pub fn build(self) -> Result<Client, Error> {
        let provider = self
            .provider
            .unwrap_or_else(|| Arc::new(DefaultChain::new()));
        let endpoint = self
            .endpoint
            .as_deref()
            .map(endpoint::parse_explicit)
            .transpose()?;
        let read_timeout = self.read_timeout.unwrap_or(DEFAULT_READ_TIMEOUT);
        let custom_http = self.http.is_some();
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
                .read_timeout(read_timeout)
                .pool_idle_timeout(Duration::from_secs(60))
                .user_agent(USER_AGENT_VALUE)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?,
        };
        let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            return Err(Error::Config("max_body_bytes must be above zero".into()));
        }
        let total_timeout = self.total_timeout.unwrap_or(DEFAULT_TOTAL_TIMEOUT);
        if total_timeout.is_zero() {
            return Err(Error::Config("total_timeout must be above zero".into()));
        }
        Ok(Client {
            inner: Arc::new(Inner {
                provider,
                http,
                custom_http,
                endpoint,
                region: self.region,
                total_timeout,
                retry: self.retry.unwrap_or_default(),
                max_body_bytes,
                guard: self.guard.unwrap_or_default(),
                signer: self.signer.unwrap_or_default(),
            }),
        })
    }
}

struct Inner {
    provider: Arc<dyn CredentialsProvider>,
    http: reqwest::Client,
    custom_http: bool,
    endpoint: Option<Url>,
    region: Option<String>,
    total_timeout: Duration,
    retry: RetryPolicy,
    max_body_bytes: usize,
    guard: Arc<Guard>,
    signer: Signer,
}

/// An Alibaba Cloud RPC client. Cheap to clone (one shared connection pool and guard).
///
/// ```no_run
/// # async fn run() -> Result<(), aliyun_guard::Error> {
/// use aliyun_guard::{Client, RpcRequest};
/// let client = Client::builder().region("cn-hangzhou").build()?; // credentials: default chain
/// let regions = client
///     .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions"))
///     .await?;
/// println!("{regions}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("credentials", &self.inner.provider)
            .field("endpoint", &self.inner.endpoint.as_ref().map(Url::as_str))
            .field("region", &self.inner.region)
            .field("retry", &self.inner.retry)
            .field("guard", &self.inner.guard)
            .finish()
    }
}

/// Whether a call passes the guard's check before sending.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Enforce,
    Bypass,
}

struct Ctx<'a> {
    request: &'a RpcRequest,
    host: &'a str,
    attempts: u32,
    credentials: &'a Credentials,
    fingerprint: KeyFingerprint,
    masked_key_id: &'a str,
}

impl Client {
    /// Starts building a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The guard this client goes through.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.inner.guard
    }

    /// The credentials the next call would use, from this client's provider.
    pub async fn current_credentials(&self) -> Result<Credentials, Error> {
        let credentials = self.inner.provider.provide_credentials().await?;
        credentials.validate()?;
        Ok(credentials)
    }

    /// Calls the API and returns its JSON answer.
    ///
    /// Errors: [`Error::CompromisedKey`] when the key is under leak protection (answered by the
    /// server, or refused before sending), [`Error::Api`] for error answers, and transport,
    /// timeout and decoding errors as typed variants.
    pub async fn call(&self, request: &RpcRequest) -> Result<Value, Error> {
        self.execute(request, Check::Enforce).await
    }

    /// Calls the API and deserialises the answer into `T`.
    pub async fn call_as<T: DeserializeOwned>(&self, request: &RpcRequest) -> Result<T, Error> {
        let value = self.call(request).await?;
        let request_id = value
            .get("RequestId")
            .and_then(Value::as_str)
            .map(str::to_string);
        serde_json::from_value(value).map_err(|source| Error::Deserialize {
            action: request.action().to_string(),
            request_id,
            source,
        })
    }

    pub(crate) async fn execute(&self, request: &RpcRequest, check: Check) -> Result<Value, Error> {
        let inner = &*self.inner;
        request.validate()?;
        let credentials = self.current_credentials().await?;
        let fingerprint = KeyFingerprint::of(credentials.access_key_id());
        let masked_key_id = credentials.masked_key_id();
        if check == Check::Enforce {
            inner.guard.refresh_if_due();
            if let Verdict::Refuse { on_table } = inner.guard.verdict(
                &fingerprint,
                request.product(),
                request.version(),
                request.action(),
            ) && let Some(refusal) = inner.guard.refusal(
                &fingerprint,
                on_table,
                request.product(),
                request.version(),
                request.action(),
            ) {
                tracing::warn!(
                    key = %masked_key_id,
                    product = request.product(),
                    action = request.action(),
                    "aliyun-guard: refused a call before sending: the key is compromised"
                );
                return Err(refusal.into());
            }
        }
        let region = request.region_id().or(inner.region.as_deref());
        // The client's endpoint is borrowed; only a per-request or derived one is built.
        let url: std::borrow::Cow<'_, Url> = match request.endpoint_override() {
            Some(explicit) => std::borrow::Cow::Owned(endpoint::parse_explicit(explicit)?),
            None => match &inner.endpoint {
                Some(url) => std::borrow::Cow::Borrowed(url),
                None => {
                    std::borrow::Cow::Owned(endpoint::resolve(request.product(), region, None)?)
                }
            },
        };
        let host = url.host_str().unwrap_or_default();
        let deadline = Instant::now() + inner.total_timeout;
        let mut ctx = Ctx {
            request,
            host,
            attempts: 0,
            credentials: &credentials,
            fingerprint,
            masked_key_id: &masked_key_id,
        };
        loop {
            ctx.attempts += 1;
            let result = self.attempt(&url, &ctx, deadline).await;
            let error = match result {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if !error.is_retryable() || ctx.attempts >= inner.retry.max_attempts {
                return Err(error);
            }
            let throttled = matches!(&error, Error::Api(e) if e.status < 500);
            let wait = inner.retry.delay(ctx.attempts, throttled);
            if Instant::now() + wait >= deadline {
                tracing::debug!(
                    action = request.action(),
                    attempts = ctx.attempts,
                    "aliyun-guard: no time left in the budget for another attempt"
                );
                return Err(error);
            }
            tracing::debug!(
                action = request.action(),
                host = %ctx.host,
                attempt = ctx.attempts,
                wait_ms = wait.as_millis() as u64,
                error = %error,
                "aliyun-guard: retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, url: &Url, ctx: &Ctx<'_>, deadline: Instant) -> Result<Value, Error> {
        let inner = &*self.inner;
        let out_of_time = || Error::Timeout {
            host: ctx.host.to_string(),
            action: ctx.request.action().to_string(),
            phase: TimeoutPhase::Total,
            attempts: ctx.attempts,
            source: None,
        };
        if Instant::now() >= deadline {
            return Err(out_of_time());
        }
        // Signed anew for every attempt: fresh nonce and timestamp. One buffer holds the body
        // (or query) and, if the server disputes the signature, is kept to rebuild the string
        // to sign; the rest of the signed request is dropped before any await.
        let (method, encoded) = {
            let signed = inner.signer.sign_with_default_region(
                ctx.request,
                ctx.credentials,
                inner.region.as_deref(),
            );
            tracing::trace!(
                action = ctx.request.action(),
                host = %ctx.host,
                attempt = ctx.attempts,
                nonce = signed.nonce(),
                "aliyun-guard: sending"
            );
            (signed.method(), Bytes::from(signed.into_encoded_params()))
        };
        let builder = match method {
            Method::Get => {
                let mut url = url.clone();
                url.set_query(Some(std::str::from_utf8(&encoded).unwrap_or_default()));
                inner.http.get(url)
            }
            Method::Post => inner
                .http
                .post(url.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static(FORM))
                .body(encoded.clone()),
        };
        // The pooled client built here sets the User-Agent itself; a caller's client does not.
        let builder = if inner.custom_http {
            builder.header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
        } else {
            builder
        };
        // Sending and reading stay within the call's total budget: one inline timer around
        // both (the connect and read timeouts of the HTTP client apply inside it). The request
        // is built before the timer so that the future holds only reqwest's small `Pending`.
        let pending = builder.send();
        let exchange = async {
            let mut response = pending.await?;
            let status = response.status().as_u16();
            let request_id = response.headers().get("x-acs-request-id").cloned();
            let body = read_capped(&mut response, inner.max_body_bytes).await;
            Ok::<_, reqwest::Error>((status, request_id, body))
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        let (status, request_id_header, body) =
            match tokio::time::timeout_at(deadline, exchange).await {
                Err(_elapsed) => return Err(out_of_time()),
                Ok(Err(e)) => return Err(self.transport_error(e, ctx)),
                Ok(Ok(exchange)) => exchange,
            };
        // Kept as the header value (a cheap clone); turned into a String only for errors.
        let header_request_id = || {
            request_id_header
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let body = match body {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return Err(self.unexpected(
                    ctx,
                    status,
                    ResponseFault::TooLarge {
                        limit: inner.max_body_bytes,
                    },
                    &[],
                    header_request_id(),
                ));
            }
            Err(BodyError::Transport(e)) => return Err(self.transport_error(e, ctx)),
        };
        let leak = match response::decode(status, &body) {
            Decoded::Data(value) if !guard::value_is_leak(&value) => return Ok(value),
            Decoded::Data(value) => ErrorFields::from_json(&value).unwrap_or_default(),
            Decoded::Error(fields) if guard::fields_are_leak(&fields) => fields,
            Decoded::Error(fields) => {
                let error =
                    self.api_error(ctx, status, fields, header_request_id(), method, &encoded);
                return Err(error);
            }
            Decoded::Fault(fault) => match guard::detect_body(&body) {
                Some(fields) => fields,
                None => {
                    return Err(self.unexpected(ctx, status, fault, &body, header_request_id()));
                }
            },
        };
        // The leak answer is rare: its future is boxed so that it does not enlarge the future
        // of every call.
        Err(Box::pin(self.on_leak(ctx, url, deadline, status, leak, header_request_id())).await)
    }

    async fn on_leak(
        &self,
        ctx: &Ctx<'_>,
        url: &Url,
        deadline: tokio::time::Instant,
        status: u16,
        fields: ErrorFields,
        header_request_id: Option<String>,
    ) -> Error {
        let inner = &*self.inner;
        let (error, _newly) = inner.guard.record_leak(LeakContext {
            key: ctx.fingerprint,
            masked_key_id: ctx.masked_key_id,
            product: ctx.request.product(),
            version: ctx.request.version(),
            action: ctx.request.action(),
            status: Some(status),
            request_id: fields.request_id.or(header_request_id),
            host_id: fields.host_id,
            server_code: fields.code.map(|c| redact(c.trim(), ctx.credentials)),
            server_message: fields.message.map(|m| redact(&m, ctx.credentials)),
            source: EvidenceSource::ServerAnswer,
            host: ctx.host,
            secure_transport: url.scheme() == "https",
        });
        // Within the call's budget; failures are kept in the guard's store health.
        inner.guard.persist_within(deadline).await;
        error.into()
    }

    fn api_error(
        &self,
        ctx: &Ctx<'_>,
        status: u16,
        fields: ErrorFields,
        header_request_id: Option<String>,
        method: Method,
        encoded: &[u8],
    ) -> Error {
        let creds = ctx.credentials;
        let code = fields.code.unwrap_or_else(|| "Unknown".to_string());
        let raw_message = fields.message.unwrap_or_default();
        let signature_diagnosis = code.eq_ignore_ascii_case("SignatureDoesNotMatch").then(|| {
            match signing::server_string_to_sign(&raw_message) {
                Some(theirs) => {
                    let ours = signing::string_to_sign_of_encoded(
                        method,
                        std::str::from_utf8(encoded).unwrap_or_default(),
                    );
                    signing::diagnose(&ours, theirs, creds)
                }
                None => crate::error::SignatureDiagnosis::Unavailable,
            }
        });
        Error::Api(Box::new(ApiError {
            status,
            code: redact(code.trim(), creds),
            message: redact(&raw_message, creds),
            request_id: fields.request_id.or(header_request_id),
            host_id: fields.host_id,
            recommend: fields.recommend,
            action: ctx.request.action().to_string(),
            attempts: ctx.attempts,
            signature_diagnosis,
        }))
    }

    fn unexpected(
        &self,
        ctx: &Ctx<'_>,
        status: u16,
        fault: ResponseFault,
        body: &[u8],
        request_id: Option<String>,
    ) -> Error {
        Error::UnexpectedResponse(Box::new(UnexpectedResponse {
            status,
            fault,
            snippet: redact(&response::snippet(body, SNIPPET_CHARS), ctx.credentials),
            host: ctx.host.to_string(),
            action: ctx.request.action().to_string(),
            request_id,
            attempts: ctx.attempts,
        }))
    }

    fn transport_error(&self, e: reqwest::Error, ctx: &Ctx<'_>) -> Error {
        // A GET URL carries the signature and any security token: never keep it.
        let e = e.without_url();
        let host = ctx.host.to_string();
        let action = ctx.request.action().to_string();
        let attempts = ctx.attempts;
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
}

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads a body, refusing more than `cap` bytes (checked against `Content-Length` first).
///
/// Reads chunk by chunk through `&mut Response`, which keeps this future small (it is part of
/// every call's future), and returns a body that arrives in one chunk, the usual case, without
/// copying it.
async fn read_capped(response: &mut reqwest::Response, cap: usize) -> Result<Bytes, BodyError> {
    let declared = response.content_length();
    if declared.is_some_and(|len| len > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    let first = match response.chunk().await.map_err(BodyError::Transport)? {
        Some(chunk) if chunk.len() > cap => return Err(BodyError::TooLarge),
        Some(chunk) => chunk,
        None => return Ok(Bytes::new()),
    };
    let Some(second) = response.chunk().await.map_err(BodyError::Transport)? else {
        return Ok(first);
    };
    // More than one chunk: gather them, refusing the one that crosses the cap. A declared
    // length (enforced by HTTP/1.1 and HTTP/2 themselves) sizes the buffer.
    let expected = declared.map_or(first.len() + second.len(), |len| len as usize);
    let mut body = Vec::with_capacity(expected.min(cap));
    let mut next = Some(second);
    body.extend_from_slice(&first);
    while let Some(chunk) = next {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
        next = response.chunk().await.map_err(BodyError::Transport)?;
    }
    Ok(Bytes::from(body))
}
