//! Where a request goes: an explicit endpoint, or a host derived from product and region.

use url::Url;

use crate::error::Error;

/// Products served from one global host, whatever the region (product code in lower case, host).
///
/// Derived endpoints are always HTTPS.
pub const GLOBAL_HOSTS: &[(&str, &str)] = &[
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
pub const REGIONAL_PREFIXES: &[(&str, &str)] = &[("dbs", "dbs-api")];

/// Resolves the endpoint of a call.
///
/// An explicit endpoint wins: a full URL (`https://...`, or `http://...` when plain HTTP is
/// wanted, as for a loopback test server) or a bare host (taken as HTTPS). Otherwise the host
/// comes from [`GLOBAL_HOSTS`], or is `product.region.aliyuncs.com` and needs a region.
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
    if !region
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::InvalidEndpoint {
            endpoint: region.to_string(),
            reason: "a region id is made of letters, digits and '-'".into(),
        });
    }
    let prefix = REGIONAL_PREFIXES
        .iter()
        .find(|(p, _)| *p == code)
        .map(|(_, prefix)| *prefix)
        .unwrap_or(code.as_str());
    https(&format!("{prefix}.{region}.aliyuncs.com"), product)
}

fn https(host: &str, product: &str) -> Result<Url, Error> {
    Url::parse(&format!("https://{host}/")).map_err(|e| Error::InvalidEndpoint {
        endpoint: host.to_string(),
        reason: format!("cannot form a URL for product {product}: {e}"),
    })
}

/// Parses an endpoint given by the caller.
pub fn parse_explicit(endpoint: &str) -> Result<Url, Error> {
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
        return Err(invalid(format!(
            "RPC APIs are served at \"/\", not {:?}",
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
