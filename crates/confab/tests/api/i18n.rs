//! The message catalogs the widget and the dashboard load for a language other than English.

use crate::helpers::*;
use reqwest::StatusCode;

const LANGS: [&str; 7] = ["de", "fr", "es", "pt", "ja", "zh", "ar"];

#[tokio::test]
async fn catalogs_are_served_cached_and_readable_from_any_site() {
    let app = spawn().await;
    // The embed names the catalogs' version it was built with.
    let embed = app
        .http
        .get(format!("{}/embed.js", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v = embed
        .split("const I18N_V = '")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("the embed carries the catalogs' version")
        .to_string();
    assert!(
        v.len() >= 8 && v.chars().all(|c| c.is_ascii_hexdigit()),
        "{v}"
    );
    for surface in ["embed", "admin"] {
        for lang in LANGS {
            let url = format!("{}/i18n/{surface}/{lang}.json?v={v}", app.base);
            let r = app
                .http
                .get(&url)
                .header("origin", "https://blog.example")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{url}");
            let h = r.headers().clone();
            assert!(h["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"));
            assert_eq!(h["access-control-allow-origin"], "*");
            assert!(h["cache-control"].to_str().unwrap().contains("immutable"));
            let body: serde_json::Value = r.json().await.unwrap();
            assert!(
                body.as_object().is_some_and(|o| o.len() > 50),
                "{surface}/{lang}"
            );
            // Revalidation with the ETag costs nothing.
            let etag = h["etag"].to_str().unwrap();
            let again = app
                .http
                .get(&url)
                .header("if-none-match", etag)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        }
    }
    // Without the current version (an old page), only a short cache.
    let r = app
        .http
        .get(format!("{}/i18n/embed/de.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let de: serde_json::Value = r.json().await.unwrap();
    assert_eq!(de["sort_best"], "Beste");
}

#[tokio::test]
async fn unknown_catalogs_are_json_404s() {
    let app = spawn().await;
    for path in [
        "/i18n/embed/en.json",
        "/i18n/embed/xx.json",
        "/i18n/embed/de",
        "/i18n/other/de.json",
        "/i18n/embed/..%2Fadmin%2Fde.json",
    ] {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
}
