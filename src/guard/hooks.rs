//! The operator's hooks: the events of newly compromised keys ([`CompromisedEvent`]) and how
//! they are delivered (once per key, once per fleet with a fleet store).

use std::sync::Arc;

use super::{CompromisedKey, Guard, KeyFingerprint};

pub(super) type Callback = Arc<dyn Fn(&CompromisedEvent) + Send + Sync>;
pub(super) type AsyncCallback = Arc<
    dyn Fn(CompromisedEvent) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Who saw a compromised key first, as an [`CompromisedEvent`] says.
///
/// ```
/// use aliyun_guard::guard::{FirstSighting, Guard};
///
/// let guard = Guard::builder()
///     .on_compromised_event(|event| {
///         if event.first != FirstSighting::FleetUnknown {
///             eprintln!("page the on-call: {}", event.key.key_to_rotate());
///         }
///     })
///     .build()?;
/// # drop(guard);
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirstSighting {
    /// No fleet store (memory or a state directory): this process saw it first; other processes
    /// sharing a state directory notify on their own.
    ThisProcess,
    /// This host saw it first in the whole fleet (it won the claim in Redis): no other host
    /// calls its hook for this key.
    ThisHostFirstInFleet,
    /// The fleet store could not be asked (Redis down): the hook is called anyway, so another
    /// host may also report the key.
    FleetUnknown,
}

/// A key newly detected compromised, as the hooks receive it.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use aliyun_guard::guard::Guard;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let guard = Guard::builder()
///     .on_compromised_event(move |event| {
///         sink.lock().unwrap().push(event.fingerprint.to_hex());
///     })
///     .build()?;
/// // Marking a key by hand is no detection: hooks fire on leak answers and refusals.
/// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "leak notice")?;
/// assert!(seen.lock().unwrap().is_empty());
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompromisedEvent {
    /// The error given to the caller (masked key id, call, evidence, remediation).
    pub key: CompromisedKey,
    /// The key's fingerprint (to correlate across hosts and logs without the key id).
    pub fingerprint: KeyFingerprint,
    /// Who saw it first.
    pub first: FirstSighting,
}

/// The operator's hooks.
pub(super) struct Hooks {
    pub(super) sync: Vec<Callback>,
    pub(super) spawned: Vec<AsyncCallback>,
}

impl Hooks {
    /// Calls the hooks for one event: the plain ones here (a panic caught and logged), the
    /// asynchronous ones on spawned tasks.
    pub(super) fn fire(&self, event: CompromisedEvent) {
        for hook in &self.sync {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&event))).is_err() {
                tracing::error!("aliyun-guard: the on_compromised hook panicked");
            }
        }
        for hook in &self.spawned {
            let future = hook(event.clone());
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(future);
                }
                Err(_) => {
                    let _ = std::thread::Builder::new()
                        .name("aliyun-guard-hook".into())
                        .spawn(move || {
                            match tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                            {
                                Ok(runtime) => runtime.block_on(future),
                                Err(e) => tracing::error!(
                                    error = %e,
                                    "aliyun-guard: no runtime for the asynchronous hook"
                                ),
                            }
                        });
                }
            }
        }
    }
}

impl Guard {
    /// Calls the hooks for a key newly compromised here: at once without a fleet store; with
    /// one, on a background thread after claiming the key in the store (the hooks fire on the
    /// host that wins the claim only).
    pub(crate) fn notify(&self, error: &CompromisedKey, fingerprint: KeyFingerprint) {
        if self.hooks.sync.is_empty() && self.hooks.spawned.is_empty() {
            return;
        }
        let mut event = CompromisedEvent {
            key: error.clone(),
            fingerprint,
            first: FirstSighting::ThisProcess,
        };
        match self.shared.store.as_ref().filter(|s| s.fleet()) {
            None => self.hooks.fire(event),
            Some(store) => {
                let store = Arc::clone(store);
                let hooks = Arc::clone(&self.hooks);
                let runtime = tokio::runtime::Handle::try_current().ok();
                let _ = std::thread::Builder::new()
                    .name("aliyun-guard-notify".into())
                    .spawn(move || {
                        let _entered = runtime.as_ref().map(|r| r.enter());
                        event.first = match store.claim_notification(&fingerprint) {
                            Some(true) => FirstSighting::ThisHostFirstInFleet,
                            Some(false) => {
                                tracing::info!(
                                    key = %event.key.masked_key_id,
                                    "aliyun-guard: another host already reported this key; \
                                     the hooks are not called here"
                                );
                                return;
                            }
                            None => FirstSighting::FleetUnknown,
                        };
                        hooks.fire(event);
                    });
            }
        }
    }
}
