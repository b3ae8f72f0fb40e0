//! A small S3 client over `rusty-s3` (request signing) and `reqwest`: list a prefix, get, put
//! and delete objects. Credentials live only in [`S3Config`] (never logged: its `Debug` hides
//! them).

use std::time::Duration;

use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};

/// How long a signed request is valid.
const SIGNED_FOR: Duration = Duration::from_secs(300);

/// Where the server's S3-compatible storage is, and its credentials.
#[derive(Clone, Default)]
pub struct S3Config {
    /// `http://127.0.0.1:9000`, `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: Option<String>,
    /// The region (`us-east-1` when unset).
    pub region: Option<String>,
    /// Access key id.
    pub access_key: Option<String>,
    /// Secret access key.
    pub secret_key: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &self.access_key.as_ref().map(|_| "<set>"))
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// An object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its key.
    pub key: String,
    /// Its ETag, without quotes.
    pub etag: String,
    /// Its size.
    pub size: u64,
    /// When it was last modified (seconds since the epoch).
    pub modified: i64,
}

/// One bucket, signed with the server's credentials.
pub struct S3 {
    client: reqwest::Client,
    bucket: Bucket,
    creds: Option<Credentials>,
}

/// `s3://bucket/prefix` → (bucket, prefix ending in `/` or empty).
pub fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is not s3://bucket/prefix"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !ok {
        return Err(format!(
            "bucket {bucket:?}: 3 to 63 lowercase letters, digits, '-' or '.'"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|p| p == ".." || p == ".") {
        return Err(format!("prefix {prefix:?} must not contain . or .."));
    }
    Ok((
        bucket.to_owned(),
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        },
    ))
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl S3 {
    /// A client of `bucket` at the configured endpoint.
    pub fn new(config: &S3Config, bucket: &str) -> Result<S3, String> {
        let endpoint = config
            .endpoint
            .as_deref()
            .unwrap_or("https://s3.amazonaws.com")
            .parse()
            .map_err(|e| err("the S3 endpoint is not a URL", e))?;
        let region = config.region.clone().unwrap_or_else(|| "us-east-1".into());
        let bucket = Bucket::new(endpoint, UrlStyle::Path, bucket.to_owned(), region)
            .map_err(|e| err("the S3 endpoint", e))?;
        let creds = match (&config.access_key, &config.secret_key) {
            (Some(k), Some(s)) => Some(Credentials::new(k.clone(), s.clone())),
            _ => None,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| err("cannot build an HTTP client", e))?;
        Ok(S3 {
            client,
            bucket,
            creds,
        })
    }

    /// Every object below `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Object>, String> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, self.creds.as_ref());
            action.with_prefix(prefix);
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGNED_FOR);
            let resp = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| err("list objects", e))?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| err("list objects", e))?;
            if !status.is_success() {
                return Err(format!("list objects: {status}: {}", first_line(&text)));
            }
            let page = ListObjectsV2::parse_response(&text).map_err(|e| err("list objects", e))?;
            for o in page.contents {
                out.push(Object {
                    etag: o.etag.trim_matches('"').to_owned(),
                    size: o.size,
                    modified: chrono::DateTime::parse_from_rfc3339(&o.last_modified)
                        .map(|t| t.timestamp())
                        .unwrap_or(0),
                    key: o.key,
                });
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(out)
    }

    /// An object's contents.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        let url = self
            .bucket
            .get_object(self.creds.as_ref(), key)
            .sign(SIGNED_FOR);
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| err("get object", e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| err("get object", e))?;
        if !status.is_success() {
            return Err(format!("get {key}: {status}"));
        }
        Ok(body.to_vec())
    }

    /// Writes an object; returns its ETag.
    pub async fn put(&self, key: &str, contents: Vec<u8>) -> Result<String, String> {
        let url = self
            .bucket
            .put_object(self.creds.as_ref(), key)
            .sign(SIGNED_FOR);
        let resp = self
            .client
            .put(url)
            .header("content-type", "application/octet-stream")
            .body(contents)
            .send()
            .await
            .map_err(|e| err("put object", e))?;
        let status = resp.status();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned();
        if !status.is_success() {
            return Err(format!("put {key}: {status}"));
        }
        Ok(etag)
    }

    /// Deletes an object.
    pub async fn delete(&self, key: &str) -> Result<(), String> {
        let url = self
            .bucket
            .delete_object(self.creds.as_ref(), key)
            .sign(SIGNED_FOR);
        let resp = self
            .client
            .delete(url)
            .send()
            .await
            .map_err(|e| err("delete object", e))?;
        if !resp.status().is_success() {
            return Err(format!("delete {key}: {}", resp.status()));
        }
        Ok(())
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        assert_eq!(
            parse_url("s3://work/alice/ws").unwrap(),
            ("work".into(), "alice/ws/".into())
        );
        assert_eq!(
            parse_url("s3://work").unwrap(),
            ("work".into(), String::new())
        );
        assert!(parse_url("http://work/x").is_err());
        assert!(parse_url("s3://UP/x").is_err());
        assert!(parse_url("s3://work/../x").is_err());
    }

    #[test]
    fn credentials_stay_out_of_debug() {
        let c = S3Config {
            access_key: Some("AKIDSECRETVALUE".into()),
            secret_key: Some("very-secret".into()),
            ..Default::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("AKIDSECRETVALUE") && !shown.contains("very-secret"));
    }
}
