//! OIDC / RRSA: STS `AssumeRoleWithOIDC` with a token file that Kubernetes rotates.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::sts::{self, StsAuth, StsEndpoint, StsSender};
use super::{Credentials, CredentialsFuture, CredentialsProvider, Env};
use crate::error::Error;
use crate::fs_safe::{self, ReadError};
use crate::retry::RetryPolicy;

/// Provider name of credentials minted by AssumeRoleWithOIDC.
pub const OIDC_ROLE_ARN: &str = "oidc_role_arn";
/// Variable: the role to assume.
pub const ROLE_ARN_VAR: &str = "ALIBABA_CLOUD_ROLE_ARN";
/// Variable: the OIDC identity provider's ARN.
pub const OIDC_PROVIDER_ARN_VAR: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
/// Variable: the path of the OIDC token file.
pub const OIDC_TOKEN_FILE_VAR: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";

/// Largest token file read.
const TOKEN_FILE_CAP: u64 = 64 * 1024;
const ACTION: &str = "AssumeRoleWithOIDC";

/// Assumes a RAM role with an OIDC token (RRSA on ACK): STS `AssumeRoleWithOIDC`, sent
/// unsigned (the token is the proof; no AccessKey is involved).
///
/// The token file is read again at every fetch, since Kubernetes rotates it; its content never
/// appears in logs or errors. Answers are capped, and errors are the crate's typed transport
/// and API errors. Provider name `oidc_role_arn`.
///
/// ```no_run
/// # async fn run() -> Result<(), aliyun_guard::Error> {
/// use aliyun_guard::credentials::{CredentialsProvider, Env, OidcProvider};
/// // ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE
/// let provider = OidcProvider::from_env(&Env::process())?;
/// let creds = provider.provide_credentials().await?;
/// # Ok(()) }
/// ```
pub struct OidcProvider {
    role_arn: String,
    oidc_provider_arn: String,
    token_file: PathBuf,
    session_name: String,
    duration: u32,
    policy: Option<String>,
    sts: StsSender,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("role_arn", &self.role_arn)
            .field("oidc_provider_arn", &self.oidc_provider_arn)
            .field("token_file", &self.token_file)
            .field("endpoint", &self.sts.endpoint().as_str())
            .finish_non_exhaustive()
    }
}

/// Builds an [`OidcProvider`].
#[derive(Debug)]
pub struct OidcBuilder {
    role_arn: String,
    oidc_provider_arn: String,
    token_file: PathBuf,
    session_name: Option<String>,
    duration: Option<u32>,
    policy: Option<String>,
    sts: StsEndpoint,
    retry: Option<RetryPolicy>,
    env: Env,
}

impl OidcProvider {
    /// Starts building a provider for `role_arn`, the identity provider `oidc_provider_arn` and
    /// the token at `token_file`.
    pub fn builder(
        role_arn: impl Into<String>,
        oidc_provider_arn: impl Into<String>,
        token_file: impl AsRef<Path>,
    ) -> OidcBuilder {
        OidcBuilder {
            role_arn: role_arn.into(),
            oidc_provider_arn: oidc_provider_arn.into(),
            token_file: token_file.as_ref().to_path_buf(),
            session_name: None,
            duration: None,
            policy: None,
            sts: StsEndpoint::default(),
            retry: None,
            env: Env::process(),
        }
    }

    /// Reads `ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and
    /// `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (and the STS and session-name variables) from `env`.
    ///
    /// None set: not configured. Some but not all: an error naming the missing ones.
    pub fn from_env(env: &Env) -> Result<Self, Error> {
        let vars = [ROLE_ARN_VAR, OIDC_PROVIDER_ARN_VAR, OIDC_TOKEN_FILE_VAR];
        let values: Vec<Option<String>> = vars.iter().map(|v| env.get(v)).collect();
        let missing: Vec<&str> = vars
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        if missing.len() == vars.len() {
            return Err(Error::credentials_not_configured(format!(
                "OIDC: {ROLE_ARN_VAR}, {OIDC_PROVIDER_ARN_VAR} and {OIDC_TOKEN_FILE_VAR} are not set"
            )));
        }
        if !missing.is_empty() {
            return Err(Error::credentials_invalid(format!(
                "OIDC is half configured: {} not set (set {ROLE_ARN_VAR}, \
                 {OIDC_PROVIDER_ARN_VAR} and {OIDC_TOKEN_FILE_VAR}, or none)",
                missing.join(" and ") + if missing.len() == 1 { " is" } else { " are" }
            )));
        }
        let mut values = values.into_iter().flatten();
        let (Some(role), Some(provider), Some(file)) =
            (values.next(), values.next(), values.next())
        else {
            return Err(Error::credentials_invalid("OIDC: variables vanished"));
        };
        Self::builder(role, provider, file).env(env.clone()).build()
    }

    /// Reads the token file: bounded, regular file only, 4 to 20,000 characters once trimmed.
    ///
    /// Unlike the other credential files, symbolic links are followed here: Kubernetes mounts
    /// projected service-account tokens as `token -> ..data/token`, and rotates them by
    /// swapping `..data`. What the links lead to must still be a regular file within the cap.
    fn read_token(&self) -> Result<Zeroizing<String>, Error> {
        let path = self.token_file.display();
        let resolved = match std::fs::canonicalize(&self.token_file) {
            Ok(resolved) => resolved,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::credentials_invalid(format!(
                    "cannot read the OIDC token file {path}: it does not exist"
                )));
            }
            Err(e) => {
                return Err(Error::credentials_source(
                    format!("cannot read the OIDC token file {path}"),
                    e,
                ));
            }
        };
        let bytes = fs_safe::read_regular(&resolved, TOKEN_FILE_CAP).map_err(|e| {
            let message = format!("cannot read the OIDC token file {path}");
            match e {
                ReadError::NotFound => {
                    Error::credentials_invalid(format!("{message}: it does not exist"))
                }
                other => Error::credentials_source(message, other),
            }
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::credentials_invalid(format!("the OIDC token file {path} is not UTF-8"))
        })?;
        let token = text.trim();
        let chars = token.chars().count();
        if !(4..=20_000).contains(&chars) {
            return Err(Error::credentials_invalid(format!(
                "the OIDC token in {path} has {chars} characters; expected 4 to 20,000"
            )));
        }
        Ok(Zeroizing::new(token.to_string()))
    }

    async fn fetch(&self) -> Result<Credentials, Error> {
        let token = self.read_token()?;
        let duration = self.duration.to_string();
        let mut params: Vec<(&str, &str)> = vec![
            ("DurationSeconds", &duration),
            ("OIDCProviderArn", &self.oidc_provider_arn),
            ("OIDCToken", &token),
            ("RoleArn", &self.role_arn),
            ("RoleSessionName", &self.session_name),
        ];
        if let Some(policy) = &self.policy {
            params.push(("Policy", policy));
        }
        // Unsigned: the token is the proof. Minting credentials changes nothing on the server,
        // so a failure after which it may have run is retried as well.
        let answer = self
            .sts
            .call(ACTION, &params, true, StsAuth::Unsigned)
            .await?;
        sts::parse_credentials(&answer, ACTION, OIDC_ROLE_ARN)
    }
}

impl CredentialsProvider for OidcProvider {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.fetch())
    }
}

impl OidcBuilder {
    /// The role session name (default: `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else generated).
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = Some(name.into());
        self
    }

    /// How long the credentials last: 900 to 43,200 seconds (default 3,600).
    pub fn duration_seconds(mut self, seconds: u32) -> Self {
        self.duration = Some(seconds);
        self
    }

    /// A policy narrowing the role's permissions.
    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// The STS endpoint (see [`super::AssumeRoleBuilder::sts_endpoint`]).
    pub fn sts_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.sts.explicit = Some(endpoint.into());
        self
    }

    /// The STS region (default: `ALIBABA_CLOUD_STS_REGION`).
    pub fn sts_region(mut self, region: impl Into<String>) -> Self {
        self.sts.region = Some(region.into());
        self
    }

    /// Uses the VPC STS endpoint when a region is set.
    pub fn sts_vpc(mut self, enabled: bool) -> Self {
        self.sts.vpc = Some(enabled);
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

    /// Checks the settings and resolves the STS endpoint. The token file is read at each fetch,
    /// not here.
    pub fn build(self) -> Result<OidcProvider, Error> {
        let role_arn = sts::validate_role_arn(&self.role_arn, "the OIDC role ARN")?;
        let provider = self.oidc_provider_arn.trim();
        if !provider.starts_with("acs:ram::")
            || provider.len() > 2048
            || !provider.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::credentials_invalid(
                "the OIDC provider ARN is not acs:ram::<account id>:oidc-provider/<name>",
            ));
        }
        if self.token_file.as_os_str().is_empty() {
            return Err(Error::credentials_invalid(
                "the OIDC token file path is empty",
            ));
        }
        Ok(OidcProvider {
            role_arn,
            oidc_provider_arn: provider.to_string(),
            token_file: self.token_file,
            session_name: sts::session_name(self.session_name.as_deref(), &self.env)?,
            duration: sts::validate_duration(self.duration.unwrap_or(sts::DEFAULT_DURATION))?,
            policy: sts::validate_policy(self.policy)?,
            sts: StsSender::new(self.sts.resolve(&self.env)?, self.retry.unwrap_or_default())?,
        })
    }
}
