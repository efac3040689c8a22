//! The hot paths of a call allocate nothing: the guard's check before sending, for clean and
//! compromised keys with 10,000 keys in the state, and a fresh lookup in the credentials cache,
//! for values with and without an expiry. A counting global allocator (per thread) proves it;
//! this binary holds only these tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use std::future::Future;
use std::task::{Context, Poll, Waker};

use aliyun_guard::Credentials;
use aliyun_guard::credentials::CredentialsCache;
use aliyun_guard::guard::{Guard, KeyFingerprint, LeakPolicy, Verdict};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every operation to the system allocator; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn the_check_before_sending_does_not_allocate() {
    // The counter works: a real allocation is seen.
    let start = allocations();
    let probe = std::hint::black_box(vec![1u8; 32]);
    assert!(allocations() > start, "the counting allocator sees nothing");
    drop(probe);
    for policy in [
        LeakPolicy::BlockRestricted,
        LeakPolicy::BlockAll,
        LeakPolicy::ObserveOnly,
    ] {
        let guard = Guard::builder().policy(policy).build().unwrap();
        let ids: Vec<String> = (0..10_000)
            .map(|i| format!("LTAI5tAllocKey{i:010}"))
            .collect();
        guard.mark_all_compromised(&ids, "test").unwrap();
        let bad = KeyFingerprint::of(&ids[1234]);
        let good = KeyFingerprint::of("LTAI5tCleanKey0000000000");
        // The first allowed call of a compromised key logs its one-time warning: not measured.
        let _ = guard.verdict(&bad, "Ecs", "2014-05-26", "DescribeInstances");
        let calls = [
            (good, "Ecs", "2014-05-26", "RunInstances"),
            (bad, "Ecs", "2014-05-26", "RunInstances"),
            (bad, "ECS", "2014-05-26", "runinstances"),
            (bad, "Elastic Compute Service", "2014-05-26", "DeleteImage"),
            (bad, "Ram", "2015-05-01", "CreateAccessKey"),
            (bad, "Ecs", "2014-05-26", "DescribeInstances"),
            (bad, "Unknown", "2000-01-01", "Anything"),
        ];
        let before = allocations();
        let mut refused = 0;
        for _ in 0..1000 {
            for (key, product, version, action) in &calls {
                if let Verdict::Refuse { .. } = guard.verdict(key, product, version, action) {
                    refused += 1;
                }
            }
        }
        assert_eq!(allocations() - before, 0, "{policy:?}: the check allocated");
        let expected = match policy {
            LeakPolicy::BlockRestricted => 4000,
            LeakPolicy::BlockAll => 6000,
            _ => 0,
        };
        assert_eq!(refused, expected, "{policy:?}");
    }
}

fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = std::pin::pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_fresh_credentials_lookup_does_not_allocate() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = || Credentials::new("LTAI5tAllocKeyCache00000", "alloc-test-secret");
    // An expiring value takes the path that reads the clock; a fixed one, the path that does not.
    let expiry = time::OffsetDateTime::now_utc() + time::Duration::hours(6);
    let expiring = CredentialsCache::new(key().with_expiry(expiry));
    let fixed = CredentialsCache::new(key());
    runtime.block_on(async {
        expiring.credentials().await.unwrap();
        fixed.credentials().await.unwrap();
    });
    let start = allocations();
    let probe = std::hint::black_box(vec![1u8; 32]);
    assert!(allocations() > start, "the counting allocator sees nothing");
    drop(probe);
    for (name, cache) in [("expiring", &expiring), ("fixed", &fixed)] {
        let before = allocations();
        for _ in 0..1_000 {
            let Poll::Ready(Ok(creds)) = poll_once(cache.credentials()) else {
                panic!("{name}: a fresh lookup must complete at once");
            };
            assert!(creds.expiry().is_some() == (name == "expiring"));
            std::hint::black_box(creds);
        }
        assert_eq!(allocations(), before, "{name}: a fresh lookup allocated");
    }
}

#[test]
fn signing_allocates_only_the_encoded_parameters() {
    use aliyun_guard::signing::Signer;
    use aliyun_guard::{Method, RpcRequest};
    // A fixed clock (the per-second timestamp cache then always hits after the first call) and
    // the default UUID nonce, formatted inline.
    let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let signer = Signer::new().with_clock(move || at);
    let creds = Credentials::new("LTAI5tAllocKeyId0000000", "alloc-secret")
        .with_security_token("alloc-security-token");
    let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
        .region("cn-hangzhou")
        .method(Method::Post)
        .param("PageSize", "50")
        .param("InstanceName", "web server *");
    let first = signer.sign(&request, &creds);
    for _ in 0..100 {
        let before = allocations();
        let signed = std::hint::black_box(signer.sign(&request, &creds));
        // The encoded parameters are the only heap value: the string to sign goes to a
        // per-thread buffer, the nonce, timestamp and base64 signature stay on the stack.
        assert_eq!(allocations() - before, 1, "allocations per signature");
        assert_eq!(signed.timestamp(), first.timestamp());
        assert_ne!(signed.nonce(), first.nonce());
    }
}
