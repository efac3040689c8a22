//! The restriction table: which operations Alibaba blocks for a compromised AccessKey.
//!
//! Keyed by product code (case-insensitive, with the doc's display names as aliases), API version
//! and action (case-insensitive). The built-in table is `data/restrictions.toml`, compiled into the
//! crate; an updated list can be loaded from a TOML or JSON file of the same schema and merged
//! with, or put in place of, the built-in one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::LazyLock;

use foldhash::fast::RandomState;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The built-in table's source text.
pub const BUILTIN_TOML: &str = include_str!("../../data/restrictions.toml");

/// Largest table file accepted, in bytes.
pub const MAX_TABLE_BYTES: u64 = 4 * 1024 * 1024;

static BUILTIN: LazyLock<RestrictionTable> = LazyLock::new(|| {
    RestrictionTable::from_toml_str(BUILTIN_TOML, "built-in")
        .unwrap_or_else(|e| panic!("the built-in restriction table is invalid: {e}"))
});

/// Which actions of a product version are blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actions {
    /// Every action (RAM, IMS).
    All,
    /// These actions.
    Only(Vec<String>),
}

/// One row of the table, as listed by [`RestrictionTable::entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Restriction {
    /// Product code.
    pub product: String,
    /// API version.
    pub version: String,
    /// Blocked actions.
    pub actions: Actions,
}

/// How a blocked call matched the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Coverage {
    /// Every action of that product version is blocked.
    AllActions,
    /// The action is listed.
    Listed,
}

#[derive(Debug, Clone, Default)]
enum Rule {
    #[default]
    None,
    All,
    /// Lower-case action to its spelling in the source.
    Listed(HashMap<Box<str>, Box<str>, RandomState>),
}

#[derive(Debug, Clone)]
struct Product {
    code: String,
    versions: HashMap<Box<str>, Rule, RandomState>,
}

/// The restriction table.
///
/// ```
/// use aliyun_guard::guard::RestrictionTable;
/// let table = RestrictionTable::builtin();
/// assert!(table.is_blocked("ecs", "2014-05-26", "RunInstances"));
/// assert!(table.is_blocked("Ram", "2015-05-01", "ListUsers"));          // all actions
/// assert!(table.is_blocked("Short Message Service", "2017-05-25", "SendSms")); // alias
/// assert!(!table.is_blocked("Ecs", "2014-05-26", "DescribeInstances"));
/// assert_eq!(table.updated(), Some("2026-01-07"));
/// ```
#[derive(Debug, Clone)]
pub struct RestrictionTable {
    source: String,
    updated: Option<String>,
    names: HashMap<Box<str>, usize, RandomState>,
    products: Vec<Product>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    updated: Option<String>,
    #[serde(default, alias = "entries")]
    entry: Vec<EntryFile>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    product: String,
    #[serde(default)]
    aliases: Vec<String>,
    version: String,
    actions: Vec<String>,
}

/// Calls `f` with the ASCII lower case of `s`, on the stack when it is short (no allocation).
fn with_lower<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 96];
    if s.len() <= buf.len() {
        let out = &mut buf[..s.len()];
        out.copy_from_slice(s.as_bytes());
        out.make_ascii_lowercase();
        // Lower-casing ASCII bytes keeps valid UTF-8 valid.
        match std::str::from_utf8(out) {
            Ok(lower) => f(lower),
            Err(_) => f(&s.to_ascii_lowercase()),
        }
    } else {
        f(&s.to_ascii_lowercase())
    }
}

fn lower_key(s: &str) -> Box<str> {
    s.trim().to_ascii_lowercase().into_boxed_str()
}

fn valid_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 96 && s.bytes().all(|b| b.is_ascii_graphic())
}

impl RestrictionTable {
    /// An empty table (nothing blocked).
    pub fn empty() -> Self {
        Self {
            source: "empty".into(),
            updated: None,
            names: HashMap::default(),
            products: Vec::new(),
        }
    }

    /// The built-in table (Alibaba's list of Jan 07, 2026).
    pub fn builtin() -> Self {
        BUILTIN.clone()
    }

    /// Parses a table in TOML; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, Error> {
        // toml's error holds (and its Debug shows) the whole input, which may be a misdirected
        // file with secrets in it: keep only the message and the line.
        let file: TableFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| {
                let end = span.start.min(text.len());
                text.as_bytes()[..end]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            });
            Error::RestrictionTable {
                origin: origin.to_string(),
                message: match line {
                    Some(line) => format!(
                        "not a valid TOML restriction table (line {line}): {}",
                        e.message()
                    ),
                    None => format!("not a valid TOML restriction table: {}", e.message()),
                },
                source: None,
            }
        })?;
        Self::from_file(file, origin)
    }

    /// Parses a table in JSON; `origin` names it in errors.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self, Error> {
        // serde's message can quote the input (a misdirected file may hold secrets): keep only
        // the kind of error and where it is.
        let file: TableFile = serde_json::from_str(text).map_err(|e| {
            // A misspelt field name is the useful part of an "unknown field" error (a name, not
            // a value); every other message may quote a value and is not shown.
            let shown = e.to_string();
            let detail = if shown.starts_with("unknown field") {
                let cut: String = shown.chars().take(160).collect();
                format!(": {}", crate::redact::sanitize(&cut))
            } else {
                String::new()
            };
            Error::RestrictionTable {
                origin: origin.to_string(),
                message: format!(
                    "not a valid JSON restriction table ({:?} error at line {}, column {}){detail}",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
                source: None,
            }
        })?;
        Self::from_file(file, origin)
    }

    /// Loads a table from a `.toml` or `.json` file (by extension; others are tried as both).
    ///
    /// Only a regular file is read (a symlink at the last component, a FIFO or a device is
    /// refused), and at most [`MAX_TABLE_BYTES`] of it, whatever its metadata says.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let bytes = crate::fs_safe::read_regular(path, MAX_TABLE_BYTES).map_err(|e| {
            Error::RestrictionTable {
                origin: origin.clone(),
                message: e.to_string(),
                source: Some(Box::new(e)),
            }
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| Error::RestrictionTable {
            origin: origin.clone(),
            message: "the file is not UTF-8".into(),
            source: Some(Box::new(e)),
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Self::from_json_str(text, &origin),
            Some(ext) if ext.eq_ignore_ascii_case("toml") => Self::from_toml_str(text, &origin),
            _ if text.trim_start().starts_with('{') => Self::from_json_str(text, &origin),
            _ => Self::from_toml_str(text, &origin),
        }
    }

    fn from_file(file: TableFile, origin: &str) -> Result<Self, Error> {
        let mut table = Self::empty();
        table.source = file.source.unwrap_or_else(|| origin.to_string());
        if let Some(updated) = &file.updated {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(updated, format).map_err(|e| Error::RestrictionTable {
                origin: origin.to_string(),
                message: format!("`updated` {updated:?} is not a date (YYYY-MM-DD)"),
                source: Some(Box::new(e)),
            })?;
        }
        table.updated = file.updated;
        for (index, entry) in file.entry.iter().enumerate() {
            table
                .add_entry(entry)
                .map_err(|message| Error::RestrictionTable {
                    origin: origin.to_string(),
                    message: format!(
                        "entry {} (product {:?}, version {:?}): {message}",
                        index + 1,
                        entry.product,
                        entry.version
                    ),
                    source: None,
                })?;
        }
        Ok(table)
    }

    fn add_entry(&mut self, entry: &EntryFile) -> Result<(), String> {
        if !valid_token(entry.product.trim()) {
            return Err("the product code must be visible ASCII, 1 to 96 characters".into());
        }
        if !valid_token(entry.version.trim()) {
            return Err("the version must be visible ASCII, 1 to 96 characters".into());
        }
        if entry.actions.is_empty() {
            return Err("`actions` is empty: list actions, or [\"*\"] for all".into());
        }
        let all = entry.actions.iter().any(|a| a.trim() == "*");
        if all && entry.actions.len() > 1 {
            return Err("\"*\" (all actions) cannot be combined with named actions".into());
        }
        if let Some(bad) = entry
            .actions
            .iter()
            .find(|a| !all && !valid_token(a.trim()))
        {
            return Err(format!(
                "action {bad:?} must be visible ASCII, 1 to 96 characters"
            ));
        }
        let index = self.product_index(entry.product.trim(), &entry.aliases)?;
        let rule = self.products[index]
            .versions
            .entry(entry.version.trim().into())
            .or_default();
        if all {
            *rule = Rule::All;
        } else {
            for action in &entry.actions {
                insert_action(rule, action.trim());
            }
        }
        Ok(())
    }

    /// Finds or creates the product for `code`, registering `aliases`.
    fn product_index(&mut self, code: &str, aliases: &[String]) -> Result<usize, String> {
        let index = match self.names.get(&lower_key(code)) {
            Some(&i) => i,
            None => {
                self.products.push(Product {
                    code: code.to_string(),
                    versions: HashMap::default(),
                });
                let i = self.products.len() - 1;
                self.names.insert(lower_key(code), i);
                i
            }
        };
        for alias in aliases {
            if alias.trim().is_empty() || alias.len() > 96 {
                return Err(format!("alias {alias:?} must be 1 to 96 characters"));
            }
            match self.names.get(&lower_key(alias)) {
                Some(&other) if other != index => {
                    return Err(format!(
                        "alias {alias:?} already names product {:?}",
                        self.products[other].code
                    ));
                }
                Some(_) => {}
                None => {
                    self.names.insert(lower_key(alias), index);
                }
            }
        }
        Ok(index)
    }

    /// How `action` of `product` `version` is blocked, if it is.
    ///
    /// Allocation-free for names up to 96 bytes: this is on the hot path of every call made with
    /// a compromised key.
    pub fn coverage(&self, product: &str, version: &str, action: &str) -> Option<Coverage> {
        let index = with_lower(product, |p| self.names.get(p).copied())?;
        match self.products[index].versions.get(version)? {
            Rule::All => Some(Coverage::AllActions),
            Rule::Listed(actions) => {
                with_lower(action, |a| actions.contains_key(a)).then_some(Coverage::Listed)
            }
            Rule::None => None,
        }
    }

    /// Whether the call is blocked for a compromised key.
    pub fn is_blocked(&self, product: &str, version: &str, action: &str) -> bool {
        self.coverage(product, version, action).is_some()
    }

    /// Adds one blocked action; returns whether the table changed.
    pub fn insert(&mut self, product: &str, version: &str, action: &str) -> bool {
        if self.is_blocked(product, version, action)
            || !valid_token(product)
            || !valid_token(version)
            || !valid_token(action)
        {
            return false;
        }
        let Ok(index) = self.product_index(product, &[]) else {
            return false;
        };
        let rule = self.products[index]
            .versions
            .entry(version.into())
            .or_default();
        insert_action(rule, action);
        true
    }

    /// Adds every row of `other` to this table; `updated` becomes the later of the two dates.
    pub fn merge(&mut self, other: &RestrictionTable) {
        for (code, aliases, version, rule) in other.rows() {
            let Ok(index) = self.product_index(code, &aliases) else {
                // An alias clash: keep the rows under the product code alone.
                let Ok(index) = self.product_index(code, &[]) else {
                    continue;
                };
                merge_rule(&mut self.products[index], version, rule);
                continue;
            };
            merge_rule(&mut self.products[index], version, rule);
        }
        if other.updated > self.updated {
            self.updated.clone_from(&other.updated);
            self.source.clone_from(&other.source);
        }
    }

    /// Every (product, aliases, version, rule), in one pass over the names (linear).
    fn rows(&self) -> impl Iterator<Item = (&str, Vec<String>, &str, &Rule)> {
        let mut aliases: Vec<Vec<String>> = vec![Vec::new(); self.products.len()];
        for (name, &index) in &self.names {
            if let Some(product) = self.products.get(index)
                && !product.code.trim().eq_ignore_ascii_case(name)
            {
                aliases[index].push(name.to_string());
            }
        }
        self.products
            .iter()
            .zip(aliases)
            .flat_map(move |(p, aliases)| {
                p.versions
                    .iter()
                    .map(move |(v, rule)| (p.code.as_str(), aliases.clone(), &**v, rule))
            })
    }

    /// Every row, sorted by product, version.
    pub fn entries(&self) -> Vec<Restriction> {
        let mut out: Vec<Restriction> = self
            .products
            .iter()
            .flat_map(|p| {
                p.versions.iter().filter_map(|(v, rule)| {
                    let actions = match rule {
                        Rule::None => return None,
                        Rule::All => Actions::All,
                        Rule::Listed(map) => {
                            let mut names: Vec<String> =
                                map.values().map(|s| s.to_string()).collect();
                            names.sort();
                            Actions::Only(names)
                        }
                    };
                    Some(Restriction {
                        product: p.code.clone(),
                        version: v.to_string(),
                        actions,
                    })
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.product, &a.version).cmp(&(&b.product, &b.version)));
        out
    }

    /// Number of (product, version) rows.
    pub fn len(&self) -> usize {
        self.products.iter().map(|p| p.versions.len()).sum()
    }

    /// Whether the table blocks nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the list comes from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The date of the list (YYYY-MM-DD), if known.
    pub fn updated(&self) -> Option<&str> {
        self.updated.as_deref()
    }

    /// The table as TOML in the file schema (for review or as a base for an update).
    pub fn to_toml(&self) -> String {
        let mut by_row: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for r in self.entries() {
            let actions = match r.actions {
                Actions::All => vec!["*".to_string()],
                Actions::Only(list) => list,
            };
            by_row.insert((r.product, r.version), actions);
        }
        #[derive(Serialize)]
        struct Out {
            source: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            updated: Option<String>,
            entry: Vec<EntryFile>,
        }
        let out = Out {
            source: self.source.clone(),
            updated: self.updated.clone(),
            entry: by_row
                .into_iter()
                .map(|((product, version), actions)| EntryFile {
                    product,
                    aliases: Vec::new(),
                    version,
                    actions,
                })
                .collect(),
        };
        toml::to_string(&out).unwrap_or_default()
    }
}

fn insert_action(rule: &mut Rule, action: &str) {
    match rule {
        Rule::All => {}
        Rule::Listed(map) => {
            map.insert(lower_key(action), action.into());
        }
        Rule::None => {
            let mut map = HashMap::default();
            map.insert(lower_key(action), action.into());
            *rule = Rule::Listed(map);
        }
    }
}

fn merge_rule(product: &mut Product, version: &str, rule: &Rule) {
    let target = product.versions.entry(version.into()).or_default();
    match rule {
        Rule::None => {}
        Rule::All => *target = Rule::All,
        Rule::Listed(map) => {
            for original in map.values() {
                insert_action(target, original);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_every_row_of_the_doc() {
        let t = RestrictionTable::builtin();
        // 15 rows of the doc plus ModifyBackupStrategy under Dbs 2019-03-06.
        assert_eq!(t.len(), 16);
        let count = |p: &str, v: &str| {
            t.entries()
                .into_iter()
                .find(|r| r.product == p && r.version == v)
                .map(|r| match r.actions {
                    Actions::All => usize::MAX,
                    Actions::Only(a) => a.len(),
                })
        };
        assert_eq!(count("Ram", "2015-05-01"), Some(usize::MAX));
        assert_eq!(count("Ims", "2019-08-15"), Some(usize::MAX));
        assert_eq!(count("Ecs", "2014-05-26"), Some(13));
        assert_eq!(count("Eci", "2018-08-08"), Some(5));
        assert_eq!(count("Dysmsapi", "2017-05-25"), Some(4));
        assert_eq!(count("ecd", "2020-09-30"), Some(9));
        assert_eq!(count("PTS", "2019-08-10"), Some(8));
        assert_eq!(count("PTS", "2020-10-20"), Some(7));
        assert_eq!(count("Rds", "2014-08-15"), Some(10));
        assert_eq!(count("Dbs", "2021-01-01"), Some(3));
        assert_eq!(count("Dbs", "2019-03-06"), Some(1));
        assert_eq!(count("Alidns", "2015-01-09"), Some(5));
        assert_eq!(count("BssOpenApi", "2017-12-14"), Some(1));
        assert_eq!(count("EhpcInstant", "2023-07-01"), Some(2));
        assert_eq!(count("EHPC", "2024-07-30"), Some(2));
        assert_eq!(count("dms-enterprise", "2018-11-01"), Some(10));
    }

    #[test]
    fn matching_is_case_insensitive_and_version_exact() {
        let t = RestrictionTable::builtin();
        assert!(t.is_blocked("ECS", "2014-05-26", "runinstances"));
        assert!(t.is_blocked("Elastic Compute Service", "2014-05-26", "DeleteImage"));
        assert!(t.is_blocked("DMS-ENTERPRISE", "2018-11-01", "CreateOrder"));
        assert!(t.is_blocked("ims", "2019-08-15", "AnythingAtAll"));
        assert!(!t.is_blocked("Ecs", "2014-05-27", "RunInstances"));
        assert!(!t.is_blocked("Dbs", "2019-03-06", "CreateDownload"));
        assert!(!t.is_blocked("Unknown", "2014-05-26", "RunInstances"));
        assert_eq!(
            t.coverage("ram", "2015-05-01", "x"),
            Some(Coverage::AllActions)
        );
    }

    #[test]
    fn a_misdirected_json_file_is_never_quoted() {
        let err = RestrictionTable::from_json_str(
            r#"{"entry": [{"product": 5, "secret": "S3CRET-VALUE"}], "x": "S3CRET-VALUE"}"#,
            "t.json",
        )
        .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("S3CRET"), "{shown}");
        assert!(shown.contains("line 1"), "{shown}");
        let err =
            RestrictionTable::from_json_str(r#"{"entry": "S3CRET-VALUE"}"#, "t.json").unwrap_err();
        assert!(!format!("{err} {err:?}").contains("S3CRET"));
    }

    #[test]
    fn bad_files_name_the_entry() {
        let err = RestrictionTable::from_toml_str(
            "[[entry]]\nproduct='Ecs'\nversion='2014-05-26'\nactions=['A']\n\
             [[entry]]\nproduct='Rds'\nversion='2014-08-15'\nactions=[]\n",
            "test.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("entry 2") && err.contains("Rds"), "{err}");
        let err = RestrictionTable::from_json_str(
            r#"{"entry":[{"product":"Ecs","version":"v","actions":["*","X"]}]}"#,
            "t.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("entry 1"), "{err}");
        let err = RestrictionTable::from_json_str(r#"{"entry":[{"prodct":"x"}]}"#, "t.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("prodct"), "{err}");
        assert!(RestrictionTable::from_toml_str("updated = 'soon'", "t").is_err());
        let err = RestrictionTable::from_toml_str(
            "[[entry]]\nproduct='A'\naliases=['X']\nversion='1'\nactions=['a']\n\
             [[entry]]\nproduct='B'\naliases=['x']\nversion='1'\nactions=['a']\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("entry 2") && err.contains("alias"), "{err}");
    }

    #[test]
    fn merge_and_insert() {
        let mut t = RestrictionTable::builtin();
        let update = RestrictionTable::from_json_str(
            r#"{"updated":"2026-06-01","entry":[
                {"product":"ecs","version":"2014-05-26","actions":["ModifyInstanceAttribute"]},
                {"product":"Vpc","aliases":["Virtual Private Cloud"],"version":"2016-04-28","actions":["DeleteVpc"]}]}"#,
            "update.json",
        )
        .unwrap();
        t.merge(&update);
        assert!(t.is_blocked("Ecs", "2014-05-26", "ModifyInstanceAttribute"));
        assert!(t.is_blocked("Ecs", "2014-05-26", "RunInstances"));
        assert!(t.is_blocked("virtual private cloud", "2016-04-28", "DeleteVpc"));
        assert_eq!(t.updated(), Some("2026-06-01"));
        assert!(t.insert("Ecs", "2014-05-26", "StopInstance"));
        assert!(!t.insert("Ecs", "2014-05-26", "stopinstance"));
        assert!(!t.insert("", "v", "a"));
    }

    #[test]
    fn toml_round_trip() {
        let t = RestrictionTable::builtin();
        let again = RestrictionTable::from_toml_str(&t.to_toml(), "round-trip").unwrap();
        assert_eq!(t.entries(), again.entries());
    }
}
