//! Credentials from the Alibaba Cloud CLI's profile file, `~/.aliyun/config.json`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use super::assume_role::AssumeRoleProvider;
use super::ecs::EcsRamRoleProvider;
use super::env::PROFILE;
use super::oidc::OidcProvider;
use super::process::ProcessProvider;
use super::sts::{self, StsEndpoint};
use super::uri::UriProvider;
use super::{Credentials, CredentialsFuture, CredentialsProvider, Env};
use crate::error::Error;
use crate::fs_safe::{self, ReadError};
use crate::guard::Guard;

/// Variable: the path of the CLI's `config.json`.
pub const CONFIG_FILE_VAR: &str = "ALIBABA_CLOUD_CONFIG_FILE";
/// Variable: `true` turns the CLI profile off.
pub const CLI_PROFILE_DISABLED_VAR: &str = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED";
/// Provider name of AccessKey and STS-token profiles.
pub const CLI_PROFILE: &str = "cli_profile";

/// Largest `config.json` read.
const CONFIG_CAP: u64 = 1024 * 1024;
/// Longest chain of `source_profile` links followed.
const MAX_CHAIN: usize = 8;

/// Sources served by providers that live in other modules (the ECS metadata service, a
/// credentials URI, an external process), as a profile or an INI section names them.
#[derive(Debug, Clone)]
pub(crate) enum Delegated {
    /// An ECS instance RAM role; `None` discovers the role.
    EcsRamRole { role_name: Option<String> },
    /// A credentials URI.
    CredentialsUri { uri: String },
    /// An external process printing credentials.
    External { command: String },
}

/// The provider of a delegated source. `origin` names the profile or section.
pub(crate) fn delegated_provider(
    source: Delegated,
    env: &Env,
    _origin: &str,
) -> Result<Arc<dyn CredentialsProvider>, Error> {
    Ok(match source {
        Delegated::EcsRamRole { role_name } => {
            let mut builder = EcsRamRoleProvider::builder().env(env.clone());
            if let Some(name) = role_name.filter(|n| !n.is_empty()) {
                builder = builder.role_name(name);
            }
            Arc::new(builder.build())
        }
        Delegated::CredentialsUri { uri } => Arc::new(UriProvider::new(uri)),
        Delegated::External { command } => Arc::new(ProcessProvider::new(command)),
    })
}

/// Reads the Alibaba Cloud CLI's `config.json`, in every mode a library can serve.
///
/// The file is `ALIBABA_CLOUD_CONFIG_FILE`, else `~/.aliyun/config.json`; it is read bounded
/// (1 MiB, regular file only). `ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true` turns the provider off.
/// The profile is the one named by [`ProfileProvider::with_profile`], else
/// `ALIBABA_CLOUD_PROFILE`, else the file's `current`, else `default`.
///
/// Modes, matched case-insensitively: `AK`, `StsToken`, `RamRoleArn` (AssumeRole with the
/// profile's AccessKey, honouring `sts_region`, `enable_vpc`, `policy`, `external_id`,
/// `expired_seconds`), `OIDC`, `ChainableRamRoleArn` (AssumeRole with the credentials of
/// `source_profile`, resolved recursively; cycles are refused), `EcsRamRole`, `CredentialsURI`
/// and `External`. `CloudSSO` and `OAuth` need a browser sign-in and are refused with a message
/// saying so.
///
/// Not configured (a chain moves on): no file at the default path, no home directory, the
/// provider disabled, no `current` or `default` profile, or a profile named by
/// `ALIBABA_CLOUD_PROFILE` that the file does not have (the variable also names INI sections).
/// Everything else that is wrong is an error naming the file and profile.
///
/// ```
/// use aliyun_guard::credentials::{CredentialsProvider, ProfileProvider};
/// let dir = std::env::temp_dir().join(format!("aliyun-guard-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("config.json");
/// std::fs::write(&path, r#"{"current": "dev", "profiles": [
///     {"name": "dev", "mode": "AK", "access_key_id": "LTAI5tExampleKeyIdwxyz",
///      "access_key_secret": "example-secret", "region_id": "cn-hangzhou"}]}"#).unwrap();
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let profile = ProfileProvider::new(&path);
/// let creds = profile.provide_credentials().await.unwrap();
/// assert_eq!(creds.masked_key_id(), "LTAI****wxyz");
/// assert_eq!(profile.region().as_deref(), Some("cn-hangzhou"));
/// # });
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ProfileProvider {
    path: Option<PathBuf>,
    /// The path came from `ALIBABA_CLOUD_CONFIG_FILE`: a missing file is an error.
    path_from_var: bool,
    profile: Option<String>,
    /// The profile name came from `ALIBABA_CLOUD_PROFILE`.
    profile_from_env: bool,
    disabled: bool,
    env: Env,
    guard: Option<Arc<Guard>>,
    resolved: Arc<OnceLock<Arc<dyn CredentialsProvider>>>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    current: Option<String>,
    #[serde(default)]
    profiles: Vec<Profile>,
}

#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
struct Profile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    sts_token: String,
    #[serde(default)]
    ram_role_arn: String,
    #[serde(default)]
    ram_session_name: String,
    #[serde(default)]
    #[zeroize(skip)]
    expired_seconds: Option<serde_json::Value>,
    #[serde(default)]
    sts_region: String,
    #[serde(default)]
    enable_vpc: Option<bool>,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    external_id: String,
    #[serde(default)]
    oidc_provider_arn: String,
    #[serde(default)]
    oidc_token_file: String,
    #[serde(default)]
    source_profile: String,
    #[serde(default)]
    ram_role_name: String,
    #[serde(default)]
    credentials_uri: String,
    #[serde(default)]
    process_command: String,
    #[serde(default)]
    region_id: String,
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl ProfileProvider {
    /// Reads the file at `path` (a missing file is "not configured"); the profile is chosen by
    /// the file's `current` (or `default`). Other variables are read from the process.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: Some(path.as_ref().to_path_buf()),
            path_from_var: false,
            profile: None,
            profile_from_env: false,
            disabled: false,
            env: Env::process(),
            guard: None,
            resolved: Arc::default(),
        }
    }

    /// `ALIBABA_CLOUD_CONFIG_FILE` (else `$HOME/.aliyun/config.json`), `ALIBABA_CLOUD_PROFILE`,
    /// `ALIBABA_CLOUD_CLI_PROFILE_DISABLED` and the STS variables, all read from `env`.
    pub fn from_env(env: &Env) -> Self {
        let (path, path_from_var) = match env.get(CONFIG_FILE_VAR) {
            Some(path) => (Some(PathBuf::from(path)), true),
            None => {
                let home = env.get("HOME").or_else(|| env.get("USERPROFILE"));
                (
                    home.map(|h| Path::new(&h).join(".aliyun").join("config.json")),
                    false,
                )
            }
        };
        let profile = env.get(PROFILE);
        Self {
            path,
            path_from_var,
            profile_from_env: profile.is_some(),
            profile,
            disabled: sts::env_flag(env, CLI_PROFILE_DISABLED_VAR),
            env: env.clone(),
            guard: None,
            resolved: Arc::default(),
        }
    }

    /// Selects a profile by name; a name given here that the file lacks is an error.
    pub fn with_profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self.profile_from_env = false;
        self.resolved = Arc::default();
        self
    }

    /// Shares a guard with the STS calls of role profiles.
    pub fn guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = Some(guard);
        self.resolved = Arc::default();
        self
    }

    /// The file this provider reads, if one is known.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The selected profile's `region_id`, to use as the client's default region; `None` when
    /// the file, the profile or a valid region id is missing.
    pub fn region(&self) -> Option<String> {
        let (file, path) = self.load().ok()?;
        let profile = self.select(&file, &path).ok()?;
        let region = non_empty(&profile.region_id)?;
        sts::validate_region(&region, "region_id").ok()
    }

    fn load(&self) -> Result<(ConfigFile, PathBuf), Error> {
        if self.disabled {
            return Err(Error::credentials_not_configured(format!(
                "CLI profile: disabled by {CLI_PROFILE_DISABLED_VAR}"
            )));
        }
        let Some(path) = &self.path else {
            return Err(Error::credentials_not_configured(
                "CLI profile: no home directory is known",
            ));
        };
        let bytes = match fs_safe::read_regular(path, CONFIG_CAP) {
            Ok(bytes) => bytes,
            Err(ReadError::NotFound) if !self.path_from_var => {
                return Err(Error::credentials_not_configured(format!(
                    "CLI profile: {} not found",
                    path.display()
                )));
            }
            Err(ReadError::NotFound) => {
                return Err(Error::credentials_invalid(format!(
                    "{CONFIG_FILE_VAR} names {}, which does not exist",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(Error::credentials_source(
                    format!("cannot read the profile file {}", path.display()),
                    e,
                ));
            }
        };
        let file: ConfigFile = serde_json::from_slice(&bytes).map_err(|e| {
            // serde's message can quote a value: keep only where it failed.
            Error::credentials_invalid(format!(
                "the profile file {} is not valid JSON (line {}, column {})",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        Ok((file, path.clone()))
    }

    fn select<'a>(&self, file: &'a ConfigFile, path: &Path) -> Result<&'a Profile, Error> {
        let (wanted, explicit) = match (&self.profile, &file.current) {
            (Some(name), _) => (name.as_str(), true),
            (None, Some(current)) if !current.is_empty() => (current.as_str(), true),
            _ => ("default", false),
        };
        match file.profiles.iter().find(|p| p.name == wanted) {
            Some(profile) => Ok(profile),
            None if self.profile_from_env => Err(Error::credentials_not_configured(format!(
                "CLI profile: profile {wanted:?} (from {PROFILE}) is not in {}",
                path.display()
            ))),
            None if explicit => Err(Error::credentials_invalid(format!(
                "profile {wanted:?} is not in {}",
                path.display()
            ))),
            None => Err(Error::credentials_not_configured(format!(
                "CLI profile: {} has no current or default profile",
                path.display()
            ))),
        }
    }

    fn resolve(&self) -> Result<Arc<dyn CredentialsProvider>, Error> {
        if let Some(done) = self.resolved.get() {
            return Ok(Arc::clone(done));
        }
        let (file, path) = self.load()?;
        let profile = self.select(&file, &path)?;
        let mut visited = Vec::new();
        let provider = self.build(&file, &path, profile, &mut visited)?;
        Ok(Arc::clone(self.resolved.get_or_init(|| provider)))
    }

    /// The provider of `profile`; `visited` holds the profiles that led here.
    fn build(
        &self,
        file: &ConfigFile,
        path: &Path,
        profile: &Profile,
        visited: &mut Vec<String>,
    ) -> Result<Arc<dyn CredentialsProvider>, Error> {
        let name = profile.name.as_str();
        let origin = format!("profile {name:?} in {}", path.display());
        let need = |field: &str, value: &str| -> Result<String, Error> {
            non_empty(value)
                .ok_or_else(|| Error::credentials_invalid(format!("{origin} has no {field}")))
        };
        let access_key = || -> Result<Credentials, Error> {
            let id = need("access_key_id", &profile.access_key_id)?;
            let secret = need("access_key_secret", &profile.access_key_secret)?;
            Ok(Credentials::new(id, secret).with_provider_name(CLI_PROFILE))
        };
        // A number as the CLI writes it, or a string as people write it; 0 means the default.
        let duration = match &profile.expired_seconds {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
            Some(serde_json::Value::String(s)) => Some(s.trim().parse().unwrap_or(u64::MAX)),
            Some(_) => Some(u64::MAX),
        };
        let duration = match duration {
            None | Some(0) => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| {
                Error::credentials_invalid(format!(
                    "{origin}: expired_seconds is not a number of seconds"
                ))
            })?),
        };
        let sts = StsEndpoint {
            explicit: None,
            region: non_empty(&profile.sts_region),
            vpc: profile.enable_vpc,
        };
        let assume_role =
            |parent: Arc<dyn CredentialsProvider>| -> Result<Arc<dyn CredentialsProvider>, Error> {
                let role_arn = need("ram_role_arn", &profile.ram_role_arn)?;
                let mut builder = AssumeRoleProvider::builder(parent, role_arn)
                    .env(self.env.clone())
                    .sts(sts.clone())
                    .maybe_guard(self.guard.clone());
                if let Some(n) = non_empty(&profile.ram_session_name) {
                    builder = builder.session_name(n);
                }
                if let Some(d) = duration {
                    builder = builder.duration_seconds(d);
                }
                if let Some(p) = non_empty(&profile.policy) {
                    builder = builder.policy(p);
                }
                if let Some(e) = non_empty(&profile.external_id) {
                    builder = builder.external_id(e);
                }
                let provider = builder.build().map_err(|e| prefix(e, &origin))?;
                Ok(Arc::new(provider))
            };
        let mode = profile.mode.trim().to_ascii_lowercase();
        match mode.as_str() {
            "ak" | "" => Ok(Arc::new(access_key()?)),
            "ststoken" => {
                let token = need("sts_token", &profile.sts_token)?;
                Ok(Arc::new(access_key()?.with_security_token(token)))
            }
            "ramrolearn" => assume_role(Arc::new(access_key()?)),
            "chainableramrolearn" => {
                let source = need("source_profile", &profile.source_profile)?;
                visited.push(name.to_string());
                if visited.contains(&source) {
                    let mut cycle = visited.clone();
                    cycle.push(source);
                    return Err(Error::credentials_invalid(format!(
                        "the profiles in {} form a cycle through source_profile: {}",
                        path.display(),
                        cycle.join(" -> ")
                    )));
                }
                if visited.len() >= MAX_CHAIN {
                    return Err(Error::credentials_invalid(format!(
                        "{origin}: source_profile chains longer than {MAX_CHAIN} are refused"
                    )));
                }
                let Some(parent) = file.profiles.iter().find(|p| p.name == source) else {
                    return Err(Error::credentials_invalid(format!(
                        "{origin} names source_profile {source:?}, which is not in the file"
                    )));
                };
                let parent = self.build(file, path, parent, visited)?;
                assume_role(parent)
            }
            "oidc" => {
                let mut builder = OidcProvider::builder(
                    need("ram_role_arn", &profile.ram_role_arn)?,
                    need("oidc_provider_arn", &profile.oidc_provider_arn)?,
                    need("oidc_token_file", &profile.oidc_token_file)?,
                )
                .env(self.env.clone())
                .sts(sts.clone());
                if let Some(n) = non_empty(&profile.ram_session_name) {
                    builder = builder.session_name(n);
                }
                if let Some(d) = duration {
                    builder = builder.duration_seconds(d);
                }
                if let Some(p) = non_empty(&profile.policy) {
                    builder = builder.policy(p);
                }
                Ok(Arc::new(builder.build().map_err(|e| prefix(e, &origin))?))
            }
            "ecsramrole" => delegated_provider(
                Delegated::EcsRamRole {
                    role_name: non_empty(&profile.ram_role_name),
                },
                &self.env,
                &origin,
            ),
            "credentialsuri" => delegated_provider(
                Delegated::CredentialsUri {
                    uri: need("credentials_uri", &profile.credentials_uri)?,
                },
                &self.env,
                &origin,
            ),
            "external" => delegated_provider(
                Delegated::External {
                    command: need("process_command", &profile.process_command)?,
                },
                &self.env,
                &origin,
            ),
            "cloudsso" | "oauth" => Err(Error::credentials_invalid(format!(
                "{origin} uses mode {:?}, which needs an interactive browser sign-in that only \
                 the aliyun CLI can do; a library cannot. Use the CLI for it, or give this \
                 program another mode (AK, StsToken, RamRoleArn, OIDC, EcsRamRole, ...)",
                profile.mode
            ))),
            _ => Err(Error::credentials_invalid(format!(
                "{origin} uses mode {:?}, which aliyun-guard does not know (known: AK, \
                 StsToken, RamRoleArn, ChainableRamRoleArn, OIDC, EcsRamRole, CredentialsURI, \
                 External)",
                profile.mode.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// Prefixes a credentials error's message with where it was configured.
pub(crate) fn prefix(error: Error, origin: &str) -> Error {
    match error {
        Error::Credentials {
            kind,
            message,
            source,
        } => Error::credentials_kind(kind, format!("{origin}: {message}"), source),
        other => other,
    }
}

impl CredentialsProvider for ProfileProvider {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            let provider = self.resolve()?;
            provider.provide_credentials().await
        })
    }

    /// As the provider the profile resolved to (an ECS instance role serves stale values).
    fn serve_stale_on_failure(&self) -> bool {
        self.resolved
            .get()
            .is_some_and(|provider| provider.serve_stale_on_failure())
    }
}
