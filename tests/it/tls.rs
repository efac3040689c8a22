//! TLS: certificate checks are on by default. A loopback HTTPS server with a self-signed
//! certificate is refused before any request is sent.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aliyun_guard::{Client, Error, RetryPolicy, RpcRequest};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TLS server on loopback with a self-signed certificate for 127.0.0.1; counts the requests it
/// decrypts (it answers a fixed JSON body if one ever arrives).
async fn self_signed_server() -> (String, Arc<AtomicUsize>) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let decrypted = Arc::new(AtomicUsize::new(0));
    let counter = decrypted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = vec![0u8; 65536];
                if tls.read(&mut buf).await.unwrap_or(0) > 0 {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = r#"{"RequestId":"TLS"}"#;
                    let _ = tls
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                }
            });
        }
    });
    (format!("https://{addr}"), decrypted)
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_by_default() {
    let (url, decrypted) = self_signed_server().await;
    let client = Client::builder()
        .credentials(credentials())
        .endpoint(&url)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client
        .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let chain = error_chain(&err).to_lowercase();
    assert!(
        chain.contains("certificate"),
        "the cause names the certificate: {chain}"
    );
    assert_eq!(
        decrypted.load(Ordering::SeqCst),
        0,
        "no request reached the server"
    );
}

#[tokio::test]
async fn the_same_server_is_reachable_when_the_caller_trusts_its_certificate() {
    // The control: with a reqwest client that accepts this certificate (the caller's explicit
    // choice), the call goes through, so the refusal above is the certificate check.
    let (url, decrypted) = self_signed_server().await;
    let http = reqwest::Client::builder().tls_danger_accept_invalid_certs(true);
    let client = Client::builder()
        .credentials(credentials())
        .endpoint(&url)
        .http_client(http)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let answer = client
        .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions"))
        .await
        .unwrap();
    assert_eq!(answer["RequestId"], "TLS");
    assert_eq!(decrypted.load(Ordering::SeqCst), 1);
}
