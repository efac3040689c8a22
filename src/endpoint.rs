//! Where a request goes: an explicit endpoint, or a host derived from product and region.

use url::Url;

use crate::error::Error;

/// Products served from one global host, whatever the region (product code in lower case, host).
///
/// Derived endpoints are always HTTPS.
pub(crate) const GLOBAL_HOSTS: &[(&str, &str)] = &[
    ("ram", "ram.aliyuncs.com"),
    ("ims", "ims.aliyuncs.com"),
    ("sts", "sts.aliyuncs.com"),
    ("alidns", "alidns.aliyuncs.com"),
    ("dysmsapi", "dysmsapi.aliyuncs.com"),
    ("pts", "pts.aliyuncs.com"),
    ("bssopenapi", "business.aliyuncs.com"),
    ("rds", "rds.aliyuncs.com"),
    ("cdn", "cdn.aliyuncs.com"),
    ("domain", "domain.aliyuncs.com"),
    ("actiontrail", "actiontrail.cn-hangzhou.aliyuncs.com"),
    ("resourcemanager", "resourcemanager.aliyuncs.com"),
];

/// Products whose regional host does not start with the product code (lower-case code, prefix):
/// the host is `PREFIX.REGION.aliyuncs.com`.
pub(crate) const REGIONAL_PREFIXES: &[(&str, &str)] = &[("dbs", "dbs-api")];

/// Resolves the endpoint of a call.
///
/// An explicit endpoint wins: a full URL (`https://...`, or `http://...` when plain HTTP is
/// wanted, as for a loopback test server) or a bare host (taken as HTTPS). Otherwise the host
/// comes from the built-in list of global hosts (RAM, IMS, STS, ...), or is
/// `product.region.aliyuncs.com` and needs a region.
///
/// ```
/// use aliyun_guard::endpoint::resolve;
/// assert_eq!(resolve("Ecs", Some("cn-hangzhou"), None).unwrap().as_str(),
///            "https://ecs.cn-hangzhou.aliyuncs.com/");
/// assert_eq!(resolve("BssOpenApi", None, None).unwrap().as_str(), "https://business.aliyuncs.com/");
/// assert_eq!(resolve("Ecs", None, Some("http://127.0.0.1:8080")).unwrap().as_str(),
///            "http://127.0.0.1:8080/");
/// assert!(resolve("Ecs", None, None).is_err());
/// ```
pub fn resolve(product: &str, region: Option<&str>, explicit: Option<&str>) -> Result<Url, Error> {
    if let Some(endpoint) = explicit {
        return parse_explicit(endpoint);
    }
    check_label("product code", product)?;
    let code = product.to_ascii_lowercase();
    if let Some((_, host)) = GLOBAL_HOSTS.iter().find(|(p, _)| *p == code) {
        return https(host, product);
    }
    let region = region
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::InvalidEndpoint {
            endpoint: product.to_string(),
            reason: format!(
                "product {product} has regional endpoints: set a region or give an endpoint"
            ),
        })?;
    check_label("region id", region)?;
    let region = region.to_ascii_lowercase();
    let prefix = REGIONAL_PREFIXES
        .iter()
        .find(|(p, _)| *p == code)
        .map(|(_, prefix)| *prefix)
        .unwrap_or(code.as_str());
    https(&format!("{prefix}.{region}.aliyuncs.com"), product)
}

/// The longest DNS label.
const MAX_LABEL: usize = 63;

/// Whether `text` is one DNS label: ASCII letters, digits and `-`, neither first nor last, at
/// most 63 bytes. Product codes and region ids must be labels, since they become host names.
pub(crate) fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_LABEL
        && !text.starts_with('-')
        && !text.ends_with('-')
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Refuses a product code or region id that is not a DNS label (see [`is_dns_label`]).
pub(crate) fn check_label(what: &str, text: &str) -> Result<(), Error> {
    if is_dns_label(text) {
        return Ok(());
    }
    Err(Error::InvalidEndpoint {
        endpoint: text.chars().take(80).collect(),
        reason: format!(
            "a {what} is one DNS label (ASCII letters, digits and '-', not first or last, at most \
             {MAX_LABEL} characters); it must not carry a host, port, path or user name"
        ),
    })
}

/// Forms the URL of a derived host, and checks that it is exactly `https://{host}/` on the
/// default port: the host is built from validated labels, and this check makes sure of it.
fn https(host: &str, product: &str) -> Result<Url, Error> {
    let invalid = |reason: String| Error::InvalidEndpoint {
        endpoint: host.chars().take(120).collect(),
        reason,
    };
    let url = Url::parse(&format!("https://{host}/"))
        .map_err(|e| invalid(format!("cannot form a URL for product {product}: {e}")))?;
    let exact = url.scheme() == "https"
        && url.host_str() == Some(host)
        && host.ends_with(".aliyuncs.com")
        && url.port().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !exact {
        return Err(invalid(format!(
            "the derived URL for product {product} is not exactly https://{host}/"
        )));
    }
    Ok(url)
}

/// The product a host of Alibaba Cloud serves, read from its name: `ecs.cn-hangzhou.aliyuncs.com`
/// gives `ecs`, `business.aliyuncs.com` gives `bssopenapi` and `dbs-api.cn-hangzhou.aliyuncs.com`
/// gives `dbs` ([`GLOBAL_HOSTS`] and [`REGIONAL_PREFIXES`] read backwards). A first label of the
/// form `PRODUCT-REGION` (`ecs-cn-hangzhou`) or `PRODUCT-vpc` gives both candidates. Empty for a
/// host outside `aliyuncs.com`.
///
/// The guard checks these as well as the request's product code, so that a mislabelled product
/// cannot slip a blocked call to the host past it.
pub(crate) fn products_of_host(host: &str) -> Vec<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let Some(rest) = host.strip_suffix(".aliyuncs.com") else {
        return Vec::new();
    };
    if let Some((code, _)) = GLOBAL_HOSTS.iter().find(|(_, h)| *h == host) {
        return vec![code.to_string()];
    }
    let label = rest.split('.').next().unwrap_or_default();
    if !is_dns_label(label) {
        return Vec::new();
    }
    if let Some((code, _)) = REGIONAL_PREFIXES.iter().find(|(_, p)| *p == label) {
        return vec![code.to_string()];
    }
    let mut products = vec![label.to_string()];
    if let Some((head, tail)) = label.split_once('-')
        && (looks_like_region(tail) || ["vpc", "internal", "intranet", "share"].contains(&tail))
    {
        products.push(head.to_string());
    }
    products
}

/// `cn-hangzhou`, `ap-southeast-1`, `us-west-1`: letters, a dash, then more.
fn looks_like_region(text: &str) -> bool {
    match text.split_once('-') {
        Some((area, rest)) => {
            (2..=4).contains(&area.len())
                && area.bytes().all(|b| b.is_ascii_lowercase())
                && !rest.is_empty()
        }
        None => false,
    }
}

/// Parses an endpoint given by the caller: the base URL of RPC and ROA calls alike (scheme,
/// host, optional port, path `/`; a ROA call's path comes from its path template).
pub(crate) fn parse_explicit(endpoint: &str) -> Result<Url, Error> {
    let invalid = |reason: String| Error::InvalidEndpoint {
        endpoint: without_userinfo(endpoint),
        reason,
    };
    let trimmed = endpoint.trim();
    if trimmed.is_empty() {
        return Err(invalid("the endpoint is empty".into()));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("https://{trimmed}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| invalid(e.to_string()))?;
    match url.scheme() {
        "https" | "http" => {}
        other => return Err(invalid(format!("scheme {other:?} is not http or https"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the endpoint has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "the endpoint must not carry user information".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "the endpoint must not carry a query or fragment".into(),
        ));
    }
    if url.path() != "/" && !url.path().is_empty() {
        // The base URL of RPC and ROA calls alike: a ROA call's path comes from its template.
        return Err(invalid(format!(
            "an endpoint is a base URL whose path is \"/\", not {:?}: RPC APIs are served at \
             \"/\", and a ROA API's path comes from the request's path template",
            url.path()
        )));
    }
    url.set_path("/");
    Ok(url)
}

/// The endpoint as given, with any `user:password@` replaced: it may hold a credential.
fn without_userinfo(endpoint: &str) -> String {
    let (scheme, rest) = match endpoint.find("://") {
        Some(i) => endpoint.split_at(i + 3),
        None => ("", endpoint),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}<redacted>{}", &rest[at..]),
        None => endpoint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The former doc example (the item is crate-private now).
    #[test]
    fn products_of_host_examples() {
        assert_eq!(products_of_host("ecs.cn-hangzhou.aliyuncs.com"), ["ecs"]);
        assert_eq!(products_of_host("business.aliyuncs.com"), ["bssopenapi"]);
        assert_eq!(
            products_of_host("ecs-cn-hangzhou.aliyuncs.com"),
            ["ecs-cn-hangzhou", "ecs"]
        );
        assert!(products_of_host("127.0.0.1").is_empty());
    }

    /// The former doc example (the item is crate-private now).
    #[test]
    fn is_dns_label_examples() {
        assert!(
            is_dns_label("dms-enterprise") && is_dns_label("cn-hangzhou") && is_dns_label("Ecs")
        );
        for bad in [
            "",
            "-ecs",
            "ecs-",
            "ecs.evil.com",
            "127.0.0.1:8443/",
            "x@host",
            "a/b",
            "é",
        ] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn global_products_ignore_region() {
        assert_eq!(
            resolve("Ram", Some("cn-shanghai"), None).unwrap().as_str(),
            "https://ram.aliyuncs.com/"
        );
        assert_eq!(
            resolve("dysmsapi", None, None).unwrap().host_str(),
            Some("dysmsapi.aliyuncs.com")
        );
    }

    #[test]
    fn regional_products_use_region_and_prefix() {
        assert_eq!(
            resolve("Dbs", Some("cn-hangzhou"), None)
                .unwrap()
                .host_str(),
            Some("dbs-api.cn-hangzhou.aliyuncs.com")
        );
        assert_eq!(
            resolve("dms-enterprise", Some("cn-hangzhou"), None)
                .unwrap()
                .host_str(),
            Some("dms-enterprise.cn-hangzhou.aliyuncs.com")
        );
        assert!(resolve("Ecs", Some("cn hangzhou"), None).is_err());
    }

    #[test]
    fn hostile_products_and_regions_never_choose_the_host() {
        for product in [
            "127.0.0.1:8443/",
            "ecs.evil.com#",
            "x@host/",
            "a/b",
            "ecs.cn-hangzhou.aliyuncs.com.evil.com",
            "evil.com?",
            "ecs:443",
            "-ecs",
            "ecs-",
            "e\u{0}cs",
            "ｅcs",
            &"a".repeat(64),
        ] {
            let err = resolve(product, Some("cn-hangzhou"), None).unwrap_err();
            assert!(
                matches!(err, Error::InvalidEndpoint { .. }),
                "{product}: {err:?}"
            );
        }
        for region in [
            "cn-hangzhou.evil.com",
            "cn-hangzhou:8443",
            "x@y",
            "a/b",
            "-cn",
            "",
        ] {
            assert!(resolve("Ecs", Some(region), None).is_err(), "{region}");
        }
        assert_eq!(
            resolve("Ecs", Some("CN-Hangzhou"), None).unwrap().as_str(),
            "https://ecs.cn-hangzhou.aliyuncs.com/"
        );
        // The check after building refuses anything but the exact host.
        assert!(https("ecs.evil.com", "x").is_err());
        assert!(https("ecs.aliyuncs.com:8443", "x").is_err());
        assert!(https("u@ecs.aliyuncs.com", "x").is_err());
        assert!(https("ecs.aliyuncs.com/x", "x").is_err());
    }

    #[test]
    fn every_known_host_derives_and_maps_back() {
        for (code, host) in GLOBAL_HOSTS {
            assert_eq!(resolve(code, None, None).unwrap().host_str(), Some(*host));
            assert_eq!(products_of_host(host), [code.to_string()]);
        }
        for (code, _) in REGIONAL_PREFIXES {
            let url = resolve(code, Some("cn-hangzhou"), None).unwrap();
            assert_eq!(
                products_of_host(url.host_str().unwrap()),
                [code.to_string()]
            );
        }
        assert_eq!(products_of_host("ECS.cn-hangzhou.aliyuncs.com."), ["ecs"]);
        assert_eq!(
            products_of_host("ecs-vpc.cn-hangzhou.aliyuncs.com"),
            ["ecs-vpc", "ecs"]
        );
        assert_eq!(
            products_of_host("dms-enterprise.cn-hangzhou.aliyuncs.com"),
            ["dms-enterprise"]
        );
        assert!(products_of_host("aliyuncs.com").is_empty());
        assert!(products_of_host("ecs.aliyuncs.com.evil.com").is_empty());
    }

    #[test]
    fn userinfo_is_never_echoed() {
        let err = parse_explicit("https://user:pa55@host/")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("pa55") && err.contains("<redacted>@host"),
            "{err}"
        );
        assert_eq!(without_userinfo("host/a@b"), "host/a@b");
    }

    #[test]
    fn explicit_endpoints() {
        assert_eq!(
            parse_explicit("ecs.cn-beijing.aliyuncs.com")
                .unwrap()
                .as_str(),
            "https://ecs.cn-beijing.aliyuncs.com/"
        );
        assert_eq!(
            parse_explicit("http://127.0.0.1:9/").unwrap().scheme(),
            "http"
        );
        for bad in [
            "",
            "ftp://x",
            "https://u:p@h",
            "https://h/path",
            "https://h/?a=1",
            "http://",
        ] {
            assert!(parse_explicit(bad).is_err(), "{bad}");
        }
    }
}
