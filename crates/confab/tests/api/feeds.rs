//! Atom feeds of a thread's and a forum's newest approved comments.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

/// A feed's status, headers and text.
async fn feed(
    app: &TestApp,
    path: &str,
    etag: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut r = app.http.get(format!("{}{path}", app.base));
    if let Some(e) = etag {
        r = r.header("if-none-match", e);
    }
    let r = r.send().await.expect("request");
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.text().await.expect("body"))
}

/// The document parses as XML from start to end, and has `n` entries.
fn entries(xml: &str) -> usize {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut n = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) if e.name().into_inner() == "entry" => n += 1,
            Ok(quick_xml::events::Event::Eof) => return n,
            Ok(_) => {}
            Err(e) => panic!("not XML at {}: {e}\n{xml}", reader.buffer_position()),
        }
    }
}

#[tokio::test]
async fn feeds_carry_the_newest_approved_comments_and_answer_if_none_match() {
    let app = spawn().await;
    let modr = app.account("modr", false, &["demo"]).await;
    let post = |ident: &'static str, body: &'static str, parent: Option<String>| {
        let app = &app;
        async move {
            let mut b = json!({
                "forum": "demo", "ident": ident, "body": body,
                "url": format!("https://blog.example.com/{ident}"), "title": format!("Post <{ident}>"),
                "author_name": "Ann & co", "author_email": "ann@example.com",
                "author_url": "https://ann.example",
            });
            if let Some(p) = parent {
                b["parent_id"] = json!(p);
            }
            let r = app.post("/api/v1/comments", b, &As::guest()).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            r.body["id"].as_str().unwrap().to_string()
        }
    };
    let first = post("p1", "first **bold** <script>alert(1)</script>", None).await;
    let reply = post("p1", "a reply", Some(first.clone())).await;
    let gone = post("p1", "to be deleted", None).await;
    let other = post("p2", "on another post", None).await;
    let r = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [gone], "action": "delete"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // The thread's feed: its approved comments, replies included, newest first.
    let path = "/feeds/demo/thread.atom?ident=p1".to_string();
    let (status, headers, xml) = feed(&app, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(
        headers["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(entries(&xml), 2, "{xml}");
    assert!(
        xml.contains("<title>Comments on Post &lt;p1&gt;</title>"),
        "{xml}"
    );
    assert!(
        xml.find(&format!("urn:confab:demo:comment:{reply}"))
            .unwrap()
            < xml
                .find(&format!("urn:confab:demo:comment:{first}"))
                .unwrap(),
        "newest first: {xml}"
    );
    assert!(xml.contains(&format!(
        "href=\"https://blog.example.com/p1#comment-{first}\""
    )));
    assert!(
        xml.contains("<name>Ann &amp; co</name><uri>https://ann.example/</uri>"),
        "{xml}"
    );
    // The sanitized HTML, escaped once more as Atom text: no live markup, no e-mail.
    assert!(xml.contains("&lt;strong&gt;bold&lt;/strong&gt;"), "{xml}");
    assert!(
        !xml.contains("<script") && !xml.contains("&lt;script"),
        "{xml}"
    );
    assert!(!xml.contains("ann@example.com"), "{xml}");
    assert!(
        !xml.contains("to be deleted") && !xml.contains("on another post"),
        "{xml}"
    );

    // Conditional: the same ETag is 304; a new comment changes it.
    let etag = headers["etag"].to_str().unwrap().to_string();
    let (status, _, body) = feed(&app, &path, Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    post("p1", "newer", None).await;
    let (status, headers, xml) = feed(&app, &path, Some(&etag)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(headers["etag"].to_str().unwrap(), etag);
    assert_eq!(entries(&xml), 3, "{xml}");

    // The forum's feed: every thread, each entry named by its thread.
    let (status, headers, xml) = feed(&app, "/feeds/demo/comments.atom", None).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(entries(&xml), 4, "{xml}");
    assert!(
        xml.contains("<title>Ann &amp; co on Post &lt;p2&gt;</title>"),
        "{xml}"
    );
    assert!(xml.contains(&format!("#comment-{other}\"")), "{xml}");
    assert!(!xml.contains("to be deleted"), "{xml}");
    let etag = headers["etag"].to_str().unwrap().to_string();
    let (status, _, _) = feed(&app, "/feeds/demo/comments.atom", Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    // The server-rendered fragment links its thread's feed.
    let (_, _, html) = app
        .get_page(&format!(
            "{}/embed/thread.html?forum=demo&ident=p1",
            app.base
        ))
        .await;
    assert!(
        html.contains(&format!(
            "<a href=\"{}/feeds/demo/thread.atom?ident=p1\" type=\"application/atom+xml\">",
            app.base
        )),
        "{html}"
    );
}

#[tokio::test]
async fn feeds_of_unknown_forums_and_threads_and_bad_queries() {
    let app = spawn().await;
    let (status, _, body) = feed(&app, "/feeds/nope/comments.atom", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "not_found", "{body}");
    let (status, _, body) = feed(&app, "/feeds/demo/thread.atom", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = feed(&app, "/feeds/demo/thread.atom?ident=p1&x=1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A thread nobody commented on yet: an empty, valid feed.
    let (status, _, xml) = feed(&app, "/feeds/demo/thread.atom?ident=never", None).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(entries(&xml), 0);
    assert!(xml.contains("<title>Comments on never</title>"), "{xml}");
}
