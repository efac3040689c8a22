//! The test kit (feature `test-util`, on for the crate's own tests through its dev-dependency
//! on itself): signature checks, scripted and leak answers, recordings, shutdown.

use std::time::Duration;

use aliyun_guard::signing::Signer;
use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
use aliyun_guard::{Client, Credentials, Error, RetryPolicy, RpcRequest, SignatureDiagnosis};

const OTHER_ID: &str = "LTAI5tOtherKeyId000abcd";
const OTHER_SECRET: &str = "OtherSecretValue-0123456789abc";

fn client(mock: &MockAlibaba, credentials: Credentials) -> Client {
    Client::builder()
        .credentials(credentials)
        .endpoint(mock.url())
        .retry(RetryPolicy::new(1, Duration::from_millis(1)))
        .build()
        .unwrap()
}

fn regions() -> serde_json::Value {
    serde_json::json!({"Regions": {"Region": [{"RegionId": "cn-hangzhou"}]}})
}

fn describe() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
}

fn run() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "RunInstances")
}

#[tokio::test]
async fn a_wrongly_signed_request_is_refused_and_recorded_as_unverified() {
    let mock = MockAlibaba::start().await.unwrap();
    mock.answer("DescribeRegions", regions());
    // Hand-made form with every common parameter and a signature that is not the right one.
    let form = [
        ("AccessKeyId", testkit::KEY_ID),
        ("Action", "DescribeRegions"),
        ("Version", "2014-05-26"),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "n-1"),
        ("Timestamp", "2026-01-01T00:00:00Z"),
        ("Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ];
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let answer = reqwest::Client::new()
        .post(mock.url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let json: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(json["Code"], "SignatureDoesNotMatch");
    assert!(
        json["Message"]
            .as_str()
            .unwrap()
            .contains("server string to sign is:POST&%2F&AccessKeyId%3D")
    );
    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    assert!(!recorded[0].verified);
    assert_eq!(recorded[0].status, 400);
    assert!(!recorded[0].params.contains_key("Signature"));

    // A client with the wrong secret: refused too, and the crate's diagnosis, comparing its
    // string to sign with the one the kit quotes, finds the same string: the secret is wrong.
    let wrong = client(&mock, Credentials::new(testkit::KEY_ID, "not-the-secret"));
    let err = wrong.call(&describe()).await.unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.code, "SignatureDoesNotMatch");
    assert_eq!(
        api.signature_diagnosis,
        Some(SignatureDiagnosis::WrongSecret)
    );
    // The right secret, with GET as well as POST, verifies.
    let right = client(&mock, testkit::credentials());
    right.call(&describe()).await.unwrap();
    right
        .call(
            &describe()
                .method(aliyun_guard::Method::Get)
                .param("Filter", "a b*~/é"),
        )
        .await
        .unwrap();
    assert_eq!(mock.requests().iter().filter(|r| r.verified).count(), 2);
}

#[tokio::test]
async fn unknown_keys_missing_parameters_and_reused_nonces_are_refused() {
    let mock = MockAlibaba::start().await.unwrap();
    mock.answer("DescribeRegions", regions());
    let stranger = client(&mock, Credentials::new(OTHER_ID, OTHER_SECRET));
    let err = stranger.call(&describe()).await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidAccessKeyId.NotFound"), "{err}");
    mock.add_key(OTHER_ID, OTHER_SECRET);
    stranger.call(&describe()).await.unwrap();

    let fixed_nonce = Client::builder()
        .credentials(testkit::credentials())
        .endpoint(mock.url())
        .signer(Signer::new().with_nonce(|| "always-the-same".to_string()))
        .retry(RetryPolicy::new(1, Duration::from_millis(1)))
        .build()
        .unwrap();
    fixed_nonce.call(&describe()).await.unwrap();
    let err = fixed_nonce.call(&describe()).await.unwrap_err();
    assert_eq!(err.code(), Some("SignatureNonceUsed"), "{err}");

    let bare = reqwest::Client::new()
        .post(mock.url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=DescribeRegions")
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 400);
    let json: serde_json::Value = serde_json::from_slice(&bare.bytes().await.unwrap()).unwrap();
    assert_eq!(json["Code"], "MissingParameter");
}

#[tokio::test]
async fn scripted_answers_per_action() {
    let mock = MockAlibaba::start().await.unwrap();
    mock.answer("DescribeRegions", regions())
        .answer_with(
            "DeleteInstance",
            MockResponse::error(403, "IncorrectInstanceStatus", "The instance is running."),
        )
        .answer_sequence(
            "StartInstance",
            [
                MockResponse::error(400, "Throttling.User", "slow down"),
                MockResponse::ok(serde_json::json!({"Started": true})),
            ],
        )
        .answer_fn("DescribeInstances", |request| {
            MockResponse::ok(serde_json::json!({"Echo": request.param("PageSize")}))
        });
    let client = client(&mock, testkit::credentials());
    let answer = client.call(&describe()).await.unwrap();
    assert_eq!(answer["Regions"]["Region"][0]["RegionId"], "cn-hangzhou");
    assert!(
        answer["RequestId"].as_str().unwrap().starts_with("MOCK-"),
        "a RequestId is added: {answer}"
    );
    let err = client
        .call(&RpcRequest::new("Ecs", "2014-05-26", "DeleteInstance"))
        .await
        .unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (api.status, api.code.as_str()),
        (403, "IncorrectInstanceStatus")
    );
    assert!(api.request_id.as_deref().unwrap().starts_with("MOCK-"));
    let start = RpcRequest::new("Ecs", "2014-05-26", "StartInstance");
    assert_eq!(
        client.call(&start).await.unwrap_err().code(),
        Some("Throttling.User")
    );
    assert_eq!(client.call(&start).await.unwrap()["Started"], true);
    assert_eq!(
        client.call(&start).await.unwrap()["Started"],
        true,
        "the last answer repeats"
    );
    let echo = client
        .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances").param("PageSize", 7))
        .await
        .unwrap();
    assert_eq!(echo["Echo"], "7");
    let err = client
        .call(&RpcRequest::new("Ecs", "2014-05-26", "NotScripted"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidAction.NotFound"));
}

#[tokio::test]
async fn leak_answers_only_for_the_chosen_key_and_actions() {
    let mock = MockAlibaba::start().await.unwrap();
    mock.add_key(OTHER_ID, OTHER_SECRET)
        .answer("DescribeRegions", regions())
        .answer("RunInstances", serde_json::json!({"InstanceIdSets": {}}))
        .leak(testkit::KEY_ID, ["RunInstances"]);
    let leaked = client(&mock, testkit::credentials());
    let clean = client(&mock, Credentials::new(OTHER_ID, OTHER_SECRET));

    let err = leaked.call(&run()).await.unwrap_err();
    let Error::CompromisedKey(leak) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(leak.status, Some(403));
    assert_eq!(leak.server_code.as_deref(), Some("Forbidden"));
    assert_eq!(leak.server_message.as_deref(), Some(testkit::LEAK_MESSAGE));
    // The same key, another action: answered.
    leaked.call(&describe()).await.unwrap();
    // Another key, the same action: answered.
    clean.call(&run()).await.unwrap();
    assert_eq!(mock.requests_for("RunInstances").len(), 2);

    mock.leak_all(OTHER_ID);
    let err = clean.call(&describe()).await.unwrap_err();
    assert!(err.is_compromised_key(), "{err:?}");
    mock.clear_leak(OTHER_ID);
    let fresh = client(&mock, Credentials::new(OTHER_ID, OTHER_SECRET));
    fresh.call(&describe()).await.unwrap();
}

#[tokio::test]
async fn requests_are_recorded_with_action_key_and_parameters() {
    let mock = MockAlibaba::start().await.unwrap();
    mock.answer("DescribeRegions", regions());
    let client = client(&mock, testkit::credentials());
    client
        .call(
            &describe()
                .region("cn-hangzhou")
                .param("AcceptLanguage", "en-US"),
        )
        .await
        .unwrap();
    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.action.as_deref(), Some("DescribeRegions"));
    assert_eq!(r.access_key_id.as_deref(), Some(testkit::KEY_ID));
    assert_eq!(r.param("AcceptLanguage"), Some("en-US"));
    assert_eq!(r.param("RegionId"), Some("cn-hangzhou"));
    assert_eq!(r.param("Version"), Some("2014-05-26"));
    assert!(r.verified);
    assert_eq!(r.status, 200);
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn the_endpoint_stops_when_dropped() {
    let mock = MockAlibaba::start().await.unwrap();
    let addr = mock.url().trim_start_matches("http://").to_string();
    tokio::net::TcpStream::connect(&addr).await.unwrap();
    drop(mock);
    // The abort takes effect when the runtime next runs the task: wait for it, generously.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::task::yield_now().await;
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting connections after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
