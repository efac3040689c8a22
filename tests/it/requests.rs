//! Issue 13, requests: typed parameters, repeat lists and JSON parameters on the wire, the
//! paginator, `AccessDeniedDetail`, and `call_as` errors that name the failing path. Against the
//! test kit's mock endpoint (which also verifies every signature).

use std::time::Duration;

use aliyun_guard::paginate::Pagination;
use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
use aliyun_guard::{Client, Error, RetryPolicy, RpcRequest};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

fn client(mock: &MockAlibaba) -> Client {
    Client::builder()
        .credentials(testkit::credentials())
        .endpoint(mock.url())
        .retry(RetryPolicy::new(1, Duration::from_millis(1)))
        .build()
        .unwrap()
}

fn describe() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
}

#[tokio::test]
async fn typed_list_and_json_parameters_reach_the_server_signed() {
    let mock = MockAlibaba::start().await.unwrap();
    mock.answer("DescribeInstances", json!({}));
    client(&mock)
        .call(
            &describe()
                .param("PageSize", 10)
                .param("DryRun", false)
                .param_list("InstanceId", ["i-1", "i-2"])
                .tags([("env", "prod a&b"), ("team", "core")])
                .param_objects("Filter", [[("Name", "zone"), ("Value", "cn-hangzhou-h")]])
                .param_json("InstanceIds", &json!(["i-3", "i 4"])),
        )
        .await
        .unwrap();
    let r = &mock.requests()[0];
    assert!(r.verified);
    assert_eq!(r.param("PageSize"), Some("10"));
    assert_eq!(r.param("DryRun"), Some("false"));
    assert_eq!(r.param("InstanceId.1"), Some("i-1"));
    assert_eq!(r.param("InstanceId.2"), Some("i-2"));
    assert_eq!(r.param("Tag.1.Key"), Some("env"));
    assert_eq!(r.param("Tag.1.Value"), Some("prod a&b"));
    assert_eq!(r.param("Tag.2.Key"), Some("team"));
    assert_eq!(r.param("Filter.1.Name"), Some("zone"));
    assert_eq!(r.param("InstanceIds"), Some(r#"["i-3","i 4"]"#));
}

/// A `DescribeInstances` of `total` instances, pages by `PageNumber`/`PageSize`.
fn paged(mock: &MockAlibaba, total: u64, with_total: bool) {
    mock.answer_fn("DescribeInstances", move |r| {
        let page: u64 = r.param("PageNumber").unwrap_or("1").parse().unwrap();
        let size: u64 = r.param("PageSize").unwrap_or("10").parse().unwrap();
        let first = (page - 1) * size;
        let items: Vec<Value> = (first..total.min(first + size))
            .map(|i| json!({"InstanceId": format!("i-{i}")}))
            .collect();
        let mut body =
            json!({"PageNumber": page, "PageSize": size, "Instances": {"Instance": items}});
        if with_total {
            body["TotalCount"] = json!(total);
        }
        MockResponse::ok(body)
    });
}

#[tokio::test]
async fn page_number_pagination_stops_at_the_total() {
    let mock = MockAlibaba::start().await.unwrap();
    paged(&mock, 5, true);
    let items: Vec<Value> = client(&mock)
        .paginate(
            describe(),
            Pagination::page_number("Instances.Instance").page_size(2),
        )
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["InstanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["i-0", "i-1", "i-2", "i-3", "i-4"]);
    let pages: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| {
            (
                r.param("PageNumber").unwrap().to_string(),
                r.param("PageSize").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        pages,
        [
            ("1".into(), "2".into()),
            ("2".into(), "2".into()),
            ("3".into(), "2".into())
        ]
    );
    // Exactly a multiple of the page size: no extra request for an empty page.
    let mock = MockAlibaba::start().await.unwrap();
    paged(&mock, 4, true);
    let n = client(&mock)
        .paginate(
            describe(),
            Pagination::page_number("Instances.Instance").page_size(2),
        )
        .count()
        .await;
    assert_eq!(n, 4);
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn page_number_pagination_without_a_total_stops_at_a_short_or_empty_page() {
    let mock = MockAlibaba::start().await.unwrap();
    paged(&mock, 4, false);
    let client = client(&mock);
    let pages: Vec<Value> = client
        .pages(
            describe().param("PageSize", 2),
            Pagination::page_number("Instances.Instance"),
        )
        .try_collect()
        .await
        .unwrap();
    // Pages 1 and 2 are full, page 3 is empty: three whole answers.
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[2]["Instances"]["Instance"], json!([]));
    // Starting from the request's own PageNumber.
    let from_two: Vec<Value> = client
        .paginate(
            describe().param("PageNumber", 2).param("PageSize", 3),
            Pagination::page_number("Instances.Instance"),
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(from_two.len(), 1, "items 3 of 4, on a short page");
}

#[tokio::test]
async fn next_token_pagination_follows_tokens_until_none() {
    let mock = MockAlibaba::start().await.unwrap();
    mock.answer_fn("ListTagResources", |r| {
        let (items, next) = match r.param("NextToken") {
            None => (json!([1, 2]), json!("t-2")),
            Some("t-2") => (json!([3]), json!("t-3")),
            Some("t-3") => (json!([4]), json!("")),
            Some(_) => (json!([]), json!(null)),
        };
        MockResponse::ok(json!({"NextToken": next, "TagResources": {"TagResource": items}}))
    });
    let mut stream = client(&mock).paginate(
        RpcRequest::new("Ecs", "2014-05-26", "ListTagResources"),
        Pagination::next_token("TagResources.TagResource").page_size(2),
    );
    // The stream is Unpin: no pinning needed to pull from it.
    let mut items = Vec::new();
    while let Some(item) = stream.try_next().await.unwrap() {
        items.push(item);
    }
    assert_eq!(items, [json!(1), json!(2), json!(3), json!(4)]);
    let sent: Vec<Option<String>> = mock
        .requests()
        .iter()
        .map(|r| r.param("NextToken").map(str::to_string))
        .collect();
    assert_eq!(sent, [None, Some("t-2".into()), Some("t-3".into())]);
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.param("MaxResults") == Some("2"))
    );
}

#[tokio::test]
async fn a_repeated_token_is_a_loop_and_ends_the_stream_with_an_error() {
    let mock = MockAlibaba::start().await.unwrap();
    mock.answer_fn("ListTagResources", |r| {
        let next = if r.param("NextToken").is_none() {
            "a"
        } else {
            "b"
        };
        // a -> b -> b: the server repeats itself.
        MockResponse::ok(json!({"NextToken": next, "Items": [1]}))
    });
    let results: Vec<Result<Value, Error>> = client(&mock)
        .pages(
            RpcRequest::new("Ecs", "2014-05-26", "ListTagResources"),
            Pagination::next_token("Items"),
        )
        .collect()
        .await;
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(results[0].is_ok() && results[1].is_ok());
    let err = results[2].as_ref().unwrap_err();
    assert!(matches!(err, Error::Pagination { .. }), "{err:?}");
    assert!(err.to_string().contains("loop"), "{err}");
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn the_page_bound_stops_an_endless_listing() {
    let mock = MockAlibaba::start().await.unwrap();
    // Claims a huge total and always answers a full page.
    mock.answer_fn("DescribeInstances", |_| {
        MockResponse::ok(
            json!({"TotalCount": 1_000_000_000u64, "PageSize": 1, "Instances": {"Instance": [{}]}}),
        )
    });
    let results: Vec<Result<Value, Error>> = client(&mock)
        .paginate(
            describe(),
            Pagination::page_number("Instances.Instance").max_pages(3),
        )
        .collect()
        .await;
    assert_eq!(results.len(), 4);
    let err = results[3].as_ref().unwrap_err();
    assert!(err.to_string().contains("after 3 pages"), "{err}");
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn errors_end_the_stream() {
    let mock = MockAlibaba::start().await.unwrap();
    mock.answer(
        "DescribeInstances",
        json!({"Instances": {"Instance": "not a list"}}),
    );
    let results: Vec<Result<Value, Error>> = client(&mock)
        .paginate(describe(), Pagination::page_number("Instances.Instance"))
        .collect()
        .await;
    assert_eq!(results.len(), 1);
    assert!(
        results[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("not an array")
    );
    mock.answer_with(
        "DescribeInstances",
        MockResponse::error(400, "InvalidParameter", "bad"),
    );
    let results: Vec<Result<Value, Error>> = client(&mock)
        .paginate(describe(), Pagination::page_number("Instances.Instance"))
        .collect()
        .await;
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0].as_ref().unwrap_err().code(),
        Some("InvalidParameter")
    );
}

#[tokio::test]
async fn access_denied_detail_is_kept_and_neutralised() {
    let mock = MockAlibaba::start().await.unwrap();
    let nasty = "\u{1b}[2J\u{202e}";
    mock.answer_with(
        "DescribeInstances",
        MockResponse::with_status(
            403,
            json!({
                "Code": "NoPermission",
                "Message": "You are not authorized to do this action.",
                "AccessDeniedDetail": {
                    "AuthAction": "ecs:DescribeInstances",
                    "AuthPrincipalType": "SubUser",
                    "AuthPrincipalOwnerId": "1234567890123456",
                    "AuthPrincipalDisplayName": format!("dev{nasty} key {}", testkit::KEY_ID),
                    "NoPermissionType": "ImplicitDeny",
                    "PolicyType": "AccountLevelIdentityBasedPolicy",
                    "EncodedDiagnosticMessage": format!("AQEAAAAA {}", testkit::SECRET),
                }
            }),
        ),
    );
    let err = client(&mock).call(&describe()).await.unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    let detail = api
        .access_denied_detail
        .as_ref()
        .expect("AccessDeniedDetail kept");
    assert_eq!(detail.auth_action.as_deref(), Some("ecs:DescribeInstances"));
    assert_eq!(detail.no_permission_type.as_deref(), Some("ImplicitDeny"));
    assert_eq!(
        detail.policy_type.as_deref(),
        Some("AccountLevelIdentityBasedPolicy")
    );
    assert_eq!(detail.auth_principal_type.as_deref(), Some("SubUser"));
    assert_eq!(
        detail.auth_principal_owner_id.as_deref(),
        Some("1234567890123456")
    );
    let encoded = detail.encoded_diagnostic_message.as_deref().unwrap();
    assert!(
        encoded.starts_with("AQEAAAAA") && !encoded.contains(testkit::SECRET),
        "{encoded}"
    );
    let who = detail.auth_principal_display_name.as_deref().unwrap();
    assert!(
        !who.contains(testkit::KEY_ID) && who.contains("LTAI****wxyz"),
        "{who}"
    );
    assert!(
        !who.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{who:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("RAM denied ecs:DescribeInstances (ImplicitDeny"),
        "{shown}"
    );
    assert!(!shown.contains(testkit::SECRET));
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Regions {
    #[serde(rename = "Regions")]
    regions: RegionList,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct RegionList {
    #[serde(rename = "Region")]
    region: Vec<Region>,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Region {
    #[serde(rename = "RegionId")]
    region_id: String,
    #[serde(rename = "Quota")]
    quota: u32,
}

#[tokio::test]
async fn call_as_names_the_path_that_failed_without_the_value() {
    let mock = MockAlibaba::start().await.unwrap();
    mock.answer(
        "DescribeRegions",
        json!({"Regions": {"Region": [
            {"RegionId": "cn-hangzhou", "Quota": 1},
            {"RegionId": "cn-beijing", "Quota": "TopSecretValue-42"}
        ]}}),
    );
    let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions");
    let err = client(&mock)
        .call_as::<Regions>(&request)
        .await
        .unwrap_err();
    let Error::Deserialize {
        path, request_id, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(path, "Regions.Region[1].Quota");
    assert!(request_id.as_deref().unwrap().starts_with("MOCK-"));
    assert!(
        err.to_string().contains("at Regions.Region[1].Quota"),
        "{err}"
    );
    let chain = {
        let mut text = format!("{err} {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            text.push_str(&format!(" | {cause}"));
            source = cause.source();
        }
        text
    };
    assert!(
        chain.contains("invalid type: string, expected u32"),
        "{chain}"
    );
    assert!(!chain.contains("TopSecretValue"), "{chain}");
    // A good answer deserialises.
    mock.answer("DescribeRegions", json!({"Regions": {"Region": []}}));
    client(&mock).call_as::<Regions>(&request).await.unwrap();
}
