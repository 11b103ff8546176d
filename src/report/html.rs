//! `index.html` (self-contained: no network, no JavaScript; charts are files beside it) and
//! `summary.md` (key figures for pasting into notes).

use std::fmt::Write;

/// Escape text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A number as people read it: integers plain, others to 4 significant digits.
pub fn num(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(f)) if f.is_finite() && f != 0.0 && (f.abs() >= 1e5 || f.abs() < 1e-3) => format!("{f:.4e}"),
            (_, Some(f)) => format!("{:.4}", f).trim_end_matches('0').trim_end_matches('.').to_string(),
            _ => n.to_string(),
        },
        serde_json::Value::Null => "n/a".into(),
        serde_json::Value::Array(a) => a.iter().map(num).collect::<Vec<_>>().join(", "),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rows of a flat JSON object (nested objects flattened with dots).
pub fn rows(v: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, x, out);
                }
            }
            other => out.push((prefix.to_string(), num(other))),
        }
    }
    walk("", v, &mut out);
    out
}

/// One section of a page.
pub enum Block {
    /// A heading.
    Heading(String),
    /// A paragraph of plain text.
    Text(String),
    /// A key-value table.
    Pairs(Vec<(String, String)>),
    /// A table with a header.
    Table(Vec<String>, Vec<Vec<String>>),
    /// A chart: file stem and caption (PNG shown, SVG linked).
    Chart(String, String),
    /// Preformatted text.
    Pre(String),
}

/// A whole page.
pub fn page(title: &str, blocks: &[Block]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
         body {{ font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; max-width: 1160px; margin: 0 auto; padding: 1em 1.5em; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.92em; }}\n\
         th, td {{ padding: 3px 12px; border-bottom: 1px solid #e2e2e2; text-align: right; }}\n\
         th:first-child, td:first-child {{ text-align: left; }}\n\
         th {{ background: #f3f3f3; }}\n\
         figure {{ margin: 1.2em 0; }} img {{ max-width: 100%; border: 1px solid #eee; }}\n\
         figcaption {{ font-size: 0.85em; color: #555; }}\n\
         pre {{ background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em; }}\n\
         </style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(title),
        esc(title)
    );
    for b in blocks {
        match b {
            Block::Heading(t) => {
                let _ = writeln!(h, "<h2>{}</h2>", esc(t));
            }
            Block::Text(t) => {
                let _ = writeln!(h, "<p>{}</p>", esc(t));
            }
            Block::Pairs(rows) => {
                h.push_str("<table>\n");
                for (k, v) in rows {
                    let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
                }
                h.push_str("</table>\n");
            }
            Block::Table(head, rows) => {
                h.push_str("<table>\n<tr>");
                for c in head {
                    let _ = write!(h, "<th>{}</th>", esc(c));
                }
                h.push_str("</tr>\n");
                for r in rows {
                    h.push_str("<tr>");
                    for c in r {
                        let _ = write!(h, "<td>{}</td>", esc(c));
                    }
                    h.push_str("</tr>\n");
                }
                h.push_str("</table>\n");
            }
            Block::Chart(stem, caption) => {
                let _ = writeln!(
                    h,
                    "<figure><img src=\"{0}.png\" alt=\"{1}\"><figcaption>{1} (<a href=\"{0}.svg\">SVG</a>)</figcaption></figure>",
                    esc(stem),
                    esc(caption)
                );
            }
            Block::Pre(t) => {
                let _ = writeln!(h, "<pre>{}</pre>", esc(t));
            }
        }
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// Markdown key-figures table.
pub fn summary_md(title: &str, figures: &[(String, String)], extra: &str) -> String {
    let mut s = format!("# {title}\n\n| figure | value |\n| --- | --- |\n");
    for (k, v) in figures {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    if !extra.is_empty() {
        s.push('\n');
        s.push_str(extra);
    }
    s
}

/// A markdown page with one table.
pub fn table_md(title: &str, head: &[String], rows: &[Vec<String>]) -> String {
    let mut s = format!("# {title}\n\n| {} |\n|{}\n", head.join(" | "), " --- |".repeat(head.len()));
    for r in rows {
        let _ = writeln!(s, "| {} |", r.join(" | "));
    }
    s
}
