//! Security Center's leak list as a feed: keys found in public code are marked compromised
//! before any call with them is refused.
//!
//! It calls Security Center through a [`Client`] and feeds the [`Guard`]: a module above both
//! (the guard sits below the client in the module layering, so the feed is not part of it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::client::Client;
use crate::error::Error;
use crate::guard::{
    CompromisedKey, Detection, Evidence, EvidenceSource, Guard, KeyFingerprint, REMEDIATION,
};
use crate::request::RpcRequest;
use crate::secret::mask_key_id;

/// Security Center's API hosts: mainland China (and cn-hongkong), and the international site.
pub const SECURITY_CENTER_ENDPOINTS: [&str; 2] = [
    "https://tds.cn-shanghai.aliyuncs.com",
    "https://tds.ap-southeast-1.aliyuncs.com",
];

const PRODUCT: &str = "Sas";
const VERSION: &str = "2018-12-03";
const ACTION: &str = "DescribeAccesskeyLeakList";
const PAGE_SIZE: u32 = 100;
/// Most pages read per endpoint and poll (10,000 findings).
const MAX_PAGES: u32 = 100;
const MAX_URL: usize = 512;
const MAX_KEY_ID: usize = 128;

/// Polls Security Center's `DescribeAccesskeyLeakList` (Sas 2018-12-03) with a separate,
/// read-only auditor identity and marks the fleet's keys it lists compromised, with the evidence
/// (where the key was found, when), so that calls with them are refused before Alibaba's
/// protection refuses them. The hooks see [`Detection::SecurityCenter`].
///
/// The auditor's [`Client`] needs only `yundun-aegis:DescribeAccesskeyLeakList`; it is not the
/// client whose keys are watched. Both site hosts are read (see [`SECURITY_CENTER_ENDPOINTS`])
/// unless [`endpoints`](Self::endpoints) names others; each poll reads every page, and the next
/// poll asks only for findings after the newest one seen (`StartTs`).
///
/// ```no_run
/// # async fn run(auditor: aliyun_guard::Client, guard: std::sync::Arc<aliyun_guard::Guard>) {
/// use aliyun_guard::feed::LeakFeed;
/// let handle = LeakFeed::new(auditor, guard)
///     .keys(["LTAI5tTheFleetsKeyIdwxyz"])
///     .interval(std::time::Duration::from_secs(300))
///     .spawn();
/// // ...
/// handle.stop().await;
/// # }
/// ```
pub struct LeakFeed {
    auditor: Client,
    guard: Arc<Guard>,
    endpoints: Vec<String>,
    keys: Vec<String>,
    interval: Duration,
    pending_only: bool,
    /// Per endpoint, the newest finding's time seen (ms), sent as `StartTs`.
    since: HashMap<String, i64>,
}

impl std::fmt::Debug for LeakFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakFeed")
            .field("endpoints", &self.endpoints)
            .field(
                "keys",
                &self.keys.iter().map(|k| mask_key_id(k)).collect::<Vec<_>>(),
            )
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// Stops a spawned [`LeakFeed`].
#[derive(Debug)]
pub struct LeakFeedHandle {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl LeakFeedHandle {
    /// Stops the feed and waits for its task to end.
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

impl LeakFeed {
    /// A feed reading with `auditor` and marking keys in `guard`; polls every 5 minutes.
    pub fn new(auditor: Client, guard: Arc<Guard>) -> Self {
        Self {
            auditor,
            guard,
            endpoints: SECURITY_CENTER_ENDPOINTS
                .iter()
                .map(|e| e.to_string())
                .collect(),
            keys: Vec::new(),
            interval: Duration::from_secs(300),
            pending_only: true,
            since: HashMap::new(),
        }
    }

    /// Reads these endpoints instead of both site hosts (a URL or host each).
    pub fn endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// The fleet's AccessKey IDs: a listed finding marks the one it names (Security Center may
    /// show ids masked, `LTAI4Fyt****`; a masked id matches a key with the same beginning, end
    /// and length). Without any, each listed id that is not masked is marked as it is.
    pub fn keys<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.keys = ids
            .into_iter()
            .map(|id| id.as_ref().trim().to_string())
            .filter(|id| !id.is_empty())
            .collect();
        self
    }

    /// How often to poll (default 5 minutes; at least 1 second).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_secs(1));
        self
    }

    /// Whether to read only findings not yet handled (`Status=pending`, default `true`).
    pub fn pending_only(mut self, pending_only: bool) -> Self {
        self.pending_only = pending_only;
        self
    }

    /// Reads every endpoint once (all pages, findings after the newest seen) and marks the
    /// fleet's keys listed. Returns how many keys became compromised. An endpoint that fails is
    /// logged and skipped; the error is returned only when every endpoint failed.
    pub async fn poll_once(&mut self) -> Result<usize, Error> {
        let mut newly = 0;
        let mut last_error = None;
        let mut any_ok = false;
        for endpoint in self.endpoints.clone() {
            match self.poll_endpoint(&endpoint).await {
                Ok(n) => {
                    any_ok = true;
                    newly += n;
                }
                Err(e) => {
                    tracing::warn!(
                        endpoint = %endpoint,
                        error = %e,
                        "aliyun-guard: could not read Security Center's leak list"
                    );
                    last_error = Some(e);
                }
            }
        }
        match last_error {
            Some(e) if !any_ok => Err(e),
            _ => Ok(newly),
        }
    }

    async fn poll_endpoint(&mut self, endpoint: &str) -> Result<usize, Error> {
        let since = self.since.get(endpoint).copied();
        let mut findings = Vec::new();
        let mut newest = since;
        for page in 1..=MAX_PAGES {
            let mut request = RpcRequest::new(PRODUCT, VERSION, ACTION)
                .endpoint(endpoint)
                .param("CurrentPage", page.to_string())
                .param("PageSize", PAGE_SIZE.to_string());
            if self.pending_only {
                request = request.param("Status", "pending");
            }
            if let Some(since) = since {
                request = request.param("StartTs", since.to_string());
            }
            let answer = self.auditor.call(&request).await?;
            let request_id = answer
                .get("RequestId")
                .and_then(Value::as_str)
                .filter(|r| r.len() <= 128)
                .map(str::to_string);
            let list = answer
                .get("AccessKeyLeakList")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for item in list {
                if let Some(finding) = Finding::parse(item, request_id.clone()) {
                    newest = newest.max(finding.found_at_ms);
                    findings.push(finding);
                }
            }
            let total = answer
                .get("TotalCount")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if list.is_empty() || u64::from(page) * u64::from(PAGE_SIZE) >= total {
                break;
            }
        }
        let newly = self.mark(findings).await;
        if let Some(newest) = newest {
            // Findings at the same millisecond are read again next time (marking is idempotent).
            self.since.insert(endpoint.to_string(), newest);
        }
        Ok(newly)
    }

    /// The fleet key a listed id names, if any.
    fn matching(&self, listed: &str) -> Option<String> {
        if self.keys.is_empty() {
            return (!listed.contains('*')).then(|| listed.to_string());
        }
        self.keys
            .iter()
            .find(|key| masked_match(listed, key))
            .cloned()
    }

    async fn mark(&self, findings: Vec<Finding>) -> usize {
        let at = OffsetDateTime::now_utc();
        let sightings: Vec<(String, Evidence)> = findings
            .into_iter()
            .filter_map(|f| {
                let id = self.matching(&f.key_id)?;
                Some((
                    id,
                    Evidence {
                        product: PRODUCT.into(),
                        version: VERSION.into(),
                        action: ACTION.into(),
                        request_id: f.request_id,
                        at,
                        source: EvidenceSource::SecurityCenter {
                            url: f.url,
                            found_at_ms: f.found_at_ms,
                            leak_id: f.leak_id,
                        },
                    },
                ))
            })
            .collect();
        if sightings.is_empty() {
            return 0;
        }
        let newly = self.guard.mark_with(sightings);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        self.guard.persist_within(deadline).await;
        for (fp, masked) in &newly {
            self.report(*fp, masked);
        }
        newly.len()
    }

    fn report(&self, fp: KeyFingerprint, masked: &str) {
        let first_seen = self
            .guard
            .first_seen(fp)
            .unwrap_or_else(OffsetDateTime::now_utc);
        tracing::error!(
            key = %masked,
            "aliyun-guard: Security Center lists this AccessKey as leaked in public; rotate it now"
        );
        let error = CompromisedKey {
            masked_key_id: masked.to_string(),
            product: PRODUCT.into(),
            version: VERSION.into(),
            action: ACTION.into(),
            status: None,
            request_id: None,
            host_id: None,
            server_code: None,
            server_message: None,
            detection: Detection::SecurityCenter,
            on_restriction_table: false,
            first_seen,
            remediation: &REMEDIATION,
            parent_masked_key_id: None,
        };
        self.guard.notify(&error, fp);
    }

    /// Polls every interval on a spawned task (of the current Tokio runtime) until stopped.
    /// Failures are logged and retried with backoff (from 5 s, doubling, at most the interval);
    /// they never end the feed.
    pub fn spawn(mut self) -> LeakFeedHandle {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_secs(5).min(self.interval);
            loop {
                let pause = match self.poll_once().await {
                    Ok(_) => {
                        backoff = Duration::from_secs(5).min(self.interval);
                        self.interval
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            retry_in_ms = backoff.as_millis() as u64,
                            "aliyun-guard: Security Center's leak list is unreadable; retrying"
                        );
                        let pause = backoff;
                        backoff = (backoff * 2).min(self.interval);
                        pause
                    }
                };
                if tokio::time::timeout(pause, stopped.notified())
                    .await
                    .is_ok()
                {
                    return;
                }
            }
        });
        LeakFeedHandle { stop, task }
    }
}

/// One finding of the leak list, validated.
struct Finding {
    key_id: String,
    url: Option<String>,
    found_at_ms: Option<i64>,
    leak_id: Option<i64>,
    request_id: Option<String>,
}

impl Finding {
    fn parse(item: &Value, request_id: Option<String>) -> Option<Self> {
        // Both spellings: the API's `AccesskeyId`, and `AccessKeyId`.
        let key_id = item
            .get("AccesskeyId")
            .or_else(|| item.get("AccessKeyId"))
            .and_then(Value::as_str)?
            .trim();
        if key_id.is_empty()
            || key_id.len() > MAX_KEY_ID
            || !key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'*')
        {
            return None;
        }
        let url = item
            .get("Url")
            .and_then(Value::as_str)
            .filter(|u| u.len() <= MAX_URL && u.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string);
        let time = |name: &str| item.get(name).and_then(Value::as_i64).filter(|t| *t > 0);
        Some(Self {
            key_id: key_id.to_string(),
            url,
            found_at_ms: time("GmtModified").or_else(|| time("GmtCreate")),
            leak_id: item.get("Id").and_then(Value::as_i64),
            request_id,
        })
    }
}

/// Whether a listed id (maybe masked with `*`) names `key`: equal, or the same length with the
/// same characters outside the masked run (at least 4 visible characters).
fn masked_match(listed: &str, key: &str) -> bool {
    if listed == key {
        return true;
    }
    let Some(start) = listed.find('*') else {
        return false;
    };
    let end = listed.rfind('*').map_or(start, |e| e + 1);
    let (head, tail) = (&listed[..start], &listed[end..]);
    head.len() + tail.len() >= 4
        && listed.len() == key.len()
        && key.starts_with(head)
        && key.ends_with(tail)
}

#[cfg(test)]
mod tests {
    use super::masked_match;

    #[test]
    fn masked_ids_match_by_their_visible_parts() {
        assert!(masked_match("LTAI5tAbcdefgh", "LTAI5tAbcdefgh"));
        assert!(masked_match("LTAI5tAb****gh", "LTAI5tAbcdefgh"));
        assert!(masked_match("LTAI5tAbcdef**", "LTAI5tAbcdefgh"));
        assert!(!masked_match("LTAI5tAb****gh", "LTAI5tAbcdefg"));
        assert!(!masked_match("LTAI5tXb****gh", "LTAI5tAbcdefgh"));
        assert!(!masked_match("**************", "LTAI5tAbcdefgh"));
        assert!(!masked_match("L*************", "LTAI5tAbcdefgh"));
    }
}
