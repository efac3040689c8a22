//! `audit KEY_ID`: what the key did, from ActionTrail.

use aliyun_guard::Client;
use aliyun_guard::credentials::mask_key_id;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::output::{self, array, field, field_or_dash, millis};
use crate::{CliError, Ctx, check_key_id};

const VERSION: &str = "2020-07-06";
const MAX_PRODUCTS: usize = 32;

/// What the key did, from ActionTrail: last use, products, IPs, resources, recent events.
#[derive(clap::Args, Debug)]
#[command(
    about = "What the key did, from ActionTrail: last use, products, source IPs, resources, events",
    long_about = "Asks ActionTrail (2020-07-06), as the administrator identity --admin-profile, \
what KEY_ID did: its last use (GetAccessKeyLastUsedInfo), the products it called \
(GetAccessKeyLastUsedProducts), and for each product the source IPs and resources \
(GetAccessKeyLastUsedIps, GetAccessKeyLastUsedResources), then the events of the last --days days \
filtered by the key (LookupEvents), page by page. Write events are highlighted: review them and \
remove unknown RAM users, keys, policies, instances and DNS records. ActionTrail lags about an \
hour.

Example:
  aliyun-guard audit LTAI5tExampleKeyId --admin-profile admin --days 30
  aliyun-guard audit LTAI5tExampleKeyId --admin-profile admin --output json > audit.json"
)]
pub struct AuditArgs {
    /// The AccessKey ID to audit.
    key_id: String,
    /// Profile of the administrator identity that reads ActionTrail.
    #[arg(long, value_name = "PROFILE")]
    admin_profile: String,
    /// How many days of events (LookupEvents keeps 90).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=90))]
    days: u32,
    /// Stop each paged list after this many pages.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_pages: u32,
}

/// Reads a list paged by `NextToken`; returns the items and whether pages were left unread.
async fn paged(
    ctx: &Ctx,
    client: &Client,
    action: &str,
    params: &[(&str, String)],
    list: &str,
    page_size: (&str, &str),
    max_pages: u32,
) -> Result<(Vec<Value>, bool), CliError> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..max_pages {
        let mut request = ctx
            .rpc("Actiontrail", VERSION, action)?
            .param(page_size.0, page_size.1);
        for (k, v) in params {
            request = request.param(*k, v);
        }
        if let Some(t) = &token {
            request = request.param("NextToken", t);
        }
        let answer = client.call(&request).await?;
        items.extend(array(&answer, &[list]).iter().cloned());
        token = answer
            .get("NextToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.len() <= 4096)
            .map(str::to_string);
        if token.is_none() {
            return Ok((items, false));
        }
    }
    Ok((items, true))
}

/// Whether an ActionTrail event is a write.
fn is_write(event: &Value) -> bool {
    if let Some(rw) = event.get("eventRW").and_then(Value::as_str) {
        return !rw.eq_ignore_ascii_case("Read");
    }
    let name = event.get("eventName").and_then(Value::as_str).unwrap_or("");
    !["Describe", "List", "Get", "Query", "Check", "Lookup"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn time_param(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub async fn run(ctx: &Ctx, args: AuditArgs) -> Result<u8, CliError> {
    let id = check_key_id(&args.key_id)?;
    let masked = mask_key_id(&id);
    let client = ctx.client(Some(&args.admin_profile))?;
    let key = [("AccessKey", id.clone())];

    let info = client
        .call(
            &ctx.rpc("Actiontrail", VERSION, "GetAccessKeyLastUsedInfo")?
                .param("AccessKey", &id),
        )
        .await?;
    let products_answer = client
        .call(
            &ctx.rpc("Actiontrail", VERSION, "GetAccessKeyLastUsedProducts")?
                .param("AccessKey", &id),
        )
        .await?;
    let products: Vec<Value> = array(&products_answer, &["Products"]).to_vec();
    let mut truncated = false;
    let mut ips = Vec::new();
    let mut resources = Vec::new();
    for product in products.iter().take(MAX_PRODUCTS) {
        let Some(service) = product.get("ServiceName").and_then(Value::as_str) else {
            continue;
        };
        let params = [key[0].clone(), ("ServiceName", service.to_string())];
        let (found, more) = paged(
            ctx,
            &client,
            "GetAccessKeyLastUsedIps",
            &params,
            "Ips",
            ("PageSize", "100"),
            args.max_pages,
        )
        .await?;
        truncated |= more;
        ips.extend(found.into_iter().map(|mut ip| {
            if let Value::Object(map) = &mut ip {
                map.entry("ServiceName").or_insert_with(|| json!(service));
            }
            ip
        }));
        let (found, more) = paged(
            ctx,
            &client,
            "GetAccessKeyLastUsedResources",
            &params,
            "Resources",
            ("PageSize", "100"),
            args.max_pages,
        )
        .await?;
        truncated |= more;
        resources.extend(found.into_iter().map(|mut r| {
            if let Value::Object(map) = &mut r {
                map.entry("ServiceName").or_insert_with(|| json!(service));
            }
            r
        }));
    }
    truncated |= products.len() > MAX_PRODUCTS;

    let end = OffsetDateTime::now_utc();
    let start = end - Duration::days(i64::from(args.days));
    let lookup = [
        ("LookupAttribute.1.Key", "EventAccessKeyId".to_string()),
        ("LookupAttribute.1.Value", id.clone()),
        ("StartTime", time_param(start)),
        ("EndTime", time_param(end)),
    ];
    let (events, more) = paged(
        ctx,
        &client,
        "LookupEvents",
        &lookup,
        "Events",
        ("MaxResults", "50"),
        args.max_pages,
    )
    .await?;
    truncated |= more;

    let events_json: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "time": field(e, "eventTime"),
                "name": field(e, "eventName"),
                "source": field(e, "eventSource").or_else(|| field(e, "serviceName")),
                "source_ip": field(e, "sourceIpAddress"),
                "write": is_write(e),
                "event": e,
            })
        })
        .collect();
    let writes = events_json
        .iter()
        .filter(|e| e["write"] == json!(true))
        .count();
    let last_used = json!({
        "account_type": field(&info, "AccountType"),
        "user_name": field(&info, "UserName"),
        "service": field(&info, "ServiceName"),
        "source": field(&info, "Source"),
        "at": millis(&info, "UsedTimestamp"),
    });
    let json = json!({
        "access_key_id": masked,
        "days": args.days,
        "last_used": last_used,
        "products": products.iter().map(|p| json!({
            "service": field(p, "ServiceName"), "source": field(p, "Source"),
            "at": millis(p, "UsedTimestamp")})).collect::<Vec<_>>(),
        "ips": ips.iter().map(|p| json!({
            "ip": field(p, "Ip"), "service": field(p, "ServiceName"), "source": field(p, "Source"),
            "at": millis(p, "UsedTimestamp")})).collect::<Vec<_>>(),
        "resources": resources.iter().map(|p| json!({
            "name": field(p, "ResourceName"), "type": field(p, "ResourceType"),
            "service": field(p, "ServiceName"), "at": millis(p, "UsedTimestamp")}))
            .collect::<Vec<_>>(),
        "events": events_json,
        "writes": writes,
        "truncated": truncated,
    });

    let mut text = format!(
        "ActionTrail report for {masked} (events of the last {} days)\n\nLast used: {} by {} ({}) \
         via {}, {}\n",
        args.days,
        field_or_dash(&last_used, "at"),
        field_or_dash(&last_used, "user_name"),
        field_or_dash(&last_used, "account_type"),
        field_or_dash(&last_used, "service"),
        field_or_dash(&last_used, "source"),
    );
    text.push_str(&format!("\nProducts ({}):\n", products.len()));
    for p in &products {
        text.push_str(&format!(
            "  {}  last {}\n",
            field_or_dash(p, "ServiceName"),
            millis(p, "UsedTimestamp").unwrap_or("-".into())
        ));
    }
    text.push_str(&format!("\nSource IPs ({}):\n", ips.len()));
    for p in &ips {
        text.push_str(&format!(
            "  {}  {}  last {}\n",
            field_or_dash(p, "Ip"),
            field_or_dash(p, "ServiceName"),
            millis(p, "UsedTimestamp").unwrap_or("-".into())
        ));
    }
    text.push_str(&format!("\nResources ({}):\n", resources.len()));
    for p in &resources {
        text.push_str(&format!(
            "  {} {}  {}\n",
            field_or_dash(p, "ResourceType"),
            field_or_dash(p, "ResourceName"),
            field_or_dash(p, "ServiceName"),
        ));
    }
    text.push_str(&format!(
        "\nEvents ({}, {} writes marked WRITE):\n",
        events.len(),
        writes
    ));
    for e in &events_json {
        text.push_str(&format!(
            "  {} {}  {}  {}  from {}\n",
            if e["write"] == json!(true) {
                "WRITE"
            } else {
                "     "
            },
            field_or_dash(e, "time"),
            field_or_dash(e, "source"),
            field_or_dash(e, "name"),
            field_or_dash(e, "source_ip"),
        ));
    }
    if truncated {
        text.push_str("\nSome lists have more pages than were read (raise --max-pages).\n");
    }
    if writes > 0 {
        text.push_str(&format!(
            "\n{} write event(s): check each one; remove unknown RAM users, keys, policies, \
             instances and DNS records.\n",
            writes
        ));
    }
    output::emit(ctx.output(), &json, &text);
    Ok(0)
}
