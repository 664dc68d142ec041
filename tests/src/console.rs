//! A browser-like client of a service's web console over plain HTTP: it
//! keeps the service's cookies, sends the Origin a browser would, and reads
//! the CSRF token out of the forms it is served.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, ORIGIN, SET_COOKIE};

/// One console answer.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the first `name="csrf"` hidden field.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        let rest = &self.body[at..];
        Some(rest[..rest.find('"')?].to_owned())
    }

    pub fn location(&self) -> Option<&str> {
        self.headers.get("location")?.to_str().ok()
    }
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A console client of one service at `base` (no redirects followed).
pub struct ConsoleClient {
    pub base: String,
    client: reqwest::Client,
    /// `name=value` pairs the service set and has not deleted.
    pub cookies: Vec<(String, String)>,
    pub accept_language: &'static str,
}

impl ConsoleClient {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: Vec::new(),
            accept_language: "en",
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn answer(&mut self, response: reqwest::Response) -> Page {
        for set in response.headers().get_all(SET_COOKIE) {
            let text = set.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != name);
                if !value.is_empty() && !text.contains("Max-Age=0") {
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.get_from(path, None).await
    }

    /// Follows a link to `path` from the page `referer` (a full address).
    pub async fn get_from(&mut self, path: &str, referer: Option<&str>) -> Page {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("accept-language", self.accept_language);
        if let Some(referer) = referer {
            request = request.header("referer", referer);
        }
        let response = request.send().await.expect("console answers");
        self.answer(response).await
    }

    /// Posts `fields` as a form from the console's own origin.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_from(path, fields, Some(&origin)).await
    }

    pub async fn post_from(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("accept-language", self.accept_language)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(fields));
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        let response = request.send().await.expect("console answers");
        self.answer(response).await
    }

    /// Posts `fields` and one file as `multipart/form-data` from the
    /// console's own origin, as a browser uploads a file.
    pub async fn post_file(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        (name, filename, content): (&str, &str, &[u8]),
    ) -> Page {
        const BOUNDARY: &str = "creditops-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (field, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("accept-language", self.accept_language)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .header(ORIGIN, self.base.clone())
            .body(body)
            .send()
            .await
            .expect("console answers");
        self.answer(response).await
    }

    /// Signs in as `user` through the login form; the answer to the post.
    pub async fn login(&mut self, user: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.csrf().expect("the login form carries a CSRF token");
        self.post("/login", &[("user", user), ("csrf", &csrf)])
            .await
    }

    /// The cookie whose name ends with `suffix`.
    pub fn cookie(&self, suffix: &str) -> Option<&(String, String)> {
        self.cookies.iter().find(|(n, _)| n.ends_with(suffix))
    }
}
