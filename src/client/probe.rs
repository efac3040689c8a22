//! Asking Alibaba whether a key is under leak protection, with a harmless read-only call.

use super::{Check, Client};
use crate::error::Error;
use crate::request::RpcRequest;

/// The probe's call: RAM's `GetAccountAlias`, read-only, in a product blocked for all actions
/// when a key is under protection.
pub const PROBE_PRODUCT: (&str, &str, &str) = ("Ram", "2015-05-01", "GetAccountAlias");

/// Codes that show the key authenticated and reached authorization without the leak answer.
const AUTHORIZATION_CODES: &[&str] = &["NoPermission", "Forbidden.RAM", "Forbidden.NoPermission"];

/// What [`Client::probe`] found.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use aliyun_guard::testkit::{self, MockAlibaba};
/// use aliyun_guard::{Client, ProbeOutcome};
///
/// let mock = MockAlibaba::start().await?;
/// mock.leak_all(testkit::KEY_ID);
/// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
/// match client.probe().await {
///     ProbeOutcome::Compromised { request_id } => eprintln!("rotate now (request {request_id:?})"),
///     ProbeOutcome::NotFlagged { reason } => eprintln!("not flagged: {reason}"),
///     ProbeOutcome::Unknown { reason } => eprintln!("cannot tell: {reason}"),
///     other => eprintln!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// Alibaba answered with the leak error: the key is under restrictive protection.
    Compromised {
        /// Request id of the answer.
        request_id: Option<String>,
    },
    /// Alibaba did not answer with the leak error.
    NotFlagged {
        /// What the answer was.
        reason: String,
    },
    /// The probe could not tell (network, credentials, throttling, ...).
    Unknown {
        /// Why.
        reason: String,
    },
}

impl Client {
    /// Checks whether this client's key is under Alibaba's leak protection, by calling RAM's
    /// read-only `GetAccountAlias`. RAM is blocked for all actions for a protected key, so a leak
    /// answer means [`ProbeOutcome::Compromised`] (and the guard records the key). A success, or a
    /// permission denial (`NoPermission`, `Forbidden.RAM`: the key authenticated and RAM judged its
    /// permissions), means [`ProbeOutcome::NotFlagged`]; anything else is
    /// [`ProbeOutcome::Unknown`], with the reason.
    ///
    /// What it cannot tell: whether the key has leaked without Alibaba noticing yet, or whether
    /// the protection will be applied later; "not flagged" describes this moment only. The order
    /// in which Alibaba applies the leak check and the permission check is not documented, so a
    /// permission denial is read as "not flagged" on the evidence that the leak answer comes
    /// first for RAM. The probe is sent even when the guard already knows the key is compromised
    /// (it is harmless), and it does not clear a key that answers "not flagged": use
    /// [`crate::guard::Guard::clear`] for that.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba};
    /// use aliyun_guard::{Client, ProbeOutcome};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// mock.leak_all(testkit::KEY_ID);
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// assert!(matches!(client.probe().await, ProbeOutcome::Compromised { .. }));
    /// // The guard now knows the key.
    /// assert!(client.guard().is_compromised(testkit::KEY_ID));
    /// # Ok(()) }
    /// ```
    pub async fn probe(&self) -> ProbeOutcome {
        let (product, version, action) = PROBE_PRODUCT;
        let request = RpcRequest::new(product, version, action);
        match self
            .execute(super::Call::Rpc(&request), Check::Bypass)
            .await
        {
            Err(Error::CompromisedKey(e)) => ProbeOutcome::Compromised {
                request_id: e.request_id.clone(),
            },
            Ok(_) => ProbeOutcome::NotFlagged {
                reason: format!("RAM {action} succeeded"),
            },
            Err(Error::Api(e)) if AUTHORIZATION_CODES.contains(&e.code.as_str()) => {
                ProbeOutcome::NotFlagged {
                    reason: format!(
                        "RAM answered {} (a permission denial, not the leak answer; request id {})",
                        e.code,
                        e.request_id.as_deref().unwrap_or("unknown")
                    ),
                }
            }
            Err(e) => ProbeOutcome::Unknown {
                reason: e.to_string(),
            },
        }
    }
}
