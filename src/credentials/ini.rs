//! Credentials from the official libraries' INI file, `~/.alibabacloud/credentials.ini`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use zeroize::Zeroizing;

use super::assume_role::AssumeRoleProvider;
use super::env::PROFILE;
use super::oidc::OidcProvider;
use super::profile::{Delegated, delegated_provider, prefix};
use super::sts::StsEndpoint;
use super::{Credentials, CredentialsFuture, CredentialsProvider, Env};
use crate::error::Error;
use crate::fs_safe::{self, ReadError};
use crate::guard::Guard;

/// Variable: the path of the INI credentials file.
pub const CREDENTIALS_FILE_VAR: &str = "ALIBABA_CLOUD_CREDENTIALS_FILE";
/// Provider name of AccessKey sections.
pub const INI_PROFILE: &str = "profile";

/// Largest INI file read.
const INI_CAP: u64 = 1024 * 1024;

/// Reads a section of the INI credentials file the official libraries share.
///
/// The file is `ALIBABA_CLOUD_CREDENTIALS_FILE`, else `~/.alibabacloud/credentials.ini`
/// (Python, Java), else `~/.alibabacloud/credentials` (Go, Node); the section is
/// `ALIBABA_CLOUD_PROFILE`, else `default`. A section with `enable = false` is skipped. Types:
/// `access_key`, `ram_role_arn` (AssumeRole with the section's AccessKey), `oidc_role_arn` and
/// `ecs_ram_role`. Inline comments (`#` or `;` after a space) are stripped from values.
///
/// ```
/// use aliyun_guard::credentials::{CredentialsProvider, Env, IniProvider};
/// let dir = std::env::temp_dir().join(format!("aliyun-guard-ini-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("credentials.ini");
/// std::fs::write(&path, "[default]\nenable = true\ntype = access_key  # long-lived\n\
///     access_key_id = LTAI5tExampleKeyIdwxyz\naccess_key_secret = example-secret\n").unwrap();
/// let env = Env::from_vars([("ALIBABA_CLOUD_CREDENTIALS_FILE", path.to_str().unwrap())]);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let creds = IniProvider::from_env(&env).provide_credentials().await.unwrap();
/// assert_eq!(creds.masked_key_id(), "LTAI****wxyz");
/// assert_eq!(creds.provider_name(), "profile");
/// # });
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct IniProvider {
    env: Env,
    guard: Option<Arc<Guard>>,
    resolved: Arc<OnceLock<Arc<dyn CredentialsProvider>>>,
}

/// Sections by name, each a map of keys (lower case) to values; zeroed when dropped.
type Sections = HashMap<String, HashMap<String, Zeroizing<String>>>;

/// Parses INI text: `[section]` headers, `key = value` (or `key: value`) lines, whole-line
/// comments starting with `#` or `;`, inline comments after a space. The first section of a
/// name wins; keys before any section are ignored. Errors name the line, never its content.
fn parse(text: &str) -> Result<Sections, String> {
    let mut sections: Sections = HashMap::new();
    let mut current: Option<String> = None;
    let mut skipping = false;
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return Err(format!("line {}: a section header without ']'", number + 1));
            };
            let name = rest[..end].trim().to_string();
            skipping = sections.contains_key(&name);
            if !skipping {
                sections.insert(name.clone(), HashMap::new());
            }
            current = Some(name);
            continue;
        }
        let Some(at) = line.find(['=', ':']) else {
            return Err(format!(
                "line {}: neither a section nor key = value",
                number + 1
            ));
        };
        let key = line[..at].trim().to_ascii_lowercase();
        let mut value = &line[at + 1..];
        if let Some(comment) = value
            .char_indices()
            .find(|&(i, c)| (c == '#' || c == ';') && value[..i].ends_with(char::is_whitespace))
            .map(|(i, _)| i)
        {
            value = &value[..comment];
        }
        let value = value.trim();
        if let (Some(name), false) = (&current, skipping)
            && let Some(section) = sections.get_mut(name)
        {
            section
                .entry(key)
                .or_insert_with(|| Zeroizing::new(value.to_string()));
        }
    }
    Ok(sections)
}

impl IniProvider {
    /// Reads `ALIBABA_CLOUD_CREDENTIALS_FILE`, `HOME`, `ALIBABA_CLOUD_PROFILE` and the STS
    /// variables from `env`.
    pub fn from_env(env: &Env) -> Self {
        Self {
            env: env.clone(),
            guard: None,
            resolved: Arc::default(),
        }
    }

    /// Shares a guard with the STS calls of `ram_role_arn` sections.
    pub fn guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = Some(guard);
        self.resolved = Arc::default();
        self
    }

    /// The file to read, and whether a variable named it.
    fn locate(&self) -> Result<(PathBuf, bool), Error> {
        if let Some(path) = self.env.get(CREDENTIALS_FILE_VAR) {
            return Ok((PathBuf::from(path), true));
        }
        let Some(home) = self.env.get("HOME").or_else(|| self.env.get("USERPROFILE")) else {
            return Err(Error::credentials_not_configured(format!(
                "INI file: {CREDENTIALS_FILE_VAR} is not set and no home directory is known"
            )));
        };
        let dir = Path::new(&home).join(".alibabacloud");
        let ini = dir.join("credentials.ini");
        let plain = dir.join("credentials");
        for candidate in [&ini, &plain] {
            // symlink_metadata: a link or anything else that exists is read (and refused) below.
            if std::fs::symlink_metadata(candidate).is_ok() {
                return Ok((candidate.clone(), false));
            }
        }
        Err(Error::credentials_not_configured(format!(
            "INI file: {CREDENTIALS_FILE_VAR} is not set, and neither {} nor {} exists",
            ini.display(),
            plain.display()
        )))
    }

    fn resolve(&self) -> Result<Arc<dyn CredentialsProvider>, Error> {
        if let Some(done) = self.resolved.get() {
            return Ok(Arc::clone(done));
        }
        let (path, from_var) = self.locate()?;
        let bytes = match fs_safe::read_regular(&path, INI_CAP) {
            Ok(bytes) => bytes,
            Err(ReadError::NotFound) if from_var => {
                return Err(Error::credentials_invalid(format!(
                    "{CREDENTIALS_FILE_VAR} names {}, which does not exist",
                    path.display()
                )));
            }
            Err(ReadError::NotFound) => {
                return Err(Error::credentials_not_configured(format!(
                    "INI file: {} not found",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(Error::credentials_source(
                    format!("cannot read the credentials file {}", path.display()),
                    e,
                ));
            }
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::credentials_invalid(format!(
                "the credentials file {} is not UTF-8",
                path.display()
            ))
        })?;
        let sections = parse(text).map_err(|e| {
            Error::credentials_invalid(format!(
                "the credentials file {} is not valid INI: {e}",
                path.display()
            ))
        })?;
        let name = self
            .env
            .get(PROFILE)
            .unwrap_or_else(|| "default".to_string());
        let Some(section) = sections.get(&name) else {
            return Err(Error::credentials_not_configured(format!(
                "INI file: {} has no section [{name}]",
                path.display()
            )));
        };
        let origin = format!("section [{name}] of {}", path.display());
        let get = |key: &str| {
            section
                .get(key)
                .map(|v| v.as_str())
                .filter(|v| !v.is_empty())
        };
        if get("enable").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
            return Err(Error::credentials_not_configured(format!(
                "INI file: {origin} has enable = false"
            )));
        }
        let need = |key: &str| -> Result<String, Error> {
            get(key)
                .map(str::to_string)
                .ok_or_else(|| Error::credentials_invalid(format!("{origin} has no {key}")))
        };
        let access_key = || -> Result<Credentials, Error> {
            Ok(
                Credentials::new(need("access_key_id")?, need("access_key_secret")?)
                    .with_provider_name(INI_PROFILE),
            )
        };
        let sts = StsEndpoint {
            explicit: None,
            region: get("sts_region").map(str::to_string),
            vpc: get("enable_vpc").map(|v| v.eq_ignore_ascii_case("true")),
        };
        let kind = need("type")?;
        let provider: Arc<dyn CredentialsProvider> = match kind.as_str() {
            "access_key" => Arc::new(access_key()?),
            "ram_role_arn" => {
                let mut builder = AssumeRoleProvider::builder(access_key()?, need("role_arn")?)
                    .env(self.env.clone())
                    .sts(sts)
                    .maybe_guard(self.guard.clone());
                if let Some(n) = get("role_session_name") {
                    builder = builder.session_name(n);
                }
                if let Some(p) = get("policy") {
                    builder = builder.policy(p);
                }
                if let Some(e) = get("external_id") {
                    builder = builder.external_id(e);
                }
                Arc::new(builder.build().map_err(|e| prefix(e, &origin))?)
            }
            "oidc_role_arn" => {
                let token_file = get("oidc_token_file_path")
                    .or_else(|| get("oidc_token_file"))
                    .ok_or_else(|| {
                        Error::credentials_invalid(format!("{origin} has no oidc_token_file_path"))
                    })?;
                let mut builder = OidcProvider::builder(
                    need("role_arn")?,
                    need("oidc_provider_arn")?,
                    token_file,
                )
                .env(self.env.clone())
                .sts(sts);
                if let Some(n) = get("role_session_name") {
                    builder = builder.session_name(n);
                }
                if let Some(p) = get("policy") {
                    builder = builder.policy(p);
                }
                Arc::new(builder.build().map_err(|e| prefix(e, &origin))?)
            }
            "ecs_ram_role" => delegated_provider(
                Delegated::EcsRamRole {
                    role_name: get("role_name").map(str::to_string),
                },
                &self.env,
                &origin,
            )?,
            other => {
                return Err(Error::credentials_invalid(format!(
                    "{origin} has type {:?}; known types: access_key, ram_role_arn, \
                     oidc_role_arn, ecs_ram_role",
                    other.chars().take(40).collect::<String>()
                )));
            }
        };
        Ok(Arc::clone(self.resolved.get_or_init(|| provider)))
    }
}

impl CredentialsProvider for IniProvider {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_comments_and_first_wins() {
        let text = "top = ignored\n; comment\n# comment\n[default]\nenable = true ; on\n\
                    type = access_key   # the kind\naccess_key_id=LTAI#notacomment\n\
                    Access_Key_Secret : s;x\n[default]\ntype = other\n[ram]\nrole_arn = a # b\n";
        let sections = parse(text).unwrap();
        let d = &sections["default"];
        assert_eq!(d["enable"].as_str(), "true");
        assert_eq!(d["type"].as_str(), "access_key");
        assert_eq!(d["access_key_id"].as_str(), "LTAI#notacomment");
        assert_eq!(d["access_key_secret"].as_str(), "s;x");
        assert_eq!(sections["ram"]["role_arn"].as_str(), "a");
        assert!(!sections.contains_key(""));
    }

    #[test]
    fn errors_name_the_line_not_its_content() {
        let err = parse("[default]\nSECRET-LINE-WITHOUT-EQUALS\n").unwrap_err();
        assert!(err.contains("line 2") && !err.contains("SECRET"), "{err}");
        assert!(parse("[broken\n").unwrap_err().contains("line 1"));
    }
}
