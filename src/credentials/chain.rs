//! The default chain: the official libraries' order of credential sources.

use std::fmt;
use std::sync::{Arc, OnceLock};

use super::ecs::EcsRamRoleProvider;
use super::ini::IniProvider;
use super::oidc::OidcProvider;
use super::profile::ProfileProvider;
use super::sts;
use super::uri::UriProvider;
use super::{Credentials, CredentialsFuture, CredentialsProvider, Env, EnvironmentProvider};
use crate::error::Error;
use crate::guard::Guard;

/// Variable: the default region of requests (as the CLI reads it).
pub const REGION_ID_VAR: &str = "ALIBABA_CLOUD_REGION_ID";

/// A place the [`DefaultChain`] looks, in the official order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Slot {
    /// `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`,
    /// `ALIBABA_CLOUD_SECURITY_TOKEN` ([`EnvironmentProvider`]).
    Environment,
    /// `ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN`,
    /// `ALIBABA_CLOUD_OIDC_TOKEN_FILE` ([`OidcProvider`]).
    Oidc,
    /// The CLI's `~/.aliyun/config.json` ([`ProfileProvider`]).
    CliProfile,
    /// `~/.alibabacloud/credentials.ini` ([`IniProvider`]).
    IniFile,
    /// The ECS instance RAM role (metadata service).
    EcsRamRole,
    /// `ALIBABA_CLOUD_CREDENTIALS_URI`.
    CredentialsUri,
}

impl Slot {
    /// Every slot, in the chain's order.
    pub const ALL: [Slot; 6] = [
        Slot::Environment,
        Slot::Oidc,
        Slot::CliProfile,
        Slot::IniFile,
        Slot::EcsRamRole,
        Slot::CredentialsUri,
    ];
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::Environment => "environment",
            Slot::Oidc => "OIDC",
            Slot::CliProfile => "CLI profile",
            Slot::IniFile => "INI file",
            Slot::EcsRamRole => "ECS RAM role",
            Slot::CredentialsUri => "credentials URI",
        })
    }
}

/// The official order of credential sources: environment, OIDC (RRSA), CLI profile, INI file,
/// ECS instance RAM role, credentials URI.
///
/// # Which source is used
///
/// Each source answers "not configured" when it is not set up at all (no variables, no file at
/// the default path, a profile turned off): the chain moves on to the next. The first source
/// that gives credentials is **remembered**: later calls go straight to it.
///
/// A source that is set up **wrongly** (half-set variables, an invalid file, an unknown mode, a
/// profile cycle, a failed STS call) **stops the chain with its error**. This is the AWS rule,
/// not the official Alibaba libraries' (they try the next source after any error and report
/// all messages at the end). We chose it deliberately: falling through would silently run the
/// program under another identity (an instance role with other permissions, say) when the
/// intended one is broken, and it would hide the mistake behind an unrelated "nothing found".
/// A profile named by `ALIBABA_CLOUD_PROFILE` that the CLI file lacks is "not configured",
/// since that variable also names the INI section.
///
/// When nothing is found, the error lists what each slot looked at.
///
/// ```
/// use aliyun_guard::credentials::{DefaultChain, Env, Slot};
/// let env = Env::from_vars([
///     ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tExampleKeyIdwxyz"),
///     ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "example-secret"),
/// ]);
/// let chain = DefaultChain::builder()
///     .env(env)
///     .without(Slot::EcsRamRole)
///     .without(Slot::CredentialsUri)
///     .build();
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let creds = chain.resolve().await.unwrap();
/// assert_eq!(creds.provider_name(), "env");
/// assert_eq!(chain.selected(), Some(Slot::Environment));
/// # });
/// ```
#[derive(Clone)]
pub struct DefaultChain {
    env: Env,
    slots: Vec<Slot>,
    guard: Option<Arc<Guard>>,
    chosen: Arc<OnceLock<(Slot, Arc<dyn CredentialsProvider>)>>,
}

impl fmt::Debug for DefaultChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultChain")
            .field("env", &self.env)
            .field("slots", &self.slots)
            .field("selected", &self.selected())
            .finish()
    }
}

impl Default for DefaultChain {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Builds a [`DefaultChain`].
#[derive(Debug, Clone)]
pub struct DefaultChainBuilder {
    env: Env,
    slots: Vec<Slot>,
    guard: Option<Arc<Guard>>,
}

impl DefaultChainBuilder {
    /// Reads variables from `env` (default: the process environment).
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Removes a slot from the chain.
    pub fn without(mut self, slot: Slot) -> Self {
        self.slots.retain(|s| *s != slot);
        self
    }

    /// Shares a guard with the STS calls of role providers (give your client's guard).
    pub fn guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Builds the chain. Nothing is read until the first call.
    pub fn build(self) -> DefaultChain {
        DefaultChain {
            env: self.env,
            slots: self.slots,
            guard: self.guard,
            chosen: Arc::default(),
        }
    }
}

impl DefaultChain {
    /// A chain over every slot, reading the process environment and home directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts building a chain.
    pub fn builder() -> DefaultChainBuilder {
        DefaultChainBuilder {
            env: Env::process(),
            slots: Slot::ALL.to_vec(),
            guard: None,
        }
    }

    /// A chain over every slot, reading the given environment (for tests and embedding).
    pub fn with_env(env: Env) -> Self {
        Self::builder().env(env).build()
    }

    /// The slot whose provider succeeded and is now remembered, if any.
    pub fn selected(&self) -> Option<Slot> {
        self.chosen.get().map(|(slot, _)| *slot)
    }

    /// The default region: `ALIBABA_CLOUD_REGION_ID`, else the CLI profile's `region_id`
    /// (unless the CLI profile slot is removed). Only valid region ids are returned.
    pub fn region(&self) -> Option<String> {
        if let Some(region) = self.env.get(REGION_ID_VAR) {
            return sts::validate_region(&region, REGION_ID_VAR).ok();
        }
        if self.slots.contains(&Slot::CliProfile) {
            return ProfileProvider::from_env(&self.env).region();
        }
        None
    }

    /// The provider of a slot; "not configured" when its variables are absent.
    fn provider(&self, slot: Slot) -> Result<Arc<dyn CredentialsProvider>, Error> {
        Ok(match slot {
            Slot::Environment => Arc::new(EnvironmentProvider::new(self.env.clone())),
            Slot::Oidc => Arc::new(OidcProvider::from_env(&self.env)?),
            Slot::CliProfile => {
                let mut p = ProfileProvider::from_env(&self.env);
                if let Some(guard) = &self.guard {
                    p = p.guard(Arc::clone(guard));
                }
                Arc::new(p)
            }
            Slot::IniFile => {
                let mut p = IniProvider::from_env(&self.env);
                if let Some(guard) = &self.guard {
                    p = p.guard(Arc::clone(guard));
                }
                Arc::new(p)
            }
            Slot::EcsRamRole => Arc::new(EcsRamRoleProvider::from_env(self.env.clone())),
            Slot::CredentialsUri => Arc::new(UriProvider::from_env(self.env.clone())),
        })
    }

    /// Resolves credentials: the remembered provider, else each slot in order. Fails with the
    /// first misconfigured source's error, or with a message listing what each slot looked at.
    pub async fn resolve(&self) -> Result<Credentials, Error> {
        if let Some((_, provider)) = self.chosen.get() {
            return provider.provide_credentials().await;
        }
        let mut looked = Vec::new();
        for &slot in &self.slots {
            let attempt = match self.provider(slot) {
                Ok(provider) => match provider.provide_credentials().await {
                    Ok(creds) => Ok((provider, creds)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match attempt {
                Ok((provider, creds)) => {
                    tracing::debug!(
                        slot = %slot,
                        provider = creds.provider_name(),
                        key = %creds.masked_key_id(),
                        "aliyun-guard: credentials found"
                    );
                    let _ = self.chosen.set((slot, provider));
                    return Ok(creds);
                }
                Err(e) if e.is_not_configured() => {
                    let text = match &e {
                        Error::Credentials { message, .. } => message.clone(),
                        other => other.to_string(),
                    };
                    looked.push(text);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::credentials_not_configured(format!(
            "no credentials found; looked at: {}",
            looked.join("; ")
        )))
    }
}

impl CredentialsProvider for DefaultChain {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.resolve())
    }

    /// As the provider the chain remembered (the ECS instance role serves stale values).
    fn serve_stale_on_failure(&self) -> bool {
        self.chosen
            .get()
            .is_some_and(|(_, provider)| provider.serve_stale_on_failure())
    }
}
