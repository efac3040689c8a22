//! Credentials printed by an external program: the CLI profile mode `External`
//! (`process_command`).

use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncReadExt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::ecs::{json_error, parse_expiration, shown};
use super::{Credentials, CredentialsErrorKind, CredentialsFuture, CredentialsProvider};
use crate::error::Error;

/// Provider name carried by the credentials this provider returns.
pub(crate) const PROVIDER_NAME: &str = "external";
/// How long the program may run, by default.
pub const DEFAULT_PROCESS_TIMEOUT: Duration = Duration::from_secs(10);
/// The most the program may print on its standard output.
const MAX_OUTPUT_BYTES: usize = 64 * 1024;
/// How long to wait for a killed program to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Credentials printed as JSON by a program, as the CLI profile mode `External` runs it:
/// `{"mode": "AK" | "StsToken", "access_key_id": "...", "access_key_secret": "...",
/// "sts_token": "...", "expiration": "2021-09-26T03:46:38Z"}` (`mode` in any case; `sts_token`
/// required for `StsToken`; `expiration` optional).
///
/// Not in the official default chain: only a CLI profile of mode `External` uses it, with its
/// `process_command`.
///
/// **How the command is run.** The command line is split into words with POSIX-shell quoting
/// rules (`'single'`, `"double"` and `\` escapes; [`shlex`](https://docs.rs/shlex)) and the
/// first word is run directly, with the others as its arguments, found on `PATH` when it has no
/// `/`. No shell is involved: no `$VARIABLE` expansion, globbing, pipe, redirection or `;`. This
/// is what the CLI does (it runs the command's fields directly, without a shell) with quoting
/// added so that a path with spaces works; it leaves no room for shell injection through the
/// profile file, at the cost that a pipeline must be wrapped in a script. The program inherits
/// this process's environment and working directory.
///
/// **Bounds.** The program runs at most 10 s (configurable); on timeout it is killed (SIGKILL)
/// and reaped. Its standard output is read as it comes, up to 64 KiB: more kills it. Its standard
/// input is empty and its standard error is discarded (it may print secrets, so it is never
/// shown). A non-zero exit is reported with its status only, never its output. Programs that the
/// command itself starts (grandchildren) are not killed.
///
/// ```no_run
/// use std::time::Duration;
/// use aliyun_guard::credentials::{CredentialsProvider, ProcessProvider};
///
/// # async fn run() -> Result<(), aliyun_guard::Error> {
/// let provider = ProcessProvider::new("/usr/local/bin/fetch-aliyun-creds --account 'prod main'")
///     .with_timeout(Duration::from_secs(5));
/// let creds = provider.provide_credentials().await?;
/// assert_eq!(creds.provider_name(), "external");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ProcessProvider {
    command: Zeroizing<String>,
    timeout: Duration,
}

impl fmt::Debug for ProcessProvider {
    // The arguments may hold secrets: only the program's file name is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessProvider")
            .field("program", &program_label(&self.command))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct ProcessOutput {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    access_key_secret: Option<String>,
    #[serde(default)]
    sts_token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

impl ProcessProvider {
    /// Runs `command` (a CLI profile's `process_command`; checked at the first fetch) with the
    /// default 10 s timeout.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: Zeroizing::new(command.into()),
            timeout: DEFAULT_PROCESS_TIMEOUT,
        }
    }

    /// How long the program may run before it is killed (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn fetch(&self) -> Result<Credentials, Error> {
        let label = program_label(&self.command);
        let invalid =
            |what: String| Error::credentials_invalid(format!("external process {label}: {what}"));
        let unavailable = |what: String| {
            Error::credentials_kind(
                CredentialsErrorKind::Unavailable,
                format!("external process {label}: {what}"),
                None,
            )
        };
        let argv =
            Zeroizing::new(shlex::split(&self.command).ok_or_else(|| {
                invalid("process_command has an unbalanced quote or escape".into())
            })?);
        let Some((program, args)) = argv.split_first() else {
            return Err(invalid("process_command is empty".into()));
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            Error::credentials_source(
                format!("external process {label}: cannot start it ({})", e.kind()),
                e,
            )
        })?;
        let Some(mut stdout) = child.stdout.take() else {
            return Err(unavailable("its standard output is not available".into()));
        };

        enum Outcome {
            Exited(std::process::ExitStatus),
            TooLarge,
        }
        let mut output = Zeroizing::new(Vec::with_capacity(4096));
        let run = async {
            // Incremental read, one byte past the cap to tell "too large".
            (&mut stdout)
                .take(MAX_OUTPUT_BYTES as u64 + 1)
                .read_to_end(&mut output)
                .await?;
            if output.len() > MAX_OUTPUT_BYTES {
                return Ok::<_, std::io::Error>(Outcome::TooLarge);
            }
            Ok(Outcome::Exited(child.wait().await?))
        };
        let outcome = tokio::time::timeout(self.timeout, run).await;
        drop(stdout);
        let failure = match outcome {
            Ok(Ok(Outcome::Exited(status))) if status.success() => None,
            Ok(Ok(Outcome::Exited(status))) => {
                return Err(unavailable(format!("failed ({status})")));
            }
            Ok(Ok(Outcome::TooLarge)) => Some(format!(
                "printed more than {MAX_OUTPUT_BYTES} bytes; it was killed"
            )),
            Ok(Err(e)) => Some(format!(
                "reading its output failed ({}); it was killed",
                e.kind()
            )),
            Err(_) => Some(format!(
                "did not finish within {:?}; it was killed",
                self.timeout
            )),
        };
        if let Some(failure) = failure {
            // Kill and reap now rather than leave it to `kill_on_drop`, which does not reap.
            let _ = child.start_kill();
            let _ = tokio::time::timeout(REAP_TIMEOUT, child.wait()).await;
            return Err(unavailable(failure));
        }

        let creds = parse_output(&output).map_err(invalid)?;
        let creds = creds.with_provider_name(PROVIDER_NAME);
        tracing::debug!(
            provider = PROVIDER_NAME,
            key = %creds.masked_key_id(),
            "credentials obtained"
        );
        Ok(creds)
    }
}

impl CredentialsProvider for ProcessProvider {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.fetch())
    }
}

/// Parses the program's JSON. The error never quotes a value but `mode`.
fn parse_output(bytes: &[u8]) -> Result<Credentials, String> {
    let mut out: ProcessOutput = serde_json::from_slice(bytes)
        .map_err(|e| json_error(e).replace("the answer", "its output"))?;
    let mode = out.mode.take().unwrap_or_default();
    let sts = if mode.eq_ignore_ascii_case("AK") {
        false
    } else if mode.eq_ignore_ascii_case("StsToken") {
        true
    } else if mode.is_empty() {
        return Err("its output has no \"mode\" (AK or StsToken)".into());
    } else {
        return Err(format!(
            "its output's mode is {}, not AK or StsToken",
            shown(&mode)
        ));
    };
    let id = match out.access_key_id.take() {
        Some(id) if !id.trim().is_empty() && id.trim().bytes().all(|b| b.is_ascii_graphic()) => {
            id.trim().to_string()
        }
        _ => return Err("access_key_id is missing, empty or not printable ASCII".into()),
    };
    let secret = match out.access_key_secret.take() {
        Some(secret) if !secret.is_empty() => secret,
        _ => return Err("access_key_secret is missing or empty".into()),
    };
    let mut creds = Credentials::new(id, secret);
    if sts {
        match out.sts_token.take() {
            Some(token) if !token.is_empty() => creds = creds.with_security_token(token),
            _ => return Err("mode StsToken needs a non-empty sts_token".into()),
        }
    }
    if let Some(text) = out.expiration.as_deref().filter(|e| !e.trim().is_empty()) {
        let expiry =
            parse_expiration(text).ok_or("expiration is not a time like 2021-09-26T03:46:38Z")?;
        creds = creds.with_expiry(expiry);
    }
    Ok(creds)
}

/// The program's file name, for messages: arguments may be secrets, and so may a quoted first
/// word in theory, so only the last path component of the first word is kept.
fn program_label(command: &str) -> String {
    let first = shlex::split(command)
        .and_then(|words| words.into_iter().next())
        .unwrap_or_default();
    let name = first.rsplit('/').next().unwrap_or_default();
    if name.is_empty() {
        "<none>".to_string()
    } else {
        shown(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_case_insensitive() {
        let ak = parse_output(
            br#"{"mode":"ak","access_key_id":"LTAI5tId00000000000abcd","access_key_secret":"s"}"#,
        )
        .unwrap();
        assert!(!ak.is_sts());
        let sts = parse_output(
            br#"{"mode":"STSTOKEN","access_key_id":"STS.x0000000000000000","access_key_secret":"s","sts_token":"t","expiration":"2031-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(sts.is_sts() && sts.expiry().is_some());
        assert!(
            parse_output(br#"{"mode":"RamRoleArn","access_key_id":"i","access_key_secret":"s"}"#)
                .is_err()
        );
        assert!(
            parse_output(br#"{"mode":"StsToken","access_key_id":"i","access_key_secret":"s"}"#)
                .is_err()
        );
    }

    #[test]
    fn debug_and_labels_hide_arguments() {
        let provider = ProcessProvider::new("/opt/bin/vault-cat --token SECRET-ARG");
        let debug = format!("{provider:?}");
        assert!(
            debug.contains("vault-cat") && !debug.contains("SECRET-ARG"),
            "{debug}"
        );
        assert_eq!(program_label("'unbalanced"), "<none>");
        assert_eq!(program_label(""), "<none>");
    }
}
