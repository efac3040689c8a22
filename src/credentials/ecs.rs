//! Credentials of the RAM role attached to an ECS instance, from the instance metadata service.
//!
//! Also holds the small HTTP and JSON helpers that the credentials-URI provider shares: a capped
//! body read, the `Code`/`AccessKeyId`/... answer both services send, and an `Expiration` parser.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::body::{BodyError, read_secret_body};
use super::{Credentials, CredentialsErrorKind, CredentialsFuture, CredentialsProvider, Env};
use crate::error::Error;

/// The metadata service's address on every ECS instance. Not configurable in production.
pub(crate) const METADATA_BASE_URL: &str = "http://100.100.100.200";
/// `true` (any case) turns the ECS provider off: it answers "not configured".
pub(crate) const ECS_METADATA_DISABLED: &str = "ALIBABA_CLOUD_ECS_METADATA_DISABLED";
/// The RAM role name; when set, role discovery is skipped.
pub(crate) const ECS_METADATA: &str = "ALIBABA_CLOUD_ECS_METADATA";
/// `true` (any case): never read the metadata service without a session token (IMDSv1).
pub(crate) const IMDSV1_DISABLED: &str = "ALIBABA_CLOUD_IMDSV1_DISABLED";

/// Provider name carried by the credentials this provider returns.
pub(crate) const PROVIDER_NAME: &str = "ecs_ram_role";

const TOKEN_PATH: &str = "/latest/api/token";
const ROLE_PATH: &str = "/latest/meta-data/ram/security-credentials/";
const TOKEN_TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";

/// Default and maximum lifetime of a metadata session token, in seconds.
const MAX_TOKEN_TTL: u32 = 21_600;
/// The largest answer read from a credentials service.
pub(super) const MAX_BODY_BYTES: usize = 64 * 1024;
/// The largest session token accepted (it is sent back as a header).
const MAX_TOKEN_BYTES: usize = 4 * 1024;
/// The longest RAM role name.
const MAX_ROLE_NAME: usize = 64;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Credentials of the RAM role attached to the ECS instance this program runs on, read from the
/// instance metadata service at `100.100.100.200`.
///
/// Slot 5 of the official default chain (after the environment, OIDC, the CLI profile and the
/// INI file); also what the CLI profile mode `EcsRamRole` (`ram_role_name`) and the INI type
/// `ecs_ram_role` (`role_name`) use.
///
/// The protocol, as Alibaba's official libraries speak it:
/// 1. a session token: `PUT /latest/api/token` with `X-aliyun-ecs-metadata-token-ttl-seconds`
///    (IMDSv2, default 21600 seconds);
/// 2. unless a role name is given (builder, or `ALIBABA_CLOUD_ECS_METADATA`), the role name:
///    `GET /latest/meta-data/ram/security-credentials/`;
/// 3. the role's credentials: `GET /latest/meta-data/ram/security-credentials/<role>`, whose JSON
///    must say `"Code": "Success"`, with an `Expiration`.
///
/// If the token request fails (other than by a failed connection: then nothing listens there and
/// a read without a token would fail the same way), or a read with the token fails (other than
/// by a 404), the read is repeated without a token (IMDSv1), with a warning, unless `ALIBABA_CLOUD_IMDSV1_DISABLED=true` or
/// [`EcsRamRoleProviderBuilder::imdsv1_fallback`]`(false)`. Every request has a 1 s connect and a
/// 1 s read timeout (configurable), uses no proxy and follows no redirect; every answer is read up
/// to 64 KiB.
///
/// Outcomes:
/// * `ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`: not configured.
/// * No role name given and the metadata service cannot be reached at all (not an ECS instance),
///   or the instance has no role attached (step 2 answers 404): not configured, so that a chain
///   moves on.
/// * A role name that is not a RAM role name, a bad token lifetime: configured wrongly.
/// * Any other failure: unavailable; the message names the step that failed, never a secret.
///
/// The credentials expire (typically after an hour or so; the service renews them ahead). When a
/// refresh fails, the official libraries keep serving the previous value until it really expires:
/// [`EcsRamRoleProvider::serve_stale_on_failure`] says so for a refreshing cache.
///
/// ```no_run
/// use aliyun_guard::credentials::{CredentialsProvider, EcsRamRoleProvider};
///
/// # async fn run() -> Result<(), aliyun_guard::Error> {
/// // Discover the role attached to this instance:
/// let provider = EcsRamRoleProvider::builder().build();
/// let creds = provider.provide_credentials().await?;
/// println!("{} from {}", creds.masked_key_id(), creds.provider_name()); // ecs_ram_role
///
/// // Or name it, and never read the metadata service without a session token:
/// let provider = EcsRamRoleProvider::builder()
///     .role_name("MyEcsRole")
///     .imdsv1_fallback(false)
///     .build();
/// # let _ = provider;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EcsRamRoleProvider {
    env: Env,
    role_name: Option<String>,
    imdsv1_fallback: Option<bool>,
    token_ttl: u32,
    connect_timeout: Duration,
    read_timeout: Duration,
    base_url: Option<String>,
    http: OnceLock<reqwest::Client>,
}

/// Builds an [`EcsRamRoleProvider`]; see [`EcsRamRoleProvider::builder`].
///
/// Nothing is checked or connected when building: a bad setting is reported by the first
/// [`CredentialsProvider::provide_credentials`], as "configured wrongly".
#[derive(Debug, Clone)]
pub struct EcsRamRoleProviderBuilder {
    env: Env,
    role_name: Option<String>,
    imdsv1_fallback: Option<bool>,
    token_ttl: u32,
    connect_timeout: Duration,
    read_timeout: Duration,
    base_url: Option<String>,
}

impl Default for EcsRamRoleProviderBuilder {
    fn default() -> Self {
        Self {
            env: Env::process(),
            role_name: None,
            imdsv1_fallback: None,
            token_ttl: MAX_TOKEN_TTL,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            base_url: None,
        }
    }
}

impl EcsRamRoleProviderBuilder {
    /// Where `ALIBABA_CLOUD_ECS_METADATA_DISABLED`, `ALIBABA_CLOUD_ECS_METADATA` and
    /// `ALIBABA_CLOUD_IMDSV1_DISABLED` are read (default: the process environment). They are read
    /// at every fetch.
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// The RAM role's name; skips discovery and wins over `ALIBABA_CLOUD_ECS_METADATA`. An empty
    /// name means "discover" (as the CLI's empty `ram_role_name` does).
    pub fn role_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.role_name = (!name.trim().is_empty()).then_some(name);
        self
    }

    /// Whether a failed token request (or a failed read with the token) is retried without a
    /// token (IMDSv1). Default: yes, unless `ALIBABA_CLOUD_IMDSV1_DISABLED=true`. Set here, it
    /// wins over the variable.
    pub fn imdsv1_fallback(mut self, allowed: bool) -> Self {
        self.imdsv1_fallback = Some(allowed);
        self
    }

    /// Lifetime requested for the metadata session token, 1 to 21600 seconds (default 21600).
    pub fn token_ttl_seconds(mut self, seconds: u32) -> Self {
        self.token_ttl = seconds;
        self
    }

    /// Connect timeout of each metadata request (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Read timeout of each metadata request (default 1 s). A whole request is also bounded by
    /// the connect timeout plus twice this.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// FOR TESTS ONLY: the metadata service's base URL, instead of `http://100.100.100.200`.
    /// Only `http://` on a loopback address (`127.0.0.0/8`, `[::1]`, `localhost`) is accepted;
    /// anything else is refused by the first fetch. Never read from the environment.
    #[doc(hidden)]
    pub fn metadata_base_url_for_tests(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The provider. Cheap: the HTTP client is built at the first fetch.
    pub fn build(self) -> EcsRamRoleProvider {
        EcsRamRoleProvider {
            env: self.env,
            role_name: self.role_name,
            imdsv1_fallback: self.imdsv1_fallback,
            token_ttl: self.token_ttl,
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            base_url: self.base_url,
            http: OnceLock::new(),
        }
    }
}

/// What one fetch does, settled from the builder and the environment.
struct Plan {
    base: String,
    /// The role name and where it came from.
    role: Option<(String, &'static str)>,
    fallback: bool,
}

/// The three requests, named in errors.
#[derive(Clone, Copy)]
enum Step {
    Token,
    Discover,
    Credentials,
}

impl Step {
    fn describe(self) -> &'static str {
        match self {
            Step::Token => "step 1/3, the session token (PUT /latest/api/token)",
            Step::Discover => {
                "step 2/3, the role name (GET /latest/meta-data/ram/security-credentials/)"
            }
            Step::Credentials => {
                "step 3/3, the role's credentials \
                 (GET /latest/meta-data/ram/security-credentials/<role>)"
            }
        }
    }
}

/// Why one request failed.
enum Failure {
    Transport(reqwest::Error),
    Status(u16),
    TooLarge,
    Invalid(&'static str),
}

impl Failure {
    fn is_connect(&self) -> bool {
        matches!(self, Failure::Transport(e) if e.is_connect())
    }

    fn describe(&self) -> String {
        match self {
            Failure::Transport(e) if e.is_timeout() => "timed out".to_string(),
            Failure::Transport(e) if e.is_connect() => "cannot connect".to_string(),
            Failure::Transport(_) => "the request failed".to_string(),
            Failure::Status(status) => format!("answered HTTP {status}"),
            Failure::TooLarge => format!("answered more than {MAX_BODY_BYTES} bytes"),
            Failure::Invalid(why) => (*why).to_string(),
        }
    }

    fn into_error(self, kind: CredentialsErrorKind, message: String) -> Error {
        let message = format!("{message}: {}", self.describe());
        match self {
            Failure::Transport(e) => {
                Error::credentials_kind(kind, message, Some(Box::new(e.without_url())))
            }
            _ => Error::credentials_kind(kind, message, None),
        }
    }
}

impl EcsRamRoleProvider {
    /// A builder with the defaults: process environment, role discovery, IMDSv1 fallback unless
    /// `ALIBABA_CLOUD_IMDSV1_DISABLED=true`, 21600 s tokens, 1 s timeouts.
    pub fn builder() -> EcsRamRoleProviderBuilder {
        EcsRamRoleProviderBuilder::default()
    }

    /// A provider reading `env`, with every other setting at its default (the default chain's
    /// slot).
    pub fn from_env(env: Env) -> Self {
        Self::builder().env(env).build()
    }

    /// Always `true`: when a refresh fails, a cache should keep serving the previous credentials
    /// of this provider until they really expire (with a warning and backoff), as the official
    /// libraries do for ECS, whose metadata service may hiccup while the credentials it issued
    /// remain valid for hours.
    pub fn serve_stale_on_failure(&self) -> bool {
        true
    }

    fn plan(&self) -> Result<Plan, Error> {
        if is_true(self.env.get(ECS_METADATA_DISABLED)) {
            return Err(Error::credentials_not_configured(format!(
                "ECS instance RAM role: disabled by {ECS_METADATA_DISABLED}=true"
            )));
        }
        if !(1..=MAX_TOKEN_TTL).contains(&self.token_ttl) {
            return Err(Error::credentials_invalid(format!(
                "ECS instance RAM role: the token lifetime must be 1 to {MAX_TOKEN_TTL} seconds, \
                 not {}",
                self.token_ttl
            )));
        }
        let role = match (&self.role_name, self.env.get(ECS_METADATA)) {
            (Some(name), _) => Some((
                name.trim().to_string(),
                "the role name given to the builder",
            )),
            (None, Some(name)) if !name.trim().is_empty() => {
                Some((name.trim().to_string(), ECS_METADATA))
            }
            _ => None,
        };
        if let Some((name, source)) = &role {
            check_role_name(name).map_err(|why| {
                Error::credentials_invalid(format!(
                    "ECS instance RAM role: {source} is not a RAM role name ({why}): {}",
                    shown(name)
                ))
            })?;
        }
        let fallback = self
            .imdsv1_fallback
            .unwrap_or_else(|| !is_true(self.env.get(IMDSV1_DISABLED)));
        let base = match &self.base_url {
            None => METADATA_BASE_URL.to_string(),
            Some(url) => check_test_base_url(url)?,
        };
        Ok(Plan {
            base,
            role,
            fallback,
        })
    }

    fn http(&self) -> Result<&reqwest::Client, Error> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = http_client(self.connect_timeout, self.read_timeout).map_err(|e| {
            Error::credentials_kind(
                CredentialsErrorKind::Unavailable,
                "ECS instance RAM role: cannot build the HTTP client",
                Some(Box::new(e.without_url())),
            )
        })?;
        Ok(self.http.get_or_init(|| client))
    }

    async fn fetch(&self) -> Result<Credentials, Error> {
        let plan = self.plan()?;
        let http = self.http()?;
        let explicit = plan.role.is_some();

        // Step 1: the session token.
        let token = match self.token(http, &plan.base).await {
            Ok(token) => Some(token),
            Err(failure) if failure.is_connect() => {
                // Nothing listens there: a read without a token would fail the same way.
                let kind = if explicit {
                    CredentialsErrorKind::Unavailable
                } else {
                    CredentialsErrorKind::NotConfigured
                };
                return Err(failure.into_error(
                    kind,
                    format!(
                        "ECS instance RAM role: the metadata service is not reachable (not an \
                         ECS instance?) at {}",
                        Step::Token.describe()
                    ),
                ));
            }
            Err(failure) if plan.fallback => {
                tracing::warn!(
                    provider = PROVIDER_NAME,
                    "ECS metadata session token not obtained ({}); reading without a token \
                     (IMDSv1); set {IMDSV1_DISABLED}=true to refuse",
                    failure.describe()
                );
                None
            }
            Err(failure) => {
                return Err(failure.into_error(
                    CredentialsErrorKind::Unavailable,
                    format!(
                        "ECS instance RAM role: {} failed and reading without a token (IMDSv1) is \
                         disabled ({IMDSV1_DISABLED} or the builder)",
                        Step::Token.describe()
                    ),
                ));
            }
        };
        let token = token.as_ref().map(|t| t.as_str());

        // Step 2: the role name.
        let role = match plan.role {
            Some((name, _)) => name,
            None => {
                let url = format!("{}{ROLE_PATH}", plan.base);
                let body = match self
                    .read(http, &url, token, plan.fallback, Step::Discover)
                    .await
                {
                    Ok(body) => body,
                    Err(Failure::Status(404)) => {
                        return Err(Error::credentials_not_configured(format!(
                            "ECS instance RAM role: no RAM role is attached to this instance \
                             ({} answered 404)",
                            Step::Discover.describe()
                        )));
                    }
                    Err(failure) => {
                        return Err(failure.into_error(
                            CredentialsErrorKind::Unavailable,
                            format!("ECS instance RAM role: {}", Step::Discover.describe()),
                        ));
                    }
                };
                let name = std::str::from_utf8(&body).unwrap_or_default().trim();
                check_role_name(name).map_err(|why| {
                    Error::credentials_kind(
                        CredentialsErrorKind::Unavailable,
                        format!(
                            "ECS instance RAM role: {} answered something that is not a RAM role \
                             name ({why})",
                            Step::Discover.describe()
                        ),
                        None,
                    )
                })?;
                name.to_string()
            }
        };

        // Step 3: the role's credentials.
        let url = format!("{}{ROLE_PATH}{role}", plan.base);
        let body = match self
            .read(http, &url, token, plan.fallback, Step::Credentials)
            .await
        {
            Ok(body) => body,
            Err(Failure::Status(404)) if explicit => {
                return Err(Error::credentials_invalid(format!(
                    "ECS instance RAM role: role {role:?} is not attached to this instance ({} \
                     answered 404)",
                    Step::Credentials.describe()
                )));
            }
            Err(failure) => {
                return Err(failure.into_error(
                    CredentialsErrorKind::Unavailable,
                    format!(
                        "ECS instance RAM role {role:?}: {}",
                        Step::Credentials.describe()
                    ),
                ));
            }
        };
        let creds = parse_credentials_json(&body, true).map_err(|why| {
            Error::credentials_kind(
                CredentialsErrorKind::Unavailable,
                format!(
                    "ECS instance RAM role {role:?}: {}: {why}",
                    Step::Credentials.describe()
                ),
                None,
            )
        })?;
        let creds = creds.with_provider_name(PROVIDER_NAME);
        tracing::debug!(
            provider = PROVIDER_NAME,
            key = %creds.masked_key_id(),
            imdsv2 = token.is_some(),
            "credentials obtained"
        );
        Ok(creds)
    }

    /// Step 1: `PUT /latest/api/token`.
    async fn token(
        &self,
        http: &reqwest::Client,
        base: &str,
    ) -> Result<Zeroizing<String>, Failure> {
        let request = http
            .put(format!("{base}{TOKEN_PATH}"))
            .header(TOKEN_TTL_HEADER, self.token_ttl.to_string());
        let body = send(request).await?;
        let text = std::str::from_utf8(&body).unwrap_or_default().trim();
        // A token is sent back as a header: it must be short visible ASCII.
        if text.is_empty()
            || text.len() > MAX_TOKEN_BYTES
            || !text.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Failure::Invalid(
                "answered something that is not a token (empty, too long or not printable)",
            ));
        }
        Ok(Zeroizing::new(text.to_string()))
    }

    /// A `GET` with the token; when that fails (other than 404) and the fallback is allowed,
    /// once more without it.
    async fn read(
        &self,
        http: &reqwest::Client,
        url: &str,
        token: Option<&str>,
        fallback: bool,
        step: Step,
    ) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let Some(token) = token else {
            return send(http.get(url)).await;
        };
        let mut value = HeaderValue::from_str(token)
            .map_err(|_| Failure::Invalid("the session token is not a valid header value"))?;
        value.set_sensitive(true);
        match send(http.get(url).header(TOKEN_HEADER, value)).await {
            Err(failure) if fallback && !matches!(failure, Failure::Status(404)) => {
                tracing::warn!(
                    provider = PROVIDER_NAME,
                    "ECS metadata {} with the session token failed ({}); retrying without a \
                     token (IMDSv1); set {IMDSV1_DISABLED}=true to refuse",
                    step.describe(),
                    failure.describe()
                );
                send(http.get(url)).await
            }
            other => other,
        }
    }
}

impl CredentialsProvider for EcsRamRoleProvider {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.fetch())
    }

    fn serve_stale_on_failure(&self) -> bool {
        EcsRamRoleProvider::serve_stale_on_failure(self)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared with the credentials-URI provider.

/// `true`, in any case, around any whitespace.
pub(super) fn is_true(value: Option<String>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// An HTTP client for a credentials service: the given timeouts, a whole request bounded by the
/// connect timeout plus twice the read timeout, no proxy, no redirect.
pub(super) fn http_client(
    connect: Duration,
    read: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(connect)
        .read_timeout(read)
        .timeout(connect.saturating_add(read.saturating_mul(2)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(crate::retry::USER_AGENT_VALUE)
        .build()
}

/// Sends a request; anything but 200 is [`Failure::Status`]; the body is read up to
/// [`MAX_BODY_BYTES`].
async fn send(request: reqwest::RequestBuilder) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut response = request.send().await.map_err(Failure::Transport)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(Failure::Status(status));
    }
    read_secret_body(&mut response, MAX_BODY_BYTES)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => Failure::TooLarge,
            BodyError::Transport(e) => Failure::Transport(e),
        })
}

/// The JSON both the metadata service and a credentials URI answer.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct ServiceCredentials {
    #[serde(rename = "Code", default)]
    code: Option<String>,
    #[serde(rename = "AccessKeyId", default)]
    access_key_id: Option<String>,
    #[serde(rename = "AccessKeySecret", default)]
    access_key_secret: Option<String>,
    #[serde(rename = "SecurityToken", default)]
    security_token: Option<String>,
    #[serde(rename = "Expiration", default)]
    expiration: Option<String>,
}

/// Parses `{"Code":"Success","AccessKeyId","AccessKeySecret","SecurityToken","Expiration"}`.
/// With `require_token`, the token and the expiration must be there; otherwise a token, if
/// present, still needs an expiration. The error says what is wrong and never quotes a value but
/// `Code`.
pub(super) fn parse_credentials_json(
    body: &[u8],
    require_token: bool,
) -> Result<Credentials, String> {
    let mut answer: ServiceCredentials = serde_json::from_slice(body).map_err(json_error)?;
    match answer.code.as_deref() {
        Some("Success") => {}
        Some(code) => return Err(format!("Code is {}, not \"Success\"", shown(code))),
        None => return Err("the answer has no Code".into()),
    }
    let id = take_field(&mut answer.access_key_id, "AccessKeyId")?;
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("AccessKeyId is not printable ASCII".into());
    }
    let secret = take_field(&mut answer.access_key_secret, "AccessKeySecret")?;
    let token = std::mem::take(&mut answer.security_token).filter(|t| !t.is_empty());
    if require_token && token.is_none() {
        return Err("SecurityToken is missing or empty".into());
    }
    let mut creds = Credentials::new(id, secret);
    let expiration = answer.expiration.as_deref().filter(|e| !e.is_empty());
    match (expiration, &token) {
        (Some(text), _) => {
            let expiry = parse_expiration(text)
                .ok_or("Expiration is not a time like 2021-09-26T03:46:38Z")?;
            creds = creds.with_expiry(expiry);
        }
        (None, Some(_)) => return Err("Expiration is missing or empty".into()),
        (None, None) => {}
    }
    if let Some(token) = token {
        creds = creds.with_security_token(token);
    }
    Ok(creds)
}

fn take_field(field: &mut Option<String>, name: &str) -> Result<String, String> {
    match std::mem::take(field) {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(format!("{name} is missing or empty")),
    }
}

/// Parses `YYYY-MM-DDThh:mm:ssZ`, with or without fractional seconds (any RFC 3339 time).
pub(super) fn parse_expiration(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).ok()
}

/// A JSON error without the input: serde's messages may quote values ("invalid type: string
/// \"...\""), so only the category and the position are kept.
pub(super) fn json_error(e: serde_json::Error) -> String {
    let category = match e.classify() {
        serde_json::error::Category::Io => "I/O",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "truncated",
    };
    format!(
        "the answer is not the expected JSON ({category} error at line {} column {})",
        e.line(),
        e.column()
    )
}

/// A short, printable rendering of an untrusted string that is not a secret (a role name, a
/// `Code`).
pub(super) fn shown(value: &str) -> String {
    if value.len() <= 64 && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        format!("{value:?}")
    } else {
        "<unprintable or too long>".to_string()
    }
}

/// A RAM role name: 1 to 64 characters among letters, digits, `.`, `-`, `_` and `@`, not made
/// of dots only. Checked before the name is put in a URL path.
fn check_role_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_ROLE_NAME {
        return Err("it is longer than 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
    {
        return Err("only letters, digits and . - _ @ are allowed");
    }
    if name.bytes().all(|b| b == b'.') {
        return Err("it is made of dots only");
    }
    Ok(())
}

/// The test-only base URL: `http://` on a loopback host, nothing else.
fn check_test_base_url(raw: &str) -> Result<String, Error> {
    let refuse = |why: &str| {
        Error::credentials_invalid(format!(
            "ECS instance RAM role: the metadata base URL for tests {why}"
        ))
    };
    let url = url::Url::parse(raw.trim()).map_err(|_| refuse("is not a URL"))?;
    if url.scheme() != "http" {
        return Err(refuse("must use http://"));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || !matches!(url.path(), "" | "/")
    {
        return Err(refuse("must be only a scheme, a host and a port"));
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !loopback {
        return Err(refuse("must be on a loopback address"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_checked_before_use_in_a_path() {
        for good in ["MyRole", "ecs-role_1.x", "a@b", "A"] {
            assert!(check_role_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(65);
        for bad in [
            "", ".", "..", "a/b", "../etc", "a b", "a\nb", "a%2F", "rôle", &long,
        ] {
            assert!(check_role_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expiration_with_and_without_milliseconds() {
        let plain = parse_expiration("2021-09-26T03:46:38Z").unwrap();
        assert_eq!(plain.unix_timestamp(), 1_632_627_998);
        let millis = parse_expiration("2021-09-26T03:46:38.250Z").unwrap();
        assert_eq!(millis.unix_timestamp(), 1_632_627_998);
        assert!(parse_expiration("2021-09-26 03:46:38").is_none());
        assert!(parse_expiration("soon").is_none());
    }

    #[test]
    fn json_errors_never_quote_values() {
        let err = parse_credentials_json(
            br#"{"Code":"Success","AccessKeyId":"id","AccessKeySecret":["TOP-SECRET"]}"#,
            false,
        )
        .unwrap_err();
        assert!(!err.contains("TOP-SECRET"), "{err}");
        let err = parse_credentials_json(br#"{"Code":"Success","AccessKeyId":"TOP-SECRET"#, false)
            .unwrap_err();
        assert!(!err.contains("TOP-SECRET"), "{err}");
    }

    #[test]
    fn a_token_needs_an_expiration() {
        let body =
            br#"{"Code":"Success","AccessKeyId":"id","AccessKeySecret":"s","SecurityToken":"t"}"#;
        assert!(parse_credentials_json(body, false).is_err());
        let body = br#"{"Code":"Success","AccessKeyId":"id","AccessKeySecret":"s"}"#;
        let creds = parse_credentials_json(body, false).unwrap();
        assert!(!creds.is_sts() && creds.expiry().is_none());
        assert!(parse_credentials_json(body, true).is_err());
    }

    #[test]
    fn test_base_url_must_be_loopback_http() {
        assert_eq!(
            check_test_base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(check_test_base_url("http://[::1]:9").is_ok());
        for bad in [
            "https://127.0.0.1:1",
            "http://100.100.100.201",
            "http://example.com",
            "http://u:p@127.0.0.1",
            "http://127.0.0.1/x",
            "nonsense",
        ] {
            assert!(check_test_base_url(bad).is_err(), "{bad}");
        }
    }
}
