//! The client: signs with [`crate::signing`], passes the [`crate::guard`], sends with reqwest.

mod probe;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderValue, USER_AGENT};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

pub use crate::retry::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_READ_TIMEOUT, DEFAULT_TOTAL_TIMEOUT,
    RetryPolicy, UNLIMITED, USER_AGENT_VALUE,
};
pub use probe::{PROBE_PRODUCT as PROBE_CALL, ProbeOutcome};

use crate::credentials::{
    Credentials, CredentialsCache, CredentialsProvider, DefaultChain, Resolved,
};
use crate::endpoint;
use crate::error::{Error, ResponseFault, TimeoutPhase, UnexpectedResponse};
use crate::guard::{AnsweredCall, CallKeys, Guard, KeyFingerprint, leak_product};
use crate::redact::server_text;
use crate::request::RpcRequest;
use crate::request::roa::RoaRequest;
use crate::response::{self, Decoded, ErrorFields};
use crate::retry;
use crate::signing::{self, Evidence, Instructions, SignatureVersion, Signer};

/// The response header that carries Alibaba's request id, looked up without parsing a name.
const X_ACS_REQUEST_ID: reqwest::header::HeaderName =
    reqwest::header::HeaderName::from_static("x-acs-request-id");

/// A timeout for reqwest, or `None` when it means "no limit" (reqwest adds timeouts to the clock
/// and would overflow on `Duration::MAX`).
fn limited(timeout: Duration) -> Option<Duration> {
    (timeout < UNLIMITED).then_some(timeout)
}

/// The deadline `budget` from now; a budget of [`UNLIMITED`] or more ends [`UNLIMITED`] from now.
fn deadline_after(now: Instant, budget: Duration) -> Instant {
    now.checked_add(budget.min(UNLIMITED)).unwrap_or(now)
}

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use aliyun_guard::{Client, Credentials, RetryPolicy};
///
/// let client = Client::builder()
///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
///     .region("cn-hangzhou")
///     .total_timeout(Duration::from_secs(30))
///     .retry(RetryPolicy::new(4, Duration::from_millis(100)))
///     .build()?;
/// assert_eq!(client.default_region(), Some("cn-hangzhou"));
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Default)]
pub struct ClientBuilder {
    provider: Option<CredentialsCache>,
    endpoint: Option<String>,
    region: Option<String>,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    total_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    max_body_bytes: Option<usize>,
    guard: Option<Arc<Guard>>,
    signer: Option<Signer>,
    signature: Option<SignatureVersion>,
    http: Option<reqwest::ClientBuilder>,
    chain_region: Option<String>,
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
    /// Uses these credentials (a provider that always answers them).
    ///
    /// ```
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .region("cn-hangzhou")
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.chain_region = None;
        self.provider = Some(CredentialsCache::new(credentials));
        self
    }

    /// Asks `provider` for credentials (default: [`DefaultChain`]), through a
    /// [`CredentialsCache`] with the default settings: every attempt asks the cache, which
    /// refreshes values ahead of their expiry.
    ///
    /// ```
    /// use aliyun_guard::Client;
    /// use aliyun_guard::credentials::{EnvironmentProvider, Env};
    ///
    /// // Only the ALIBABA_CLOUD_ACCESS_KEY_* variables, no other source.
    /// let client = Client::builder()
    ///     .credentials_provider(EnvironmentProvider::new(Env::process()))
    ///     .region("cn-hangzhou")
    ///     .build()?;
    /// # drop(client);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn credentials_provider(mut self, provider: impl CredentialsProvider + 'static) -> Self {
        self.chain_region = None;
        self.provider = Some(CredentialsCache::new(provider));
        self
    }

    /// Uses a configured [`CredentialsCache`] (its refresh margin, clock, backoff), which may be
    /// shared with other clients.
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_guard::{Client, Credentials};
    /// use aliyun_guard::credentials::CredentialsCache;
    ///
    /// let cache = CredentialsCache::builder(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .refresh_before(Duration::from_secs(300))
    ///     .build();
    /// let client = Client::builder().credentials_cache(cache).region("cn-hangzhou").build()?;
    /// # drop(client);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn credentials_cache(mut self, cache: CredentialsCache) -> Self {
        self.chain_region = None;
        self.provider = Some(cache);
        self
    }

    /// Sends every request to this endpoint (a URL, or a host taken as HTTPS), unless the request
    /// names its own. Plain `http://` is used only when given here explicitly.
    ///
    /// ```
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .endpoint("https://ecs-vpc.cn-hangzhou.aliyuncs.com")
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Takes credentials from this default chain (for instance one built with
    /// [`DefaultChain::with_env`] or without some slots), and, unless [`ClientBuilder::region`]
    /// names one, its default region (`ALIBABA_CLOUD_REGION_ID`, else the CLI profile's
    /// `region_id`). Without any credentials setting the client uses `DefaultChain::new()` the
    /// same way.
    ///
    /// ```
    /// use aliyun_guard::Client;
    /// use aliyun_guard::credentials::{DefaultChain, Env};
    /// let chain = DefaultChain::with_env(Env::from_vars([("ALIBABA_CLOUD_REGION_ID", "cn-beijing")]));
    /// let client = Client::builder().default_chain(chain).build().unwrap();
    /// assert_eq!(client.default_region(), Some("cn-beijing"));
    /// ```
    pub fn default_chain(mut self, chain: DefaultChain) -> Self {
        self.chain_region = chain.region();
        self.provider = Some(CredentialsCache::new(chain));
        self
    }

    /// The region of requests that do not name one.
    ///
    /// ```
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .region("ap-southeast-1")
    ///     .build()?;
    /// assert_eq!(client.default_region(), Some("ap-southeast-1"));
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Connect timeout (default 5 s; [`UNLIMITED`] or more, such as `Duration::MAX`: no limit).
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .connect_timeout(Duration::from_secs(2))
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Read timeout: the longest wait for the next bytes of a response (default 10 s;
    /// [`UNLIMITED`] or more, such as `Duration::MAX`: no limit).
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .read_timeout(Duration::from_secs(30))
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Budget of one call, retries and waits included (default 60 s; [`UNLIMITED`] or more, such
    /// as `Duration::MAX`: no limit). [`RpcRequest::timeout`] overrides it per request.
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .total_timeout(Duration::from_secs(120))
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// Retry policy (default: 3 attempts).
    ///
    /// ```
    /// use aliyun_guard::RetryPolicy;
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .retry(RetryPolicy::none())
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Cap on response bodies (default 8 MiB).
    ///
    /// ```
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .max_body_bytes(1024 * 1024)
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// Shares a guard (default: a new in-memory guard with the default policy).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aliyun_guard::{Client, Credentials, Guard};
    ///
    /// let guard = Arc::new(Guard::new());
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .guard(Arc::clone(&guard))
    ///     .build()?;
    /// assert!(Arc::ptr_eq(client.guard(), &guard));
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Replaces the signer (to inject clock and nonce in tests).
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .signer(Signer::new().with_nonce(|| "fixed-nonce-for-a-test".to_string()))
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn signer(mut self, signer: Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Signs RPC calls with `version` (default [`SignatureVersion::V1`]); a request may choose
    /// its own ([`RpcRequest::signature`]). ROA calls are always signed with V3.
    ///
    /// Signature 1.0 stays the default: it is what the crate's golden vectors pin byte for byte,
    /// it costs less per call, and every RPC API accepts it.
    ///
    /// ```
    /// use aliyun_guard::SignatureVersion;
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .signature(SignatureVersion::V3)
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn signature(mut self, version: SignatureVersion) -> Self {
        self.signature = Some(version);
        self
    }

    /// Builds the HTTP client from the caller's reqwest builder (for TLS roots, proxies, local
    /// addresses...). Its own timeouts apply unless [`ClientBuilder::connect_timeout`] or
    /// [`ClientBuilder::read_timeout`] is set here; the total timeout always does.
    ///
    /// Redirects are turned off whatever the builder says: a signed request (signature, key id,
    /// security token) is never re-sent to another host. A redirect answer is an
    /// [`Error::UnexpectedResponse`] with [`ResponseFault::Redirect`]. Requests without a
    /// `User-Agent` header get this crate's ([`USER_AGENT_VALUE`]).
    ///
    /// The total budget is timed by a timer of the client's own from the start of each call,
    /// since the builder's timeouts are unknown here; with [`ClientBuilder::read_timeout`] set,
    /// only once the deadline is nearer than that timeout (as with the client's own pool).
    ///
    /// ```
    /// let http = reqwest::Client::builder().https_only(true);
    /// let client = aliyun_guard::Client::builder()
    ///     .credentials(aliyun_guard::Credentials::new("id", "secret"))
    ///     .http_client(http)
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn http_client(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.http = Some(builder);
        self
    }

    /// Builds the client: resolves credentials, checks the endpoint, builds the connection pool.
    ///
    /// ```
    /// use aliyun_guard::{Client, Error};
    ///
    /// // A hostile endpoint string is refused when the client is built.
    /// let built = Client::builder().endpoint("https://user@evil.example/?x").build();
    /// assert!(matches!(built, Err(Error::InvalidEndpoint { .. })));
    /// ```
    pub fn build(self) -> Result<Client, Error> {
        // With the default chain, the default region comes from `ALIBABA_CLOUD_REGION_ID` or the
        // CLI profile's `region_id` when the builder names none.
        let (provider, region) = match self.provider {
            Some(provider) => (provider, self.region.or(self.chain_region)),
            None => {
                let chain = DefaultChain::new();
                let region = self.region.or_else(|| chain.region());
                (CredentialsCache::new(chain), region)
            }
        };
        let endpoint = self
            .endpoint
            .as_deref()
            .map(endpoint::parse_explicit)
            .transpose()?;
        let custom_http = self.http.is_some();
        let (http, connect_timeout, read_timeout) = match self.http {
            Some(http) => (http, self.connect_timeout, self.read_timeout),
            None => (
                reqwest::Client::builder()
                    .pool_idle_timeout(Duration::from_secs(60))
                    .user_agent(USER_AGENT_VALUE),
                Some(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)),
                Some(self.read_timeout.unwrap_or(DEFAULT_READ_TIMEOUT)),
            ),
        };
        // Never follow a redirect: it would re-send the signed request elsewhere.
        let mut http = http.redirect(reqwest::redirect::Policy::none());
        if let Some(timeout) = connect_timeout.and_then(limited) {
            http = http.connect_timeout(timeout);
        }
        // reqwest's read timeout, when set here, also bounds every wait of an exchange: see
        // `Inner::woken_within`.
        let woken_within = read_timeout.and_then(limited);
        if let Some(timeout) = woken_within {
            http = http.read_timeout(timeout);
        }
        let http = http
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let endpoint_products = endpoint
            .as_ref()
            .and_then(Url::host_str)
            .map(endpoint::products_of_host)
            .unwrap_or_default();
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
                endpoint_products,
                region,
                total_timeout,
                woken_within,
                retry: self.retry.unwrap_or_default(),
                max_body_bytes,
                guard: self.guard.unwrap_or_default(),
                signer: self.signer.unwrap_or_default(),
                signature: self.signature.unwrap_or_default(),
            }),
        })
    }
}

struct Inner {
    provider: CredentialsCache,
    http: reqwest::Client,
    custom_http: bool,
    endpoint: Option<Url>,
    /// The products the client's endpoint serves, from its host name.
    endpoint_products: Vec<String>,
    region: Option<String>,
    total_timeout: Duration,
    /// The read timeout this client gave reqwest, if it gave one. reqwest starts it when a
    /// request is sent (covering connecting, sending and waiting for the answer's head) and
    /// starts it anew for every body frame: a pending exchange is therefore polled again
    /// (answered, or failed with a timeout) within this time. While the call's deadline is
    /// further away than that, the exchange needs no timer of its own (see [`WithinBudget`]).
    /// `None` with a caller's HTTP client (whose timeouts are unknown) or no read timeout.
    woken_within: Option<Duration>,
    retry: RetryPolicy,
    max_body_bytes: usize,
    guard: Arc<Guard>,
    signer: Signer,
    signature: SignatureVersion,
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

/// The call a client makes: RPC or ROA. Everything past signing treats both alike.
#[derive(Clone, Copy)]
pub(crate) enum Call<'a> {
    Rpc(&'a RpcRequest),
    Roa(&'a RoaRequest),
}

impl<'a> Call<'a> {
    fn product(self) -> &'a str {
        match self {
            Call::Rpc(r) => r.product(),
            Call::Roa(r) => r.product(),
        }
    }
    fn version(self) -> &'a str {
        match self {
            Call::Rpc(r) => r.version(),
            Call::Roa(r) => r.version(),
        }
    }
    /// The action: the RPC action, or the ROA API's name (`x-acs-action`).
    fn action(self) -> &'a str {
        match self {
            Call::Rpc(r) => r.action(),
            Call::Roa(r) => r.action(),
        }
    }
    fn is_idempotent(self) -> bool {
        match self {
            Call::Rpc(r) => r.is_idempotent(),
            Call::Roa(r) => r.is_idempotent(),
        }
    }
    fn get_retry(self) -> Option<&'a RetryPolicy> {
        match self {
            Call::Rpc(r) => r.get_retry(),
            Call::Roa(r) => r.get_retry(),
        }
    }
    fn get_timeout(self) -> Option<Duration> {
        match self {
            Call::Rpc(r) => r.get_timeout(),
            Call::Roa(r) => r.get_timeout(),
        }
    }
    fn get_endpoint(self) -> Option<&'a str> {
        match self {
            Call::Rpc(r) => r.get_endpoint(),
            Call::Roa(r) => r.get_endpoint(),
        }
    }
    fn get_region(self) -> Option<&'a str> {
        match self {
            Call::Rpc(r) => r.get_region(),
            Call::Roa(r) => r.get_region(),
        }
    }
    /// The parameters whose secret values are redacted from server text.
    fn parameters(self) -> &'a std::collections::BTreeMap<String, String> {
        match self {
            Call::Rpc(r) => r.parameters(),
            Call::Roa(r) => r.query_parameters(),
        }
    }
    fn validate(self) -> Result<(), Error> {
        match self {
            Call::Rpc(r) => r.validate(),
            Call::Roa(r) => r.validate(),
        }
    }
}

/// What every attempt of one call shares.
struct Attempting<'a> {
    client: &'a Client,
    request: Call<'a>,
    check: Check,
    url: &'a Url,
    /// The products the host serves (see [`Client::target`]).
    host_products: &'a [String],
    /// The credentials of the first attempt (checked by the guard before the loop).
    first: &'a Arc<Resolved>,
    /// The clock reading once the first attempt's credentials were in hand (the first
    /// attempt's reading).
    ready_at: Instant,
    /// The retry settings, the deadline, and the action and host for logs.
    retry: retry::Retry<'a>,
}

struct Ctx<'a> {
    call: Call<'a>,
    /// The products the host serves (a leak answer is recorded under one of them).
    host_products: &'a [String],
    host: &'a str,
    attempts: u32,
    credentials: &'a Credentials,
    fingerprint: KeyFingerprint,
    masked_key_id: &'a str,
    /// The long-lived key temporary credentials were minted from.
    parent: Option<&'a crate::credentials::ParentKey>,
}

impl Client {
    /// Starts building a client.
    ///
    /// ```
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .region("cn-hangzhou")
    ///     .build()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The guard this client goes through.
    ///
    /// ```
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder().credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret")).build()?;
    /// assert!(client.guard().compromised_keys().is_empty());
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn guard(&self) -> &Arc<Guard> {
        &self.inner.guard
    }

    /// The region of requests that name none: the builder's, else the default chain's.
    ///
    /// ```
    /// use aliyun_guard::{Client, Credentials};
    /// let client = Client::builder().credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret")).region("cn-shanghai").build()?;
    /// assert_eq!(client.default_region(), Some("cn-shanghai"));
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn default_region(&self) -> Option<&str> {
        self.inner.region.as_deref()
    }

    /// The credentials the next call would use, from this client's [`CredentialsCache`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba};
    /// use aliyun_guard::{Client, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// let creds = client.current_credentials().await?;
    /// assert_eq!(creds.access_key_id(), testkit::KEY_ID);
    /// # let _ = RpcRequest::new("a", "b", "c");
    /// # Ok(()) }
    /// ```
    pub async fn current_credentials(&self) -> Result<Credentials, Error> {
        self.inner.provider.credentials().await
    }

    /// Calls the API and returns its JSON answer.
    ///
    /// Errors: [`Error::CompromisedKey`] when the key is under leak protection (answered by the
    /// server, or refused before sending), [`Error::Api`] for error answers, and transport,
    /// timeout and decoding errors as typed variants.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba};
    /// use aliyun_guard::{Client, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// mock.answer("DescribeRegions", serde_json::json!({"Regions": {"Region": [{"RegionId": "cn-hangzhou"}]}}));
    /// let answer = client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")).await?;
    /// assert_eq!(answer["Regions"]["Region"][0]["RegionId"], "cn-hangzhou");
    /// # Ok(()) }
    /// ```
    pub async fn call(&self, request: &RpcRequest) -> Result<Value, Error> {
        self.execute(Call::Rpc(request), Check::Enforce).await
    }

    /// Calls the API and deserialises the answer into `T`.
    ///
    /// An answer that does not fit `T` is an [`Error::Deserialize`] whose `path` says where
    /// (`Regions.Region[1].RegionId`); its message names the kind of value found there, never the
    /// value (an answer can hold a secret).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba};
    /// use aliyun_guard::{Client, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// #[derive(serde::Deserialize)]
    /// #[serde(rename_all = "PascalCase")]
    /// struct Answer { regions: Regions }
    /// #[derive(serde::Deserialize)]
    /// #[serde(rename_all = "PascalCase")]
    /// struct Regions { region: Vec<Region> }
    /// #[derive(serde::Deserialize)]
    /// #[serde(rename_all = "PascalCase")]
    /// struct Region { region_id: String }
    ///
    /// mock.answer("DescribeRegions", serde_json::json!({"Regions": {"Region": [{"RegionId": "cn-hangzhou"}]}}));
    /// let answer: Answer = client.call_as(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")).await?;
    /// assert_eq!(answer.regions.region[0].region_id, "cn-hangzhou");
    /// # Ok(()) }
    /// ```
    pub async fn call_as<T: DeserializeOwned>(&self, request: &RpcRequest) -> Result<T, Error> {
        let value = self.call(request).await?;
        deserialize(value, Call::Rpc(request))
    }

    /// Calls a ROA-style API (signed with V3) and returns its JSON answer; an empty successful
    /// answer (such as `204 No Content`) gives `Value::Null`.
    ///
    /// The guard covers it as an RPC call: before sending, the key is checked for the request's
    /// product and action (and the products its host serves); a leak answer is recorded and
    /// returned as [`Error::CompromisedKey`]. Error answers (`code`/`message`/`requestId`, either
    /// key case) are [`Error::Api`].
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), aliyun_guard::Error> {
    /// use aliyun_guard::{Client, RoaRequest};
    /// let client = Client::builder().region("cn-hangzhou").build()?;
    /// let clusters = client
    ///     .call_roa(&RoaRequest::new("CS", "2015-12-15", "DescribeClustersV1", "GET", "/api/v1/clusters"))
    ///     .await?;
    /// println!("{clusters}");
    /// # Ok(()) }
    /// ```
    pub async fn call_roa(&self, request: &RoaRequest) -> Result<Value, Error> {
        self.execute(Call::Roa(request), Check::Enforce).await
    }

    /// Calls a ROA-style API and deserialises the answer into `T`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), aliyun_guard::Error> {
    /// use aliyun_guard::{Client, RoaRequest};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Cluster { cluster_id: String, name: String }
    ///
    /// let client = Client::builder().region("cn-hangzhou").build()?;
    /// let request = RoaRequest::new("CS", "2015-12-15", "DescribeClusterDetail", "GET", "/clusters/{ClusterId}")
    ///     .path_param("ClusterId", "c82e6987e2961451182edacd74faf****");
    /// let cluster: Cluster = client.call_roa_as(&request).await?;
    /// println!("{} {}", cluster.cluster_id, cluster.name);
    /// # Ok(()) }
    /// ```
    pub async fn call_roa_as<T: DeserializeOwned>(&self, request: &RoaRequest) -> Result<T, Error> {
        let value = self.call_roa(request).await?;
        deserialize(value, Call::Roa(request))
    }

    pub(crate) async fn execute(&self, request: Call<'_>, check: Check) -> Result<Value, Error> {
        let inner = &*self.inner;
        request.validate()?;
        let started = Instant::now();
        let deadline = deadline_after(
            started,
            request.get_timeout().unwrap_or(inner.total_timeout),
        );
        let (url, host_products) = self.target(request)?;
        // Asked on every attempt (below, too), so that a retry after expiry uses new credentials.
        // The clock is read again only after waiting for a refresh.
        let (resolved, ready_at) = match inner.provider.fresh_resolved() {
            Some(fresh) => (fresh, started),
            None => (self.refresh_within(deadline).await?, Instant::now()),
        };
        if check == Check::Enforce {
            self.refuse_if_compromised(&resolved, request, &host_products)?;
        }
        let call = Attempting {
            client: self,
            request,
            check,
            url: &url,
            host_products: &host_products,
            first: &resolved,
            ready_at,
            retry: retry::Retry {
                policy: request.get_retry().unwrap_or(&inner.retry),
                idempotent: request.is_idempotent(),
                deadline: tokio::time::Instant::from_std(deadline),
                sleep: retry::TokioSleep,
                jitter: retry::FastrandJitter,
                action: request.action(),
                host: url.host_str().unwrap_or_default(),
            },
        };
        let call = &call;
        retry::run(&call.retry, |attempts| call.client.attempt(call, attempts)).await
    }

    /// Where a request goes, and the products its host serves when the endpoint is explicit
    /// (empty for a derived endpoint, whose host comes from the request's product).
    fn target<'s>(
        &'s self,
        request: Call<'_>,
    ) -> Result<(std::borrow::Cow<'s, Url>, std::borrow::Cow<'s, [String]>), Error> {
        use std::borrow::Cow;
        let inner = &*self.inner;
        // The client's endpoint is borrowed; only a per-request or derived one is built.
        Ok(match request.get_endpoint() {
            Some(explicit) => {
                let url = endpoint::parse_explicit(explicit)?;
                let products = endpoint::products_of_host(url.host_str().unwrap_or_default());
                (Cow::Owned(url), Cow::Owned(products))
            }
            None => match &inner.endpoint {
                Some(url) => (
                    Cow::Borrowed(url),
                    Cow::Borrowed(&inner.endpoint_products[..]),
                ),
                None => {
                    let region = request.get_region().or(inner.region.as_deref());
                    let url = endpoint::resolve(request.product(), region, None)?;
                    (Cow::Owned(url), Cow::Borrowed(&[][..]))
                }
            },
        })
    }

    /// The credentials from the cache; a refresh it must wait for is bounded by the call's
    /// budget.
    async fn credentials_within(&self, deadline: Instant) -> Result<Arc<Resolved>, Error> {
        match self.inner.provider.fresh_resolved() {
            Some(fresh) => Ok(fresh),
            None => self.refresh_within(deadline).await,
        }
    }

    /// The credentials when the cache's are not fresh: its refresh, waited for within the
    /// call's budget.
    async fn refresh_within(&self, deadline: Instant) -> Result<Arc<Resolved>, Error> {
        let cache = &self.inner.provider;
        // Rare: boxed so that it does not enlarge the future of every call.
        let wait =
            tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), cache.resolve());
        Box::pin(wait).await.unwrap_or_else(|_elapsed| {
            Err(Error::credentials_kind(
                crate::credentials::CredentialsErrorKind::Unavailable,
                format!(
                    "no credentials within the call's total timeout ({:?}): the credentials \
                     provider did not answer",
                    self.inner.total_timeout
                ),
                None,
            ))
        })
    }

    /// The check before sending, by the guard: see [`Guard::check_call`].
    fn refuse_if_compromised(
        &self,
        resolved: &Resolved,
        request: Call<'_>,
        host_products: &[String],
    ) -> Result<(), Error> {
        let keys = CallKeys {
            key: resolved.fingerprint,
            masked_key_id: &resolved.masked,
            parent: resolved
                .parent
                .as_ref()
                .map(|p| (p.fingerprint, p.masked.as_str())),
        };
        self.inner.guard.check_call(
            &keys,
            request.product(),
            host_products,
            request.version(),
            request.action(),
        )
    }

    /// One attempt of a call: credentials asked anew (a retry after expiry uses new ones,
    /// checked by the guard when they changed), signed anew, sent, its answer read.
    async fn attempt(&self, call: &Attempting<'_>, attempts: u32) -> Result<Value, Error> {
        let deadline = call.retry.deadline.into_std();
        let fresh;
        let resolved = if attempts > 1 {
            fresh = self.credentials_within(deadline).await?;
            if call.check == Check::Enforce && !Arc::ptr_eq(&fresh, call.first) {
                self.refuse_if_compromised(&fresh, call.request, call.host_products)?;
            }
            &fresh
        } else {
            call.first
        };
        let ctx = &Ctx {
            call: call.request,
            host_products: call.host_products,
            host: call.retry.host,
            attempts,
            credentials: &resolved.credentials,
            fingerprint: resolved.fingerprint,
            masked_key_id: &resolved.masked,
            parent: resolved.parent.as_ref(),
        };
        let url = call.url;
        let inner = &*self.inner;
        let out_of_time = || Error::Timeout {
            host: ctx.host.to_string(),
            action: ctx.call.action().to_string(),
            phase: TimeoutPhase::Total,
            attempts: ctx.attempts,
            source: None,
        };
        // One clock read per attempt (the first uses the call's): for the budget check here and
        // the timer choice below.
        let now = if attempts > 1 {
            Instant::now()
        } else {
            call.ready_at
        };
        if now >= deadline {
            return Err(out_of_time());
        }
        // Signed anew for every attempt: fresh nonce and date. The signer's instructions are
        // applied without knowing the version; only what explains a disputed signature is kept
        // past the send (the rest is dropped before any await).
        // The request is sent (reqwest's small `Pending`) within this block, so that it never
        // takes room in the call's future.
        let (pending, evidence) = {
            let instructions = self.sign(ctx, url)?;
            tracing::trace!(
                action = ctx.call.action(),
                host = %ctx.host,
                attempt = ctx.attempts,
                nonce = instructions.nonce.as_str(),
                "aliyun-guard: sending"
            );
            let (request, evidence) = self.apply(instructions, url);
            (inner.http.execute(request), evidence)
        };
        // Sending and reading stay within the call's total budget (see `WithinBudget`; the
        // connect and read timeouts of the HTTP client apply inside it).
        let exchange = async {
            let mut response = pending.await?;
            let status = response.status().as_u16();
            let body = match redirected(&response, url, evidence.sent_path()) {
                // A redirect is never followed (the client does not, whoever built it) and its
                // body is not read.
                Some(location) => Err(BodyError::Redirect(location)),
                None => read_capped(&mut response, inner.max_body_bytes).await,
            };
            // The headers are kept (moved, not looked up): only errors read the request id.
            let headers = std::mem::take(response.headers_mut());
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        // No timer at all when the budget is unlimited (its deadline is decades away): the
        // exchange is then bounded only by the HTTP client's connect and read timeouts, as asked.
        // Otherwise a timer only once the deadline is nearer than reqwest's own wake-up.
        // (Matched in place: a named result would stay in the call's future.)
        let unlimited = deadline
            .checked_duration_since(now)
            .is_some_and(|left| left >= UNLIMITED / 2);
        let (status, headers, body) = match if unlimited {
            Some(exchange.await)
        } else {
            WithinBudget::new(exchange, deadline, inner.woken_within).await
        } {
            None => return Err(out_of_time()),
            Some(Err(e)) => return Err(self.transport_error(e, ctx)),
            Some(Ok(exchange)) => exchange,
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        // Looked up only for errors, and then redacted and neutralised like every server string.
        let header_request_id = || {
            headers
                .get(&X_ACS_REQUEST_ID)
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .map(|id| self.server_text(ctx, &id))
        };
        let body = match body {
            // A ROA answer without a body (204 No Content) is a success.
            Ok(body) if body.is_empty() && is_roa_success(ctx.call, status) => {
                return Ok(Value::Null);
            }
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
            Err(BodyError::Redirect(location)) => {
                return Err(self.unexpected(
                    ctx,
                    status,
                    ResponseFault::Redirect,
                    location.as_bytes(),
                    header_request_id(),
                ));
            }
        };
        let text = |t: &str| self.server_text(ctx, t);
        let answered = || self.answered(ctx, url, deadline, status, header_request_id(), &text);
        let decoded =
            match inner
                .guard
                .record_answer(response::decode(status, &body), &body, answered)
            {
                Ok(decoded) => decoded,
                Err(leak) => return Err(leak.await.into()),
            };
        match decoded {
            Decoded::Data(value) => Ok(value),
            Decoded::Error(fields) => {
                Err(self.api_error(ctx, status, fields, header_request_id(), &evidence))
            }
            Decoded::Fault(fault) => {
                Err(self.unexpected(ctx, status, fault, &body, header_request_id()))
            }
        }
    }

    /// Signs one attempt of the call: its signer's instructions.
    fn sign(&self, ctx: &Ctx<'_>, url: &Url) -> Result<Instructions, Error> {
        let inner = &*self.inner;
        match ctx.call {
            Call::Rpc(request) => inner.signer.rpc_instructions(
                request,
                ctx.credentials,
                inner.region.as_deref(),
                request.get_signature().unwrap_or(inner.signature),
                url,
            ),
            Call::Roa(request) => inner.signer.roa_instructions(request, ctx.credentials, url),
        }
    }

    /// The HTTP request the instructions describe, and what explains a disputed signature.
    ///
    /// Built as a `reqwest::Request` and sent with `execute`: no `RequestBuilder` (which would
    /// clone the HTTP client and move the request through each setter).
    fn apply(&self, instructions: Instructions, url: &Url) -> (reqwest::Request, Evidence) {
        let inner = &*self.inner;
        let Instructions {
            method,
            path,
            query,
            headers,
            content_type,
            body,
            nonce: _,
            evidence,
        } = instructions;
        let mut url = url.clone();
        if path.is_some() || query.is_some() {
            if let Some(path) = &path {
                url.set_path(path);
            }
            url.set_query(query.as_deref());
        }
        let mut request = reqwest::Request::new(method, url);
        // A new request has no headers: these are all of them.
        *request.headers_mut() = headers;
        if let Some(content_type) = content_type {
            request
                .headers_mut()
                .insert(reqwest::header::CONTENT_TYPE, content_type);
        }
        // The pooled client built here sets the User-Agent itself when the request has none; a
        // caller's client does not: the same is done here.
        if inner.custom_http {
            request
                .headers_mut()
                .entry(USER_AGENT)
                .or_insert(HeaderValue::from_static(USER_AGENT_VALUE));
        }
        if let Some(body) = body {
            *request.body_mut() = Some(body.into());
        }
        (request, evidence)
    }

    /// What the guard records about a call whose answer is the leak answer.
    fn answered<'c>(
        &self,
        ctx: &'c Ctx<'_>,
        url: &Url,
        deadline: tokio::time::Instant,
        status: u16,
        header_request_id: Option<String>,
        server_text: &'c (dyn Fn(&str) -> String + Sync),
    ) -> AnsweredCall<'c> {
        AnsweredCall {
            keys: CallKeys {
                key: ctx.fingerprint,
                masked_key_id: ctx.masked_key_id,
                parent: ctx.parent.map(|p| (p.fingerprint, p.masked.as_str())),
            },
            product: leak_product(ctx.call.product(), ctx.host_products),
            version: ctx.call.version(),
            action: ctx.call.action(),
            host: ctx.host,
            secure_transport: url.scheme() == "https",
            status,
            header_request_id,
            server_text,
            deadline,
        }
    }

    fn api_error(
        &self,
        ctx: &Ctx<'_>,
        status: u16,
        fields: ErrorFields,
        header_request_id: Option<String>,
        evidence: &Evidence,
    ) -> Error {
        let creds = ctx.credentials;
        let diagnose = |code: &str, raw_message: &str| {
            code.eq_ignore_ascii_case("SignatureDoesNotMatch")
                .then(|| match evidence {
                    Evidence::V1 { method, encoded } => signing::diagnose_v1(
                        *method,
                        encoded,
                        raw_message,
                        creds,
                        ctx.call.parameters(),
                    ),
                    Evidence::V3(ours) => match signing::server_quote_v3(raw_message) {
                        // What the server quoted is server text: redacted and neutralised.
                        Some(theirs) => {
                            self.neutralised(ctx, signing::v3::diagnose_v3(ours, theirs))
                        }
                        None => crate::error::SignatureDiagnosis::Unavailable,
                    },
                })
        };
        let text = |t: &str| self.server_text(ctx, t);
        let action = ctx.call.action();
        Error::Api(Box::new(fields.into_api_error(
            status,
            action,
            ctx.attempts,
            header_request_id,
            text,
            diagnose,
        )))
    }

    /// A diagnosis whose texts are made fit for an error like all server text.
    fn neutralised(
        &self,
        ctx: &Ctx<'_>,
        diagnosis: crate::error::SignatureDiagnosis,
    ) -> crate::error::SignatureDiagnosis {
        use crate::error::SignatureDiagnosis::EncodingDifference;
        match diagnosis {
            EncodingDifference {
                parameter,
                ours,
                theirs,
            } => EncodingDifference {
                parameter: self.server_text(ctx, &parameter),
                ours: self.server_text(ctx, &ours),
                theirs: self.server_text(ctx, &theirs),
            },
            other => other,
        }
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
            snippet: self.server_text(ctx, &response::snippet(body, response::SNIPPET_CHARS)),
            host: ctx.host.to_string(),
            action: ctx.call.action().to_string(),
            request_id,
            attempts: ctx.attempts,
        }))
    }

    /// Server text made fit for an error: secrets of this call removed, key ids masked, control
    /// characters neutralised.
    fn server_text(&self, ctx: &Ctx<'_>, text: &str) -> String {
        server_text(text, Some(ctx.credentials), Some(ctx.call.parameters()))
    }

    fn transport_error(&self, e: reqwest::Error, ctx: &Ctx<'_>) -> Error {
        Error::from_reqwest(e, ctx.host, ctx.call.action(), ctx.attempts)
    }
}

pin_project_lite::pin_project! {
    /// An exchange run until it ends (`Some`) or the call's deadline passes (`None`), with a
    /// timer only when one is needed.
    ///
    /// A timer per call costs a registration in the runtime's timer wheel and its removal (locks
    /// shared by every worker thread). Most calls end long before their deadline, and most waits
    /// of an exchange are bounded already: with `woken_within` (the read timeout this client gave
    /// reqwest), a pending exchange is polled again within that time, answered or failed. So
    /// whenever the exchange is pending, the clock is read: past the deadline, the exchange is
    /// dropped; with the deadline nearer than `woken_within` (or that bound unknown), a timer for
    /// the deadline is set (once, boxed: the rare case does not enlarge every call's future);
    /// otherwise the next poll is known to come before the deadline, and no timer is needed. The
    /// deadline is kept exactly either way.
    struct WithinBudget<F> {
        #[pin]
        exchange: F,
        deadline: Instant,
        woken_within: Option<Duration>,
        timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F> WithinBudget<F> {
    fn new(exchange: F, deadline: Instant, woken_within: Option<Duration>) -> Self {
        WithinBudget {
            exchange,
            deadline,
            woken_within,
            timer: None,
        }
    }
}

impl<F: std::future::Future> std::future::Future for WithinBudget<F> {
    type Output = Option<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.project();
        if let Poll::Ready(out) = this.exchange.poll(cx) {
            return Poll::Ready(Some(out));
        }
        if this.timer.is_none() {
            // tokio's clock, which reqwest's timers and the timer below run on (it differs from
            // the system's only when a test pauses tokio's time).
            let now = tokio::time::Instant::now();
            let deadline = tokio::time::Instant::from_std(*this.deadline);
            let Some(left) = deadline
                .checked_duration_since(now)
                .filter(|l| !l.is_zero())
            else {
                return Poll::Ready(None);
            };
            if this.woken_within.is_none_or(|bound| left <= bound) {
                *this.timer = Some(Box::pin(tokio::time::sleep_until(deadline)));
            }
        }
        match this.timer.as_mut().map(|timer| timer.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
}

/// A request's parameters, by name.
type Params = std::collections::BTreeMap<String, String>;

/// The longest path an [`Error::Deserialize`] names (map keys come from the answer).
const MAX_PATH_CHARS: usize = 200;

/// Where a deserialisation failed, neutralised (map keys in it come from the server) and bounded.
fn deserialize_path(path: &serde_path_to_error::Path) -> String {
    let text = crate::redact::sanitize(&path.to_string());
    if text.chars().count() > MAX_PATH_CHARS {
        let mut short: String = text.chars().take(MAX_PATH_CHARS).collect();
        short.push('…');
        short
    } else {
        text
    }
}

/// The serde error of a mismatch with the values of the answer taken out of its message.
///
/// serde quotes what it found (`invalid type: string "…", expected u32`); the answer can hold
/// secrets (`CreateAccessKey` returns one), so only the kind of value is kept (`invalid type:
/// string, expected u32`). Other messages (a `Deserialize` impl's own) are redacted for the
/// request's secret parameters and neutralised.
fn scrub_serde_error(e: &serde_json::Error, params: &Params) -> serde_json::Error {
    use serde::de::Error as _;
    serde_json::Error::custom(scrub_serde_message(&e.to_string(), params))
}

fn scrub_serde_message(message: &str, params: &Params) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "unknown variant "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let at = rest.rfind(", expected").unwrap_or(rest.len());
            let (head, expected) = rest.split_at(at);
            let found = head.split(['"', '`']).next().unwrap_or_default().trim_end();
            let kind = prefix.trim_end();
            let text = if prefix == "unknown variant " || found.is_empty() {
                format!("{kind}{expected}")
            } else {
                format!("{kind} {found}{expected}")
            };
            return server_text(&text, None, Some(params));
        }
    }
    server_text(message, None, Some(params))
}

/// A 2xx answer to a ROA call (which may carry no body).
fn is_roa_success(call: Call<'_>, status: u16) -> bool {
    matches!(call, Call::Roa(_)) && (200..300).contains(&status)
}

/// A JSON answer deserialised into `T`; the error names the action and the request id.
fn deserialize<T: DeserializeOwned>(value: Value, call: Call<'_>) -> Result<T, Error> {
    let request_id = ["RequestId", "requestId"]
        .iter()
        .find_map(|k| value.get(*k).and_then(Value::as_str))
        .map(|id| server_text(id, None, Some(call.parameters())));
    serde_path_to_error::deserialize(value).map_err(|e| Error::Deserialize {
        action: call.action().to_string(),
        request_id,
        path: deserialize_path(e.path()),
        source: scrub_serde_error(e.inner(), call.parameters()),
    })
}

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
    /// A redirect, with where it pointed (for the error's snippet).
    Redirect(String),
}

/// A redirect answer, or an answer from another URL than the request's (which only a client
/// that follows redirects could give): where it points. Signed requests never follow one.
fn redirected(response: &reqwest::Response, url: &Url, path: Option<&str>) -> Option<String> {
    let final_url = response.url();
    let sent_path = path.unwrap_or(url.path());
    // The usual answer, from the URL itself: one comparison.
    let same_target = (sent_path == url.path() && final_url.as_str() == url.as_str())
        || (final_url.scheme() == url.scheme()
            && final_url.host_str() == url.host_str()
            && final_url.port_or_known_default() == url.port_or_known_default()
            && final_url.path() == sent_path);
    if !response.status().is_redirection() && same_target {
        return None;
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
    Some(match location {
        Some(location) => format!("redirect to {location}"),
        None if !same_target => format!("answered from {}", final_url.host_str().unwrap_or("?")),
        None => "redirect without a location".to_string(),
    })
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
    // More than one chunk: gather them, refusing the one that crosses the cap. The buffer is
    // sized from what has arrived, never from the length the peer declares, and grows with
    // what arrives.
    let arrived = first.len().saturating_add(second.len());
    if arrived > cap {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(arrived);
    let mut next = Some(second);
    body.extend_from_slice(&first);
    while let Some(chunk) = next {
        if body.len().saturating_add(chunk.len()) > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
        next = response.chunk().await.map_err(BodyError::Transport)?;
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod deserialize_tests {
    use super::*;

    #[test]
    fn serde_messages_lose_the_values_they_quote() {
        let request = RpcRequest::new("Ecs", "v", "A");
        for (message, expected) in [
            (
                r#"invalid type: string "s3cr3t, expected x", expected u32"#,
                "invalid type: string, expected u32",
            ),
            (
                "invalid value: integer `77`, expected a port",
                "invalid value: integer, expected a port",
            ),
            (
                "unknown variant `s3cr3t`, expected one of `Running`, `Stopped`",
                "unknown variant, expected one of `Running`, `Stopped`",
            ),
            (
                "invalid type: map, expected a string",
                "invalid type: map, expected a string",
            ),
            ("missing field `RegionId`", "missing field `RegionId`"),
        ] {
            assert_eq!(scrub_serde_message(message, request.parameters()), expected);
        }
        let secret_param = RpcRequest::new("Ecs", "v", "A").param("Password", "hunter2-long");
        assert!(
            !scrub_serde_message("bad hunter2-long", secret_param.parameters())
                .contains("hunter2-long")
        );
    }
}
