//! AssumeRole: temporary credentials of a RAM role, minted by STS from a parent credential.

use std::fmt;
use std::sync::Arc;

use super::sts::{self, StsAuth, StsEndpoint, StsSender};
use super::{Credentials, CredentialsFuture, CredentialsProvider, Env};
use crate::error::Error;
use crate::guard::Guard;
use crate::retry::{self, RetryPolicy};

/// Provider name of credentials minted by AssumeRole.
pub const RAM_ROLE_ARN: &str = "ram_role_arn";

const ACTION: &str = "AssumeRole";

/// Assumes a RAM role with credentials from another provider (the parent).
///
/// Every fetch asks the parent for credentials and calls STS `AssumeRole` with them, signed by
/// this crate's signer (anew for every attempt) with the client's rules: the same retries,
/// timeouts, body cap, typed and redacted errors, and [`Guard`] (share yours with
/// [`AssumeRoleBuilder::guard`]). A call with a parent key the guard knows to be compromised is
/// refused before sending when its policy blocks STS calls; a leak answer to the STS call is an
/// [`Error::CompromisedKey`] and marks the parent key in that guard.
///
/// The credentials carry an expiry, the provider name `ram_role_arn` and, as parent key id, the
/// long-lived AccessKey they come from (for chained roles, the first parent's key). Wrap the
/// provider in a cache: every fetch is an STS call.
///
/// ```no_run
/// # async fn run() -> Result<(), aliyun_guard::Error> {
/// use aliyun_guard::Credentials;
/// use aliyun_guard::credentials::{AssumeRoleProvider, CredentialsProvider};
///
/// let parent = Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret");
/// let role = AssumeRoleProvider::builder(parent, "acs:ram::123456789012:role/reader")
///     .session_name("nightly-report")
///     .duration_seconds(3600)
///     .sts_region("cn-hangzhou")
///     .build()?;
/// let creds = role.provide_credentials().await?;
/// assert!(creds.is_sts());
/// # Ok(()) }
/// ```
pub struct AssumeRoleProvider {
    parent: Arc<dyn CredentialsProvider>,
    role_arn: String,
    session_name: String,
    duration: u32,
    policy: Option<String>,
    external_id: Option<String>,
    guard: Arc<Guard>,
    sts: StsSender,
}

impl fmt::Debug for AssumeRoleProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRoleProvider")
            .field("role_arn", &self.role_arn)
            .field("session_name", &self.session_name)
            .field("duration", &self.duration)
            .field("endpoint", &self.endpoint())
            .field("parent", &self.parent)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AssumeRoleProvider`].
pub struct AssumeRoleBuilder {
    parent: Arc<dyn CredentialsProvider>,
    role_arn: String,
    session_name: Option<String>,
    duration: Option<u32>,
    policy: Option<String>,
    external_id: Option<String>,
    sts: StsEndpoint,
    guard: Option<Arc<Guard>>,
    retry: Option<RetryPolicy>,
    env: Env,
}

impl fmt::Debug for AssumeRoleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRoleBuilder")
            .field("role_arn", &self.role_arn)
            .field("parent", &self.parent)
            .finish_non_exhaustive()
    }
}

impl AssumeRoleProvider {
    /// Starts building a provider assuming `role_arn` (`acs:ram::<account>:role/<name>`) with
    /// credentials from `parent`.
    pub fn builder(
        parent: impl CredentialsProvider + 'static,
        role_arn: impl Into<String>,
    ) -> AssumeRoleBuilder {
        AssumeRoleBuilder {
            parent: Arc::new(parent),
            role_arn: role_arn.into(),
            session_name: None,
            duration: None,
            policy: None,
            external_id: None,
            sts: StsEndpoint::default(),
            guard: None,
            retry: None,
            env: Env::process(),
        }
    }

    /// The role assumed.
    pub fn role_arn(&self) -> &str {
        &self.role_arn
    }

    /// The STS endpoint called, as a URL.
    ///
    /// ```
    /// use aliyun_guard::Credentials;
    /// use aliyun_guard::credentials::{AssumeRoleProvider, Env};
    /// let role = AssumeRoleProvider::builder(Credentials::new("id", "secret"), "acs:ram::1:role/r")
    ///     .sts_region("cn-shanghai")
    ///     .env(Env::from_vars::<&str, &str>([]))
    ///     .build()?;
    /// assert_eq!(role.endpoint(), "https://sts.cn-shanghai.aliyuncs.com/");
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn endpoint(&self) -> &str {
        self.sts.endpoint().as_str()
    }

    async fn fetch(&self) -> Result<Credentials, Error> {
        let parent = self.parent.provide_credentials().await?;
        parent.validate()?;
        // Chained roles point at the long-lived key at the root of the chain.
        let parent_key_id = parent
            .parent_key_id()
            .unwrap_or(parent.access_key_id())
            .to_string();
        let duration = self.duration.to_string();
        let mut params = vec![
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", self.session_name.as_str()),
            ("DurationSeconds", duration.as_str()),
        ];
        if let Some(policy) = &self.policy {
            params.push(("Policy", policy.as_str()));
        }
        if let Some(external_id) = &self.external_id {
            params.push(("ExternalId", external_id.as_str()));
        }
        // Signed with exactly the parent credentials fetched above. Retried as the client
        // retries a call that is not idempotent: only failures showing it did not run.
        let auth = StsAuth::Signed {
            credentials: &parent,
            guard: &self.guard,
        };
        let idempotent = retry::is_read_only(ACTION);
        let answer = self.sts.call(ACTION, &params, idempotent, auth).await?;
        let creds = sts::parse_credentials(&answer, ACTION, RAM_ROLE_ARN)?;
        tracing::debug!(
            role = %self.role_arn,
            key = %creds.masked_key_id(),
            parent = %super::mask_key_id(&parent_key_id),
            "aliyun-guard: assumed a RAM role"
        );
        Ok(creds.with_parent_key_id(parent_key_id))
    }
}

impl CredentialsProvider for AssumeRoleProvider {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.fetch())
    }
}

impl AssumeRoleBuilder {
    /// The role session name (default: `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else generated);
    /// 2 to 64 characters of `[A-Za-z0-9.@_-]`.
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = Some(name.into());
        self
    }

    /// How long the credentials last: 900 to 43,200 seconds (default 3,600; the role's maximum
    /// session duration also applies).
    pub fn duration_seconds(mut self, seconds: u32) -> Self {
        self.duration = Some(seconds);
        self
    }

    /// A policy narrowing the role's permissions (JSON, at most 2,048 characters).
    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// The external id the role's trust policy asks for (2 to 1,224 characters).
    pub fn external_id(mut self, external_id: impl Into<String>) -> Self {
        self.external_id = Some(external_id.into());
        self
    }

    /// The STS endpoint: a host (HTTPS) or a URL (`http://` only when written out). Default:
    /// `ALIBABA_CLOUD_STS_ENDPOINT`, else from the region, else `sts.aliyuncs.com`.
    pub fn sts_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.sts.explicit = Some(endpoint.into());
        self
    }

    /// The STS region: `sts.<region>.aliyuncs.com` (default: `ALIBABA_CLOUD_STS_REGION`).
    pub fn sts_region(mut self, region: impl Into<String>) -> Self {
        self.sts.region = Some(region.into());
        self
    }

    /// Uses `sts-vpc.<region>.aliyuncs.com` when a region is set (default:
    /// `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`).
    pub fn sts_vpc(mut self, enabled: bool) -> Self {
        self.sts.vpc = Some(enabled);
        self
    }

    /// Shares a guard with the STS calls (default: a new one). Share your client's guard, so
    /// that a leak answer from STS marks the parent key where your calls check it.
    pub fn guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Retry policy of the STS calls (default: the client's).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Reads `ALIBABA_CLOUD_*` variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    pub(crate) fn sts(mut self, sts: StsEndpoint) -> Self {
        self.sts = sts;
        self
    }

    pub(crate) fn maybe_guard(mut self, guard: Option<Arc<Guard>>) -> Self {
        self.guard = guard.or(self.guard);
        self
    }

    /// Checks the settings and resolves the STS endpoint.
    pub fn build(self) -> Result<AssumeRoleProvider, Error> {
        let role_arn = sts::validate_role_arn(&self.role_arn, "the role ARN")?;
        let session_name = sts::session_name(self.session_name.as_deref(), &self.env)?;
        let duration = sts::validate_duration(self.duration.unwrap_or(sts::DEFAULT_DURATION))?;
        let policy = sts::validate_policy(self.policy)?;
        let external_id = match self.external_id.filter(|e| !e.is_empty()) {
            Some(e) if !(2..=1224).contains(&e.chars().count()) => {
                return Err(Error::credentials_invalid(
                    "the external id must be 2 to 1,224 characters",
                ));
            }
            other => other,
        };
        let endpoint = self.sts.resolve(&self.env)?;
        Ok(AssumeRoleProvider {
            parent: self.parent,
            role_arn,
            session_name,
            duration,
            policy,
            external_id,
            guard: self.guard.unwrap_or_default(),
            sts: StsSender::new(endpoint, self.retry.unwrap_or_default())?,
        })
    }
}
