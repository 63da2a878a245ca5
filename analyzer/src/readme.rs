//! `llmib analyze --readme`: rewrites generated blocks of a README between marker
//! comments, leaving every other byte untouched.
//!
//! Markers (each pair optional, at least one required):
//!
//! ```text
//! <!-- llmib:throughput-table:begin -->  ...  <!-- llmib:throughput-table:end -->
//! <!-- llmib:latency-table:begin -->     ...  <!-- llmib:latency-table:end -->
//! <!-- llmib:runs-table:begin -->        ...  <!-- llmib:runs-table:end -->
//! <!-- llmib:sessions-table:begin -->    ...  <!-- llmib:sessions-table:end -->
//! <!-- llmib:figures:begin -->           ...  <!-- llmib:figures:end -->
//! ```
//!
//! The text between a pair is replaced by the generated Markdown; the markers stay, so
//! the update can be repeated. The file is replaced atomically.

use std::path::Path;

use crate::error::{Error, Result};
use crate::report::Report;
use crate::tables::markdown;

/// Names of the blocks, in the order they are looked for.
pub const BLOCKS: [&str; 5] = [
    "throughput-table",
    "latency-table",
    "runs-table",
    "sessions-table",
    "figures",
];

fn markers(block: &str) -> (String, String) {
    (
        format!("<!-- llmib:{block}:begin -->"),
        format!("<!-- llmib:{block}:end -->"),
    )
}

/// Replaces the content of one block; `Ok(false)` when the markers are absent.
pub fn replace_block(text: &mut String, block: &str, content: &str) -> Result<bool> {
    let (begin, end) = markers(block);
    let Some(b) = text.find(&begin) else {
        if text.contains(&end) {
            return Err(Error::Invalid(format!("`{end}` without `{begin}`")));
        }
        return Ok(false);
    };
    let after = b + begin.len();
    let Some(e) = text[after..].find(&end).map(|e| after + e) else {
        return Err(Error::Invalid(format!("`{begin}` without `{end}`")));
    };
    if text[e + end.len()..].contains(&begin) {
        return Err(Error::Invalid(format!("`{begin}` appears twice")));
    }
    let body = content.trim_end_matches('\n');
    text.replace_range(after..e, &format!("\n{body}\n"));
    Ok(true)
}

/// Checks, without writing, that `readme` is readable and its markers are well formed
/// with at least one block; returns the blocks found. Run before any output is written.
pub fn check_readme(readme: &Path) -> Result<Vec<String>> {
    let mut text = read(readme)?;
    let mut found = Vec::new();
    for block in BLOCKS {
        if replace_block(&mut text, block, "")? {
            found.push(block.to_string());
        }
    }
    if found.is_empty() {
        return Err(no_markers(readme));
    }
    Ok(found)
}

/// The README's text, bounded ([`formats::InputKind::README`]).
fn read(readme: &Path) -> Result<String> {
    formats::read_input_utf8(readme, formats::InputKind::README)
        .map_err(|e| Error::Invalid(e.to_string()))
}

fn no_markers(readme: &Path) -> Error {
    Error::Invalid(format!(
        "{}: no llmib markers found (e.g. `<!-- llmib:throughput-table:begin -->` ... `<!-- llmib:throughput-table:end -->`)",
        readme.display()
    ))
}

/// Rewrites the marked blocks of `readme` with the report's tables and `figures`
/// (paths relative to the README, written by [`crate::write_figures`]). Returns the
/// names of the blocks updated; an error when none was found.
pub fn update_readme(readme: &Path, report: &Report, figures: &[String]) -> Result<Vec<String>> {
    let mut text = read(readme)?;
    let figs: String = figures
        .iter()
        .filter(|f| f.ends_with(".png"))
        .map(|f| format!("<img src=\"{f}\" width=700>\n"))
        .collect();
    let contents = [
        markdown::throughput(report),
        markdown::latency(report),
        markdown::runs(report),
        crate::tables::sessions::readme_block(report),
        figs,
    ];
    let mut done = Vec::new();
    for (block, content) in BLOCKS.iter().zip(contents) {
        if replace_block(&mut text, block, &content)? {
            done.push(block.to_string());
        }
    }
    if done.is_empty() {
        return Err(no_markers(readme));
    }
    formats::write_atomic(readme, text.as_bytes()).map_err(|e| Error::Log {
        path: readme.to_path_buf(),
        source: e,
    })?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_between_markers_and_is_idempotent() {
        let mut t =
            "a\n<!-- llmib:figures:begin -->\nold\n<!-- llmib:figures:end -->\nz\n".to_string();
        assert!(replace_block(&mut t, "figures", "new\n").unwrap());
        assert_eq!(
            t,
            "a\n<!-- llmib:figures:begin -->\nnew\n<!-- llmib:figures:end -->\nz\n"
        );
        let again = t.clone();
        assert!(replace_block(&mut t, "figures", "new").unwrap());
        assert_eq!(t, again);
        assert!(!replace_block(&mut t, "latency-table", "x").unwrap());
        let mut bad = "<!-- llmib:figures:begin -->".to_string();
        assert!(replace_block(&mut bad, "figures", "x").is_err());
    }
}
