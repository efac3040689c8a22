//! Paginated listings as a [`Stream`]: `PageNumber`/`PageSize` and `NextToken`/`MaxResults`.
//!
//! [`Client::paginate`] yields the items of every page (found at a JSON path such as
//! `Instances.Instance`); [`Client::pages`] yields each page's whole answer. Both stop by
//! themselves at the last page and are bounded: at most [`Pagination::max_pages`] pages (default
//! [`DEFAULT_MAX_PAGES`]), after which the stream ends with an [`Error::Pagination`], as it does
//! when the server repeats a `NextToken` (a loop). The first error ends the stream.
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! use aliyun_guard::{Client, RpcRequest};
//! use aliyun_guard::paginate::Pagination;
//!
//! # async fn run() -> Result<(), aliyun_guard::Error> {
//! let client = Client::builder().region("cn-hangzhou").build()?;
//! let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances");
//! let instances: Vec<serde_json::Value> = client
//!     .paginate(request, Pagination::page_number("Instances.Instance").page_size(100))
//!     .try_collect()
//!     .await?;
//! # Ok(()) }
//! ```

use std::collections::HashSet;

use futures_core::Stream;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::error::Error;
use crate::request::RpcRequest;

/// The default bound on the pages of one listing.
pub const DEFAULT_MAX_PAGES: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Style {
    PageNumber {
        number_param: String,
        size_param: String,
        total_field: String,
    },
    NextToken {
        token_param: String,
        size_param: String,
        token_field: String,
    },
}

/// How a listing is paginated, and where its items are.
///
/// ```
/// use aliyun_guard::paginate::Pagination;
/// let ecs = Pagination::page_number("Instances.Instance").page_size(100);
/// let tags = Pagination::next_token("TagResources.TagResource").page_size(50).max_pages(20);
/// # let _ = (ecs, tags);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pagination {
    style: Style,
    items: Vec<String>,
    page_size: Option<u64>,
    max_pages: usize,
}

impl Pagination {
    /// `PageNumber`/`PageSize` pages, counted by `TotalCount`, items at `items_path` (dotted
    /// object keys, such as `Instances.Instance`; empty: the answer itself).
    ///
    /// The listing starts at the request's `PageNumber` (default 1) and stops after a page
    /// with no items, a page shorter than the page size, or when `PageNumber * PageSize`
    /// reaches `TotalCount`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::paginate::Pagination;
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, RpcRequest};
    /// use futures::TryStreamExt;
    ///
    /// let mock = MockAlibaba::start().await?;
    /// mock.answer_fn("DescribeInstances", |request| {
    ///     let page: u64 = request.param("PageNumber").unwrap_or("1").parse().unwrap_or(1);
    ///     let items: Vec<_> = if page <= 2 { vec![serde_json::json!({"InstanceId": format!("i-{page}")})] } else { vec![] };
    ///     MockResponse::ok(serde_json::json!({"TotalCount": 2, "PageNumber": page, "Instances": {"Instance": items}}))
    /// });
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances");
    /// let ids: Vec<_> = client
    ///     .paginate(request, Pagination::page_number("Instances.Instance").page_size(1))
    ///     .map_ok(|instance| instance["InstanceId"].as_str().unwrap_or_default().to_string())
    ///     .try_collect()
    ///     .await?;
    /// assert_eq!(ids, ["i-1", "i-2"]);
    /// # Ok(()) }
    /// ```
    pub fn page_number(items_path: &str) -> Self {
        Self::new(
            Style::PageNumber {
                number_param: "PageNumber".into(),
                size_param: "PageSize".into(),
                total_field: "TotalCount".into(),
            },
            items_path,
        )
    }

    /// `NextToken`/`MaxResults` pages, items at `items_path`.
    ///
    /// Each request after the first carries the previous answer's `NextToken`; the listing
    /// stops when an answer has none (absent or empty). A token the listing has already seen
    /// ends it with [`Error::Pagination`].
    ///
    /// ```
    /// use aliyun_guard::paginate::Pagination;
    /// // ListTagResources answers `NextToken` and takes `NextToken` and `MaxResults`.
    /// let tags = Pagination::next_token("TagResources.TagResource").page_size(50);
    /// # let _ = tags;
    /// ```
    pub fn next_token(items_path: &str) -> Self {
        Self::new(
            Style::NextToken {
                token_param: "NextToken".into(),
                size_param: "MaxResults".into(),
                token_field: "NextToken".into(),
            },
            items_path,
        )
    }

    fn new(style: Style, items_path: &str) -> Self {
        Pagination {
            style,
            items: items_path
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            page_size: None,
            max_pages: DEFAULT_MAX_PAGES,
        }
    }

    /// Sends this page size (`PageSize` or `MaxResults`); by default the request's own, else the
    /// API's default.
    ///
    /// ```
    /// use aliyun_guard::paginate::Pagination;
    /// let pages = Pagination::page_number("Instances.Instance").page_size(100);
    /// assert_ne!(pages, Pagination::page_number("Instances.Instance"));
    /// ```
    pub fn page_size(mut self, size: u64) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Stops with [`Error::Pagination`] rather than fetch more than `pages` pages (default
    /// [`DEFAULT_MAX_PAGES`]; at least 1).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::paginate::Pagination;
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, RpcRequest};
    /// use futures::TryStreamExt;
    ///
    /// let mock = MockAlibaba::start().await?;
    /// mock.answer_fn("DescribeInstances", |request| {
    ///     let page: u64 = request.param("PageNumber").unwrap_or("1").parse().unwrap_or(1);
    ///     let items: Vec<_> = if page <= 2 { vec![serde_json::json!({"InstanceId": format!("i-{page}")})] } else { vec![] };
    ///     MockResponse::ok(serde_json::json!({"TotalCount": 2, "PageNumber": page, "Instances": {"Instance": items}}))
    /// });
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances");
    /// let pagination = Pagination::page_number("Instances.Instance").page_size(1).max_pages(1);
    /// let result: Result<Vec<_>, _> = client.paginate(request, pagination).try_collect().await;
    /// // More than one page is an error, not a silent truncation.
    /// assert!(matches!(result, Err(aliyun_guard::Error::Pagination { .. })));
    /// # Ok(()) }
    /// ```
    pub fn max_pages(mut self, pages: usize) -> Self {
        self.max_pages = pages.max(1);
        self
    }

    /// Renames the parameters and the answer's fields: for page numbers, (`PageNumber`,
    /// `PageSize`, `TotalCount`); for tokens, (`NextToken` sent, `MaxResults`, `NextToken`
    /// read).
    ///
    /// ```
    /// use aliyun_guard::paginate::Pagination;
    /// // An API that pages with `PageNum`, `PageSize` and answers `Total`.
    /// let p = Pagination::page_number("Items").names("PageNum", "PageSize", "Total");
    /// # let _ = p;
    /// ```
    pub fn names(mut self, first: &str, size: &str, answer_field: &str) -> Self {
        self.style = match self.style {
            Style::PageNumber { .. } => Style::PageNumber {
                number_param: first.into(),
                size_param: size.into(),
                total_field: answer_field.into(),
            },
            Style::NextToken { .. } => Style::NextToken {
                token_param: first.into(),
                size_param: size.into(),
                token_field: answer_field.into(),
            },
        };
        self
    }

    /// The items of one page: the array at the items path. A missing path is an empty page;
    /// anything else than an array there is `None`.
    fn items_of<'a>(&self, page: &'a Value) -> Option<&'a [Value]> {
        let mut at = page;
        for key in &self.items {
            match at.get(key) {
                Some(next) => at = next,
                None => return Some(&[]),
            }
        }
        match at {
            Value::Array(items) => Some(items),
            Value::Null => Some(&[]),
            _ => None,
        }
    }
}

/// A number in an answer: a JSON number or a decimal string.
fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

struct State {
    client: Client,
    request: RpcRequest,
    pagination: Pagination,
    /// The next page number (page-number style).
    page: u64,
    /// Digests of the tokens sent so far (token style): bounded by the page bound.
    tokens: HashSet<[u8; 32]>,
    fetched: usize,
    done: bool,
}

impl State {
    fn error(&self, reason: String) -> Error {
        Error::Pagination {
            action: self.request.action().to_string(),
            reason,
        }
    }

    /// Fetches the next page and decides whether there is one after it.
    async fn next_page(&mut self) -> Result<Value, Error> {
        if self.fetched >= self.pagination.max_pages {
            self.done = true;
            return Err(self.error(format!(
                "stopped after {} pages, the bound (Pagination::max_pages)",
                self.pagination.max_pages
            )));
        }
        self.fetched += 1;
        let page = self.client.call(&self.request).await.inspect_err(|_| {
            self.done = true;
        })?;
        let Some(items) = self.pagination.items_of(&page) else {
            self.done = true;
            return Err(self.error(format!(
                "the items path {:?} is not an array in the answer",
                self.pagination.items.join(".")
            )));
        };
        let count = items.len() as u64;
        match &self.pagination.style {
            Style::PageNumber {
                number_param,
                size_param,
                total_field,
            } => {
                let size = number(page.get(size_param.as_str()))
                    .or(self.pagination.page_size)
                    .or_else(|| {
                        self.request
                            .parameters()
                            .get(size_param)
                            .and_then(|s| s.parse().ok())
                    })
                    .unwrap_or(count);
                let total = number(page.get(total_field.as_str()));
                let reached_total =
                    total.is_some_and(|total| self.page.saturating_mul(size) >= total);
                if count == 0 || count < size || reached_total || size == 0 {
                    self.done = true;
                } else {
                    self.page += 1;
                    self.request.set_param(number_param, self.page);
                }
            }
            Style::NextToken {
                token_param,
                token_field,
                ..
            } => match page.get(token_field.as_str()).and_then(Value::as_str) {
                Some(token) if !token.is_empty() => {
                    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                    if !self.tokens.insert(digest) {
                        // This page is dropped: it leads back to a page already listed.
                        self.done = true;
                        return Err(self.error(format!(
                            "the server repeated a {token_field} after {} pages (a loop)",
                            self.fetched
                        )));
                    }
                    self.request.set_param(token_param, token);
                }
                _ => self.done = true,
            },
        }
        Ok(page)
    }
}

impl Client {
    /// Every page of a paginated listing, each page's whole answer, as a stream (see
    /// [`crate::paginate`]). Pages are fetched one at a time, when the stream is polled. The
    /// stream is `Unpin`: `while let Some(page) = pages.try_next().await? {..}` works as is.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::paginate::Pagination;
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, RpcRequest};
    /// use futures::TryStreamExt;
    ///
    /// let mock = MockAlibaba::start().await?;
    /// mock.answer_fn("DescribeInstances", |request| {
    ///     let page: u64 = request.param("PageNumber").unwrap_or("1").parse().unwrap_or(1);
    ///     let items: Vec<_> = if page <= 2 { vec![serde_json::json!({"InstanceId": format!("i-{page}")})] } else { vec![] };
    ///     MockResponse::ok(serde_json::json!({"TotalCount": 2, "PageNumber": page, "Instances": {"Instance": items}}))
    /// });
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances");
    /// let mut pages = client.pages(request, Pagination::page_number("Instances.Instance").page_size(1));
    /// let mut numbers = Vec::new();
    /// while let Some(page) = pages.try_next().await? {
    ///     numbers.push(page["PageNumber"].as_u64().unwrap_or(0));
    /// }
    /// assert_eq!(numbers, [1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn pages(
        &self,
        request: RpcRequest,
        pagination: Pagination,
    ) -> impl Stream<Item = Result<Value, Error>> + Send + Unpin + 'static {
        let mut request = request;
        let mut tokens = HashSet::new();
        let mut page = 1;
        match &pagination.style {
            Style::PageNumber {
                number_param,
                size_param,
                ..
            } => {
                page = request
                    .parameters()
                    .get(number_param)
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(1);
                request = request.param(number_param.as_str(), page);
                if let Some(size) = pagination.page_size {
                    request = request.param(size_param.as_str(), size);
                }
            }
            Style::NextToken {
                token_param,
                size_param,
                ..
            } => {
                if let Some(size) = pagination.page_size {
                    request = request.param(size_param.as_str(), size);
                }
                if let Some(token) = request.parameters().get(token_param) {
                    tokens.insert(Sha256::digest(token.as_bytes()).into());
                }
            }
        }
        let state = State {
            client: self.clone(),
            request,
            pagination,
            page,
            tokens,
            fetched: 0,
            done: false,
        };
        // Boxed so that the stream is `Unpin` (`try_next()` works on it without pinning).
        Box::pin(futures_util::stream::unfold(
            state,
            |mut state| async move {
                if state.done {
                    return None;
                }
                let page = state.next_page().await;
                Some((page, state))
            },
        ))
    }

    /// Every item of a paginated listing (the elements of the array at the pagination's items
    /// path on each page), as a stream (see [`crate::paginate`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::paginate::Pagination;
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, RpcRequest};
    /// use futures::TryStreamExt;
    ///
    /// let mock = MockAlibaba::start().await?;
    /// mock.answer_fn("DescribeInstances", |request| {
    ///     let page: u64 = request.param("PageNumber").unwrap_or("1").parse().unwrap_or(1);
    ///     let items: Vec<_> = if page <= 2 { vec![serde_json::json!({"InstanceId": format!("i-{page}")})] } else { vec![] };
    ///     MockResponse::ok(serde_json::json!({"TotalCount": 2, "PageNumber": page, "Instances": {"Instance": items}}))
    /// });
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances");
    /// let all: Vec<serde_json::Value> = client
    ///     .paginate(request, Pagination::page_number("Instances.Instance").page_size(1))
    ///     .try_collect()
    ///     .await?;
    /// assert_eq!(all.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn paginate(
        &self,
        request: RpcRequest,
        pagination: Pagination,
    ) -> impl Stream<Item = Result<Value, Error>> + Send + Unpin + 'static {
        use futures_util::StreamExt;
        let extract = pagination.clone();
        self.pages(request, pagination)
            .map(move |page| {
                let items: Vec<Result<Value, Error>> = match page {
                    Ok(mut page) => take_items(&extract, &mut page)
                        .into_iter()
                        .map(Ok)
                        .collect(),
                    Err(e) => vec![Err(e)],
                };
                futures_util::stream::iter(items)
            })
            .flatten()
    }
}

/// Moves the items out of a page (already checked to be an array, or absent).
fn take_items(pagination: &Pagination, page: &mut Value) -> Vec<Value> {
    let mut at = page;
    for key in &pagination.items {
        match at.get_mut(key) {
            Some(next) => at = next,
            None => return Vec::new(),
        }
    }
    match at.take() {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}
