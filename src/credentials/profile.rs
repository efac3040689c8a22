//! Credentials from the Alibaba Cloud CLI's profile file, `~/.aliyun/config.json`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use super::env::PROFILE;
use super::{Credentials, CredentialsFuture, CredentialsProvider, Env};
use crate::error::Error;

/// Reads a profile of mode `AK` or `StsToken` from the CLI's `config.json`.
///
/// The profile is the one named by `ALIBABA_CLOUD_PROFILE`, else the file's `current`, else one
/// named `default`. A missing file, or a file with none of those, is "not configured"; an
/// unreadable or invalid file, a named profile that does not exist, an unsupported mode or missing
/// fields are errors.
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
/// let creds = ProfileProvider::new(&path).provide_credentials().await.unwrap();
/// assert_eq!(creds.masked_key_id(), "LTAI****wxyz");
/// # });
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ProfileProvider {
    path: Option<PathBuf>,
    profile: Option<String>,
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
}

impl ProfileProvider {
    /// Reads the file at `path`; the profile is chosen by the file's `current` (or `default`).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: Some(path.as_ref().to_path_buf()),
            profile: None,
        }
    }

    /// `$HOME/.aliyun/config.json` and `ALIBABA_CLOUD_PROFILE`, both read from `env`.
    pub fn from_env(env: &Env) -> Self {
        let home = env.get("HOME").or_else(|| env.get("USERPROFILE"));
        Self {
            path: home.map(|h| Path::new(&h).join(".aliyun").join("config.json")),
            profile: env.get(PROFILE),
        }
    }

    /// Selects a profile by name (as `ALIBABA_CLOUD_PROFILE` does).
    pub fn with_profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }

    /// The file this provider reads, if a home directory is known.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl CredentialsProvider for ProfileProvider {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        let result = self.read();
        Box::pin(async move { result })
    }
}

impl ProfileProvider {
    fn read(&self) -> Result<Credentials, Error> {
        let Some(path) = &self.path else {
            return Err(Error::credentials_not_configured(
                "CLI profile: no home directory is known",
            ));
        };
        let not_found = || {
            Error::credentials_not_configured(format!("CLI profile: {} not found", path.display()))
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => {
                return Err(Error::credentials_source(
                    format!("cannot read the profile file {}", path.display()),
                    e,
                ));
            }
        };
        let file: ConfigFile = serde_json::from_slice(&text).map_err(|e| {
            Error::credentials_source(
                format!("the profile file {} is not valid JSON", path.display()),
                e,
            )
        })?;
        let (wanted, explicit) = match (&self.profile, &file.current) {
            (Some(name), _) => (name.clone(), true),
            (None, Some(current)) if !current.is_empty() => (current.clone(), true),
            _ => ("default".to_string(), false),
        };
        let Some(profile) = file.profiles.iter().find(|p| p.name == wanted) else {
            if explicit {
                return Err(Error::credentials_invalid(format!(
                    "profile {wanted:?} is not in {}",
                    path.display()
                )));
            }
            return Err(Error::credentials_not_configured(format!(
                "CLI profile: {} has no current or default profile",
                path.display()
            )));
        };
        let need = |field: &str, value: &str| -> Result<(), Error> {
            if value.is_empty() {
                Err(Error::credentials_invalid(format!(
                    "profile {wanted:?} in {} has no {field}",
                    path.display()
                )))
            } else {
                Ok(())
            }
        };
        match profile.mode.as_str() {
            "AK" | "" => {
                need("access_key_id", &profile.access_key_id)?;
                need("access_key_secret", &profile.access_key_secret)?;
                Ok(Credentials::new(
                    profile.access_key_id.trim(),
                    profile.access_key_secret.as_str(),
                )
                .with_provider_name("cli_profile"))
            }
            "StsToken" => {
                need("access_key_id", &profile.access_key_id)?;
                need("access_key_secret", &profile.access_key_secret)?;
                need("sts_token", &profile.sts_token)?;
                Ok(Credentials::new(
                    profile.access_key_id.trim(),
                    profile.access_key_secret.as_str(),
                )
                .with_security_token(profile.sts_token.as_str())
                .with_provider_name("cli_profile"))
            }
            other => Err(Error::credentials_invalid(format!(
                "profile {wanted:?} in {} uses mode {other:?}, which aliyun-guard does not \
                 support (supported: AK, StsToken)",
                path.display()
            ))),
        }
    }
}
