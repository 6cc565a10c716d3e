//! The static pages, embedded at build time.

/// `(path, content type, body)` of every static asset.
pub(crate) const ASSETS: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", INDEX),
    ("/index.html", "text/html; charset=utf-8", INDEX),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "/settings.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/settings.js"),
    ),
    (
        "/history.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/history.js"),
    ),
    (
        "/tests.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/tests.js"),
    ),
    (
        "/system.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/system.js"),
    ),
    (
        "/drill-report.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/drill-report.js"),
    ),
    ("/favicon.svg", "image/svg+xml", FAVICON),
    // Browsers ask for it whatever the page says; the same picture.
    ("/favicon.ico", "image/svg+xml", FAVICON),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
];

const INDEX: &str = include_str!("../assets/index.html");
const FAVICON: &str = include_str!("../assets/favicon.svg");

/// The asset at `path`.
pub(crate) fn get(path: &str) -> Option<(&'static str, &'static str)> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ct, body)| (*ct, *body))
}
