//! The moderation panel, tried as a moderator would: in a real browser (headless Chromium,
//! driven through chromedriver's WebDriver API) against the devstack.
//!
//! A user reports a post and its author; the moderator signs in at `/admin`, sees the
//! report with the post's thumbnail, removes the post with a note in one click (it is gone
//! for other users), suspends the author for an hour from the panel (the author's next
//! write and refresh are refused), and reads both actions in the panel's modlog.
//!
//! With `SHUTTER_SCREENSHOT=1` the story saves the panel's report queue to
//! `docs/admin-panel.png` (the README shows it); normal runs leave the repository alone.
//!
//! The WebDriver client is the few commands the story needs, over reqwest: the crates
//! that wrap the protocol bring a second `http`, `cookie` and ICU stack into the tree.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{PASSWORD, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);
/// The key of an element reference in W3C WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session through a chromedriver of its own. Chromedriver and the
/// browser it starts share a process group of their own, killed when this drops: a failed
/// assertion leaves no browser behind.
struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    session: String,
    _group: Group,
}

/// A process group (its leader's pid), killed when this drops.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        // The negative id names the whole group: chromedriver and every browser process.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status();
    }
}

impl Browser {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/test.sh installs it)");
        let group = Group(driver.id().expect("chromedriver runs"));
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let ready = Instant::now();
        loop {
            let status = http.get(format!("{base}/status")).send().await;
            if let Ok(resp) = status
                && let Ok(body) = resp.json::<Value>().await
                && body["value"]["ready"] == true
            {
                break;
            }
            assert!(
                ready.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": binary,
                // --no-sandbox: test machines and CI containers run as root.
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--hide-scrollbars", "--window-size=1200,700",
                         "--force-device-scale-factor=1", "--lang=en-GB"]
            }
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"));
        Self {
            session: format!("{base}/session/{id}"),
            http,
            _group: group,
        }
    }

    /// One WebDriver command; its `value`, or its error.
    async fn command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if method == Method::POST {
            req = req.json(&body.unwrap_or_else(|| json!({})));
        }
        let resp = req.send().await.expect("chromedriver answers");
        let ok = resp.status().is_success();
        let value = resp.json::<Value>().await.unwrap_or(Value::Null)["value"].take();
        if ok { Ok(value) } else { Err(value) }
    }

    async fn must(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.command(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    async fn goto(&self, url: &str) {
        self.must(Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs `script` in the page (its `arguments` are `args`); what it returns.
    async fn script(&self, script: &str, args: Value) -> Value {
        self.must(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Waits until `script` returns something truthy; that. Fails early, with its text,
    /// when the panel shows an error.
    async fn until(&self, what: &str, script: &str, args: Value) -> Value {
        let started = Instant::now();
        loop {
            let value = self.script(script, args.clone()).await;
            if !matches!(value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("")
            {
                return value;
            }
            let error = self.error_shown().await;
            assert!(
                error.is_none(),
                "waiting for {what}, the panel says: {error:?}"
            );
            assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The panel's error box, when it shows one.
    async fn error_shown(&self) -> Option<String> {
        let shown = self
            .script(
                "const e = document.getElementById('error'); return e && !e.hidden ? e.textContent : null;",
                json!([]),
            )
            .await;
        shown.as_str().map(str::to_owned)
    }

    /// The element `css` selects, waiting for it to appear.
    async fn element(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let found = self
                .command(
                    Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Ok(found) = found {
                return found[ELEMENT].as_str().unwrap().to_owned();
            }
            let error = self.error_shown().await;
            assert!(
                error.is_none(),
                "waiting for {css}, the panel says: {error:?}"
            );
            assert!(started.elapsed() < WAIT, "no {css} on the page");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks what `css` selects, as a user does (WebDriver scrolls to it and clicks).
    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.must(Method::POST, &format!("/element/{id}/click"), None)
            .await;
    }

    /// Types `text` into what `css` selects, after clearing it.
    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.must(Method::POST, &format!("/element/{id}/clear"), None)
            .await;
        self.must(
            Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.must(Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let png = self.must(Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap()
    }

    /// The browser console's messages so far (chromedriver's log extension).
    async fn console(&self) -> Vec<String> {
        self.command(Method::POST, "/se/log", Some(json!({"type": "browser"})))
            .await
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|m| m["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Closes the session (the browser quits); the drop then ends chromedriver.
    async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// A published post whose image is a 320 × 320 colour gradient (a visible thumbnail).
async fn post_with_picture(app: &TestApp, author: &User, caption: &str) -> String {
    let jpeg = shutter_media::images::fixtures::jpeg_with_gps(320, 320);
    let created = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&author.access_token),
            Some(json!({"caption": caption, "media": [{"content_type": "image/jpeg", "size": jpeg.len()}]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["post"]["id"].as_str().unwrap().to_owned();
    let uploaded = app
        .upload(&created.body["uploads"][0]["upload"], &jpeg)
        .await;
    assert!(uploaded.is_success(), "S3 took the upload: {uploaded}");
    let path = format!("/v1/posts/{id}");
    eventually("the post to be published", WAIT, || async {
        let post = app
            .call(Method::GET, &path, Some(&author.access_token), None)
            .await;
        (post.body["status"] == "published").then_some(())
    })
    .await;
    id
}

/// Reports a target, once moderation knows it.
async fn report(app: &TestApp, user: &User, kind: &str, id: &str, reason: &str) {
    let answer = app.report_when_known(user, kind, id, reason).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
}

/// The queue entry of a target, as a CSS selector.
fn entry(kind: &str, id: &str) -> String {
    format!(r#"#queue-list li[data-target-type="{kind}"][data-target-id="{id}"]"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_removes_a_reported_post_and_suspends_its_author_in_the_browser() {
    // GIVEN a devstack whose AdminUsernames names one account, which makes a moderator
    let (app, admin) = TestApp::with_admin().await;
    let moderator = app.user(&TestApp::unique("mod")).await;
    let granted = app
        .call(
            Method::PUT,
            &format!("/v1/admin/users/{}/roles/moderator", moderator.username),
            Some(&admin.access_token),
            Some(json!({"reason": "runs the panel"})),
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{:?}", granted.body);

    // AND the panel's page comes with its strict policy, which lets images come from the
    // media bucket (here moto) and nothing else from elsewhere
    let page = app.http.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"),
        "{csp}"
    );
    assert!(
        csp.contains(&format!(
            "img-src 'self' data: {};",
            app.stack.moto_url().trim_end_matches('/')
        )),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("admin/app.js"));

    // AND an author whose post and account a user reports
    let author = app.user(&TestApp::unique("author")).await;
    let reporter = app.user(&TestApp::unique("reporter")).await;
    // (its caption carries markup: the panel must show it as text, not make it elements)
    let caption = "Cheap followers <b>now</b> at spam.example! #deal";
    let post = post_with_picture(&app, &author, caption).await;
    report(&app, &reporter, "post", &post, "spam").await;
    report(&app, &reporter, "user", &author.id, "harassment").await;

    // WHEN the moderator signs in at /admin in the browser
    let browser = Browser::start().await;
    browser.goto(&app.url("/admin")).await;
    browser
        .until(
            "the panel's script",
            "return document.body.dataset.ready === 'true';",
            json!([]),
        )
        .await;
    browser.type_into("#login", &moderator.username).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login-submit").await;

    // THEN the queue shows the post's report with its thumbnail, loaded from the bucket
    let post_entry = entry("post", &post);
    browser.element(&post_entry).await;
    let width = browser
        .until(
            "the post's thumbnail to load",
            "const img = document.querySelector(arguments[0] + ' img[data-testid=report-thumbnail]');
             return img && img.complete ? img.naturalWidth : 0;",
            json!([post_entry]),
        )
        .await;
    assert!(width.as_u64().unwrap() > 0, "{width}");
    let text = browser.text(&post_entry).await;
    assert!(text.contains(caption), "{text}");
    let markup = browser
        .script(
            "return document.querySelectorAll(arguments[0] + ' [data-testid=report-text] *').length;",
            json!([post_entry]),
        )
        .await;
    assert_eq!(markup, json!(0), "the caption became elements");
    assert!(text.contains(&format!("@{}", author.username)), "{text}");
    assert!(text.contains("spam"), "{text}");
    let user_entry = entry("user", &author.id);
    browser.element(&user_entry).await;
    assert!(
        browser.text("#whoami").await.contains(&moderator.username),
        "signed in as the moderator"
    );
    if std::env::var("SHUTTER_SCREENSHOT").is_ok_and(|v| v == "1") {
        let png = browser.screenshot().await;
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/admin-panel.png");
        std::fs::write(&file, &png).unwrap();
        eprintln!("saved {} ({} bytes)", file.display(), png.len());
    }

    // WHEN the moderator removes the post with a note, in one click
    browser
        .type_into(
            &format!("{post_entry} [data-testid=resolve-note]"),
            "Spam: selling followers",
        )
        .await;
    browser
        .click(&format!(
            "{post_entry} [data-testid=resolve-remove_content]"
        ))
        .await;
    browser
        .until(
            "the post's report to leave the open queue",
            "return !document.querySelector(arguments[0]) && !document.getElementById('notice').hidden;",
            json!([post_entry]),
        )
        .await;

    // THEN the post is gone for other users
    let path = format!("/v1/posts/{post}");
    eventually("the removed post to be gone for others", WAIT, || async {
        let answer = app
            .call(Method::GET, &path, Some(&reporter.access_token), None)
            .await;
        (answer.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;

    // WHEN the moderator suspends the author for 1 hour from the panel
    browser
        .type_into(
            &format!("{user_entry} [data-testid=resolve-note]"),
            "Harassing other users",
        )
        .await;
    browser
        .type_into(&format!("{user_entry} [data-testid=suspend-hours]"), "1")
        .await;
    browser
        .click(&format!("{user_entry} [data-testid=resolve-suspend]"))
        .await;
    browser
        .until(
            "the author's report to leave the open queue",
            "return !document.querySelector(arguments[0]);",
            json!([user_entry]),
        )
        .await;

    // THEN the author's next write is refused (within seconds: the services learn it from
    // an event), and so is their refresh
    let follow = format!("/v1/users/{}/follow", reporter.username);
    let refused = eventually(
        "the suspended author's write to be refused",
        WAIT,
        || async {
            let answer = app
                .call(Method::PUT, &follow, Some(&author.access_token), None)
                .await;
            (answer.status == StatusCode::FORBIDDEN).then_some(answer)
        },
    )
    .await;
    assert_eq!(
        refused.body["code"], "account_suspended",
        "{:?}",
        refused.body
    );
    let refresh = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": author.refresh_token})),
        )
        .await;
    assert_eq!(
        (refresh.status, refresh.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_suspended")),
        "{:?}",
        refresh.body
    );
    let until = refresh.body["until"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !until.is_empty(),
        "a suspension says when it ends: {:?}",
        refresh.body
    );

    // AND the resolved queue shows both decisions with their notes
    browser.click("#queue-resolved").await;
    browser
        .until(
            "the resolved queue",
            "const l = document.getElementById('queue-list'); return l.dataset.loaded === 'resolved' && !l.hasAttribute('aria-busy');",
            json!([]),
        )
        .await;
    let resolved = browser
        .text(&format!("{post_entry} [data-testid=report-resolution]"))
        .await;
    assert!(resolved.contains("remove_content"), "{resolved}");
    assert!(resolved.contains("Spam: selling followers"), "{resolved}");
    assert!(resolved.contains(&moderator.username), "{resolved}");

    // AND the panel's modlog shows both actions
    browser.click("#tab-modlog").await;
    let removed = format!(
        r#"#modlog-list li[data-action="remove_content"][data-target-type="post"][data-target-id="{post}"]"#
    );
    let suspended = format!(
        r#"#modlog-list li[data-action="suspend"][data-target-type="user"][data-target-id="{}"]"#,
        author.id
    );
    let line = browser.text(&removed).await;
    assert!(line.contains(&moderator.username), "{line}");
    assert!(line.contains("Spam: selling followers"), "{line}");
    let line = browser.text(&suspended).await;
    assert!(line.contains("suspend until"), "{line}");
    assert!(line.contains("Harassing other users"), "{line}");

    // AND looking the author up shows the suspension
    browser.click("#tab-user").await;
    browser.type_into("#user-query", &author.username).await;
    browser.click("#user-submit").await;
    let standing = browser
        .text(r#"#user-result [data-testid="user-standing"]"#)
        .await;
    assert!(standing.starts_with("Suspended until"), "{standing}");

    // WHEN the moderator lifts the suspension from the look-up, with a note
    browser
        .type_into(
            r#"#user-result [data-testid="unsuspend-note"]"#,
            "Appeal accepted",
        )
        .await;
    browser
        .click(r#"#user-result [data-testid="unsuspend"]"#)
        .await;
    browser
        .until(
            "the author to be in good standing",
            "const s = document.querySelector('#user-result [data-testid=user-standing]');
             return s && s.textContent === 'In good standing';",
            json!([]),
        )
        .await;
    // THEN the author may log in again
    let login = app.login(&author.username, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);

    // AND the page broke none of its own policy (no blocked script, style or image)
    let console = browser.console().await;
    assert!(
        !console
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "{console:?}"
    );

    // AND the policy holds: a script injected into the page does not run
    let ran = browser
        .script(
            "const s = document.createElement('script');
             s.textContent = 'window.injected = true;';
             document.body.append(s);
             return window.injected === true;",
            json!([]),
        )
        .await;
    assert_eq!(ran, json!(false), "an inline script ran");
    let console_after = browser.console().await;
    assert!(
        console_after
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "the blocked script is reported: {console_after:?}"
    );

    eprintln!(
        "admin panel: thumbnail {width} px wide; post removed and author suspended (until {until}) \
         and reinstated from the browser; {} console messages, none about the policy",
        console.len()
    );
    browser.quit().await;
    app.stop().await;
}
