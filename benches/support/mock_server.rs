//! A minimal, fast mock of an Alibaba Cloud RPC endpoint on loopback (hyper, HTTP/1.1), shared by
//! the benchmarks and the `load` example. It reads each request body in full and answers a fixed
//! `DescribeRegions`-like JSON; it runs on its own thread and runtime so that it does not compete
//! with the client's tasks for the caller's runtime.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const ANSWER: &str = r#"{"RequestId":"0D2D6E53-BENCH-4C6B-9E3A-6F3E3B9F9A01","Regions":{"Region":[{"RegionId":"cn-hangzhou","RegionEndpoint":"ecs.cn-hangzhou.aliyuncs.com","LocalName":"China (Hangzhou)"},{"RegionId":"cn-shanghai","RegionEndpoint":"ecs.cn-shanghai.aliyuncs.com","LocalName":"China (Shanghai)"}]}}"#;

/// A running mock endpoint.
pub struct FastMock {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    requests: Arc<AtomicU64>,
}

impl FastMock {
    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Starts the endpoint on a thread of its own with a `workers`-thread runtime. It lives as long
/// as the process (benchmarks and examples end by themselves).
pub fn start(workers: usize) -> FastMock {
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .enable_all()
            .build()
            .expect("mock runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr"))
                .expect("send addr");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let counter = counter.clone();
                        async move {
                            let _ = request.into_body().collect().await;
                            counter.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json;charset=utf-8")
                                    .header("x-acs-request-id", "0D2D6E53-BENCH")
                                    .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    let addr = rx.recv().expect("the mock endpoint did not start");
    FastMock {
        url: format!("http://{addr}"),
        requests,
    }
}
