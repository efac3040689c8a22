//! Credentials from environment variables, through an injectable [`Env`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::{Credentials, CredentialsFuture, CredentialsProvider};
use crate::error::Error;

/// Name of the variable holding the AccessKey ID.
pub const ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// Name of the variable holding the AccessKey secret.
pub const ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// Name of the variable holding an STS security token.
pub const SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";
/// Name of the variable selecting a CLI profile.
pub const PROFILE: &str = "ALIBABA_CLOUD_PROFILE";

/// A view of environment variables: the process environment, or a fixed map for tests.
///
/// Its `Debug` lists variable names only, never values.
///
/// ```
/// use aliyun_guard::credentials::Env;
/// let env = Env::from_vars([("ALIBABA_CLOUD_PROFILE", "prod")]);
/// assert_eq!(env.get("ALIBABA_CLOUD_PROFILE").as_deref(), Some("prod"));
/// assert_eq!(env.get("HOME"), None);
/// ```
#[derive(Clone, Default)]
pub struct Env {
    vars: Option<Arc<HashMap<String, String>>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { vars: None }
    }

    /// A fixed set of variables; nothing else is visible.
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: Some(Arc::new(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            )),
        }
    }

    /// The value of `name`; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.vars {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.is_empty())
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.vars {
            None => f.write_str("Env(process)"),
            Some(map) => {
                let mut names: Vec<&String> = map.keys().collect();
                names.sort();
                f.debug_tuple("Env").field(&names).finish()
            }
        }
    }
}

/// Reads `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and the optional
/// `ALIBABA_CLOUD_SECURITY_TOKEN`.
///
/// None of them set: not configured. Only one of id and secret set, or a token without a key:
/// an error naming the missing variable.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentProvider {
    env: Env,
}

impl EnvironmentProvider {
    /// A provider reading `env`.
    pub fn new(env: Env) -> Self {
        Self { env }
    }
}

impl CredentialsProvider for EnvironmentProvider {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        let result = self.read();
        Box::pin(async move { result })
    }
}

impl EnvironmentProvider {
    fn read(&self) -> Result<Credentials, Error> {
        let id = self.env.get(ACCESS_KEY_ID);
        let secret = self.env.get(ACCESS_KEY_SECRET);
        let token = self.env.get(SECURITY_TOKEN);
        match (id, secret) {
            (Some(id), Some(secret)) => {
                let mut creds = Credentials::new(id.trim(), secret);
                if let Some(token) = token {
                    creds = creds.with_security_token(token);
                }
                Ok(creds.with_provider_name("env"))
            }
            (Some(_), None) => Err(Error::credentials_invalid(format!(
                "{ACCESS_KEY_ID} is set but {ACCESS_KEY_SECRET} is not: set both, or neither"
            ))),
            (None, Some(_)) => Err(Error::credentials_invalid(format!(
                "{ACCESS_KEY_SECRET} is set but {ACCESS_KEY_ID} is not: set both, or neither"
            ))),
            (None, None) if token.is_some() => Err(Error::credentials_invalid(format!(
                "{SECURITY_TOKEN} is set but {ACCESS_KEY_ID} and {ACCESS_KEY_SECRET} are not"
            ))),
            (None, None) => Err(Error::credentials_not_configured(format!(
                "environment: {ACCESS_KEY_ID} and {ACCESS_KEY_SECRET} are not set"
            ))),
        }
    }
}
