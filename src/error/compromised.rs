//! [`CompromisedKey`], the error of a leaked AccessKey, and how it was found ([`Detection`]).
//!
//! Lives under `error` (below `guard` in the module layering) because [`crate::Error`] holds it;
//! re-exported as `aliyun_guard::guard::{CompromisedKey, Detection}` and
//! `aliyun_guard::CompromisedKey`.

use std::fmt;

use time::OffsetDateTime;

use super::remediation::{PARENT_KEY_ADVICE, Remediation};

/// How a [`CompromisedKey`] was found.
///
/// ```
/// use aliyun_guard::guard::{Detection, Guard, KeyFingerprint};
///
/// let guard = Guard::new();
/// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "Alibaba's notice")?;
/// let key = KeyFingerprint::of("LTAI5tExampleKeyIdwxyz");
/// let leak = guard.refusal(&key, true, "Ram", "2015-05-01", "CreateUser").unwrap();
/// assert_eq!(leak.detection, Detection::RefusedLocally);
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detection {
    /// Alibaba answered the call with the leak error.
    ServerAnswer,
    /// The guard refused the call before sending it.
    RefusedLocally,
    /// Security Center's leak list reported the key ([`LeakFeed`](crate::feed::LeakFeed)), before any call was refused.
    SecurityCenter,
}

/// The AccessKey is under Alibaba's leak protection, or known to be compromised.
///
/// Its `Display` is guidance an operator can act on; [`CompromisedKey::remediation`] holds the same
/// as data. It holds no secret, and the key id only masked.
///
/// ```no_run
/// use aliyun_guard::{Client, CompromisedKey, Error, RpcRequest};
///
/// async fn call(client: &Client) -> Result<(), Error> {
///     let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances");
///     match client.call(&request).await {
///         Err(Error::CompromisedKey(leak)) => {
///             let leak: &CompromisedKey = &leak;
///             // Guidance for a person: which key to rotate and how.
///             eprintln!("{leak}");
///             eprintln!("rotate {} first", leak.key_to_rotate());
///             Err(Error::CompromisedKey(Box::new(leak.clone())))
///         }
///         other => other.map(drop),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompromisedKey {
    /// The key id, masked (`LTAI****wxyz`).
    pub masked_key_id: String,
    /// Product code of the call.
    pub product: String,
    /// API version of the call.
    pub version: String,
    /// Action of the call.
    pub action: String,
    /// HTTP status of the answer (`None` when refused before sending).
    pub status: Option<u16>,
    /// Request id of the answer.
    pub request_id: Option<String>,
    /// Host id of the answer.
    pub host_id: Option<String>,
    /// The server's error code (`Forbidden`).
    pub server_code: Option<String>,
    /// The server's message.
    pub server_message: Option<String>,
    /// Answered by the server, or refused before sending.
    pub detection: Detection,
    /// Whether the action is on the restriction table (after learning).
    pub on_restriction_table: bool,
    /// When the key was first seen compromised.
    pub first_seen: OffsetDateTime,
    /// What to do.
    pub remediation: &'static Remediation,
    /// For temporary (STS) credentials, the long-lived AccessKey they were minted from, masked:
    /// the key to rotate. It is marked compromised along with the temporary key.
    pub parent_masked_key_id: Option<String>,
}

impl CompromisedKey {
    /// The key to rotate, masked: the long-lived parent of temporary credentials, else the key
    /// of the call.
    ///
    /// ```
    /// use aliyun_guard::guard::{Guard, KeyFingerprint};
    ///
    /// let guard = Guard::new();
    /// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "leak notice")?;
    /// let key = KeyFingerprint::of("LTAI5tExampleKeyIdwxyz");
    /// let leak = guard.refusal(&key, false, "Ecs", "2014-05-26", "DescribeInstances").unwrap();
    /// assert_eq!(leak.key_to_rotate(), "LTAI****wxyz");
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn key_to_rotate(&self) -> &str {
        self.parent_masked_key_id
            .as_deref()
            .unwrap_or(&self.masked_key_id)
    }
}

impl fmt::Display for CompromisedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = format!("{} {} {}", self.product, self.version, self.action);
        let key = match &self.parent_masked_key_id {
            Some(parent) => format!(
                "{} (temporary credentials minted from the long-lived AccessKey {parent})",
                self.masked_key_id
            ),
            None => self.masked_key_id.clone(),
        };
        match self.detection {
            Detection::ServerAnswer => write!(
                f,
                "AccessKey {} is compromised: Alibaba Cloud answered {call} with \"{}: {}\" \
                 (HTTP {}, request id {})",
                key,
                self.server_code.as_deref().unwrap_or("Forbidden"),
                self.server_message
                    .as_deref()
                    .unwrap_or("There is a risk of leakage of this AccessKey."),
                self.status
                    .map_or_else(|| "?".to_string(), |s| s.to_string()),
                self.request_id.as_deref().unwrap_or("unknown"),
            )?,
            Detection::SecurityCenter => write!(
                f,
                "AccessKey {key} is compromised: Security Center found it exposed in public \
                 (DescribeAccesskeyLeakList)"
            )?,
            Detection::RefusedLocally => write!(
                f,
                "AccessKey {} is compromised: refused {call} before sending, because Alibaba \
                 Cloud blocks {} for keys under leak protection",
                key,
                if self.on_restriction_table {
                    "this operation"
                } else {
                    "operations"
                },
            )?,
        }
        let first_seen = self
            .first_seen
            .replace_nanosecond(0)
            .unwrap_or(self.first_seen)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        writeln!(f, "; first seen compromised {first_seen}.")?;
        if let Some(parent) = &self.parent_masked_key_id {
            writeln!(
                f,
                "Rotate the long-lived AccessKey {parent}: {PARENT_KEY_ADVICE}"
            )?;
        }
        write!(f, "{}", self.remediation)
    }
}

impl std::error::Error for CompromisedKey {}
